//! The storage engine contract: a dumb, ordered key-value store with atomic
//! batches. Hashing, compression, verification and the index's meaning all
//! live above it, in the store (`plumb::store::Store`), so an engine stays
//! small. Engines live in `backends/engines/`; [`memory::MemoryEngine`] is
//! the reference one, and one conformance suite runs against all of them.

pub mod memory;

use std::fmt;
use std::io;
use std::ops::Bound;

/// The tables every engine keeps. Keys and values are opaque bytes;
/// the store gives them meaning (see `spec/store.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Object id (32 bytes) → stored object (compression flag + bytes).
    Objects,
    /// Ref name → value; updated with compare-and-swap.
    Refs,
    /// Source name → source definition.
    Sources,
    /// Source name, NUL, sequence number (u64 BE) → snapshot id.
    Log,
    /// Source name, NUL, native revision → sequence number + snapshot id.
    Revisions,
    /// Source name, NUL, time key (u64 BE), sequence (u64 BE) → snapshot id.
    Times,
    /// Snapshot id (32 bytes), source name → sequence number.
    Snapshots,
    /// Source name, NUL, key → a source's private cache value.
    Cache,
    /// Target name → target definition.
    Targets,
    /// Target name → what plumb last applied there (its inventory).
    Inventory,
    /// Target name, NUL, sequence number (u64 BE) → a run record (audit log).
    Runs,
    /// Store-wide values kept by the store itself (the journal's
    /// generation); see `spec/store.md`.
    Meta,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 12] = [
        Table::Objects,
        Table::Refs,
        Table::Sources,
        Table::Log,
        Table::Revisions,
        Table::Times,
        Table::Snapshots,
        Table::Cache,
        Table::Targets,
        Table::Inventory,
        Table::Runs,
        Table::Meta,
    ];

    /// The table's stable on-disk name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Objects => "objects",
            Table::Refs => "refs",
            Table::Sources => "sources",
            Table::Log => "log",
            Table::Revisions => "revisions",
            Table::Times => "times",
            Table::Snapshots => "snapshots",
            Table::Cache => "cache",
            Table::Targets => "targets",
            Table::Inventory => "inventory",
            Table::Runs => "runs",
            Table::Meta => "meta",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// Where.
        table: Table,
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove `key` (no error when absent).
    Delete {
        /// Where.
        table: Table,
        /// The key.
        key: Vec<u8>,
    },
}

/// A precondition of a [`Batch`]: `key` must hold `value` (`None`: be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Where.
    pub table: Table,
    /// The key.
    pub key: Vec<u8>,
    /// The value it must hold, or `None` for absent.
    pub value: Option<Vec<u8>>,
}

/// Writes applied all together or not at all, after checking preconditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Preconditions, all checked before any write.
    pub expect: Vec<Expect>,
    /// Writes, applied in order.
    pub ops: Vec<Op>,
    /// Whether durability may wait for the next non-lazy commit (see
    /// [`Engine::commit`]).
    pub lazy: bool,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put {
            table,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete {
            table,
            key: key.into(),
        });
    }

    /// Adds a precondition.
    pub fn expect(&mut self, table: Table, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) {
        self.expect.push(Expect {
            table,
            key: key.into(),
            value,
        });
    }

    /// A batch whose durability may wait for the next non-lazy commit.
    pub fn lazy() -> Self {
        Self {
            lazy: true,
            ..Self::default()
        }
    }

    /// Whether the batch writes nothing and checks nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.expect.is_empty()
    }

    /// Total bytes of keys and values written.
    pub fn size(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, .. } => key.len() + value.len(),
                Op::Delete { key, .. } => key.len(),
            })
            .sum()
    }
}

/// A range of keys.
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    /// Lower bound.
    pub start: Bound<&'a [u8]>,
    /// Upper bound.
    pub end: Bound<&'a [u8]>,
}

