//! The reconciler's part in store maintenance: what its targets keep
//! alive for `gc`, and `fsck`'s check that what they name is stored.

use plumb_core::{Kind, ObjectId};

use super::records::TargetStore;
use super::state::Applied;
use crate::store::fsck::Verified;
use crate::store::gc::Roots;
use crate::store::{Store, StoreError};

/// What targets keep alive: the snapshots they are pinned to and last
/// applied, and every blob their inventories record (a drift diff needs
/// it).
pub fn roots(store: &Store) -> Result<Roots, StoreError> {
    let mut roots = Roots::default();
    for def in store.targets()? {
        roots.snapshots.extend(def.pinned());
        let inv = store.inventory(&def.name)?;
        roots.snapshots.extend(inv.applied());
        for held in inv.entries.values() {
            if let Applied::File { blob, .. } = &held.state {
                roots.objects.push(ObjectId::from_bytes(*blob));
            }
        }
    }
    Ok(roots)
}

/// Every target's definition, inventory and runs decode; what they point
/// at (pin, applied snapshot, inventory blobs) is stored.
pub fn check_targets(
    store: &Store,
    verified: &Verified,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    let targets = match store.targets() {
        Ok(t) => t,
        Err(e) => {
            problems.push(e.to_string());
            return Ok(());
        }
    };
    for def in targets {
        let name = &def.name;
        if let Some(pin) = def.pinned()
            && !verified.is(&pin.object_id(), Kind::Snapshot)
        {
            problems.push(format!("target {name:?}: pinned snapshot {pin} is missing"));
        }
        let inv = match store.inventory(name) {
            Ok(inv) => inv,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        if let Some(s) = inv.applied()
            && !verified.is(&s.object_id(), Kind::Snapshot)
        {
            problems.push(format!("target {name:?}: applied snapshot {s} is missing"));
        }
        let missing = inv
            .entries
            .values()
            .filter(|h| match &h.state {
                Applied::File { blob, .. } => {
                    !verified.is(&ObjectId::from_bytes(*blob), Kind::Blob)
                }
                _ => false,
            })
            .count();
        if missing > 0 {
            problems.push(format!(
                "target {name:?}: {missing} inventory files point to no blob"
            ));
        }
        if let Err(e) = store.runs(name, |_| Ok(true)) {
            problems.push(e.to_string());
        }
    }
    Ok(())
}
