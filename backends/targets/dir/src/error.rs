//! One-line reasons for failed system calls, and names for file kinds.

use plumb_core::target::{TargetError, TargetPath};
use rustix::fs::FileType;
use rustix::io::Errno;

/// A short, lower-case reason for `e` ("permission denied").
pub(crate) fn reason(e: Errno) -> String {
    let text = match e {
        Errno::ACCESS | Errno::PERM => "permission denied",
        Errno::NOENT => "no such file or directory",
        Errno::NOTDIR => "not a directory",
        Errno::ISDIR => "is a directory",
        Errno::NOTEMPTY => "directory not empty",
        Errno::EXIST => "already exists",
        Errno::LOOP => "is a symlink",
        Errno::NOSPC => "no space left on device",
        Errno::DQUOT => "disk quota exceeded",
        Errno::ROFS => "read-only file system",
        Errno::NAMETOOLONG => "name too long",
        Errno::IO => "input/output error",
        Errno::BUSY => "device or resource busy",
        Errno::XDEV => "on another file system",
        Errno::TXTBSY => "text file busy",
        Errno::MFILE | Errno::NFILE => "too many open files",
        Errno::NOMEM => "out of memory",
        _ => return std::io::Error::from(e).to_string(),
    };
    text.to_owned()
}

/// An error for one path.
pub(crate) fn path_error(path: &TargetPath, reason: impl Into<String>) -> TargetError {
    TargetError::Path {
        path: path.clone(),
        reason: reason.into(),
    }
}

/// An error for one path from a failed system call.
pub(crate) fn errno_error(path: &TargetPath, e: Errno) -> TargetError {
    path_error(path, reason(e))
}

/// What a file kind is called in messages and in `Observed::Other`.
pub(crate) fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "special file",
    }
}
