//! An in-memory sink and helpers for the directory source's tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use plumb_core::source::{IngestSink, SinkError};
use plumb_core::{
    Blob, BlobId, EntryValue, ObjectId, Snapshot, SnapshotId, Tree, TreeId, decode_blob,
    decode_snapshot, decode_tree,
};

type Hook = Box<dyn Fn() + Send + Sync>;

/// A sink keeping everything in memory. Cache writes are buffered and
/// become durable on commit, as the contract says; reads see both.
#[derive(Default)]
pub struct MemSink {
    objects: Mutex<HashMap<ObjectId, Vec<u8>>>,
    cache: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    pending: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    log: Mutex<Vec<(SnapshotId, Snapshot)>>,
    pub blob_puts: AtomicU64,
    pub progress_calls: AtomicU64,
    /// Runs once, at the first progress report (before any file is read).
    on_first_progress: Option<Hook>,
    fired: AtomicBool,
}

impl MemSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_hook(hook: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            on_first_progress: Some(Box::new(hook)),
            ..Self::default()
        }
    }

    pub fn log(&self) -> Vec<(SnapshotId, Snapshot)> {
        self.log.lock().unwrap().clone()
    }

    /// Appends a snapshot to the log without going through a source.
    pub fn seed(&self, snapshot: Snapshot) -> SnapshotId {
        self.put_tree(&Tree::default()).unwrap();
        self.commit(&snapshot).unwrap()
    }

    pub fn durable_cache(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.lock().unwrap().get(key).cloned()
    }

    pub fn blob(&self, id: BlobId) -> Vec<u8> {
        let bytes = self.objects.lock().unwrap()[&id.object_id()].clone();
        decode_blob(&bytes).unwrap().into_data()
    }

    pub fn tree(&self, id: TreeId) -> Tree {
        let bytes = self.objects.lock().unwrap()[&id.object_id()].clone();
        decode_tree(&bytes).unwrap()
    }

    pub fn all_blob_contents(&self) -> Vec<Vec<u8>> {
        self.objects
            .lock()
            .unwrap()
            .values()
            .filter_map(|b| decode_blob(b).ok())
            .map(Blob::into_data)
            .collect()
    }

    /// Every entry under `tree`, by slash-joined path: kind and content
    /// (empty for trees).
    pub fn flatten(&self, tree: TreeId) -> BTreeMap<Vec<u8>, (&'static str, Vec<u8>)> {
        let mut out = BTreeMap::new();
        self.flatten_into(tree, Vec::new(), &mut out);
        out
    }

    fn flatten_into(
        &self,
        tree: TreeId,
        prefix: Vec<u8>,
        out: &mut BTreeMap<Vec<u8>, (&'static str, Vec<u8>)>,
    ) {
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
                v => {
                    let blob = self.blob(v.blob().unwrap());
                    out.insert(path, (v.kind_name(), blob));
                }
            }
        }
    }
}

impl IngestSink for MemSink {
    fn put_blob(&self, data: &[u8]) -> Result<BlobId, SinkError> {
        self.blob_puts.fetch_add(1, Ordering::Relaxed);
        let blob = Blob::new(data.to_vec());
        let id = blob.id();
        assert_eq!(id, Blob::id_of(data));
        self.objects
            .lock()
            .unwrap()
            .insert(id.object_id(), blob.encode());
        Ok(id)
    }

    fn put_tree(&self, tree: &Tree) -> Result<TreeId, SinkError> {
        let id = tree.id();
        self.objects
            .lock()
            .unwrap()
            .insert(id.object_id(), tree.encode());
        Ok(id)
    }

    fn cache_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SinkError> {
        if let Some(v) = self.pending.lock().unwrap().get(key) {
            return Ok(Some(v.clone()));
        }
        Ok(self.cache.lock().unwrap().get(key).cloned())
    }

    fn cache_put(&self, key: &[u8], value: &[u8]) -> Result<(), SinkError> {
        self.pending
            .lock()
            .unwrap()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn snapshot_for(&self, revision: &str) -> Result<Option<SnapshotId>, SinkError> {
        Ok(self
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.revision == revision)
            .map(|(id, _)| *id))
    }

    fn latest(&self) -> Result<Option<(SnapshotId, Snapshot)>, SinkError> {
        Ok(self.log.lock().unwrap().last().cloned())
    }

    fn commit(&self, snapshot: &Snapshot) -> Result<SnapshotId, SinkError> {
        let bytes = snapshot.encode().map_err(|e| SinkError(Box::new(e)))?;
        assert_eq!(&decode_snapshot(&bytes).unwrap(), snapshot);
        let objects = self.objects.lock().unwrap();
        assert!(objects.contains_key(&snapshot.tree.object_id()));
        drop(objects);
        let id = snapshot.id().map_err(|e| SinkError(Box::new(e)))?;
        self.objects.lock().unwrap().insert(id.object_id(), bytes);
        self.log.lock().unwrap().push((id, snapshot.clone()));
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        self.cache.lock().unwrap().extend(pending);
        Ok(id)
    }

    fn progress(&self, what: &str, done: u64, total: u64) {
        assert_eq!(what, "files");
        assert!(done <= total);
        self.progress_calls.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = &self.on_first_progress
            && !self.fired.swap(true, Ordering::SeqCst)
        {
            hook();
        }
    }
}

/// Writes `content` to `root/rel`, creating parent directories.
pub fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Sets the permission bits of `root/rel`.
pub fn chmod(root: &Path, rel: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Waits out the stat cache's racy window, so files written so far can be
/// cached.
pub fn wait_out_racy_window() {
    std::thread::sleep(std::time::Duration::from_millis(2500));
}

/// Paths as text, for readable assertions.
pub fn paths(flat: &BTreeMap<Vec<u8>, (&'static str, Vec<u8>)>) -> Vec<String> {
    flat.keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}
