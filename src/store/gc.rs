//! Dropping objects that nothing reaches.

use std::collections::{HashMap, HashSet};

use plumb_core::{BlobId, EntryValue, ObjectId, SnapshotId, TreeId};

use super::packs::Location;
use super::{Batch, Store, StoreError, Table};

/// What `gc` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Objects kept.
    pub kept: u64,
    /// Objects removed.
    pub removed: u64,
    /// Stored bytes removed.
    pub bytes_removed: u64,
    /// Pack files rewritten (or removed when empty).
    pub packs_rewritten: u64,
    /// Disk space those rewrites returned, in bytes.
    pub bytes_freed_on_disk: u64,
}

/// What keeps objects alive besides the sources: the roots that the
/// layers above the store (the reconciler's targets) contribute.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Snapshots kept with everything they reach: parents, trees, blobs.
    pub snapshots: Vec<SnapshotId>,
    /// Objects kept on their own.
    pub objects: Vec<ObjectId>,
}

/// Removes every object not reachable from a source's log, a source's
/// named refs (their annotations) or `roots` (snapshots, their parents,
/// trees and blobs). Deletes in batches: a kill midway leaves a
/// consistent store with some garbage left for the next run.
pub fn gc(store: &Store, roots: &Roots) -> Result<GcReport, StoreError> {
    let mut live: HashSet<ObjectId> = HashSet::new();
    let mut snapshots: Vec<SnapshotId> = Vec::new();
    for def in store.sources()? {
        store.log(&def.name, |e| {
            snapshots.push(e.id);
            Ok(true)
        })?;
        // Named refs reach their annotations (annotated tag objects).
        for r in store.source_refs(&def.name)? {
            if let Some(a) = r.annotation {
                live.insert(a.object_id());
            }
        }
    }
    snapshots.extend(roots.snapshots.iter().copied());
    live.extend(roots.objects.iter().copied());
    while let Some(id) = snapshots.pop() {
        if !live.insert(id.object_id()) {
            continue;
        }
        let s = store.snapshot(&id)?;
        snapshots.extend(s.parents.iter().copied());
        mark_tree(store, s.tree, &mut live)?;
    }

    // A large blob reaches its chunks.
    let mut chunked = Vec::new();
    store.for_prefix(Table::Objects, b"", false, |k, v| {
        if let Ok(b) = <[u8; 32]>::try_from(k)
            && super::chunked::is_chunked(v)
            && live.contains(&ObjectId::from_bytes(b))
        {
            chunked.push(BlobId::new(ObjectId::from_bytes(b)));
        }
        Ok(true)
    })?;
    for id in chunked {
        if let Some(list) = store.chunk_list(&id)? {
            live.extend(list.chunks().iter().map(|c| c.id.object_id()));
        }
    }

    let mut report = GcReport::default();
    let mut batch = Batch::new();
    let mut doomed = Vec::new();
    store.for_prefix(Table::Objects, b"", false, |k, v| {
        let keep = <[u8; 32]>::try_from(k).is_ok_and(|b| live.contains(&ObjectId::from_bytes(b)));
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
        store.commit(std::mem::take(&mut batch))?;
    }
    repack(store, &mut report)?;
    Ok(report)
}

/// Rewrites pack files that are mostly garbage: their live objects are
/// copied (verified) into a new pack, the index is pointed there, and only
/// then is the old file removed. A kill midway leaves every index entry
/// pointing at a whole copy; an old pack left behind is removed next time.
/// Journal entries are not copied: when any pack is to be rewritten, a
/// checkpoint written first, durably, holds everything they did, and its
/// pack is not rewritten. The last checkpoint counts as live bytes.
fn repack(store: &Store, report: &mut GcReport) -> Result<(), StoreError> {
    let Some(packs) = store.packs.as_ref() else {
        return Ok(());
    };
    // Per pack: its live bytes, and its live objects with their pointers.
    type Live = (u64, Vec<(ObjectId, Vec<u8>)>);
    let mut live: HashMap<u32, Live> = HashMap::new();
    store.for_prefix(Table::Objects, b"", false, |k, v| {
        if let (Some(loc), Ok(id)) = (Location::decode(v), <[u8; 32]>::try_from(k)) {
            let e = live.entry(loc.pack).or_default();
            e.0 += loc.record_len();
            e.1.push((ObjectId::from_bytes(id), v.to_vec()));
        }
        Ok(true)
    })?;
    let last_checkpoint = store.last_checkpoint()?;
    let current = packs.current();
    // Packs to rewrite; and the pack of the last checkpoint, should it be
    // mostly garbage but for that checkpoint, which a new one replaces.
    let mut doomed = Vec::new();
    let mut spared = None;
    for number in packs.list()? {
        if Some(number) == current {
            continue;
        }
        let size = packs.size(number)?;
        let (live_bytes, ids) = live.remove(&number).unwrap_or_default();
        let checkpoint_bytes = last_checkpoint
            .filter(|l| l.pack == number)
            .map_or(0, |l| l.record_len());
        // Keep packs at least three-quarters live: rewriting them costs
        // more than the space it returns.
        if live_bytes * 4 >= size * 3 {
            continue;
        }
        if (live_bytes + checkpoint_bytes) * 4 >= size * 3 {
            spared = Some((number, size, live_bytes, ids));
        } else {
            doomed.push((number, size, live_bytes, ids));
        }
    }
    if doomed.is_empty() {
        return Ok(());
    }
    doomed.extend(spared);
    let checkpoint = store.journal_checkpoint()?;
    for (number, size, live_bytes, ids) in doomed {
        if Some(number) == checkpoint {
            continue;
        }
        for chunk in ids.chunks(4096) {
            let mut batch = Batch::new();
            for (id, value) in chunk {
                if super::chunked::is_chunked(value) {
                    // A chunk list is copied as it is; its chunks are
                    // objects of their own.
                    super::chunked::restage_list(store, &mut batch, id, value)?;
                    continue;
                }
                let canonical = store
                    .get_encoded(id)?
                    .ok_or(StoreError::Missing { id: *id })?;
                store.stage_object(&mut batch, id, &canonical)?;
            }
            store.commit(batch)?;
        }
        packs.remove(number)?;
        report.packs_rewritten += 1;
        report.bytes_freed_on_disk += size.saturating_sub(live_bytes);
    }
    Ok(())
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
