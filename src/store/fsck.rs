//! Verifying a store: every object and every index entry.

use std::collections::{HashMap, HashSet};

use plumb_core::{EntryValue, Kind, ObjectId, SnapshotId, TreeId};

use super::packs::Location;
use super::{Store, StoreError, Table};

/// What `fsck` found.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Objects read and verified.
    pub objects: u64,
    /// Bytes the objects take packed (compressed), before the engine's own overhead.
    pub packed_bytes: u64,
    /// Snapshots reached from source logs.
    pub snapshots: u64,
    /// Sources checked.
    pub sources: u64,
    /// Every problem, one line each.
    pub problems: Vec<String>,
}

/// The objects `fsck` read and verified, by kind: what references kept
/// outside the store's index are checked against.
#[derive(Debug, Default)]
pub struct Verified {
    kinds: HashMap<ObjectId, Kind>,
}

impl Verified {
    /// Whether `id` is stored, verified, and an object of kind `kind`.
    pub fn is(&self, id: &ObjectId, kind: Kind) -> bool {
        self.kinds.get(id) == Some(&kind)
    }
}

/// A check of references to stored objects kept outside the store's own
/// index (the reconciler's targets). Given what `fsck` verified, it adds
/// one line to `problems` per problem found; it fails only when the store
/// itself does.
pub type ReferenceCheck<'a> = dyn Fn(&Verified, &mut Vec<String>) -> Result<(), StoreError> + 'a;

/// Checks every object (hash and canonical form) and the index (logs,
/// heads, named refs and their annotations, revisions, times, snapshot
/// map) and that every snapshot in a log
/// has its whole tree present, then runs `references` against the
/// objects verified. Problems are collected, not fatal; only a failing
/// engine stops the check.
pub fn fsck(
    store: &Store,
    references: &ReferenceCheck<'_>,
    progress: &dyn Fn(u64),
) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport::default();
    let mut verified = Verified::default();
    let mut keys = Vec::new();
    store.for_prefix(Table::Objects, b"", false, |k, v| {
        keys.push(k.to_vec());
        report.packed_bytes += Location::decode(v).map_or(v.len() as u64, |l| u64::from(l.len));
        Ok(true)
    })?;
    for key in keys {
        report.objects += 1;
        if report.objects % 1024 == 0 {
            progress(report.objects);
        }
        let Ok(bytes) = <[u8; 32]>::try_from(key.as_slice()) else {
            report.problems.push(format!(
                "objects table: key of {} bytes is not an id",
                key.len()
            ));
            continue;
        };
        let id = ObjectId::from_bytes(bytes);
        match store.object(&id) {
            Ok(o) => {
                verified.kinds.insert(id, o.kind());
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    }

    let mut trees_ok: HashSet<TreeId> = HashSet::new();
    for def in store.sources()? {
        report.sources += 1;
        let name = def.name;
        let mut expected_seq = None;
        let mut newest = None;
        store.log(&name, |e| {
            if newest.is_none() {
                newest = Some(e);
            }
            if let Some(want) = expected_seq
                && e.seq != want
            {
                report.problems.push(format!(
                    "source {name:?}: log skips from {want} to {}",
                    e.seq
                ));
            }
            expected_seq = e.seq.checked_sub(1);
            report.snapshots += 1;
            check_snapshot(
                store,
                &verified,
                &mut trees_ok,
                &name,
                e.id,
                &mut report.problems,
            );
            if store
                .sources_of(&e.id)?
                .iter()
                .all(|(s, seq)| *s != name || *seq != e.seq)
            {
                report.problems.push(format!(
                    "source {name:?}: snapshot {} at #{} is missing from the snapshot map",
                    e.id, e.seq
                ));
            }
            Ok(true)
        })?;
        if expected_seq.is_some_and(|s| s != 0) {
            report
                .problems
                .push(format!("source {name:?}: log does not start at 1"));
        }
        if store.head(&name)? != newest {
            report.problems.push(format!(
                "source {name:?}: head does not match the newest log entry"
            ));
        }
        match store.source_refs(&name) {
            Ok(refs) => {
                for r in refs {
                    if !verified.is(&r.snapshot.object_id(), Kind::Snapshot) {
                        report.problems.push(format!(
                            "source {name:?}: ref {} points to snapshot {}, which is not stored",
                            r.name, r.snapshot
                        ));
                    }
                    if let Some(a) = r.annotation
                        && !verified.is(&a.object_id(), Kind::Blob)
                    {
                        report.problems.push(format!(
                            "source {name:?}: ref {} has annotation {a}, which is not stored",
                            r.name
                        ));
                    }
                }
            }
            Err(e) => report.problems.push(format!("source {name:?}: {e}")),
        }
        for table in [Table::Revisions, Table::Times] {
            let mut dangling = 0u64;
            store.indexed_snapshots(table, &name, |id| {
                if !id.is_ok_and(|id| verified.is(&id.object_id(), Kind::Snapshot)) {
                    dangling += 1;
                }
            })?;
            if dangling > 0 {
                report.problems.push(format!(
                    "source {name:?}: {dangling} {table} entries point to no snapshot"
                ));
            }
        }
    }
    references(&verified, &mut report.problems)?;
    Ok(report)
}

fn check_snapshot(
    store: &Store,
    verified: &Verified,
    trees_ok: &mut HashSet<TreeId>,
    source: &str,
    id: SnapshotId,
    problems: &mut Vec<String>,
) {
    if !verified.is(&id.object_id(), Kind::Snapshot) {
        problems.push(format!(
            "source {source:?}: log names {id}, which is not a stored snapshot"
        ));
        return;
    }
    match store.snapshot(&id) {
        Ok(s) => {
            for p in &s.parents {
                if !verified.is(&p.object_id(), Kind::Snapshot) {
                    problems.push(format!("snapshot {id}: parent {p} is missing"));
                }
            }
            check_tree(
                store,
                verified,
                trees_ok,
                s.tree,
                &format!("snapshot {id}"),
                problems,
            );
        }
        Err(e) => problems.push(e.to_string()),
    }
}

fn check_tree(
    store: &Store,
    verified: &Verified,
    trees_ok: &mut HashSet<TreeId>,
    id: TreeId,
    context: &str,
    problems: &mut Vec<String>,
) {
    if trees_ok.contains(&id) {
        return;
    }
    if !verified.is(&id.object_id(), Kind::Tree) {
        problems.push(format!("{context}: tree {id} is missing"));
        return;
    }
    let tree = match store.tree(&id) {
        Ok(t) => t,
        Err(e) => {
            problems.push(e.to_string());
            return;
        }
    };
    let before = problems.len();
    for e in tree.entries() {
        match &e.value {
            EntryValue::Tree(sub) => check_tree(store, verified, trees_ok, *sub, context, problems),
            EntryValue::Submodule(_) => {}
            v => {
                let blob = v.blob().expect("files, executables and links hold blobs");
                if !verified.is(&blob.object_id(), Kind::Blob) {
                    problems.push(format!("{context}: blob {blob} ({}) is missing", e.name));
                }
            }
        }
    }
    if problems.len() == before {
        trees_ok.insert(id);
    }
}
