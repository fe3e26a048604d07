//! The reconciler's part of the index: target definitions, each target's
//! inventory (what plumb last applied there) and its audit log of runs
//! (`spec/store.md`).

use std::collections::BTreeMap;

use plumb_core::{ObjectId, SnapshotId};
use serde::{Deserialize, Serialize};

use super::index::{check_source_name, keyed};
use super::{Batch, KeyRange, Table};
use super::{EngineError, Store, StoreError};
use crate::reconcile::targets::Location;

/// A named target, as `plumb target add` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDef {
    /// Its name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Where: `dir:PATH` (absolute) or `exec:PROGRAM [ARGS…]`.
    pub location: Location,
    /// The source whose snapshots it follows.
    pub source: String,
    /// The subdirectory of each snapshot to reconcile, if not the whole tree.
    pub path: Option<String>,
    /// What to follow instead of the source's latest snapshot: a selector
    /// (`main`, `refs/tags/v1.2`, a native revision…), as after `NAME@`.
    pub sel: Option<String>,
    /// Whether apply deletes what plumb created and the snapshot dropped.
    pub prune: bool,
    /// The snapshot a rollback pinned the target to, until `unpin`.
    pub pin: Option<[u8; 32]>,
}

impl TargetDef {
    /// The pinned snapshot, if any.
    pub fn pinned(&self) -> Option<SnapshotId> {
        self.pin
            .map(|bytes| SnapshotId::new(ObjectId::from_bytes(bytes)))
    }
}

#[derive(Serialize, Deserialize)]
enum TargetRecord {
    V1(TargetDef),
}

/// What plumb applied at one path of a target, as it last confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// A regular file.
    File {
        /// Its content, a blob in the store.
        blob: [u8; 32],
        /// Its size.
        size: u64,
        /// Whether it is executable.
        executable: bool,
        /// The target's digest of the content, when the target's digest
        /// kind is not the blob id (SHA-256 for plugins).
        sha256: Option<[u8; 32]>,
        /// The target's change token seen right after it was written.
        token: Option<Vec<u8>>,
    },
    /// A symbolic link.
    Symlink {
        /// Its target.
        target: Vec<u8>,
    },
    /// A directory.
    Dir,
}

/// One path of an inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// What is there, as plumb last applied or confirmed it.
    pub state: Applied,
    /// Whether plumb created (or adopted) it, so may delete it. Paths that
    /// already held the desired content before plumb came are recorded
    /// but not owned.
    pub owned: bool,
    /// Whether a change to it was started and not confirmed (a kill or an
    /// error in the middle of an apply): its real state is unknown until
    /// observed again. Pending paths are owned.
    pub pending: bool,
}

/// Changes to an inventory, recorded as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryDelta {
    /// The new last-applied snapshot, when it changes.
    pub snapshot: Option<Option<[u8; 32]>>,
    /// Paths and their new records (`None`: dropped).
    pub paths: BTreeMap<Vec<u8>, Option<Held>>,
}

impl InventoryDelta {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.paths.is_empty()
    }

    /// The delta that records `inv`'s current value at each of `keys`.
    pub fn of_keys<'k>(inv: &Inventory, keys: impl IntoIterator<Item = &'k Vec<u8>>) -> Self {
        Self {
            snapshot: None,
            paths: keys
                .into_iter()
                .map(|k| (k.clone(), inv.entries.get(k).cloned()))
                .collect(),
        }
    }
}

/// Everything plumb last applied to a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The snapshot last applied completely, if any.
    pub snapshot: Option<[u8; 32]>,
    /// Paths (raw, `/`-separated) and what plumb put there.
    pub entries: BTreeMap<Vec<u8>, Held>,
}

impl Inventory {
    /// Applies a delta.
    pub fn apply(&mut self, delta: &InventoryDelta) {
        if let Some(s) = delta.snapshot {
            self.snapshot = s;
        }
        for (path, held) in &delta.paths {
            match held {
                Some(h) => {
                    self.entries.insert(path.clone(), h.clone());
                }
                None => {
                    self.entries.remove(path);
                }
            }
        }
    }

    /// The snapshot last applied completely.
    pub fn applied(&self) -> Option<SnapshotId> {
        self.snapshot
            .map(|bytes| SnapshotId::new(ObjectId::from_bytes(bytes)))
    }
}

/// The stored form of one directory of an inventory (key `TARGET \0 /`
/// then the directory's path, empty for the root): the names directly in
/// it and their records. One row per directory keeps the row count (and
/// the store's per-row cost) small while an apply rewrites only the
/// directories it touched.
#[derive(Serialize, Deserialize)]
enum DirRecord {
    V1(Vec<(Vec<u8>, Held)>),
}

