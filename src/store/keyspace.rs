//! Keyspaces the store keeps for the reconciler: ordered keys and values
//! that are opaque bytes here. Their layout and encoding belong to the
//! reconciler (`plumb::reconcile`); `spec/store.md` lists them.

use std::fmt;

use super::{Batch, Store, StoreError, Table};

/// A keyspace kept for the reconciler; each is one table of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyspace {
    /// Target definitions (table `targets`).
    Targets,
    /// What plumb last applied to each target (table `inventory`).
    Inventory,
    /// Each target's audit log (table `runs`).
    Runs,
}

impl Keyspace {
    const fn table(self) -> Table {
        match self {
            Keyspace::Targets => Table::Targets,
            Keyspace::Inventory => Table::Inventory,
            Keyspace::Runs => Table::Runs,
        }
    }

    /// The error for an entry of this keyspace whose value does not
    /// decode: `index entry TABLE/KEY is corrupt: REASON`.
    pub fn corrupt(self, key: &[u8], reason: impl fmt::Display) -> StoreError {
        StoreError::CorruptIndex {
            table: self.table(),
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Writes to keyspaces, committed together or not at all by
/// [`Store::keyspace_commit`] once every precondition holds.
#[derive(Debug, Default)]
pub struct KeyspaceBatch {
    batch: Batch,
}

impl KeyspaceBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to hold `value` (`None`: to be absent) when the batch
    /// commits; checked before any write.
    pub fn expect(&mut self, space: Keyspace, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) {
        self.batch.expect(space.table(), key, value);
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, space: Keyspace, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.batch.put(space.table(), key, value);
    }

    /// Removes `key` (nothing happens when it is absent).
    pub fn delete(&mut self, space: Keyspace, key: impl Into<Vec<u8>>) {
        self.batch.delete(space.table(), key);
    }
}

impl Store {
    /// The value at `key` of `space`, or `None` when absent.
    pub fn keyspace_get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.engine.get(space.table(), key)?)
    }

    /// Visits the entries of `space` whose key starts with `prefix` (every
    /// entry when it is empty), in ascending key order or, with
    /// `reverse`, descending; stops when `visit` returns `false` or an
    /// error, which is returned.
    pub fn keyspace_scan(
        &self,
        space: Keyspace,
        prefix: &[u8],
        reverse: bool,
        visit: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.for_prefix(space.table(), prefix, reverse, visit)
    }

    /// Commits `batch` atomically and durably. When a precondition fails
    /// nothing is written and the error is
    /// [`EngineError::Conflict`](super::EngineError::Conflict) (as
    /// [`StoreError::Engine`]).
    pub fn keyspace_commit(&self, batch: KeyspaceBatch) -> Result<(), StoreError> {
        self.commit(batch.batch)
    }
}
