//! The content-addressed store: verified objects and the index over them.
//!
//! [`Store`] wraps an [`Engine`] (redb by default, memory for tests, sled
//! behind a feature) and adds what every engine needs once: packing and
//! verification of objects, the meaning of index keys, and ingest sinks.
//! The layout is specified in `spec/store.md`.

pub mod backup;
mod chunked;
pub mod engines;
pub use chunked::BlobReader;
pub use engines::EngineKind;
pub mod fsck;
pub mod gc;
mod index;
pub mod journal;
mod keyspace;
pub mod lock;
mod packing;
mod packs;
pub mod repair;
mod rows;
pub mod sink;
pub use keyspace::{Keyspace, KeyspaceBatch};

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use plumb_core::{
    Blob, BlobId, DecodeError, Kind, Object, ObjectId, Snapshot, SnapshotId, Tree, TreeId,
};

pub use index::{LogEntry, SourceDef, Vcs, check_source_name, keyed, unkeyed};
pub use lock::{Holder, Wait};
use plumb_core::engine::{Batch, KeyRange, Table, prefix_end};
pub use plumb_core::engine::{Engine, EngineError, Integrity};

pub use sink::StoreSink;

use plumb_core::chunks::MAX_OBJECT_SIZE;
use plumb_core::engine::memory::MemoryEngine;

/// How long a reader waits for a writer that is recovering the database
/// after a killed one, before giving up.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);

