//! How the reconciler's records are kept in the store: target
//! definitions, inventories and runs, keyed and encoded in the store's
//! reconciler keyspaces (`spec/store.md`), read and written through
//! [`TargetStore`].

use std::collections::BTreeSet;

use plumb_core::{ObjectId, SnapshotId};
use serde::{Deserialize, Serialize};

use super::runs::{RunRecord, RunRecordV1};
use plumb_core::ResolvedAttrs;

use super::state::{Applied, Held, Inventory, InventoryDelta, TargetDef, TargetDefV1, TargetDefV2};
use crate::store::{
    EngineError, Keyspace, KeyspaceBatch, Store, StoreError, check_source_name, keyed,
};

/// The stored form of a target definition; new versions add variants.
#[derive(Serialize, Deserialize)]
enum TargetRecord {
    V1(TargetDefV1),
    V2(TargetDefV2),
    V3(TargetDef),
}

/// The stored form of one directory of an inventory (key `TARGET \0 /`
/// then the directory's path, empty for the root): the names directly in
/// it and their records. One row per directory keeps the row count (and
/// the store's per-row cost) small while an apply rewrites only the
/// directories it touched. `V1` rows, written before paths had
/// attributes, are still read; rows are written as `V2`.
#[derive(Serialize, Deserialize)]
enum DirRecord {
    V1(Vec<(Vec<u8>, HeldV1)>),
    V2(Vec<(Vec<u8>, Held)>),
}

/// A path's record in a `V1` row: a [`Held`] without attributes.
#[derive(Serialize, Deserialize)]
struct HeldV1 {
    state: Applied,
    owned: bool,
    pending: bool,
}

impl From<HeldV1> for Held {
    fn from(h: HeldV1) -> Self {
        Held {
            state: h.state,
            owned: h.owned,
            pending: h.pending,
            attrs: ResolvedAttrs::default(),
        }
    }
}

impl DirRecord {
    fn into_list(self) -> Vec<(Vec<u8>, Held)> {
        match self {
            DirRecord::V1(list) => list.into_iter().map(|(k, h)| (k, h.into())).collect(),
            DirRecord::V2(list) => list,
        }
    }
}

/// The stored form of what an inventory holds besides its paths (key
/// `TARGET \0`).
#[derive(Serialize, Deserialize)]
enum InventoryMeta {
    V1 { snapshot: Option<[u8; 32]> },
}

/// The stored form of a run record.
#[derive(Serialize, Deserialize)]
enum RunEnvelope {
    V1(RunRecordV1),
    V2(RunRecord),
}

/// The key of directory `dir`'s row (`dir` empty for the root).
fn dir_key(name: &str, dir: &[u8]) -> Vec<u8> {
    let mut k = keyed(name, b"/");
    k.extend_from_slice(dir);
    k
}

/// The directory part of a path (empty for a path directly in the root).
fn parent_of(path: &[u8]) -> &[u8] {
    path.iter()
        .rposition(|b| *b == b'/')
        .map_or(&[][..], |cut| &path[..cut])
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn decode_target(key: &[u8], raw: &[u8]) -> Result<TargetDef, StoreError> {
    match postcard::from_bytes::<TargetRecord>(raw) {
        Ok(TargetRecord::V1(def)) => Ok(def.into()),
        Ok(TargetRecord::V2(def)) => Ok(def.into()),
        Ok(TargetRecord::V3(def)) => Ok(def),
        Err(e) => Err(Keyspace::Targets.corrupt(key, e)),
    }
}

fn decode_run(key: &[u8], raw: &[u8]) -> Result<RunRecord, StoreError> {
    match postcard::from_bytes::<RunEnvelope>(raw) {
        Ok(RunEnvelope::V1(run)) => Ok(run.into()),
        Ok(RunEnvelope::V2(run)) => Ok(run),
        Err(e) => Err(Keyspace::Runs.corrupt(key, e)),
    }
}

/// One write of a reconcile run: the inventory that is now true, and
/// optionally a run record for the audit log, committed together.
#[derive(Debug)]
pub struct Record<'a> {
    /// The target.
    pub target: &'a str,
    /// Changes to its inventory, and the inventory with them applied.
    pub inventory: Option<(&'a InventoryDelta, &'a Inventory)>,
    /// The run to append, if any (its `seq` is assigned on commit).
    pub run: Option<RunRecord>,
    /// The target definition to store, if it changed (a pin).
    pub def: Option<&'a TargetDef>,
}

