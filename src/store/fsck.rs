//! Verifying a store: every object, every index row, and what each source's
//! snapshots reach.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use plumb_core::{BlobId, EntryValue, Kind, ObjectId, SnapshotId, TreeId};

use super::packs::Location;
use super::{Store, StoreError, Table};

/// What kind of problem `fsck` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// An object is stored, but its bytes are damaged (hash, frame, pack).
    Corrupt,
    /// Something refers to an object that is not stored.
    Missing,
    /// An index row does not decode, or disagrees with another.
    Index,
    /// The engine's own check of its database failed.
    Database,
}

impl ProblemKind {
    /// Its name in output: `corrupt`, `missing`, `index`, `database`.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::Missing => "missing",
            ProblemKind::Index => "index",
            ProblemKind::Database => "database",
        }
    }
}

/// One problem, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The object concerned, for `corrupt` and `missing`.
    pub object: Option<ObjectId>,
    /// The line that says it.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Problems as they are found: one per damaged or missing object, however
/// many things refer to it.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Problem>,
    objects: HashSet<ObjectId>,
}

impl Problems {
    /// An object is stored but damaged.
    pub fn corrupt(&mut self, id: ObjectId, detail: impl Into<String>) {
        self.object(ProblemKind::Corrupt, id, detail.into());
    }

    /// Something refers to an object not stored.
    pub fn missing(&mut self, id: ObjectId, detail: impl Into<String>) {
        self.object(ProblemKind::Missing, id, detail.into());
    }

    /// An index row is wrong.
    pub fn index(&mut self, detail: impl Into<String>) {
        self.list.push(Problem {
            kind: ProblemKind::Index,
            object: None,
            detail: detail.into(),
        });
    }

    /// The engine's check of its database failed.
    pub fn database(&mut self, detail: impl Into<String>) {
        self.list.push(Problem {
            kind: ProblemKind::Database,
            object: None,
            detail: detail.into(),
        });
    }

    fn object(&mut self, kind: ProblemKind, id: ObjectId, detail: String) {
        if self.objects.insert(id) {
            self.list.push(Problem {
                kind,
                object: Some(id),
                detail,
            });
        }
    }

    /// How many so far.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// A snapshot that reaches a damaged or missing object (itself, its tree,
/// or anything below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// The source whose log holds it.
    pub source: String,
    /// Its position there.
    pub seq: u64,
    /// The snapshot.
    pub snapshot: SnapshotId,
}

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
    /// Index rows decoded and cross-checked (objects aside).
    pub rows: u64,
    /// Every problem, one line each.
    pub problems: Vec<Problem>,
    /// Every snapshot of a log that reaches a problem, once, by source and
    /// position.
    pub affected: Vec<Affected>,
}

/// The objects `fsck` read, by what it found: what references kept outside
/// the store's index are checked against.
#[derive(Debug, Default)]
pub struct Verified {
    kinds: HashMap<ObjectId, Kind>,
    damaged: HashSet<ObjectId>,
}

impl Verified {
    /// Whether `id` is stored, verified, and an object of kind `kind`.
    pub fn is(&self, id: &ObjectId, kind: Kind) -> bool {
        self.kinds.get(id) == Some(&kind)
    }

    /// Whether `id` is stored but damaged (its own problem is listed).
    pub fn is_damaged(&self, id: &ObjectId) -> bool {
        self.damaged.contains(id)
    }

    /// Adds to `problems` that `what` refers to `id`, of kind `kind`,
    /// unless it is stored as that; returns whether it is.
    pub fn require(
        &self,
        id: ObjectId,
        kind: Kind,
        problems: &mut Problems,
        what: impl FnOnce() -> String,
    ) -> bool {
        if self.is(&id, kind) {
            return true;
        }
        if !self.is_damaged(&id) {
            problems.missing(id, format!("{}: {kind} {id} is missing", what()));
        }
        false
    }
}

/// A check of index rows and references kept outside the store's own
/// index (the reconciler's targets). Given what `fsck` verified, it adds
/// one problem per problem found and returns the count of rows it
/// checked; it fails only when the store itself does.
pub type ReferenceCheck<'a> = dyn Fn(&Verified, &mut Problems) -> Result<u64, StoreError> + 'a;

