//! plumb's default storage engine: one redb file, ACID and crash-safe.
#![deny(missing_docs)]

use std::path::Path;

use redb::{
    Builder, Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase,
    ReadableTable, TableDefinition, TableError,
};

use plumb_core::engine::{
    Batch, Engine, EngineError, KeyRange, Op, Table, Visit, is_disk_full, visit_in_order,
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

enum Handle {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// A store in one redb database file.
pub struct RedbEngine {
    db: Handle,
}

impl std::fmt::Debug for RedbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbEngine")
    }
}

/// redb's error, kept as the cause; a full disk underneath is
/// [`EngineError::NoSpace`].
fn engine_error(e: impl Into<redb::Error>) -> EngineError {
    match e.into() {
        redb::Error::Io(io) if is_disk_full(&io) => EngineError::NoSpace,
        e => EngineError::engine("redb", e),
    }
}

fn database_error(e: DatabaseError) -> EngineError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            EngineError::Locked
        }
        other => engine_error(other),
    }
}

impl RedbEngine {
    /// Creates the database file (and its tables) at `path`.
    pub fn create(path: &Path) -> Result<Self, EngineError> {
        let db = Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(database_error)?;
        let txn = db.begin_write().map_err(engine_error)?;
        for table in Table::ALL {
            txn.open_table(definition(table)).map_err(engine_error)?;
        }
        txn.commit().map_err(engine_error)?;
        Ok(Self {
            db: Handle::ReadWrite(db),
        })
    }

    /// Opens an existing database file for reading and writing, repairing
    /// it after a crash. Excludes every other handle, in any process.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let db = Builder::new()
            .set_cache_size(CACHE_BYTES)
            .open(path)
            .map_err(database_error)?;
        Ok(Self {
            db: Handle::ReadWrite(db),
        })
    }

    /// Opens an existing database file for reading only: shared with other
    /// readers, excluded by a writer, and never writing to the file (no
    /// syncs), which keeps one-shot queries fast. A file left unclean by a
    /// crash needs a writer to repair it first, so this falls back to
    /// [`open`](Self::open) then.
    pub fn open_read_only(path: &Path) -> Result<Self, EngineError> {
        match Builder::new()
            .set_cache_size(CACHE_BYTES)
            .open_read_only(path)
        {
            Ok(db) => Ok(Self {
                db: Handle::ReadOnly(db),
            }),
            Err(DatabaseError::RepairAborted) => Self::open(path),
            Err(e) => Err(database_error(e)),
        }
    }

    fn begin_read(&self) -> Result<ReadTransaction, EngineError> {
        match &self.db {
            Handle::ReadWrite(db) => db.begin_read(),
            Handle::ReadOnly(db) => db.begin_read(),
        }
        .map_err(engine_error)
    }
}

impl Engine for RedbEngine {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let txn = self.begin_read()?;
        let t = match txn.open_table(definition(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(engine_error(e)),
        };
        Ok(t.get(key)
            .map_err(engine_error)?
            .map(|v| v.value().to_vec()))
    }

    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, EngineError> {
        let txn = self.begin_read()?;
        let t = match txn.open_table(definition(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(engine_error(e)),
        };
        Ok(t.get(key).map_err(engine_error)?.is_some())
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), EngineError> {
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
    }

    fn commit(&self, batch: Batch) -> Result<(), EngineError> {
        let Handle::ReadWrite(db) = &self.db else {
            return Err(EngineError::ReadOnly);
        };
        let mut txn = db.begin_write().map_err(engine_error)?;
        if batch.lazy {
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

    fn name(&self) -> &'static str {
        "redb"
    }

    fn compact(&mut self) -> Result<bool, EngineError> {
        match &mut self.db {
            Handle::ReadWrite(db) => db.compact().map_err(engine_error),
            Handle::ReadOnly(_) => Err(EngineError::ReadOnly),
        }
    }
}