/// The reconciler's records in a [`Store`]: target definitions, each
/// target's inventory and its audit log of runs.
///
/// # Contract
///
/// - Every write is one atomic, durable commit: after a crash the store
///   holds all of it or none of it.
/// - [`add_target`](Self::add_target) writes nothing when the name is
///   unsafe or already taken.
/// - [`record`](Self::record) gives a run the next sequence number of its
///   target's log (1 for the first), guarded by the precondition that no
///   run holds it yet, so two writers never share a number.
/// - Reads decode what they return: a stored entry that does not decode is
///   [`StoreError::CorruptIndex`], naming it. A target never applied has an
///   empty inventory and no runs; an unknown target name is an error only
///   for [`target`](Self::target) and [`remove_target`](Self::remove_target).
pub trait TargetStore {
    /// Records a new target; fails if the name is taken.
    fn add_target(&self, def: &TargetDef) -> Result<(), StoreError>;
    /// The target named `name`.
    fn target(&self, name: &str) -> Result<TargetDef, StoreError>;
    /// Every target, by name.
    fn targets(&self) -> Result<Vec<TargetDef>, StoreError>;
    /// Removes a target, its inventory and its runs. What it applied stays
    /// where it is.
    fn remove_target(&self, name: &str) -> Result<(), StoreError>;
    /// The target's inventory (empty before its first apply).
    fn inventory(&self, name: &str) -> Result<Inventory, StoreError>;
    /// The snapshot last applied completely to a target, read without
    /// loading its inventory.
    fn applied_snapshot(&self, name: &str) -> Result<Option<SnapshotId>, StoreError>;
    /// Durably writes what `record` holds in one atomic step; returns the
    /// run's sequence number, if it holds a run.
    fn record(&self, record: Record<'_>) -> Result<Option<u64>, StoreError>;
    /// Visits a target's runs newest first until `visit` returns `false`.
    fn runs(
        &self,
        name: &str,
        visit: impl FnMut(RunRecord) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

impl TargetStore for Store {
    fn add_target(&self, def: &TargetDef) -> Result<(), StoreError> {
        check_source_name(&def.name)
            .map_err(|_| StoreError::Invalid(format!(
                "bad target name {:?}: use letters, digits, '.', '_' and '-', not starting with '.' or '-'",
                def.name
            )))?;
        let mut batch = KeyspaceBatch::new();
        batch.expect(Keyspace::Targets, def.name.as_bytes(), None);
        batch.put(
            Keyspace::Targets,
            def.name.as_bytes(),
            encode(&TargetRecord::V3(def.clone()))?,
        );
        match self.keyspace_commit(batch) {
            Err(StoreError::Engine(EngineError::Conflict { .. })) => Err(StoreError::Invalid(
                format!("a target named {:?} already exists", def.name),
            )),
            other => other,
        }
    }

    fn target(&self, name: &str) -> Result<TargetDef, StoreError> {
        let raw = self
            .keyspace_get(Keyspace::Targets, name.as_bytes())?
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "no target named {name:?} (see `plumb target list`)"
                ))
            })?;
        decode_target(name.as_bytes(), &raw)
    }

    fn targets(&self) -> Result<Vec<TargetDef>, StoreError> {
        let mut out = Vec::new();
        self.keyspace_scan(Keyspace::Targets, b"", false, |k, v| {
            out.push(decode_target(k, v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    fn remove_target(&self, name: &str) -> Result<(), StoreError> {
        self.target(name)?;
        let mut batch = KeyspaceBatch::new();
        batch.delete(Keyspace::Targets, name.as_bytes());
        for space in [Keyspace::Inventory, Keyspace::Runs] {
            self.keyspace_scan(space, &keyed(name, b""), false, |k, _| {
                batch.delete(space, k);
                Ok(true)
            })?;
        }
        self.keyspace_commit(batch)
    }

    fn inventory(&self, name: &str) -> Result<Inventory, StoreError> {
        let prefix = keyed(name, b"");
        let mut snapshot = None;
        let mut entries = Vec::new();
        self.keyspace_scan(Keyspace::Inventory, &prefix, false, |k, v| {
            let rest = &k[prefix.len()..];
            match rest.split_first() {
                None => match postcard::from_bytes::<InventoryMeta>(v) {
                    Ok(InventoryMeta::V1 { snapshot: s }) => snapshot = s,
                    Err(e) => return Err(Keyspace::Inventory.corrupt(k, e)),
                },
                Some((b'/', dir)) => match postcard::from_bytes::<DirRecord>(v) {
                    Ok(record) => {
                        for (file, held) in record.into_list() {
                            let path = if dir.is_empty() {
                                file
                            } else {
                                let mut p = Vec::with_capacity(dir.len() + 1 + file.len());
                                p.extend_from_slice(dir);
                                p.push(b'/');
                                p.extend_from_slice(&file);
                                p
                            };
                            entries.push((path, held));
                        }
                    }
                    Err(e) => return Err(Keyspace::Inventory.corrupt(k, e)),
                },
                Some(_) => return Err(Keyspace::Inventory.corrupt(k, "unknown key")),
            }
            Ok(true)
        })?;
        // Rows come per directory; the map wants full-path order.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Inventory {
            snapshot,
            entries: entries.into_iter().collect(),
        })
    }

    fn applied_snapshot(&self, name: &str) -> Result<Option<SnapshotId>, StoreError> {
        let key = keyed(name, b"");
        match self.keyspace_get(Keyspace::Inventory, &key)? {
            None => Ok(None),
            Some(v) => match postcard::from_bytes::<InventoryMeta>(&v) {
                Ok(InventoryMeta::V1 { snapshot }) => {
                    Ok(snapshot.map(|b| SnapshotId::new(ObjectId::from_bytes(b))))
                }
                Err(e) => Err(Keyspace::Inventory.corrupt(&key, e)),
            },
        }
    }

    fn record(&self, record: Record<'_>) -> Result<Option<u64>, StoreError> {
        let name = record.target;
        let mut batch = KeyspaceBatch::new();
        // The target is still defined, as it was read, when the batch
        // commits: a reconcile holds the writer turn only to record, and
        // `target remove` may have run meanwhile.
        let def_row = self
            .keyspace_get(Keyspace::Targets, name.as_bytes())?
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "target {} was removed while it was being reconciled; nothing more was recorded",
                    plumb_core::quote::quote(name.as_bytes())
                ))
            })?;
        batch.expect(Keyspace::Targets, name.as_bytes(), Some(def_row));
        if let Some((delta, after)) = record.inventory {
            stage_inventory(name, delta, after, &mut batch)?;
        }
        if let Some(def) = record.def {
            batch.put(
                Keyspace::Targets,
                name.as_bytes(),
                encode(&TargetRecord::V3(def.clone()))?,
            );
        }
        let mut seq = None;
        if let Some(mut run) = record.run {
            let next = last_run_seq(self, name)? + 1;
            run.seq = next;
            let key = keyed(name, &next.to_be_bytes());
            batch.expect(Keyspace::Runs, key.clone(), None);
            batch.put(Keyspace::Runs, key, encode(&RunEnvelope::V2(run))?);
            seq = Some(next);
        }
        self.keyspace_commit(batch)?;
        Ok(seq)
    }

    fn runs(
        &self,
        name: &str,
        mut visit: impl FnMut(RunRecord) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.keyspace_scan(Keyspace::Runs, &keyed(name, b""), true, |k, v| {
            visit(decode_run(k, v)?)
        })
    }
}