/// Checks every object (hash and canonical form), every row of the index
/// (`super::rows`), each source's log (from 1 to its head, every snapshot
/// with its parents and whole tree), then runs `references` against the
/// objects verified. Problems are collected, not fatal; only a failing
/// engine stops the check.
pub fn fsck(
    store: &Store,
    references: &ReferenceCheck<'_>,
    progress: &dyn Fn(u64),
) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport::default();
    let mut problems = Problems::default();
    let verified = verify_objects(store, &mut report, &mut problems, progress)?;

    let mut trees: HashMap<TreeId, bool> = HashMap::new();
    let mut logs: BTreeMap<String, HashMap<u64, SnapshotId>> = BTreeMap::new();
    for def in store.sources()? {
        report.sources += 1;
        let name = def.name;
        let mut log = HashMap::new();
        let mut expected_seq = None;
        let mut newest = None;
        store.log(&name, |e| {
            if newest.is_none() {
                newest = Some(e);
            }
            if let Some(want) = expected_seq
                && e.seq != want
            {
                problems.index(format!(
                    "source {name:?}: log skips from {want} to {}",
                    e.seq
                ));
            }
            expected_seq = e.seq.checked_sub(1);
            report.snapshots += 1;
            log.insert(e.seq, e.id);
            if !snapshot_intact(store, &verified, &mut trees, e.id, &mut problems) {
                report.affected.push(Affected {
                    source: name.clone(),
                    seq: e.seq,
                    snapshot: e.id,
                });
            }
            Ok(true)
        })?;
        if expected_seq.is_some_and(|s| s != 0) {
            problems.index(format!("source {name:?}: log does not start at 1"));
        }
        if store.head(&name)? != newest {
            problems.index(format!(
                "source {name:?}: head does not match the newest log entry"
            ));
        }
        logs.insert(name, log);
    }
    report.affected.reverse();
    report.rows = super::rows::check(store, &logs, &verified, &mut problems)?;
    report.rows += references(&verified, &mut problems)?;
    report.problems = problems.list;
    Ok(report)
}

/// Reads and verifies every object.
fn verify_objects(
    store: &Store,
    report: &mut FsckReport,
    problems: &mut Problems,
    progress: &dyn Fn(u64),
) -> Result<Verified, StoreError> {
    let mut verified = Verified::default();
    let mut keys = Vec::new();
    store.for_prefix(Table::Objects, b"", false, |k, v| {
        keys.push(k.to_vec());
        report.packed_bytes += Location::decode(v).map_or(v.len() as u64, |l| u64::from(l.len));
        Ok(true)
    })?;
    for key in keys {
        report.objects += 1;
        if report.objects.is_multiple_of(1024) {
            progress(report.objects);
        }
        let Ok(bytes) = <[u8; 32]>::try_from(key.as_slice()) else {
            problems.index(format!(
                "objects table: key of {} bytes is not an id",
                key.len()
            ));
            continue;
        };
        let id = ObjectId::from_bytes(bytes);
        // A large blob is read through in bounded memory, not whole.
        match store.verify_chunked(&BlobId::new(id)).and_then(|chunked| {
            if chunked {
                Ok(Kind::Blob)
            } else {
                store.object(&id).map(|o| o.kind())
            }
        }) {
            Ok(kind) => {
                verified.kinds.insert(id, kind);
            }
            Err(e @ (StoreError::Corrupt { .. } | StoreError::Decode { .. })) => {
                verified.damaged.insert(id);
                problems.corrupt(id, e.to_string());
            }
            Err(StoreError::Missing { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(verified)
}

/// Whether a logged snapshot, its parents and its whole tree are stored
/// and intact; each problem is added once.
fn snapshot_intact(
    store: &Store,
    verified: &Verified,
    trees: &mut HashMap<TreeId, bool>,
    id: SnapshotId,
    problems: &mut Problems,
) -> bool {
    if !verified.require(id.object_id(), Kind::Snapshot, problems, || {
        "a source's log".into()
    }) {
        return false;
    }
    let s = match store.snapshot(&id) {
        Ok(s) => s,
        Err(e) => {
            problems.corrupt(id.object_id(), e.to_string());
            return false;
        }
    };
    for p in &s.parents {
        // A missing parent is a hole in the history, not damage to this
        // snapshot's content.
        verified.require(p.object_id(), Kind::Snapshot, problems, || {
            format!("snapshot {id}: parent")
        });
    }
    tree_intact(
        store,
        verified,
        trees,
        s.tree,
        &format!("snapshot {id}"),
        problems,
    )
}

fn tree_intact(
    store: &Store,
    verified: &Verified,
    trees: &mut HashMap<TreeId, bool>,
    id: TreeId,
    context: &str,
    problems: &mut Problems,
) -> bool {
    if let Some(ok) = trees.get(&id) {
        return *ok;
    }
    let ok = verified.require(id.object_id(), Kind::Tree, problems, || context.into())
        && match store.tree(&id) {
            Ok(tree) => {
                let mut ok = true;
                for e in tree.entries() {
                    ok &= match &e.value {
                        EntryValue::Tree(sub) => {
                            tree_intact(store, verified, trees, *sub, context, problems)
                        }
                        EntryValue::Submodule(_) => true,
                        v => v.blob().is_none_or(|blob| {
                            verified.require(blob.object_id(), Kind::Blob, problems, || {
                                format!("{context}, path {}", e.name)
                            })
                        }),
                    };
                }
                ok
            }
            Err(e) => {
                problems.corrupt(id.object_id(), e.to_string());
                false
            }
        };
    trees.insert(id, ok);
    ok
}
