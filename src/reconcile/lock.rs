//! One reconcile at a time per target: an advisory lock on a file in the
//! store directory (`locks/target-NAME`), released when the process ends,
//! however it ends.

use std::fs::{self, File, TryLockError};
use std::path::Path;

use super::ReconcileError;
use crate::store::StoreError;

/// A held target lock; dropping it releases the lock.
#[derive(Debug)]
pub struct TargetLock {
    _file: File,
}

impl TargetLock {
    /// Takes the lock of target `name` in the store at `store_dir`; when
    /// another process holds it, waits (`wait`) or fails at once.
    pub fn acquire(store_dir: &Path, name: &str, wait: bool) -> Result<Self, ReconcileError> {
        let dir = store_dir.join("locks");
        let io = |path: &Path, source| {
            ReconcileError::Store(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join(format!("target-{name}"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        if wait {
            file.lock().map_err(|e| io(&path, e))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(ReconcileError::Busy {
                        target: name.to_string(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(&path, e)),
            }
        }
        Ok(Self { _file: file })
    }
}