/// Adds the writes of an inventory delta to `batch`: the meta row when
/// the snapshot changes, and the row of every directory holding a
/// changed path, rewritten from `after` (the inventory with the delta
/// applied).
fn stage_inventory(
    name: &str,
    delta: &InventoryDelta,
    after: &Inventory,
    batch: &mut KeyspaceBatch,
) -> Result<(), StoreError> {
    if let Some(snapshot) = delta.snapshot {
        batch.put(
            Keyspace::Inventory,
            keyed(name, b""),
            encode(&InventoryMeta::V1 { snapshot })?,
        );
    }
    let dirs: BTreeSet<&[u8]> = delta.paths.keys().map(|p| parent_of(p)).collect();
    for dir in dirs {
        // The names directly in `dir`: paths below its prefix with no
        // further `/`.
        let prefix = if dir.is_empty() {
            Vec::new()
        } else {
            [dir, b"/"].concat()
        };
        let list: Vec<(Vec<u8>, Held)> = after
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, h)| {
                let name = &p[prefix.len()..];
                (!name.contains(&b'/')).then(|| (name.to_vec(), h.clone()))
            })
            .collect();
        if list.is_empty() {
            batch.delete(Keyspace::Inventory, dir_key(name, dir));
        } else {
            batch.put(
                Keyspace::Inventory,
                dir_key(name, dir),
                encode(&DirRecord::V2(list))?,
            );
        }
    }
    Ok(())
}

