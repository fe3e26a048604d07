//! plumb's default storage engine: one redb file, ACID and crash-safe.
//!
//! # Sharing between processes
//!
//! The engine is *shared* in the sense of the `Engine` contract: it opens
//! the file in redb's `SingleWriter` concurrency mode, so one process
//! writes while any number of others read, each read beginning at the last
//! commit. A second writer is refused at once ([`EngineError::Locked`]);
//! the store above takes turns between writers before opening. In this
//! mode redb makes every commit durable, so [`Engine::lazy_commits`] is
//! `false`.
//!
//! `PLUMB_REDB_SHARING=multi` opens in redb's `MultiWriter` mode instead
//! (every process may write, one transaction at a time); it exists to
//! measure the two (`bench/store_bench.py`) and every process sharing a
//! file must use the same mode.
//!
//! # Damage
//!
//! redb's code may panic on a database altered behind its back (a zeroed
//! page, a flipped bit). Every call into redb is made under
//! [`std::panic::catch_unwind`]: a panic becomes [`EngineError::Damaged`],
//! as does redb's own `Corrupted` error. [`Engine::check_integrity`] runs
//! redb's check of every page's checksum.
#![deny(missing_docs)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use redb::{
    Builder, CompactionError, ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase,
    ReadTransaction, ReadableDatabase, ReadableTable, StorageError, TableDefinition, TableError,
};

use plumb_core::engine::{
    Batch, Engine, EngineError, Integrity, KeyRange, Op, Table, Visit, is_disk_full, visit_in_order,
};

/// One item of a range scan.
type Entry<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, &'static [u8]>,
);

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// redb's page cache. Its default (1 GiB) would let an ingest's dirty pages
/// grow the process far past what the work needs; reads are served by the
/// OS page cache as well.
const CACHE_BYTES: usize = 64 << 20;

/// The name in messages.
const NAME: &str = "redb";

/// How processes share a database file: redb's concurrency mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One writing process, any number of reading ones (the default).
    SingleWriter,
    /// Any number of writing processes, one write transaction at a time.
    MultiWriter,
}

impl Sharing {
    /// The mode this process uses: `PLUMB_REDB_SHARING` (`single`, the
    /// default, or `multi`), read once.
    pub fn current() -> Self {
        static MODE: OnceLock<Sharing> = OnceLock::new();
        *MODE.get_or_init(|| match std::env::var("PLUMB_REDB_SHARING").as_deref() {
            Ok("multi") => Sharing::MultiWriter,
            _ => Sharing::SingleWriter,
        })
    }

    fn mode(self) -> ConcurrencyMode {
        match self {
            Sharing::SingleWriter => ConcurrencyMode::SingleWriter,
            Sharing::MultiWriter => ConcurrencyMode::MultiWriter,
        }
    }
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(CACHE_BYTES)
        .set_concurrency_mode(Sharing::current().mode());
    b
}

enum Handle {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
    /// Closed: only while the engine is dropped.
    Closed,
}

/// A store in one redb database file.
pub struct RedbEngine {
    db: Handle,
    path: PathBuf,
}

impl Drop for RedbEngine {
    /// redb tidies up as a writer's handle closes (it processes freed
    /// pages), reading pages that may be damaged. Everything committed is
    /// durable by then, so a panic there is contained here rather than
    /// failing a command whose work is done; the next `fsck` finds the
    /// damage.
    fn drop(&mut self) {
        let db = std::mem::replace(&mut self.db, Handle::Closed);
        let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
    }
}

impl std::fmt::Debug for RedbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbEngine")
    }
}

/// redb's error, kept as the cause; a full disk underneath is
/// [`EngineError::NoSpace`], a corrupted file [`EngineError::Damaged`]
/// (given the path later, by [`guarded`]).
fn engine_error(e: impl Into<redb::Error>) -> EngineError {
    match e.into() {
        redb::Error::Io(io) if is_disk_full(&io) => EngineError::NoSpace,
        redb::Error::Corrupted(detail) => damaged(detail),
        e => EngineError::engine(NAME, e),
    }
}

fn damaged(detail: String) -> EngineError {
    EngineError::Damaged {
        engine: NAME,
        path: PathBuf::new(),
        detail,
    }
}

fn database_error(e: DatabaseError) -> EngineError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            EngineError::Locked
        }
        DatabaseError::RepairAborted => EngineError::NeedsRecovery,
        DatabaseError::Storage(StorageError::Corrupted(detail)) => damaged(detail),
        other => engine_error(other),
    }
}

/// Runs a call into redb on the file at `path`, turning a panic (redb's
/// code failing on a damaged file) into [`EngineError::Damaged`], which it
/// gives the path.
fn guarded<T>(
    path: &Path,
    call: impl FnOnce() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let result = catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(damaged(format!("redb failed on what it read ({detail})")))
    });
    result.map_err(|e| match e {
        EngineError::Damaged { engine, detail, .. } => EngineError::Damaged {
            engine,
            path: path.to_path_buf(),
            detail,
        },
        other => other,
    })
}

impl RedbEngine {
    /// Creates the database file (and its tables) at `path`.
    pub fn create(path: &Path) -> Result<Self, EngineError> {
        guarded(path, || {
            let db = builder().create(path).map_err(database_error)?;
            let txn = db.begin_write().map_err(engine_error)?;
            for table in Table::ALL {
                txn.open_table(definition(table)).map_err(engine_error)?;
            }
            txn.commit().map_err(engine_error)?;
            Ok(Self {
                db: Handle::ReadWrite(db),
                path: path.to_path_buf(),
            })
        })
    }

