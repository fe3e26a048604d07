//! Maintenance of a whole store: `gc` and `fsck` of the store itself
//! ([`store::gc`], [`store::fsck`]), with what the reconciler's targets
//! refer to ([`reconcile::maintenance`]).

use crate::reconcile;
use crate::store::{self, Store, StoreError};

pub use crate::store::fsck::FsckReport;
pub use crate::store::gc::GcReport;

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
