//! One reconcile at a time per target: a turn (`crate::store::lock`) on
//! the file `locks/target-NAME` in the store directory, released when the
//! process ends, however it ends.

use std::path::Path;

use super::ReconcileError;
use crate::store::lock::{self, Holder, NotTaken, Wait};

/// A held target lock; dropping it releases the lock.
#[derive(Debug)]
pub struct TargetLock {
    _turn: lock::Turn,
}

impl TargetLock {
    /// Takes the lock of target `name` in the store at `store_dir`; while
    /// another process holds it, waits as `wait` allows, calling `waiting`
    /// once with the holder after a second.
    pub fn acquire(
        store_dir: &Path,
        name: &str,
        wait: Wait,
        waiting: &dyn Fn(&Holder),
    ) -> Result<Self, ReconcileError> {
        let path = lock::path(store_dir, &format!("target-{name}"));
        match lock::take(&path, wait, waiting) {
            Ok(turn) => Ok(Self { _turn: turn }),
            Err(NotTaken::Busy { holder, .. }) => Err(ReconcileError::Busy {
                target: name.to_string(),
                holder: holder.to_string(),
            }),
            Err(NotTaken::Failed(e)) => Err(ReconcileError::Store(e)),
        }
    }
}
