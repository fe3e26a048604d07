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

/// Copies the tree at `from` to `to`, which may exist: files with their
/// permission bits, symlinks as symlinks, directories (with their own
/// permission bits, set once they are filled). Names are copied byte for
/// byte.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("list {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("list {}: {e}", from.display()));
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = src
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("lstat {}: {e}", src.display()));
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&src)
                .unwrap_or_else(|e| panic!("readlink {}: {e}", src.display()));
            std::os::unix::fs::symlink(link, &dst)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", dst.display()));
        } else if meta.is_dir() {
            copy_tree(&src, &dst);
        } else {
            // Copies the permission bits too.
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
        }
    }
    let mode = from
        .metadata()
        .unwrap_or_else(|e| panic!("stat {}: {e}", from.display()))
        .permissions()
        .mode();
    chmod(to, mode & 0o7777);
}
