//! Why a directory target failed, and names for file kinds.

use std::io;

use plumb_core::NameError;
use plumb_core::target::{TargetError, TargetPath};
use rustix::fs::FileType;
use rustix::io::Errno;

/// Why a directory target failed at a path, or as a whole: the cause of
/// each [`TargetError`] it returns. A failed system call keeps its
/// [`io::Error`] as the cause (its [`kind`](io::Error::kind) tells a full
/// disk or a denied permission apart); the text says it in a few
/// lower-case words ("permission denied").
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// A system call failed.
    #[error("{}{}", doing.map(|d| format!("{d}: ")).unwrap_or_default(), short(source))]
    Os {
        /// What it was for, when the path alone does not tell
        /// (`cannot open the root`).
        doing: Option<&'static str>,
        /// The system's error.
        source: io::Error,
    },
    /// What is at the path is of the wrong kind for the operation.
    #[error("is a {kind}")]
    IsA {
        /// What it is (`directory`, `symlink`, …).
        kind: &'static str,
    },
    /// A directory was to be removed, and something else is there.
    #[error("is a {kind}, not a directory")]
    NotADirectory {
        /// What it is.
        kind: &'static str,
    },
    /// A directory was to be made, and something else is there.
    #[error("a {kind} is in the way")]
    InTheWay {
        /// What it is.
        kind: &'static str,
    },
    /// A file to read is not there.
    #[error("no such file")]
    NoSuchFile,
    /// A directory to remove still holds something.
    #[error("directory not empty")]
    NotEmpty,
    /// A file or link was to be renamed into place with no temporary file
    /// made for it (a defect of the target, never of the input).
    #[error("its temporary file was not made")]
    NotStaged,
    /// The path changed while it was looked at, so what was seen cannot be
    /// trusted.
    #[error("changed while it was {during}")]
    Changed {
        /// `observed` or `read`.
        during: &'static str,
    },
    /// A file too large to hold in memory.
    #[error("too large")]
    TooLarge,
    /// A symlink to make has an empty target.
    #[error("the symlink target is empty")]
    EmptyLinkTarget,
    /// A symlink to make has a target holding a NUL byte.
    #[error("the symlink target holds a NUL byte")]
    NulInLinkTarget,
    /// The content of a file to write could not be had.
    #[error("cannot get its content: {source}")]
    Content {
        /// Why.
        source: TargetError,
    },
    /// The content of a file to write is not of the size the change says.
    #[error("its content is {actual} bytes, expected {expected}")]
    WrongSize {
        /// The content's size.
        actual: u64,
        /// The size expected.
        expected: u64,
    },
    /// A directory holds a name plumb cannot manage.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A directory on the way to the path does not exist.
    #[error("directory {at} does not exist")]
    MissingDir {
        /// The first missing one.
        at: TargetPath,
    },
    /// Something on the way to the path is a symlink or not a directory.
    #[error("blocked: {at} is a {what}, which plumb never looks through")]
    Blocked {
        /// The component in the way.
        at: TargetPath,
        /// What it is.
        what: &'static str,
    },
    /// A directory on the way to the path could not be opened.
    #[error("{} (directory {at})", short(source))]
    DirFailed {
        /// The directory.
        at: TargetPath,
        /// The system's error.
        source: io::Error,
    },
    /// The root is a symlink.
    #[error("the root is a symlink, which plumb never follows")]
    RootIsSymlink,
    /// The root is not a directory.
    #[error("the root is a {kind}, not a directory")]
    RootIsNotADirectory {
        /// What it is.
        kind: &'static str,
    },
    /// The root was created and then was not there.
    #[error("the root vanished as it was created")]
    RootVanished,
}

impl DirError {
    /// A failed system call.
    pub(crate) fn os(e: Errno) -> Self {
        DirError::Os {
            doing: None,
            source: e.into(),
        }
    }

    /// A failed system call, and what it was for.
    pub(crate) fn doing(doing: &'static str, e: impl Into<io::Error>) -> Self {
        DirError::Os {
            doing: Some(doing),
            source: e.into(),
        }
    }
}

/// A short, lower-case text for `e` ("permission denied").
fn short(e: &io::Error) -> String {
    match Errno::from_io_error(e) {
        Some(errno) => reason(errno),
        None => e.to_string(),
    }
}

/// A short, lower-case reason for `e` ("permission denied").
fn reason(e: Errno) -> String {
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
        _ => return io::Error::from(e).to_string(),
    };
    text.to_owned()
}

/// An error for one path.
pub(crate) fn path_error(path: &TargetPath, e: DirError) -> TargetError {
    TargetError::path(path, e)
}

/// An error for one path from a failed system call.
pub(crate) fn errno_error(path: &TargetPath, e: Errno) -> TargetError {
    path_error(path, DirError::os(e))
}

/// An error for the target at `describe` as a whole.
pub(crate) fn target_error(describe: &str, e: DirError) -> TargetError {
    TargetError::target(describe, e)
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
