//! An engine in memory, for tests and throwaway stores.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Batch, Engine, EngineError, KeyRange, Op, Table, Visit, visit_in_order};

type Tables = HashMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An engine in memory: atomic, but gone when dropped.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    tables: RwLock<Tables>,
}

impl MemoryEngine {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied batch
        // (batches are applied after all checks, without fallible steps), so
        // the data behind a poisoned lock is still consistent.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Engine for MemoryEngine {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.read().get(&table).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), EngineError> {
        // Copy the range out first so `visit` may call back into the store.
        let entries: Vec<(Vec<u8>, Vec<u8>)> = {
            let guard = self.read();
            let Some(t) = guard.get(&table) else {
                return Ok(());
            };
            let iter = t
                .range::<[u8], _>((range.start, range.end))
                .map(|(k, v)| (k.clone(), v.clone()));
            if reverse {
                iter.rev().collect()
            } else {
                iter.collect()
            }
        };
        visit_in_order(entries.into_iter(), false, |(k, v)| visit(&k, &v))
    }

    fn commit(&self, batch: Batch) -> Result<(), EngineError> {
        let mut guard = self.tables.write().unwrap_or_else(|e| e.into_inner());
        for e in &batch.expect {
            let current = guard.get(&e.table).and_then(|t| t.get(&e.key));
            if current != e.value.as_ref() {
                return Err(EngineError::Conflict {
                    table: e.table,
                    key: String::from_utf8_lossy(&e.key).into_owned(),
                });
            }
        }
        for op in batch.ops {
            match op {
                Op::Put { table, key, value } => {
                    guard.entry(table).or_default().insert(key, value);
                }
                Op::Delete { table, key } => {
                    if let Some(t) = guard.get_mut(&table) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