/// The sequence number of a target's newest run (0 when it has none).
fn last_run_seq(store: &Store, name: &str) -> Result<u64, StoreError> {
    let mut last = 0;
    store.keyspace_scan(Keyspace::Runs, &keyed(name, b""), true, |k, v| {
        last = decode_run(k, v)?.seq;
        Ok(false)
    })?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::runs::{Counts, Outcome, RunKind};
    use crate::reconcile::state::Applied;

    fn def(name: &str) -> TargetDef {
        TargetDef {
            name: name.into(),
            location: "dir:/srv/app".parse().expect("a valid location"),
            source: "app".into(),
            path: None,
            sel: None,
            prune: true,
            pin: None,
            max_delete: Some(30),
            workdir: None,
            hooks: super::super::hooks::Hooks {
                check: Some(super::super::hooks::Hook {
                    argv: vec!["nginx".into(), "-t".into()],
                    timeout_ms: Some(5000),
                }),
                after: None,
                health: None,
            },
        }
    }

    #[test]
    fn reads_version_1_definitions() {
        let v1 = TargetDefV1 {
            name: "t".into(),
            location: "dir:/srv/app".parse().expect("a valid location"),
            source: "app".into(),
            path: Some("etc".into()),
            sel: None,
            prune: true,
            pin: None,
        };
        let raw = encode(&TargetRecord::V1(v1.clone())).expect("encodes");
        let read = decode_target(b"t", &raw).expect("decodes");
        assert_eq!(read, TargetDef::from(v1));
        assert_eq!((read.max_delete, read.workdir), (None, None));
        let now = def("t");
        let raw = encode(&TargetRecord::V3(now.clone())).expect("encodes");
        assert_eq!(decode_target(b"t", &raw).expect("decodes"), now);
    }

    fn run(kind: RunKind) -> RunRecord {
        RunRecord {
            seq: 0,
            kind,
            started_ms: 1,
            duration_ms: 2,
            user: "u".into(),
            host: "h".into(),
            snapshot: None,
            counts: Counts::default(),
            outcome: Outcome::Ok,
            error: None,
            hooks: Vec::new(),
        }
    }

    #[test]
    fn reads_version_2_definitions_and_version_1_runs() {
        let now = def("t");
        let v2 = TargetDefV2 {
            name: now.name.clone(),
            location: now.location.clone(),
            source: now.source.clone(),
            path: now.path.clone(),
            sel: now.sel.clone(),
            prune: now.prune,
            pin: now.pin,
            max_delete: Some(7),
            workdir: now.workdir.clone(),
        };
        let raw = encode(&TargetRecord::V2(v2.clone())).expect("encodes");
        let read = decode_target(b"t", &raw).expect("decodes");
        assert_eq!(read, TargetDef::from(v2));
        assert!(read.hooks.is_empty() && read.max_delete == Some(7));
        let r = run(RunKind::Apply);
        let v1 = RunRecordV1 {
            seq: r.seq,
            kind: r.kind,
            started_ms: r.started_ms,
            duration_ms: r.duration_ms,
            user: r.user.clone(),
            host: r.host.clone(),
            snapshot: r.snapshot,
            counts: r.counts,
            outcome: r.outcome,
            error: r.error.clone(),
        };
        let raw = encode(&RunEnvelope::V1(v1)).expect("encodes");
        assert_eq!(decode_run(b"k", &raw).expect("decodes"), r);
    }

    proptest::proptest! {
        /// Whatever sequence of deltas is recorded, loading the inventory
        /// gives exactly the in-memory result of applying them.
        #[test]
        fn recorded_deltas_load_back(
            steps in proptest::collection::vec(
                proptest::collection::vec(
                    (proptest::sample::select(vec!["a", "b", "a.d", "a/x", "a/y", "a/x/z", "a.d/q", "b/c d"]), proptest::bool::ANY),
                    1..6,
                ),
                1..8,
            )
        ) {
            let store = Store::memory();
            store.add_target(&def("t")).expect("add");
            let mut mem = Inventory::default();
            for (i, step) in steps.iter().enumerate() {
                let mut delta = InventoryDelta::default();
                for (path, keep) in step {
                    let held = keep.then(|| Held {
                        state: Applied::Symlink { target: format!("{i}").into_bytes() },
                        owned: true,
                        pending: i % 2 == 0,
                        attrs: Default::default(),
                    });
                    delta.paths.insert(path.as_bytes().to_vec(), held);
                }
                delta.snapshot = Some(Some([i as u8; 32]));
                mem.apply(&delta);
                store.record(Record { target: "t", inventory: Some((&delta, &mem)), run: None, def: None }).expect("record");
                proptest::prop_assert_eq!(&store.inventory("t").expect("load"), &mem);
            }
        }
    }

    #[test]
    fn rows_written_before_attributes_still_read() -> Result<(), StoreError> {
        let store = Store::memory();
        store.add_target(&def("old"))?;
        let v1 = DirRecord::V1(vec![(
            b"a".to_vec(),
            HeldV1 {
                state: Applied::Dir,
                owned: true,
                pending: false,
            },
        )]);
        let mut batch = KeyspaceBatch::new();
        batch.put(Keyspace::Inventory, dir_key("old", b""), encode(&v1)?);
        store.keyspace_commit(batch)?;
        let inv = store.inventory("old")?;
        assert_eq!(
            inv.entries.get(b"a".as_slice()),
            Some(&Held {
                state: Applied::Dir,
                owned: true,
                pending: false,
                attrs: ResolvedAttrs::default(),
            })
        );
        Ok(())
    }

    #[test]
    fn targets_inventory_and_runs_round_trip() -> Result<(), StoreError> {
        let store = Store::memory();
        store.add_target(&def("web"))?;
        assert!(store.add_target(&def("web")).is_err());
        assert!(store.add_target(&def("../x")).is_err());
        assert_eq!(store.target("web")?, def("web"));
        let mut inv = Inventory::default();
        inv.entries.insert(
            b"a/b".to_vec(),
            Held {
                state: Applied::Dir,
                owned: true,
                pending: false,
                attrs: Default::default(),
            },
        );
        let seq = store.record(Record {
            target: "web",
            inventory: Some((
                &InventoryDelta {
                    snapshot: None,
                    paths: inv
                        .entries
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect(),
                },
                &inv,
            )),
            run: Some(run(RunKind::Apply)),
            def: None,
        })?;
        assert_eq!(seq, Some(1));
        let seq = store.record(Record {
            target: "web",
            inventory: None,
            run: Some(run(RunKind::Drift)),
            def: None,
        })?;
        assert_eq!(seq, Some(2));
        assert_eq!(store.inventory("web")?, inv);
        let mut kinds = Vec::new();
        store.runs("web", |r| {
            kinds.push((r.seq, r.kind));
            Ok(true)
        })?;
        assert_eq!(kinds, vec![(2, RunKind::Drift), (1, RunKind::Apply)]);
        store.remove_target("web")?;
        assert!(store.target("web").is_err());
        assert_eq!(store.inventory("web")?, Inventory::default());
        Ok(())
    }
}
