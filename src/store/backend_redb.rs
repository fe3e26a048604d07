//! The default backend: one redb file, ACID and crash-safe.

use std::path::Path;

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::backend::{Backend, BackendError, Batch, KeyRange, Op, Table, Visit, visit_in_order};

/// One item of a range scan.
type Entry<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, &'static [u8]>,
);

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// A store in one redb database file.
pub struct RedbBackend {
    db: Database,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbBackend")
    }
}

fn engine_error(e: impl std::fmt::Display) -> BackendError {
    let message = e.to_string();
    if message.contains("No space left on device") {
        return BackendError::NoSpace;
    }
    BackendError::Engine {
        engine: "redb",
        message,
    }
}

fn database_error(e: DatabaseError) -> BackendError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            BackendError::Locked
        }
        other => engine_error(other),
    }
}

impl RedbBackend {
    /// Creates the database file (and its tables) at `path`.
    pub fn create(path: &Path) -> Result<Self, BackendError> {
        let db = Database::create(path).map_err(database_error)?;
        let backend = Self { db };
        let txn = backend.db.begin_write().map_err(engine_error)?;
        for table in Table::ALL {
            txn.open_table(definition(table)).map_err(engine_error)?;
        }
        txn.commit().map_err(engine_error)?;
        Ok(backend)
    }

    /// Opens an existing database file, repairing it after a crash.
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        let db = Database::open(path).map_err(database_error)?;
        Ok(Self { db })
    }
}

impl Backend for RedbBackend {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let txn = self.db.begin_read().map_err(engine_error)?;
        let t = match txn.open_table(definition(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(engine_error(e)),
        };
        Ok(t.get(key)
            .map_err(engine_error)?
            .map(|v| v.value().to_vec()))
    }

    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, BackendError> {
        let txn = self.db.begin_read().map_err(engine_error)?;
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
    ) -> Result<(), BackendError> {
        let txn = self.db.begin_read().map_err(engine_error)?;
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

    fn commit(&self, batch: Batch) -> Result<(), BackendError> {
        let txn = self.db.begin_write().map_err(engine_error)?;
        for e in &batch.expect {
            let t = txn.open_table(definition(e.table)).map_err(engine_error)?;
            let current = t.get(e.key.as_slice()).map_err(engine_error)?;
            let matches = match (&current, &e.value) {
                (None, None) => true,
                (Some(c), Some(v)) => c.value() == v.as_slice(),
                _ => false,
            };
            if !matches {
                return Err(BackendError::Conflict {
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

    fn engine(&self) -> &'static str {
        "redb"
    }
}