/// The stored form of what an inventory holds besides its paths (key
/// `TARGET \0`).
#[derive(Serialize, Deserialize)]
enum InventoryMeta {
    V1 { snapshot: Option<[u8; 32]> },
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

/// Which command a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunKind {
    /// `plumb apply`.
    Apply,
    /// `plumb drift`.
    Drift,
    /// `plumb rollback`.
    Rollback,
    /// `plumb unpin`.
    Unpin,
}

impl RunKind {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            RunKind::Apply => "apply",
            RunKind::Drift => "drift",
            RunKind::Rollback => "rollback",
            RunKind::Unpin => "unpin",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; nothing left to do (apply), or in sync (drift).
    Ok,
    /// Drift found.
    Drifted,
    /// Refused before changing anything (conflicts).
    Refused,
    /// Failed; the error says why.
    Failed,
}

impl Outcome {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Drifted => "drifted",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Counts of what a run did or found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Paths created.
    pub create: u64,
    /// Paths updated.
    pub update: u64,
    /// Paths deleted.
    pub delete: u64,
    /// Paths already right.
    pub keep: u64,
    /// Conflicts.
    pub conflict: u64,
    /// Drifted paths (drift runs).
    pub drifted: u64,
    /// Changes that failed.
    pub failed: u64,
}

/// One entry of a target's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its position in the target's log: 1 for the first run.
    pub seq: u64,
    /// Which command.
    pub kind: RunKind,
    /// When it started: milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// How long it took.
    pub duration_ms: u64,
    /// Who ran it (the login name, else the uid).
    pub user: String,
    /// On which host.
    pub host: String,
    /// The snapshot it applied or compared against.
    pub snapshot: Option<[u8; 32]>,
    /// What it did or found.
    pub counts: Counts,
    /// How it ended.
    pub outcome: Outcome,
    /// The error, when it failed or was refused.
    pub error: Option<String>,
}

impl RunRecord {
    /// The snapshot, typed.
    pub fn snapshot_id(&self) -> Option<SnapshotId> {
        self.snapshot
            .map(|bytes| SnapshotId::new(ObjectId::from_bytes(bytes)))
    }
}

#[derive(Serialize, Deserialize)]
enum RunEnvelope {
    V1(RunRecord),
}

