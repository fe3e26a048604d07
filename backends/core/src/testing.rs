//! What tests of sources and targets share (feature `testing`).
//!
//! [`MemorySink`] is an in-memory [`IngestSink`] for sources' tests. It
//! keeps the canonical bytes of everything put, counts every call, and
//! **panics** when a source breaks the sink contract: a snapshot committed
//! before its tree or its parents, a snapshot that does not round-trip, a
//! progress count past its total. Cache writes are buffered and become
//! durable at the next commit, as the contract allows; reads see both.
//!
//! [`MemoryContent`] is the store's content as a target sees it, and
//! [`target`] drives a [`Target`](crate::target::Target) in a line.
//!
//! [`target_suite`] and [`engine_suite`] are the conformance suites every
//! [`Target`](crate::target::Target) and every storage
//! [`Engine`](crate::engine::Engine) pass.

mod content;
pub mod engine_suite;
pub mod target;
pub mod target_suite;

pub use content::MemoryContent;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::source::{IngestSink, NamedRef, SinkError};
use crate::{
    Blob, BlobId, EntryValue, ObjectId, Snapshot, SnapshotId, Tree, TreeId, decode_blob,
    decode_snapshot, decode_tree,
};

/// How many times each sink method was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// [`IngestSink::put_blob`].
    pub put_blob: u64,
    /// [`IngestSink::put_tree`].
    pub put_tree: u64,
    /// [`IngestSink::cache_get`].
    pub cache_get: u64,
    /// [`IngestSink::cache_put`].
    pub cache_put: u64,
    /// [`IngestSink::snapshot_for`].
    pub snapshot_for: u64,
    /// [`IngestSink::commit`], successful ones.
    pub commit: u64,
    /// [`IngestSink::set_refs`].
    pub set_refs: u64,
    /// [`IngestSink::progress`].
    pub progress: u64,
}