impl<'a> KeyRange<'a> {
    /// Every key.
    pub const fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Keys from `start` (inclusive) to `end` (exclusive, or unbounded).
    pub fn new(start: Bound<&'a [u8]>, end: Bound<&'a [u8]>) -> Self {
        Self { start, end }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match self.start {
            Bound::Included(s) => key >= s,
            Bound::Excluded(s) => key > s,
            Bound::Unbounded => true,
        };
        let below = match self.end {
            Bound::Included(e) => key <= e,
            Bound::Excluded(e) => key < e,
            Bound::Unbounded => true,
        };
        above && below
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when there is none (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Feeds `items` to `step` in order (or reverse) until it returns `false`;
/// the shared loop of every engine's [`Engine::scan`].
pub fn visit_in_order<T>(
    items: impl DoubleEndedIterator<Item = T>,
    reverse: bool,
    mut step: impl FnMut(T) -> Result<bool, EngineError>,
) -> Result<(), EngineError> {
    if reverse {
        for item in items.rev() {
            if !step(item)? {
                break;
            }
        }
    } else {
        for item in items {
            if !step(item)? {
                break;
            }
        }
    }
    Ok(())
}

/// A failure of an engine.
///
/// An engine's own error is kept as the cause of [`EngineError::Engine`],
/// so a caller can downcast it; the text is one line and includes the
/// cause's text (see the crate's rule on [errors](crate#errors)). A full
/// disk is recognised by the [`io::ErrorKind`] of the I/O error underneath
/// ([`is_disk_full`]), never by a message.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another handle holds the store in a way this open excludes: a
    /// second writer of an engine shared between processes, or any second
    /// handle of one that is not (see [`Engine`]'s contract on sharing).
    #[error("the store is in use by another process")]
    Locked,
    /// The engine's database is damaged: its own checks found an
    /// inconsistency, or its code failed (panicked) on what it read. Never
    /// a lock or an I/O failure; nothing was written.
    #[error(
        "the {engine} database {} is damaged: {detail} (`plumb repair` rebuilds it from the packs)",
        path.display()
    )]
    Damaged {
        /// Which engine (`redb`, `sled`, …).
        engine: &'static str,
        /// The database's file.
        path: std::path::PathBuf,
        /// What it found, in its words.
        detail: String,
    },
    /// The database was left unfinished by a process that ended without
    /// closing it, and a read-only handle cannot finish it: a writer must
    /// open it once (which recovers it) before readers can.
    #[error("the database needs recovery by a writer before it can be read")]
    NeedsRecovery,
    /// A precondition of a batch did not hold; nothing was written.
    #[error("{table} entry {key:?} changed underneath (compare-and-swap failed)")]
    Conflict {
        /// Where.
        table: Table,
        /// The key, lossily as text.
        key: String,
    },
    /// The engine was opened read-only and cannot commit.
    #[error("the store was opened read-only")]
    ReadOnly,
    /// The disk is full; nothing of the failed batch was written.
    #[error("no space left on the device holding the store")]
    NoSpace,
    /// The engine's own error.
    #[error("{engine}: {source}")]
    Engine {
        /// Which engine (`redb`, `sled`, …).
        engine: &'static str,
        /// Its error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else the engine reports, in its words.
    #[error("{engine}: {message}")]
    Other {
        /// Which engine (`redb`, `sled`, …).
        engine: &'static str,
        /// Its message.
        message: String,
    },
}

impl EngineError {
    /// An engine's own error, kept as the cause.
    pub fn engine(
        engine: &'static str,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        EngineError::Engine {
            engine,
            source: error.into(),
        }
    }
}

/// Whether an I/O error means that the disk (or the user's quota on it) is
/// full.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// What an engine's own integrity check found ([`Engine::check_integrity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Every page of the database checked out.
    Intact,
    /// The check found an inconsistency in the engine's bookkeeping (not in
    /// any table's contents) and rebuilt it.
    Repaired,
    /// The engine has no such check, or this handle cannot run it (a
    /// read-only one).
    Unchecked,
}

/// What to do after visiting an entry in [`Engine::scan`].
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, EngineError> + 'a;

/// An ordered key-value store with atomic, conditional batches.
///
/// # Contract
///
/// - **Reads** see every batch that [`commit`](Self::commit) returned `Ok`
///   for, in this process. A read never sees part of a batch.
/// - **Scans** visit keys of one table in ascending byte order (descending
///   with `reverse`), calling `visit(key, value)` until it returns
///   `Ok(false)`; its error stops the scan and is returned.
/// - **Commit** is atomic and durable when it returns `Ok`: every
///   precondition is checked, then every op applied, in one transaction;
///   after a crash at any moment the store holds either all of a batch or
///   none of it. A failed precondition gives [`EngineError::Conflict`] and
///   writes nothing. Commits are serialized.
/// - A **lazy** batch ([`Batch::lazy`]) is atomic and visible at once, but
///   may be lost in a crash until a later non-lazy commit returns, which
///   makes it durable too. Batches become durable in commit order: a
///   durable batch never survives a crash that an earlier one did not.
///   (Used for object writes, which the snapshot commit that follows makes
///   durable with one sync.) An engine that cannot defer durability
///   commits a lazy batch durably and says so with
///   [`lazy_commits`](Self::lazy_commits) `== false`, so that the caller
///   makes what the batch points at durable first.
/// - **Sharing between processes**: an engine on disk is either *shared*
///   or *single-process*, as its crate documents.
///   - Shared (redb): one handle opened for writing at a time, in any
///     process; a second writer's open fails at once with
///     [`EngineError::Locked`], never waits. Any number of read-only
///     handles, in any processes, open beside it at once and never wait
///     for it; every read begins at the last commit of any process (a
///     single read or scan sees one commit, never part of a batch), and
///     never fails because a writer is busy. A read-only handle on a
///     database that a writer left unfinished (killed) fails with
///     [`EngineError::NeedsRecovery`] until a writer has opened it.
///   - Single-process (sled): any second handle, read-only or not, fails at
///     once with [`EngineError::Locked`].
/// - **Damage**: a damaged database gives [`EngineError::Damaged`], never a
///   panic that escapes, never wrong data the engine could have detected.
/// - Absent keys are `Ok(None)`, not errors; tables exist from creation.
pub trait Engine: Send + Sync {
    /// The value at `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Whether `key` is present.
    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, EngineError> {
        Ok(self.get(table, key)?.is_some())
    }
    /// Visits the entries of `range` in key order (or reverse).
    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), EngineError>;
    /// Applies `batch` atomically and durably.
    fn commit(&self, batch: Batch) -> Result<(), EngineError>;
    /// The engine's name, for messages.
    fn name(&self) -> &'static str;
    /// Returns free space inside the store to the file system, where the
    /// engine can; `Ok(false)` when it cannot or there was nothing to do.
    fn compact(&mut self) -> Result<bool, EngineError> {
        Ok(false)
    }
    /// Whether a lazy batch really defers durability; `false` when every
    /// commit is durable (see the contract on lazy batches).
    fn lazy_commits(&self) -> bool {
        true
    }
    /// Runs the engine's own check of its whole database (every page, not
    /// only what the tables hold), where it has one and this handle may run
    /// it. Damage is [`EngineError::Damaged`].
    fn check_integrity(&mut self) -> Result<Integrity, EngineError> {
        Ok(Integrity::Unchecked)
    }
}
