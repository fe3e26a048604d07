//! Dropping objects that nothing reaches.

use std::collections::HashSet;

use plumb_core::{EntryValue, ObjectId, SnapshotId, TreeId};

use crate::store::{Batch, KeyRange, Store, StoreError, Table};

/// What `gc` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Objects kept.
    pub kept: u64,
    /// Objects removed.
    pub removed: u64,
    /// Stored bytes removed.
    pub bytes_removed: u64,
}

/// Removes every object not reachable from a source's log (snapshots, their
/// parents, trees and blobs). Deletes in batches: a kill midway leaves a
/// consistent store with some garbage left for the next run.
pub fn gc(store: &Store) -> Result<GcReport, StoreError> {
    let mut live: HashSet<ObjectId> = HashSet::new();
    let mut snapshots: Vec<SnapshotId> = Vec::new();
    for def in store.sources()? {
        store.log(&def.name, |e| {
            snapshots.push(e.id);
            Ok(true)
        })?;
    }
    while let Some(id) = snapshots.pop() {
        if !live.insert(id.object_id()) {
            continue;
        }
        let s = store.snapshot(&id)?;
        snapshots.extend(s.parents.iter().copied());
        mark_tree(store, s.tree, &mut live)?;
    }

    let mut report = GcReport::default();
    let mut batch = Batch::new();
    let mut doomed = Vec::new();
    store
        .backend()
        .scan(Table::Objects, KeyRange::all(), false, &mut |k, v| {
            let keep =
                <[u8; 32]>::try_from(k).is_ok_and(|b| live.contains(&ObjectId::from_bytes(b)));
            if keep {
                report.kept += 1;
            } else {
                report.removed += 1;
                report.bytes_removed += v.len() as u64;
                doomed.push(k.to_vec());
            }
            Ok(true)
        })?;
    for chunk in doomed.chunks(4096) {
        for k in chunk {
            batch.delete(Table::Objects, k.clone());
        }
        store.backend().commit(std::mem::take(&mut batch))?;
    }
    Ok(report)
}

fn mark_tree(store: &Store, id: TreeId, live: &mut HashSet<ObjectId>) -> Result<(), StoreError> {
    if !live.insert(id.object_id()) {
        return Ok(());
    }
    for e in store.tree(&id)?.into_entries() {
        match e.value {
            EntryValue::Tree(sub) => mark_tree(store, sub, live)?,
            EntryValue::Submodule(_) => {}
            v => {
                if let Some(b) = v.blob() {
                    live.insert(b.object_id());
                }
            }
        }
    }
    Ok(())
}