/// Paths below a tree (slash-joined) with their kind name and content.
pub type Flat = BTreeMap<Vec<u8>, (&'static str, Vec<u8>)>;

type Hook = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct State {
    objects: HashMap<ObjectId, Vec<u8>>,
    cache: HashMap<Vec<u8>, Vec<u8>>,
    pending: HashMap<Vec<u8>, Vec<u8>>,
    log: Vec<(SnapshotId, Snapshot)>,
    refs: Vec<NamedRef>,
    counts: Counts,
    fail_at_commit: Option<u64>,
}

/// An [`IngestSink`] keeping everything in memory; see the module docs.
#[derive(Default)]
pub struct MemorySink {
    state: Mutex<State>,
    /// Runs once, at the first progress report.
    on_first_progress: Option<Hook>,
    fired: AtomicBool,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sink that runs `hook` at the first progress report (for
    /// changing a source while it is being read).
    pub fn with_hook(hook: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            on_first_progress: Some(Box::new(hook)),
            ..Self::default()
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a failed test already.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the commit that would be the `n`th counted one fail with "no
    /// space left on device" (`None`: none fails).
    pub fn fail_at_commit(&self, n: Option<u64>) {
        self.state().fail_at_commit = n;
    }

    /// The calls counted so far.
    pub fn counts(&self) -> Counts {
        self.state().counts
    }

    /// Starts counting again from zero.
    pub fn reset_counts(&self) {
        self.state().counts = Counts::default();
    }

    /// The snapshots committed, oldest first.
    pub fn log(&self) -> Vec<(SnapshotId, Snapshot)> {
        self.state().log.clone()
    }

    /// The refs last set.
    pub fn refs(&self) -> Vec<NamedRef> {
        self.state().refs.clone()
    }

    /// Appends a snapshot (with an empty tree) without going through a
    /// source.
    pub fn seed(&self, snapshot: Snapshot) -> SnapshotId {
        self.put_tree(&Tree::default())
            .and_then(|_| self.commit(&snapshot))
            .expect("a memory sink accepts a valid snapshot")
    }

    /// A cache value made durable by a commit.
    pub fn cache_value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state().cache.get(key).cloned()
    }

    /// How many cache values are durable.
    pub fn cache_len(&self) -> usize {
        self.state().cache.len()
    }

    /// Whether an object with this id was put.
    pub fn has_object(&self, id: ObjectId) -> bool {
        self.state().objects.contains_key(&id)
    }

    fn object(&self, id: ObjectId) -> Vec<u8> {
        self.state()
            .objects
            .get(&id)
            .cloned()
            .unwrap_or_else(|| panic!("object {id} was never put"))
    }

    /// A blob's content.
    pub fn blob(&self, id: BlobId) -> Vec<u8> {
        decode_blob(&self.object(id.object_id()))
            .expect("blobs are stored canonical")
            .into_data()
    }

    /// A tree.
    pub fn tree(&self, id: TreeId) -> Tree {
        decode_tree(&self.object(id.object_id())).expect("trees are stored canonical")
    }

    /// The content of every blob put.
    pub fn all_blob_contents(&self) -> Vec<Vec<u8>> {
        self.state()
            .objects
            .values()
            .filter_map(|b| decode_blob(b).ok())
            .map(Blob::into_data)
            .collect()
    }

    /// Every entry below `tree`: files, links and submodules with their
    /// content, and directories (kind `tree`, empty content).
    pub fn flatten(&self, tree: TreeId) -> Flat {
        let mut out = BTreeMap::new();
        self.flatten_into(tree, Vec::new(), &mut out);
        out
    }

    /// Like [`flatten`](Self::flatten), without the directories.
    pub fn files(&self, tree: TreeId) -> Flat {
        let mut all = self.flatten(tree);
        all.retain(|_, (kind, _)| *kind != "tree");
        all
    }

    fn flatten_into(&self, tree: TreeId, prefix: Vec<u8>, out: &mut Flat) {
        for e in self.tree(tree).entries() {
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(e.name.as_bytes());
            match &e.value {
                EntryValue::Tree(sub) => {
                    out.insert(path.clone(), ("tree", Vec::new()));
                    self.flatten_into(*sub, path, out);
                }
                EntryValue::Submodule(rev) => {
                    out.insert(path, (e.value.kind_name(), rev.as_bytes().to_vec()));
                }
                v => {
                    let blob = v.blob().map(|b| self.blob(b)).unwrap_or_default();
                    out.insert(path, (v.kind_name(), blob));
                }
            }
        }
    }
}

impl IngestSink for MemorySink {
    fn put_blob(&self, data: &[u8]) -> Result<BlobId, SinkError> {
        let blob = Blob::new(data.to_vec());
        let id = blob.id();
        assert_eq!(id, Blob::id_of(data), "Blob::id_of agrees with Blob::id");
        let mut s = self.state();
        s.counts.put_blob += 1;
        s.objects.insert(id.object_id(), blob.encode());
        Ok(id)
    }

    fn put_tree(&self, tree: &Tree) -> Result<TreeId, SinkError> {
        let id = tree.id();
        let mut s = self.state();
        s.counts.put_tree += 1;
        s.objects.insert(id.object_id(), tree.encode());
        Ok(id)
    }

    fn cache_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SinkError> {
        let mut s = self.state();
        s.counts.cache_get += 1;
        Ok(s.pending.get(key).or_else(|| s.cache.get(key)).cloned())
    }

    fn cache_put(&self, key: &[u8], value: &[u8]) -> Result<(), SinkError> {
        let mut s = self.state();
        s.counts.cache_put += 1;
        s.pending.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn snapshot_for(&self, revision: &str) -> Result<Option<SnapshotId>, SinkError> {
        let mut s = self.state();
        s.counts.snapshot_for += 1;
        Ok(s.log
            .iter()
            .find(|(_, snap)| snap.revision == revision)
            .map(|(id, _)| *id))
    }

    fn latest(&self) -> Result<Option<(SnapshotId, Snapshot)>, SinkError> {
        Ok(self.state().log.last().cloned())
    }

    fn commit(&self, snapshot: &Snapshot) -> Result<SnapshotId, SinkError> {
        let bytes = snapshot.encode().map_err(|e| SinkError(Box::new(e)))?;
        assert_eq!(
            &decode_snapshot(&bytes).expect("an encoded snapshot decodes"),
            snapshot,
            "a snapshot round-trips"
        );
        let id = snapshot.id().map_err(|e| SinkError(Box::new(e)))?;
        let mut s = self.state();
        if s.fail_at_commit == Some(s.counts.commit + 1) {
            return Err(SinkError("no space left on device".into()));
        }
        assert!(
            s.objects.contains_key(&snapshot.tree.object_id()),
            "a snapshot is committed after its tree"
        );
        for p in &snapshot.parents {
            assert!(
                s.log.iter().any(|(q, _)| q == p),
                "a snapshot is committed after its parents"
            );
        }
        s.counts.commit += 1;
        s.objects.insert(id.object_id(), bytes);
        s.log.push((id, snapshot.clone()));
        let pending = std::mem::take(&mut s.pending);
        s.cache.extend(pending);
        Ok(id)
    }

    fn set_refs(&self, refs: &[NamedRef]) -> Result<(), SinkError> {
        let mut s = self.state();
        s.counts.set_refs += 1;
        for r in refs {
            if let Some(a) = r.annotation {
                assert!(
                    s.objects.contains_key(&a.object_id()),
                    "ref {} names annotation {a}, which was never stored",
                    r.name
                );
            }
        }
        s.refs = refs.to_vec();
        Ok(())
    }

    fn progress(&self, _what: &str, done: u64, total: u64) {
        assert!(total == 0 || done <= total, "progress {done} of {total}");
        self.state().counts.progress += 1;
        if let Some(hook) = &self.on_first_progress
            && !self.fired.swap(true, Ordering::SeqCst)
        {
            hook();
        }
    }
}
