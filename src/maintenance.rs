//! Maintenance of a whole store: `gc` and `fsck` of the store itself
//! ([`store::gc`], [`store::fsck`]), with what the reconciler's targets
//! refer to ([`reconcile::maintenance`]).

use crate::reconcile;
use crate::store::{self, Store, StoreError};

pub use crate::store::fsck::FsckReport;
pub use crate::store::gc::GcReport;
pub use crate::store::repair::RepairReport;

use std::path::Path;

use crate::store::{Holder, Wait};

/// Removes every object that no source and no target reaches.
pub fn gc(store: &Store) -> Result<GcReport, StoreError> {
    let roots = reconcile::maintenance::roots(store)?;
    store::gc::gc(store, &roots)
}

/// Verifies every object, the index, and what every target refers to;
/// `progress` is called with the count of objects read so far.
pub fn fsck(store: &Store, progress: &dyn Fn(u64)) -> Result<FsckReport, StoreError> {
    store::fsck::fsck(
        store,
        &|verified, problems| reconcile::maintenance::check_targets(store, verified, problems),
        progress,
    )
}

/// Rebuilds the index of the store at `dir` from its packs
/// ([`store::repair::rebuild`]), then checks the result as `fsck` does:
/// its problems are what the packs could not give back (missing objects
/// and the snapshots that reach them).
pub fn repair(
    dir: &Path,
    wait: Wait,
    waiting: &dyn Fn(&Holder),
) -> Result<(RepairReport, FsckReport), StoreError> {
    let (store, report) = store::repair::rebuild(dir, wait, waiting)?;
    let check = fsck(&store, &|_| {})?;
    Ok((report, check))
}
