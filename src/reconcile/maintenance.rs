//! The reconciler's part in store maintenance: what its targets keep
//! alive for `gc`, and `fsck`'s check of its rows and of what they name.

use std::collections::BTreeSet;

use plumb_core::{Kind, ObjectId};

use super::records::TargetStore;
use super::state::Applied;
use crate::store::fsck::{Problems, Verified};
use crate::store::gc::Roots;
use crate::store::{Keyspace, Store, StoreError, unkeyed};

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

/// The target name a row's key starts with (before its NUL, or the whole
/// key in `targets`).
fn target_of(space: Keyspace, key: &[u8]) -> String {
    let name = match space {
        Keyspace::Targets => key,
        _ => unkeyed(key).map_or(key, |(name, _)| name),
    };
    String::from_utf8_lossy(name).into_owned()
}

/// Every row of the reconciler's keyspaces decodes and belongs to a target
/// that exists; each target's runs are numbered 1 to its last without a
/// gap; what targets point at (pin, applied snapshot, inventory blobs) is
/// stored. Returns the count of rows checked.
pub fn check_targets(
    store: &Store,
    verified: &Verified,
    problems: &mut Problems,
) -> Result<u64, StoreError> {
    let mut rows = 0u64;
    let mut names = BTreeSet::new();
    let mut orphans = BTreeSet::new();
    for space in [Keyspace::Targets, Keyspace::Inventory, Keyspace::Runs] {
        store.keyspace_scan(space, b"", false, |k, _| {
            rows += 1;
            let name = target_of(space, k);
            if space == Keyspace::Targets {
                names.insert(name);
            } else if !names.contains(&name) {
                orphans.insert((format!("{space:?}").to_lowercase(), name));
            }
            Ok(true)
        })?;
    }
    for (space, name) in orphans {
        problems.index(format!(
            "{space}: rows of target {name:?}, which is not defined"
        ));
    }
    for name in names {
        let def = match store.target(&name) {
            Ok(def) => def,
            Err(e) => {
                problems.index(e.to_string());
                continue;
            }
        };
        if let Some(pin) = def.pinned() {
            verified.require(pin.object_id(), Kind::Snapshot, problems, || {
                format!("target {name:?}: its pin")
            });
        }
        match store.inventory(&name) {
            Ok(inv) => {
                if let Some(s) = inv.applied() {
                    verified.require(s.object_id(), Kind::Snapshot, problems, || {
                        format!("target {name:?}: the snapshot it last applied")
                    });
                }
                for (path, held) in &inv.entries {
                    if let Applied::File { blob, .. } = &held.state {
                        verified.require(ObjectId::from_bytes(*blob), Kind::Blob, problems, || {
                            format!(
                                "target {name:?}: inventory of {}",
                                String::from_utf8_lossy(path)
                            )
                        });
                    }
                }
            }
            Err(e) => problems.index(e.to_string()),
        }
        let mut expected: Option<u64> = None;
        let checked = store.runs(&name, |r| {
            if expected.is_some_and(|want| r.seq != want) || r.seq == 0 {
                problems.index(format!(
                    "target {name:?}: run {} is out of sequence (expected {})",
                    r.seq,
                    expected.unwrap_or(1)
                ));
            }
            expected = r.seq.checked_sub(1);
            Ok(true)
        });
        match checked {
            Ok(()) if expected.is_some_and(|s| s != 0) => {
                problems.index(format!("target {name:?}: runs do not start at 1"));
            }
            Ok(()) => {}
            Err(e) => problems.index(e.to_string()),
        }
    }
    Ok(rows)
}
