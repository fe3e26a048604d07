//! Files and modes, looked at without following links.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `content` to `root/rel`, creating parent directories.
pub fn write(root: &Path, rel: &str, content: &[u8]) {
    write_at(&root.join(rel), content);
}

/// Writes `content` to `path`, creating parent directories.
pub fn write_at(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("a path below the root has a parent"))
        .unwrap_or_else(|e| panic!("create the parents of {}: {e}", path.display()));
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Sets the permission bits of `path`.
pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// The permission bits of `path` itself (a symlink's own, not its
/// target's).
pub fn mode_of(path: &Path) -> u32 {
    path.symlink_metadata()
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Whether anything is at `path`, a dangling symlink included.
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Whether the tests run as root, who may ignore permissions (and may
/// mount, change owners, …).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
