//! An in-memory sink, a driver for the real `hg`, and the oracle that
//! compares what plumb recorded with what `hg` says.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use plumb_core::testing::MemorySink;

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
pub fn check_against_hg(root: &Path, sink: &MemorySink, scope: &str) -> usize {
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