fn corrupt(table: Table, key: &[u8], reason: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptIndex {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_string(),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Invalid(e.to_string()))
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

impl Store {
    /// Records a new target; fails if the name is taken.
    pub fn add_target(&self, def: &TargetDef) -> Result<(), StoreError> {
        check_source_name(&def.name)
            .map_err(|_| StoreError::Invalid(format!(
                "bad target name {:?}: use letters, digits, '.', '_' and '-', not starting with '.' or '-'",
                def.name
            )))?;
        let mut batch = Batch::new();
        batch.expect(Table::Targets, def.name.as_bytes(), None);
        batch.put(
            Table::Targets,
            def.name.as_bytes(),
            encode(&TargetRecord::V1(def.clone()))?,
        );
        match self.engine.commit(batch) {
            Err(EngineError::Conflict { .. }) => Err(StoreError::Invalid(format!(
                "a target named {:?} already exists",
                def.name
            ))),
            other => Ok(other?),
        }
    }

    /// The target named `name`.
    pub fn target(&self, name: &str) -> Result<TargetDef, StoreError> {
        let raw = self
            .engine
            .get(Table::Targets, name.as_bytes())?
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "no target named {name:?} (see `plumb target list`)"
                ))
            })?;
        decode_target(name.as_bytes(), &raw)
    }

    /// Every target, by name.
    pub fn targets(&self) -> Result<Vec<TargetDef>, StoreError> {
        let mut out = Vec::new();
        let mut failure = None;
        self.engine
            .scan(Table::Targets, KeyRange::all(), false, &mut |k, v| {
                match decode_target(k, v) {
                    Ok(def) => out.push(def),
                    Err(e) => {
                        failure = Some(e);
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
        failure.map_or(Ok(out), Err)
    }

    /// Removes a target, its inventory and its runs. What it applied stays
    /// where it is.
    pub fn remove_target(&self, name: &str) -> Result<(), StoreError> {
        self.target(name)?;
        let mut batch = Batch::new();
        batch.delete(Table::Targets, name.as_bytes());
        self.for_prefix(Table::Inventory, &keyed(name, b""), false, |k, _| {
            batch.delete(Table::Inventory, k);
            Ok(true)
        })?;
        self.for_prefix(Table::Runs, &keyed(name, b""), false, |k, _| {
            batch.delete(Table::Runs, k);
            Ok(true)
        })?;
        self.engine.commit(batch)?;
        Ok(())
    }

    /// The target's inventory (empty before its first apply).
    pub fn inventory(&self, name: &str) -> Result<Inventory, StoreError> {
        let prefix = keyed(name, b"");
        let mut snapshot = None;
        let mut entries = Vec::new();
        self.for_prefix(Table::Inventory, &prefix, false, |k, v| {
            let rest = &k[prefix.len()..];
            match rest.split_first() {
                None => match postcard::from_bytes::<InventoryMeta>(v) {
                    Ok(InventoryMeta::V1 { snapshot: s }) => snapshot = s,
                    Err(e) => return Err(corrupt(Table::Inventory, k, e)),
                },
                Some((b'/', dir)) => match postcard::from_bytes::<DirRecord>(v) {
                    Ok(DirRecord::V1(list)) => {
                        for (file, held) in list {
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
                    Err(e) => return Err(corrupt(Table::Inventory, k, e)),
                },
                Some(_) => return Err(corrupt(Table::Inventory, k, "unknown key")),
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

    /// The snapshot last applied completely to a target, read without
    /// loading its inventory.
    pub fn applied_snapshot(&self, name: &str) -> Result<Option<SnapshotId>, StoreError> {
        let key = keyed(name, b"");
        match self.engine.get(Table::Inventory, &key)? {
            None => Ok(None),
            Some(v) => match postcard::from_bytes::<InventoryMeta>(&v) {
                Ok(InventoryMeta::V1 { snapshot }) => {
                    Ok(snapshot.map(|b| SnapshotId::new(ObjectId::from_bytes(b))))
                }
                Err(e) => Err(corrupt(Table::Inventory, &key, e)),
            },
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
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        if let Some(snapshot) = delta.snapshot {
            batch.put(
                Table::Inventory,
                keyed(name, b""),
                encode(&InventoryMeta::V1 { snapshot })?,
            );
        }
        let dirs: std::collections::BTreeSet<&[u8]> =
            delta.paths.keys().map(|p| parent_of(p)).collect();
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
                batch.delete(Table::Inventory, dir_key(name, dir));
            } else {
                batch.put(
                    Table::Inventory,
                    dir_key(name, dir),
                    encode(&DirRecord::V1(list))?,
                );
            }
        }
        Ok(())
    }

    /// Durably writes what `record` holds in one atomic step; returns the
    /// run's sequence number, if it holds a run.
    pub fn record(&self, record: Record<'_>) -> Result<Option<u64>, StoreError> {
        let name = record.target;
        let mut batch = Batch::new();
        if let Some((delta, after)) = record.inventory {
            Self::stage_inventory(name, delta, after, &mut batch)?;
        }
        if let Some(def) = record.def {
            batch.put(
                Table::Targets,
                name.as_bytes(),
                encode(&TargetRecord::V1(def.clone()))?,
            );
        }
        let mut seq = None;
        if let Some(mut run) = record.run {
            let next = self.last_run_seq(name)? + 1;
            run.seq = next;
            let key = keyed(name, &next.to_be_bytes());
            batch.expect(Table::Runs, key.clone(), None);
            batch.put(Table::Runs, key, encode(&RunEnvelope::V1(run))?);
            seq = Some(next);
        }
        self.engine.commit(batch)?;
        Ok(seq)
    }

    fn last_run_seq(&self, name: &str) -> Result<u64, StoreError> {
        let mut last = 0;
        self.for_prefix(Table::Runs, &keyed(name, b""), true, |k, v| {
            last = decode_run(k, v)?.seq;
            Ok(false)
        })?;
        Ok(last)
    }

    /// Visits a target's runs newest first until `visit` returns `false`.
    pub fn runs(
        &self,
        name: &str,
        mut visit: impl FnMut(RunRecord) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.for_prefix(Table::Runs, &keyed(name, b""), true, |k, v| {
            visit(decode_run(k, v)?)
        })
    }
}

fn decode_target(key: &[u8], raw: &[u8]) -> Result<TargetDef, StoreError> {
    match postcard::from_bytes::<TargetRecord>(raw) {
        Ok(TargetRecord::V1(def)) => Ok(def),
        Err(e) => Err(corrupt(Table::Targets, key, e)),
    }
}

fn decode_run(key: &[u8], raw: &[u8]) -> Result<RunRecord, StoreError> {
    match postcard::from_bytes::<RunEnvelope>(raw) {
        Ok(RunEnvelope::V1(run)) => Ok(run),
        Err(e) => Err(corrupt(Table::Runs, key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> TargetDef {
        TargetDef {
            name: name.into(),
            location: "dir:/srv/app".parse().expect("a valid location"),
            source: "app".into(),
            path: None,
            sel: None,
            prune: true,
            pin: None,
        }
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
        }
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