/// The file in a store directory that names its format and engine.
pub const FORMAT_FILE: &str = "plumb-store";
const FORMAT_LINE: &str = "plumb store v1";
/// The directory of pack files inside a store directory.
pub const PACKS_DIR: &str = "packs";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no store at the path.
    #[error("no plumb store at {} (create one with `plumb init`)", path.display())]
    NotAStore {
        /// The path looked at.
        path: PathBuf,
    },
    /// A store already exists at the path.
    #[error("a plumb store already exists at {}", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the store: its writer turn, or the whole of
    /// a store on an engine that admits one process at a time.
    #[error("the store at {} is in use by {holder}{}", path.display(), waited_for(*waited))]
    Locked {
        /// The store's path.
        path: PathBuf,
        /// Who holds it, as far as known (`pid 12 (plumb ingest app)`).
        holder: String,
        /// How long this process waited for it.
        waited: Duration,
    },
    /// The store's format file names something this build cannot open.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The format file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a store file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An object is absent.
    #[error("object {id} is missing from the store")]
    Missing {
        /// Its id.
        id: ObjectId,
    },
    /// An object's stored bytes are damaged.
    #[error("object {id} is corrupt: {reason}")]
    Corrupt {
        /// Its id.
        id: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// An object is not of the expected kind, or not decodable.
    #[error("object {id} is not a valid {expected}: {source}")]
    Decode {
        /// Its id.
        id: ObjectId,
        /// The kind expected.
        expected: Kind,
        /// The decoder's complaint.
        source: DecodeError,
    },
    /// An object is too large to read whole into memory.
    #[error("object {id} is {size} bytes, over the limit of {limit} bytes for reading it whole")]
    TooLarge {
        /// Its id.
        id: ObjectId,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An index entry is damaged.
    #[error("index entry {table}/{key} is corrupt: {reason}")]
    CorruptIndex {
        /// The table.
        table: Table,
        /// The key, lossily as text.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A named source does not exist.
    #[error("no source named {name:?} (see `plumb source list`)")]
    NoSuchSource {
        /// The name.
        name: String,
    },
    /// A source with that name exists already.
    #[error("a source named {name:?} already exists")]
    SourceExists {
        /// The name.
        name: String,
    },
    /// Something the caller passed is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// How long a writer waited, for its error line: nothing when it did not
/// (`--no-wait`; a few milliseconds of trying are not waiting).
fn waited_for(waited: Duration) -> String {
    if waited < Duration::from_millis(50) {
        String::new()
    } else {
        format!(" (still, after waiting {:.1}s)", waited.as_secs_f64())
    }
}

/// The name of the store's writer turn under `locks/`.
const WRITER_TURN: &str = "store";

/// What [`Store::check_engine`] did.
#[derive(Debug)]
pub enum EngineCheck {
    /// The engine's own check ran.
    Ran(Integrity),
    /// A writer holds the store, and the check needs the writer's turn: it
    /// was skipped rather than waited for.
    Skipped {
        /// Who holds it (`pid 12 (plumb ingest app)`).
        holder: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    ReadWrite,
    ReadOnly,
}

/// The store: objects and index on one engine.
pub struct Store {
    engine: Box<dyn Engine>,
    path: Option<PathBuf>,
    /// Pack files for object bytes, for stores on disk; a store in memory
    /// keeps packed objects in the objects table itself.
    packs: Option<Arc<packs::Packs>>,
    /// The journal's numbering, for a store that writes one.
    journal: journal::Journal,
    /// The writer turn, held by a store opened for writing; released after
    /// the engine is closed (fields drop in order).
    turn: Option<lock::Turn>,
    /// For a store opened to record ([`Store::open_recording`]): how it
    /// takes the writer turn for each commit.
    recording: Option<Recording>,
    /// The largest object, in bytes of content, ingest accepts and a read
    /// loads whole (`max-object-size` in the format file).
    max_object: u64,
}

/// How a store opened to record takes the writer turn for each commit.
struct Recording {
    wait: Wait,
    waiting: Box<dyn Fn(&Holder) + Send + Sync>,
}

/// What a store's format file says.
struct Format {
    engine: &'static EngineKind,
    max_object: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine.name())
            .field("path", &self.path)
            .finish()
    }
}

impl Store {
    /// A store in memory.
    pub fn memory() -> Self {
        Self::with_engine(Box::new(MemoryEngine::new()))
    }

    /// A store on any engine.
    pub fn with_engine(engine: Box<dyn Engine>) -> Self {
        Self {
            engine,
            path: None,
            packs: None,
            journal: journal::Journal::default(),
            turn: None,
            recording: None,
            max_object: MAX_OBJECT_SIZE,
        }
    }

    /// Creates a store in directory `dir` (made if missing; must not hold a store).
    pub fn init(dir: &Path, engine: &EngineKind) -> Result<Self, StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let format = dir.join(FORMAT_FILE);
        if format.exists() {
            return Err(StoreError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let turn = Self::take_turn(dir, Wait::No, &|_| {})?;
        let handle = Self::open_engine(dir, engine, Mode::Create)?;
        // The format file is written last, atomically: a directory without
        // it is not yet a store, and `init` may simply be run again.
        let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
        fs::write(&tmp, format!("{FORMAT_LINE}\nengine = {}\n", engine.name))
            .map_err(io_err(&tmp))?;
        let packs = packs::Packs::open(dir.join(PACKS_DIR), false)?;
        let store = Self {
            engine: handle,
            path: Some(dir.to_path_buf()),
            packs: Some(Arc::new(packs)),
            journal: journal::Journal::default(),
            turn: Some(turn),
            recording: None,
            max_object: MAX_OBJECT_SIZE,
        };
        store.start_journal()?;
        fs::rename(&tmp, &format).map_err(io_err(&format))?;
        Ok(store)
    }

    /// Opens the store in directory `dir` for reading and writing, taking
    /// the writer turn at once or failing with [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_writer(dir, Wait::No, &|_| {})
    }

    /// Opens the store in directory `dir` for reading and writing. Writers
    /// take turns: while another process holds the store's writer turn,
    /// this waits as `wait` allows, calling `waiting` once with the holder
    /// after a second ([`lock::NOTICE_AFTER`]). Readers never wait for the
    /// turn (see [`open_read_only`](Self::open_read_only)).
    pub fn open_writer(
        dir: &Path,
        wait: Wait,
        waiting: &dyn Fn(&Holder),
    ) -> Result<Self, StoreError> {
        let kind = Self::read_format(dir)?;
        let turn = Self::take_turn(dir, wait, waiting)?;
        let mut store = Self::open_kind(dir, &kind, Mode::ReadWrite)?;
        store.turn = Some(turn);
        Ok(store)
    }

    /// Opens the store in directory `dir` for reading only: it never waits
    /// for and never fails because of a writer (on an engine shared between
    /// processes, as redb is), and every read sees the last commit. Writes
    /// fail, but for one case: a database a killed writer left unfinished,
    /// with nobody holding the writer turn, is recovered by opening it for
    /// writing, and read through that handle, holding the turn.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let kind = Self::read_format(dir)?;
        let started = std::time::Instant::now();
        loop {
            match Self::open_kind(dir, &kind, Mode::ReadOnly) {
                Err(StoreError::Engine(EngineError::NeedsRecovery)) => {}
                other => return other,
            }
            // A writer was killed with the database open. The next writer
            // to open it recovers it: the holder of the turn, which is
            // opening it now; or, when nobody holds the turn, this process,
            // which then reads through that handle (a recovery that cannot
            // be written back, on a full disk, must not be retried
            // forever).
            match Self::take_turn(dir, Wait::No, &|_| {}) {
                Ok(turn) => {
                    let mut store = Self::open_kind(dir, &kind, Mode::ReadWrite)?;
                    store.turn = Some(turn);
                    return Ok(store);
                }
                Err(StoreError::Locked { .. }) if started.elapsed() < RECOVERY_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens the store in directory `dir` to read, and to record now and
    /// then without holding the writer turn in between: reads are those of
    /// [`open_read_only`](Self::open_read_only), and each commit takes the
    /// turn (waiting as `wait` allows, calling `waiting` as
    /// [`open_writer`](Self::open_writer) does), opens the database for
    /// writing, commits and gives the turn back. For a reconcile, whose
    /// target may take its time to answer: its preconditions are checked
    /// under the turn. Objects cannot be written this way (packs are a
    /// writer's).
    pub fn open_recording(
        dir: &Path,
        wait: Wait,
        waiting: Box<dyn Fn(&Holder) + Send + Sync>,
    ) -> Result<Self, StoreError> {
        if !Self::read_format(dir)?.engine.shared {
            // One process at a time: hold the turn all along.
            return Self::open_writer(dir, wait, &*waiting);
        }
        let mut store = Self::open_read_only(dir)?;
        store.recording = Some(Recording { wait, waiting });
        Ok(store)
    }

    /// Runs the engine's own integrity check of its whole database, which
    /// needs the writer turn: when a writer holds it, the check is skipped
    /// rather than waited for.
    pub fn check_engine(dir: &Path) -> Result<EngineCheck, StoreError> {
        let kind = Self::read_format(dir)?;
        let turn = match Self::take_turn(dir, Wait::No, &|_| {}) {
            Ok(turn) => turn,
            Err(StoreError::Locked { holder, .. }) => return Ok(EngineCheck::Skipped { holder }),
            Err(e) => return Err(e),
        };
        let mut store = Self::open_kind(dir, &kind, Mode::ReadWrite)?;
        let result = store.engine.check_integrity()?;
        drop(store);
        drop(turn);
        Ok(EngineCheck::Ran(result))
    }

    fn take_turn(
        dir: &Path,
        wait: Wait,
        waiting: &dyn Fn(&Holder),
    ) -> Result<lock::Turn, StoreError> {
        lock::take(&lock::path(dir, WRITER_TURN), wait, waiting).map_err(|e| match e {
            lock::NotTaken::Busy { holder, waited } => StoreError::Locked {
                path: dir.to_path_buf(),
                holder: holder.to_string(),
                waited,
            },
            lock::NotTaken::Failed(e) => e,
        })
    }

    /// The engine the store in `dir` is kept on, as its format file says.
    pub(crate) fn engine_kind(dir: &Path) -> Result<&'static EngineKind, StoreError> {
        Ok(Self::read_format(dir)?.engine)
    }

    fn read_format(dir: &Path) -> Result<Format, StoreError> {
        let format = dir.join(FORMAT_FILE);
        let text = match fs::read_to_string(&format) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotAStore {
                    path: dir.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: format,
                    source,
                });
            }
        };
        parse_format(&text).map_err(|reason| StoreError::Format {
            path: format.clone(),
            reason,
        })
    }

    fn open_kind(dir: &Path, format: &Format, mode: Mode) -> Result<Self, StoreError> {
        let engine = Self::open_engine(dir, format.engine, mode)?;
        let packs = match mode {
            Mode::ReadOnly => Arc::new(packs::Packs::open(dir.join(PACKS_DIR), true)?),
            _ => packs::for_writing(dir.join(PACKS_DIR))?,
        };
        Ok(Self {
            engine,
            path: Some(dir.to_path_buf()),
            packs: Some(packs),
            journal: journal::Journal::default(),
            turn: None,
            recording: None,
            max_object: format.max_object,
        })
    }

    /// How this build opens `kind`'s database, for the store at `dir`.
    fn opener(dir: &Path, kind: &EngineKind) -> Result<engines::Opener, StoreError> {
        kind.opener.ok_or_else(|| StoreError::Format {
            path: dir.join(FORMAT_FILE),
            reason: format!(
                "this store uses the {} engine; this plumb was built without the `{}` feature",
                kind.name,
                kind.feature.unwrap_or(kind.name)
            ),
        })
    }

    fn open_engine(
        dir: &Path,
        kind: &EngineKind,
        mode: Mode,
    ) -> Result<Box<dyn Engine>, StoreError> {
        let opener = Self::opener(dir, kind)?;
        let open = match mode {
            Mode::Create => opener.create,
            Mode::ReadWrite => opener.open,
            Mode::ReadOnly => opener.open_read_only,
        };
        let file = dir.join(kind.file);
        if mode != Mode::Create && !file.exists() {
            // The format file says there is a store: its index was lost.
            return Err(StoreError::Engine(EngineError::Damaged {
                engine: kind.name,
                path: file,
                detail: "the file is missing".into(),
            }));
        }
        open(&file).map_err(|e| match e {
            EngineError::Locked => StoreError::Locked {
                path: dir.to_path_buf(),
                holder: if kind.shared {
                    "another plumb process".into()
                } else {
                    format!(
                        "another plumb process (the {} engine admits one process at a time, readers included)",
                        kind.name
                    )
                },
                waited: Duration::ZERO,
            },
            other => StoreError::Engine(other),
        })
    }

    /// The store's directory, when on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Returns free space inside the store to the file system, where the
    /// engine can (redb); `false` when there was nothing to do.
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        Ok(self.engine.compact()?)
    }

    /// The largest object, in bytes of content, an ingest accepts and a
    /// read loads whole: the format file's `max-object-size`, by default
    /// [`MAX_OBJECT_SIZE`] (4 GiB).
    pub fn max_object_size(&self) -> u64 {
        self.max_object
    }

    /// Whether the object is present (not verified).
    pub fn contains(&self, id: &ObjectId) -> Result<bool, StoreError> {
        Ok(self.engine.contains(Table::Objects, id.as_bytes())?)
    }

    /// Whether the object is present and intact: a write of an object for
    /// which this is `false` stores it (again), so that writing the same
    /// content replaces a corrupt copy. Reads and verifies a present one.
    pub fn contains_intact(&self, id: &ObjectId) -> Result<bool, StoreError> {
        // A large blob's chunk list is trusted once it decodes: its chunks
        // are objects of their own, each verified as the sink stores it,
        // and reading the blob whole here would defeat chunking.
        match self.get_stored(id) {
            Ok(found) => Ok(found.is_some()),
            Err(StoreError::Corrupt { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The verified canonical bytes of an object, or `None` when absent.
    /// A large blob kept in chunks is read whole (up to
    /// [`max_whole`](Self::max_whole) bytes); read it with
    /// [`blob_reader`](Self::blob_reader) to keep memory bounded.
    pub fn get_encoded(&self, id: &ObjectId) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get_stored(id)? {
            None => Ok(None),
            Some(chunked::Stored::Whole(bytes)) => Ok(Some(bytes)),
            Some(chunked::Stored::Chunked(list)) => self.assemble(id, &list).map(Some),
        }
    }

    /// What an object's record holds, or `None` when absent.
    fn get_stored(&self, id: &ObjectId) -> Result<Option<chunked::Stored>, StoreError> {
        let Some(stored) = self.engine.get(Table::Objects, id.as_bytes())? else {
            return Ok(None);
        };
        match self.read_stored(id, &stored) {
            Err(StoreError::Corrupt { .. }) if self.packs.is_some() => {
                // `gc` in another process may have moved the object to a
                // new pack and deleted the old one since the pointer was
                // read (or reused its number): read the pointer again and
                // reopen the packs. Damage stays damage the second time.
                let Some(stored) = self.engine.get(Table::Objects, id.as_bytes())? else {
                    return Ok(None);
                };
                if let Some(packs) = &self.packs {
                    packs.forget_files();
                }
                self.read_stored(id, &stored).map(Some)
            }
            other => other.map(Some),
        }
    }

    /// What an objects-table value holds: inline packed bytes, or a
    /// pointer into a pack; the canonical bytes verified, or a chunk list.
    fn read_stored(&self, id: &ObjectId, stored: &[u8]) -> Result<chunked::Stored, StoreError> {
        let packed;
        let record = if let Some(loc) = packs::Location::decode(stored) {
            let packs = self.packs.as_ref().ok_or_else(|| StoreError::Corrupt {
                id: *id,
                reason: "points into a pack, but this store has none".into(),
            })?;
            packed = packs.read(id, loc)?;
            &packed[..]
        } else if matches!(
            stored.first(),
            Some(&packs::POINTER | &packs::CHUNKED_POINTER)
        ) {
            return Err(StoreError::Corrupt {
                id: *id,
                reason: "malformed pack pointer".into(),
            });
        } else {
            stored
        };
        if record.first() == Some(&chunked::CHUNKED) {
            return chunked::unpack_list(id, record).map(chunked::Stored::Chunked);
        }
        packing::unpack(id, record).map(chunked::Stored::Whole)
    }

    /// Where an object's bytes lie: its pack file, offset and length, when
    /// it is kept in a pack (for `fsck`, repair tools and tests).
    pub fn location(&self, id: &ObjectId) -> Result<Option<(PathBuf, u64, u32)>, StoreError> {
        let (Some(stored), Some(dir)) = (
            self.engine.get(Table::Objects, id.as_bytes())?,
            self.path.as_ref(),
        ) else {
            return Ok(None);
        };
        Ok(packs::Location::decode(&stored).map(|l| {
            (
                dir.join(PACKS_DIR)
                    .join(format!("pack-{:08}.plumbpack", l.pack)),
                l.offset,
                l.len,
            )
        }))
    }

    /// The size of a blob's content, from its stored header alone (not
    /// verified; reading the blob verifies it). `None` when absent.
    pub fn blob_size(&self, id: &BlobId) -> Result<Option<u64>, StoreError> {
        let oid = id.object_id();
        let Some(stored) = self.engine.get(Table::Objects, oid.as_bytes())? else {
            return Ok(None);
        };
        if chunked::is_chunked(&stored) {
            return Ok(self.chunk_list(id)?.map(|l| l.size()));
        }
        let len = if stored.first() == Some(&packs::POINTER) {
            let (loc, packs) = match (packs::Location::decode(&stored), self.packs.as_ref()) {
                (Some(loc), Some(packs)) => (loc, packs),
                _ => return Ok(Some(self.blob(id)?.data().len() as u64)),
            };
            packing::unpacked_len_from_head(&packs.read_head(&oid, loc, 32)?, loc.len)
        } else {
            packing::unpacked_len(&stored)
        };
        // The canonical bytes are a kind byte, a version byte, a LEB128
        // length and the data: find the data length that adds up.
        let Some(total) = len else {
            return Ok(Some(self.blob(id)?.data().len() as u64));
        };
        for leb_len in 1..=10u64 {
            let Some(n) = total.checked_sub(2 + leb_len) else {
                break;
            };
            if plumb_core::leb128::encode(n).1 as u64 == leb_len {
                return Ok(Some(n));
            }
        }
        Ok(Some(self.blob(id)?.data().len() as u64))
    }

    fn require(&self, id: &ObjectId) -> Result<Vec<u8>, StoreError> {
        self.get_encoded(id)?.ok_or(StoreError::Missing { id: *id })
    }

    /// Any object, verified.
    pub fn object(&self, id: &ObjectId) -> Result<Object, StoreError> {
        let bytes = self.require(id)?;
        let kind = bytes
            .first()
            .and_then(|b| Kind::from_byte(*b))
            .unwrap_or(Kind::Blob);
        plumb_core::decode(&bytes).map_err(|source| StoreError::Decode {
            id: *id,
            expected: kind,
            source,
        })
    }

    /// A blob, verified.
    pub fn blob(&self, id: &BlobId) -> Result<Blob, StoreError> {
        let oid = id.object_id();
        plumb_core::decode_blob(&self.require(&oid)?).map_err(|source| StoreError::Decode {
            id: oid,
            expected: Kind::Blob,
            source,
        })
    }

    /// A tree, verified.
    pub fn tree(&self, id: &TreeId) -> Result<Tree, StoreError> {
        let oid = id.object_id();
        plumb_core::decode_tree(&self.require(&oid)?).map_err(|source| StoreError::Decode {
            id: oid,
            expected: Kind::Tree,
            source,
        })
    }

    /// A snapshot, verified.
    pub fn snapshot(&self, id: &SnapshotId) -> Result<Snapshot, StoreError> {
        let oid = id.object_id();
        plumb_core::decode_snapshot(&self.require(&oid)?).map_err(|source| StoreError::Decode {
            id: oid,
            expected: Kind::Snapshot,
            source,
        })
    }

    /// Packs canonical bytes and adds them to `batch` under `id`: appended
    /// to a pack file with a pointer in the batch, or (in memory) inline.
    /// Commit such a batch with [`commit`](Self::commit).
    fn stage_object(
        &self,
        batch: &mut Batch,
        id: &ObjectId,
        canonical: &[u8],
    ) -> Result<(), StoreError> {
        let packed = packing::pack(canonical);
        let value = match &self.packs {
            Some(packs) => packs.append(id, &packed)?.encode(),
            None => packed,
        };
        batch.put(Table::Objects, id.as_bytes().to_vec(), value);
        Ok(())
    }

    /// Commits a batch, journaling first what it writes to the journaled
    /// tables ([`journal`]). A durable batch first makes durable every pack
    /// byte appended so far, so neither it nor any lazy batch before it
    /// (which it makes durable too) can point at bytes a crash could lose.
    /// A lazy batch needs no sync: it survives a crash only through a later
    /// durable commit; on an engine that commits every batch durably
    /// ([`Engine::lazy_commits`]), every batch is synced for.
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if let (Some(r), Some(dir), None) = (&self.recording, &self.path, &self.turn) {
            // Under the turn, through a writer of this moment, so that the
            // record is journaled like any other.
            // (appending to this process's pack: see `packs::for_writing`).
            let writer = Self::open_writer(dir, r.wait, &*r.waiting)?;
            return writer.commit(batch);
        }
        self.journaled_commit(batch)
    }

    /// [`commit`](Self::commit) without the journal: for batches that
    /// write nothing it keeps, and for the journal itself.
    fn commit_unjournaled(&self, batch: Batch) -> Result<(), StoreError> {
        if (!batch.lazy || !self.engine.lazy_commits())
            && let Some(packs) = &self.packs
        {
            packs.sync()?;
        }
        Ok(self.engine.commit(batch)?)
    }

    /// Stores one object now (tests and small writes; ingest batches).
    pub fn put_object(&self, object: &Object) -> Result<ObjectId, StoreError> {
        let bytes = match object {
            Object::Blob(b) => b.encode(),
            Object::Tree(t) => t.encode(),
            Object::Snapshot(s) => s.encode().map_err(|e| StoreError::Invalid(e.to_string()))?,
        };
        let id = ObjectId::of_encoding(&bytes);
        if !self.contains_intact(&id)? {
            let mut batch = Batch::new();
            self.stage_object(&mut batch, &id, &bytes)?;
            self.commit(batch)?;
        }
        Ok(id)
    }
}

fn parse_format(text: &str) -> Result<Format, String> {
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT_LINE) {
        return Err(format!(
            "not a store format this plumb understands (expected first line {FORMAT_LINE:?})"
        ));
    }
    let mut engine = None;
    let mut max_object = MAX_OBJECT_SIZE;
    for line in lines {
        if let Some(value) = line.strip_prefix("engine = ") {
            engine.get_or_insert(EngineKind::named(value.trim()).map_err(|e| e.to_string())?);
        } else if let Some(value) = line.strip_prefix("max-object-size = ") {
            max_object = value.trim().parse().map_err(|_| {
                format!(
                    "max-object-size must be a number of bytes, not {:?}",
                    value.trim()
                )
            })?;
        }
    }
    Ok(Format {
        engine: engine.ok_or("format file names no engine")?,
        max_object,
    })
}