    /// Opens an existing database file for reading and writing, repairing
    /// it after a crash. Excludes every other writer, in any process;
    /// read-only handles share the file with it.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        guarded(path, || {
            let db = builder().open(path).map_err(database_error)?;
            Ok(Self {
                db: Handle::ReadWrite(db),
                path: path.to_path_buf(),
            })
        })
    }

    /// Opens an existing database file for reading only: shared with other
    /// readers and with a writer, whose commits each read then sees, and
    /// never writing to the file (no syncs), which keeps one-shot queries
    /// fast. A file left unfinished by a killed writer gives
    /// [`EngineError::NeedsRecovery`] until a writer opens it.
    pub fn open_read_only(path: &Path) -> Result<Self, EngineError> {
        guarded(path, || {
            let db = builder().open_read_only(path).map_err(database_error)?;
            Ok(Self {
                db: Handle::ReadOnly(db),
                path: path.to_path_buf(),
            })
        })
    }

    fn begin_read(&self) -> Result<ReadTransaction, EngineError> {
        match &self.db {
            Handle::ReadWrite(db) => db.begin_read().map_err(engine_error),
            Handle::ReadOnly(db) => db.begin_read().map_err(engine_error),
            Handle::Closed => Err(damaged("the database is closed".to_owned())),
        }
    }

    fn commit_unguarded(&self, batch: Batch) -> Result<(), EngineError> {
        let Handle::ReadWrite(db) = &self.db else {
            return Err(EngineError::ReadOnly);
        };
        let mut txn = db.begin_write().map_err(engine_error)?;
        if batch.lazy && self.lazy_commits() {
            txn.set_durability(redb::Durability::None)
                .map_err(engine_error)?;
        }
        for e in &batch.expect {
            let t = txn.open_table(definition(e.table)).map_err(engine_error)?;
            let current = t.get(e.key.as_slice()).map_err(engine_error)?;
            let matches = match (&current, &e.value) {
                (None, None) => true,
                (Some(c), Some(v)) => c.value() == v.as_slice(),
                _ => false,
            };
            if !matches {
                return Err(EngineError::Conflict {
                    table: e.table,
                    key: String::from_utf8_lossy(&e.key).into_owned(),
                });
            }
        }
        // Group ops by table so each table is opened once; order within a
        // table is kept, and ops on different tables commute.
        let mut tables: Vec<Table> = batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { table, .. } | Op::Delete { table, .. } => *table,
            })
            .collect();
        tables.sort_unstable();
        tables.dedup();
        for table in tables {
            let mut t = txn.open_table(definition(table)).map_err(engine_error)?;
            for op in &batch.ops {
                match op {
                    Op::Put {
                        table: tt,
                        key,
                        value,
                    } if *tt == table => {
                        t.insert(key.as_slice(), value.as_slice())
                            .map_err(engine_error)?;
                    }
                    Op::Delete { table: tt, key } if *tt == table => {
                        t.remove(key.as_slice()).map_err(engine_error)?;
                    }
                    _ => {}
                }
            }
        }
        txn.commit().map_err(engine_error)
    }
}

impl Engine for RedbEngine {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        guarded(&self.path, || {
            let txn = self.begin_read()?;
            let t = match txn.open_table(definition(table)) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(engine_error(e)),
            };
            Ok(t.get(key)
                .map_err(engine_error)?
                .map(|v| v.value().to_vec()))
        })
    }

    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, EngineError> {
        guarded(&self.path, || {
            let txn = self.begin_read()?;
            let t = match txn.open_table(definition(table)) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(false),
                Err(e) => return Err(engine_error(e)),
            };
            Ok(t.get(key).map_err(engine_error)?.is_some())
        })
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), EngineError> {
        guarded(&self.path, || {
            let txn = self.begin_read()?;
            let t = match txn.open_table(definition(table)) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(engine_error(e)),
            };
            let iter = t
                .range::<&[u8]>((range.start, range.end))
                .map_err(engine_error)?;
            let mut step = |item: Result<Entry<'_>, redb::StorageError>| {
                let (k, v) = item.map_err(engine_error)?;
                visit(k.value(), v.value())
            };
            visit_in_order(iter, reverse, &mut step)
        })
    }

    fn commit(&self, batch: Batch) -> Result<(), EngineError> {
        guarded(&self.path, || self.commit_unguarded(batch))
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn compact(&mut self) -> Result<bool, EngineError> {
        guarded(&self.path, || match &mut self.db {
            // Compaction moves pages, so redb refuses it while a read
            // transaction is open in any process: then there is nothing
            // to do this time (`Ok(false)`), and the next `gc` tries again.
            Handle::ReadWrite(db) => match db.compact() {
                Err(CompactionError::TransactionInProgress) => Ok(false),
                other => other.map_err(engine_error),
            },
            Handle::ReadOnly(_) | Handle::Closed => Err(EngineError::ReadOnly),
        })
    }

    fn lazy_commits(&self) -> bool {
        // redb keeps a non-durable commit in the writing process's memory
        // only, which its modes shared between processes do not allow.
        false
    }

    fn check_integrity(&mut self) -> Result<Integrity, EngineError> {
        guarded(&self.path, || match &mut self.db {
            Handle::ReadWrite(db) => match db.check_integrity().map_err(database_error)? {
                true => Ok(Integrity::Intact),
                false => Ok(Integrity::Repaired),
            },
            Handle::ReadOnly(_) | Handle::Closed => Ok(Integrity::Unchecked),
        })
    }
}
