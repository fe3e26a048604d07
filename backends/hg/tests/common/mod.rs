//! An in-memory sink, a driver for the real `hg`, and the oracle that
//! compares what plumb recorded with what `hg` says.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use plumb_core::source::{IngestSink, SinkError};
use plumb_core::{
    Blob, BlobId, EntryValue, ObjectId, Snapshot, SnapshotId, Tree, TreeId, decode_blob,
    decode_snapshot, decode_tree,
};

/// A sink keeping everything in memory. Cache writes are buffered and
/// become durable on commit, as the contract says; reads see both.
#[derive(Default)]
pub struct MemSink {
    objects: Mutex<HashMap<ObjectId, Vec<u8>>>,
    cache: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    pending: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    log: Mutex<Vec<(SnapshotId, Snapshot)>>,
}

impl MemSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn log(&self) -> Vec<(SnapshotId, Snapshot)> {
        self.log.lock().unwrap().clone()
    }

    pub fn cache_len(&self) -> usize {
        self.cache.lock().unwrap().len()
    }

    pub fn blob(&self, id: BlobId) -> Vec<u8> {
        let bytes = self.objects.lock().unwrap()[&id.object_id()].clone();
        decode_blob(&bytes).unwrap().into_data()
    }

    pub fn tree(&self, id: TreeId) -> Tree {
        let bytes = self.objects.lock().unwrap()[&id.object_id()].clone();
        decode_tree(&bytes).unwrap()
    }

    /// Every file under `tree`, by slash-joined path: kind and content.
    pub fn files(&self, tree: TreeId) -> BTreeMap<Vec<u8>, (&'static str, Vec<u8>)> {
        let mut out = BTreeMap::new();
        self.files_into(tree, Vec::new(), &mut out);
        out
    }

    fn files_into(
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
                EntryValue::Tree(sub) => self.files_into(*sub, path, out),
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
        let blob = Blob::new(data.to_vec());
        let id = blob.id();
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
        {
            let objects = self.objects.lock().unwrap();
            assert!(objects.contains_key(&snapshot.tree.object_id()));
        }
        {
            let log = self.log.lock().unwrap();
            for p in &snapshot.parents {
                assert!(
                    log.iter().any(|(id, _)| id == p),
                    "parent committed after child"
                );
            }
        }
        let id = snapshot.id().map_err(|e| SinkError(Box::new(e)))?;
        self.objects.lock().unwrap().insert(id.object_id(), bytes);
        self.log.lock().unwrap().push((id, snapshot.clone()));
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        self.cache.lock().unwrap().extend(pending);
        Ok(id)
    }

    fn progress(&self, what: &str, done: u64, total: u64) {
        assert_eq!(what, "changesets");
        assert!(done <= total);
    }
}

/// The `hg` program, configured for reproducible tests: plain output, no
/// user or system configuration, a fixed user.
pub fn hg_command(dir: &Path) -> Command {
    let mut c = Command::new("hg");
    c.current_dir(dir)
        .env("HGPLAIN", "1")
        .env("HGRCPATH", "/dev/null")
        .env("HGUSER", "Test User <test@example.com>")
        .env("HGENCODING", "utf-8")
        .env("TZ", "UTC");
    c
}

/// Runs `hg ARGS` in `dir`; panics with its stderr on failure, and with a
/// clear message if `hg` is not installed.
pub fn hg(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = match hg_command(dir).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("these tests need Mercurial: install it (`apt-get install mercurial`)")
        }
        Err(e) => panic!("cannot run hg: {e}"),
    };
    assert!(
        out.status.success(),
        "hg {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn hg_text(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(hg(dir, args)).unwrap()
}

/// Creates a repository at `dir` with extra `hg init` arguments.
pub fn init(dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut a = vec!["init"];
    a.extend_from_slice(args);
    hg(dir, &a);
}

/// Writes `content` to `root/rel`, creating parent directories.
pub fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Commits everything (adding and removing) with `message` at a fixed
/// date (`seconds offset`).
pub fn commit(root: &Path, message: &str, date: &str) {
    hg(root, &["commit", "-q", "-A", "-m", message, "-d", date]);
}

/// The node of revision `rev`.
pub fn node(root: &Path, rev: &str) -> String {
    hg_text(root, &["log", "-r", rev, "-T", "{node}"])
}

/// Every visible changeset's node, in revision order.
pub fn all_nodes(root: &Path) -> Vec<String> {
    hg_text(root, &["log", "-r", "all()", "-T", "{node}\n"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What `hg` says changeset `node` holds: path → (kind, content).
pub fn hg_files(root: &Path, node: &str) -> BTreeMap<Vec<u8>, (&'static str, Vec<u8>)> {
    let manifest = hg(root, &["manifest", "-v", "-r", node]);
    let mut out = BTreeMap::new();
    if manifest.is_empty() {
        return out;
    }
    let dir = tempfile::tempdir().unwrap();
    let pattern = format!("{}/%p", dir.path().display());
    hg(root, &["cat", "-r", node, "-o", &pattern, "glob:**"]);
    for line in manifest.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        // "644   path", "755 * path", "644 @ path"
        let kind = match line[4] {
            b'*' => "exec",
            b'@' => "link",
            _ => "file",
        };
        let path = line[6..].to_vec();
        let file: PathBuf = dir
            .path()
            .join(std::str::from_utf8(&path).expect("test paths are UTF-8"));
        let content = std::fs::read(&file).unwrap();
        out.insert(path, (kind, content));
    }
    out
}

/// Checks every snapshot in `sink` against `hg`: same files, kinds and
/// bytes, below `scope` (`""` for all). Returns how many were checked.
pub fn check_against_hg(root: &Path, sink: &MemSink, scope: &str) -> usize {
    let log = sink.log();
    for (_, snap) in &log {
        let node = snap.revision.strip_prefix("hg:").unwrap();
        let mut expected = hg_files(root, node);
        if !scope.is_empty() {
            let prefix = format!("{scope}/");
            expected = expected
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix.as_bytes())?.to_vec(), v)))
                .collect();
        }
        let got = sink.files(snap.tree);
        let names = |m: &BTreeMap<Vec<u8>, (&'static str, Vec<u8>)>| {
            m.keys()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&got), names(&expected), "file list of {node}");
        for (path, exp) in &expected {
            assert_eq!(
                &got[path],
                exp,
                "{} in {node}",
                String::from_utf8_lossy(path)
            );
        }
    }
    log.len()
}
