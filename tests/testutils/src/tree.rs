//! Whole file trees, looked at without following links, and compared.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a path holds, looked at without following links.
#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// Its bytes.
        content: Vec<u8>,
        /// Whether the owner may execute it.
        exec: bool,
    },
    /// A symbolic link, and where it points.
    Symlink(Vec<u8>),
    /// A directory (its entries are paths of their own).
    Dir,
    /// A socket, FIFO or device.
    Other,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::File { content, exec } => write!(
                f,
                "{} {:?}",
                if *exec { "executable" } else { "file" },
                String::from_utf8_lossy(content)
            ),
            Node::Symlink(t) => write!(f, "symlink to {:?}", String::from_utf8_lossy(t)),
            Node::Dir => f.write_str("directory"),
            Node::Other => f.write_str("special file"),
        }
    }
}

/// Requires the trees at `want` and `got` to be equal, naming the paths
/// that differ.
pub fn assert_same_tree(want: &Path, got: &Path, what: &str) {
    let diff = tree_diff(&tree(want), &tree(got));
    assert!(diff.is_empty(), "{what}: {diff:#?}");
}

/// Every path below `root` (relative, raw bytes, `/`-separated) and what it
/// holds; symlinks are never followed. Empty for a missing root.
pub fn tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    fn walk(dir: &Path, prefix: &[u8], out: &mut BTreeMap<Vec<u8>, Node>) {
        for entry in std::fs::read_dir(dir).expect("list a directory") {
            let entry = entry.expect("a directory entry");
            let mut rel = prefix.to_vec();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(entry.file_name().as_bytes());
            let path = entry.path();
            let meta = path.symlink_metadata().expect("lstat");
            let node = if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&path).expect("readlink");
                Node::Symlink(t.as_os_str().as_bytes().to_vec())
            } else if meta.is_dir() {
                walk(&path, &rel, out);
                Node::Dir
            } else if meta.is_file() {
                Node::File {
                    content: std::fs::read(&path).expect("read a file"),
                    exec: meta.permissions().mode() & 0o100 != 0,
                }
            } else {
                Node::Other
            };
            out.insert(rel, node);
        }
    }
    let mut out = BTreeMap::new();
    if root.is_dir() {
        walk(root, b"", &mut out);
    }
    out
}

/// Whether `name` looks like a directory target's temporary file.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.windows(11).any(|w| w == b".plumb-tmp-")
}

/// Paths, lossily as text, for messages.
pub fn show<'a>(paths: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<String> {
    paths
        .into_iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// The paths where two trees differ, lossily as text, with how.
pub fn tree_diff(want: &BTreeMap<Vec<u8>, Node>, got: &BTreeMap<Vec<u8>, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, w) in want {
        let name = String::from_utf8_lossy(p);
        match got.get(p) {
            None => out.push(format!("missing: {name}")),
            Some(g) if g != w => out.push(format!("differs: {name}: want {w:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("unexpected: {}", String::from_utf8_lossy(p)));
    }
    out
}
