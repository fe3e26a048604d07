//! An optional backend on sled 0.34 (cargo feature `sled`), kept so that the
//! choice of redb as the default stays measured rather than assumed.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::backend::{Backend, BackendError, Batch, KeyRange, Op, Table, Visit, visit_in_order};

/// A store in a sled database directory.
pub struct SledBackend {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledBackend")
    }
}

fn engine_error(e: impl std::fmt::Display) -> BackendError {
    let message = e.to_string();
    if message.contains("could not acquire lock") {
        return BackendError::Locked;
    }
    BackendError::engine("sled", message)
}

impl SledBackend {
    /// Opens (or creates) the database directory at `path`.
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(engine_error)?;
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(engine_error)?;
        Ok(Self { db, trees })
    }

    fn index(table: Table) -> usize {
        Table::ALL
            .iter()
            .position(|t| *t == table)
            .expect("Table::ALL lists every table")
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[Self::index(table)]
    }
}

impl Backend for SledBackend {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .tree(table)
            .get(key)
            .map_err(engine_error)?
            .map(|v| v.to_vec()))
    }

    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, BackendError> {
        self.tree(table).contains_key(key).map_err(engine_error)
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), BackendError> {
        let iter = self.tree(table).range::<&[u8], _>((range.start, range.end));
        let mut step = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(engine_error)?;
            visit(&k, &v)
        };
        visit_in_order(iter, reverse, &mut step)
    }

    fn commit(&self, batch: Batch) -> Result<(), BackendError> {
        let result = self.trees.as_slice().transaction(|txs| {
            for e in &batch.expect {
                let current = txs[Self::index(e.table)].get(&e.key)?;
                if current.as_deref() != e.value.as_deref() {
                    return Err(ConflictableTransactionError::Abort(
                        BackendError::Conflict {
                            table: e.table,
                            key: String::from_utf8_lossy(&e.key).into_owned(),
                        },
                    ));
                }
            }
            for op in &batch.ops {
                match op {
                    Op::Put { table, key, value } => {
                        txs[Self::index(*table)].insert(key.as_slice(), value.as_slice())?;
                    }
                    Op::Delete { table, key } => {
                        txs[Self::index(*table)].remove(key.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(engine_error(e)),
        }
        if !batch.lazy {
            self.db.flush().map_err(engine_error)?;
        }
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "sled"
    }
}
