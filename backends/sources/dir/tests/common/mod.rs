//! An in-memory sink and helpers for the directory source's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

pub use plumb_core::testing::MemorySink;

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
