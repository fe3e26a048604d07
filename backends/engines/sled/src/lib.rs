//! An optional storage engine on sled 0.34 (the `plumb` package's cargo
//! feature `sled`), kept so that the choice of redb as the default stays
//! measured rather than assumed.
//!
//! **Single-process.** sled locks its database directory for one handle
//! and has no read-only mode, so this engine is *single-process* in the
//! sense of the `Engine` contract: while one process holds a store on it,
//! every other — readers included — is refused at once with
//! [`EngineError::Locked`], whose message says so. Queries beside a writer
//! need the redb engine.
#![deny(missing_docs)]

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use plumb_core::engine::{
    Batch, Engine, EngineError, KeyRange, Op, Table, Visit, is_disk_full, visit_in_order,
};

/// A store in a sled database directory.
pub struct SledEngine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl std::fmt::Debug for SledEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledEngine")
    }
}

/// sled's error, kept as the cause; a full disk underneath is
/// [`EngineError::NoSpace`].
fn engine_error(e: sled::Error) -> EngineError {
    match e {
        sled::Error::Io(io) if is_disk_full(&io) => EngineError::NoSpace,
        e => EngineError::engine("sled", e),
    }
}

/// Why opening the database at `path` failed. sled tells that another
/// process holds its lock only in words (an I/O error of kind `Other`),
/// so the lock is asked instead.
fn open_error(path: &Path, e: sled::Error) -> EngineError {
    if matches!(&e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::Other)
        && lock_held(path)
    {
        return EngineError::Locked;
    }
    engine_error(e)
}

/// Whether another handle holds sled's lock on the database file
/// (`flock`, exclusive, taken by sled when it opens).
fn lock_held(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join("db"))
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

impl SledEngine {
    /// Opens (or creates) the database directory at `path`.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| open_error(path, e))?;
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| open_error(path, e))?;
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

impl Engine for SledEngine {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self
            .tree(table)
            .get(key)
            .map_err(engine_error)?
            .map(|v| v.to_vec()))
    }

    fn contains(&self, table: Table, key: &[u8]) -> Result<bool, EngineError> {
        self.tree(table).contains_key(key).map_err(engine_error)
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), EngineError> {
        let iter = self.tree(table).range::<&[u8], _>((range.start, range.end));
        let mut step = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(engine_error)?;
            visit(&k, &v)
        };
        visit_in_order(iter, reverse, &mut step)
    }

    fn commit(&self, batch: Batch) -> Result<(), EngineError> {
        let result = self.trees.as_slice().transaction(|txs| {
            for e in &batch.expect {
                let current = txs[Self::index(e.table)].get(&e.key)?;
                if current.as_deref() != e.value.as_deref() {
                    return Err(ConflictableTransactionError::Abort(EngineError::Conflict {
                        table: e.table,
                        key: String::from_utf8_lossy(&e.key).into_owned(),
                    }));
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

    fn name(&self) -> &'static str {
        "sled"
    }
}
