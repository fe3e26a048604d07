//! Confined access: the root is opened once per call, and every directory
//! below it is opened from its parent's handle one component at a time,
//! never through a symlink.

use std::cmp::Ordering;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use plumb_core::target::{TargetError, TargetPath};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use crate::error::{DirError, kind_name, path_error, target_error};

/// How a directory is opened to walk through it: a path handle (needs only
/// search permission, like ordinary path resolution), never following a
/// symlink, failing on anything but a directory.
const TRAVERSE: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// How a directory is opened to list, sync or read it.
pub(crate) const READ_DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The target's root, opened without following a link.
pub(crate) struct Root {
    /// A path handle on the root directory.
    pub fd: OwnedFd,
    /// The device it lives on (`major << 32 | minor`).
    pub dev: u64,
}

/// Opens the root; `Ok(None)` if it does not exist. A root that is a
/// symlink or not a directory is an error for the whole target.
pub(crate) fn open_root(root: &Path, describe: &str) -> Result<Option<Root>, TargetError> {
    let fail = |e: DirError| target_error(describe, e);
    match rustix::fs::open(root, TRAVERSE, Mode::empty()) {
        Ok(fd) => {
            let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE)
                .map_err(|e| fail(DirError::os(e)))?;
            Ok(Some(Root {
                fd,
                dev: dev_of(&st),
            }))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
            let what = match rustix::fs::statx(
                rustix::fs::CWD,
                root,
                AtFlags::SYMLINK_NOFOLLOW,
                StatxFlags::TYPE,
            ) {
                Ok(st) => match FileType::from_raw_mode(u32::from(st.stx_mode)) {
                    FileType::Symlink => DirError::RootIsSymlink,
                    kind => DirError::RootIsNotADirectory {
                        kind: kind_name(kind),
                    },
                },
                Err(_) => DirError::doing("the root cannot be reached", e),
            };
            Err(fail(what))
        }
        Err(e) => Err(fail(DirError::doing("cannot open the root", e))),
    }
}

/// The device number of a statx result, as one number.
pub(crate) fn dev_of(st: &rustix::fs::Statx) -> u64 {
    (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor)
}

/// Why the directory holding a path could not be opened.
#[derive(Debug, Clone)]
pub(crate) enum Denied {
    /// A directory on the way does not exist.
    Missing {
        /// The first missing one.
        at: TargetPath,
    },
    /// A directory on the way is a symlink or not a directory.
    Blocked {
        /// The component in the way.
        at: TargetPath,
        /// What it is.
        what: &'static str,
    },
    /// A directory on the way could not be opened (permission denied, …).
    Failed {
        /// The directory.
        at: TargetPath,
        /// Why.
        errno: Errno,
    },
}

impl Denied {
    /// The error for a change or read of `path` that cannot proceed.
    pub fn into_error(self, path: &TargetPath) -> TargetError {
        let e = match self {
            Denied::Missing { at } => DirError::MissingDir { at },
            Denied::Blocked { at, what } => DirError::Blocked { at, what },
            Denied::Failed { at, errno } => DirError::DirFailed {
                at,
                source: errno.into(),
            },
        };
        path_error(path, e)
    }
}

/// Why a component could not be opened, remembered for the paths after.
#[derive(Debug, Clone)]
enum Stop {
    Missing,
    Blocked(&'static str),
    Failed(Errno),
}

/// Opens directories below the root, keeping the chain of handles of the
/// last directory it opened so that paths sharing a prefix (as sorted
/// requests do) cost one `openat` per new component. Holds at most one
/// handle per level of depth.
pub(crate) struct Walker<'r> {
    root: BorrowedFd<'r>,
    root_dev: u64,
    /// The components of the chain, outermost first.
    names: Vec<Vec<u8>>,
    /// The same, joined by `/`, when nothing stopped the chain.
    joined: Vec<u8>,
    /// `fds[i]` is the directory `names[..=i]`, with its device.
    fds: Vec<(OwnedFd, u64)>,
    /// Why `names[fds.len()]` could not be opened, if it could not.
    stop: Option<Stop>,
}

impl<'r> Walker<'r> {
    /// A walker starting from `root`.
    pub fn new(root: &'r Root) -> Self {
        Self {
            root: root.fd.as_fd(),
            root_dev: root.dev,
            names: Vec::new(),
            joined: Vec::new(),
            fds: Vec::new(),
            stop: None,
        }
    }

    /// A handle on the directory holding `path`, and its device.
    pub fn parent(&mut self, path: &TargetPath) -> Result<(BorrowedFd<'_>, u64), Denied> {
        // The common case: the same directory as the path before.
        if self.stop.is_none() && parent_bytes(path) == self.joined.as_slice() {
            return Ok(self.current());
        }
        let mut comps: Vec<&[u8]> = path.components().collect();
        comps.pop();
        self.dir(&comps)
    }

    /// A handle on the directory `comps` below the root, and its device.
    pub fn dir(&mut self, comps: &[&[u8]]) -> Result<(BorrowedFd<'_>, u64), Denied> {
        let common = self
            .names
            .iter()
            .zip(comps)
            .take_while(|(a, b)| a.as_slice() == **b)
            .count();
        if let Some(stop) = &self.stop
            && common == self.names.len()
        {
            // The component that failed is on this path too.
            return Err(self.denied(comps, stop.clone()));
        }
        self.names.truncate(common);
        self.fds.truncate(common);
        self.stop = None;

        for comp in &comps[common..] {
            let (parent, _) = self.current();
            match rustix::fs::openat(parent, *comp, TRAVERSE, Mode::empty()) {
                Ok(fd) => {
                    let dev =
                        match rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE) {
                            Ok(st) => dev_of(&st),
                            Err(e) => {
                                let stop = Stop::Failed(e);
                                self.names.push(comp.to_vec());
                                self.stop = Some(stop.clone());
                                return Err(self.denied(comps, stop));
                            }
                        };
                    self.names.push(comp.to_vec());
                    self.fds.push((fd, dev));
                }
                Err(e) => {
                    let stop = classify(parent, comp, e);
                    self.names.push(comp.to_vec());
                    self.stop = Some(stop.clone());
                    return Err(self.denied(comps, stop));
                }
            }
        }
        self.joined = self.names.join(&b'/');
        Ok(self.current())
    }

    /// The innermost open directory (the root when none is).
    fn current(&self) -> (BorrowedFd<'_>, u64) {
        match self.fds.last() {
            Some((fd, dev)) => (fd.as_fd(), *dev),
            None => (self.root, self.root_dev),
        }
    }

    /// The error for `comps` given that its component at `fds.len()` stopped.
    fn denied(&self, comps: &[&[u8]], stop: Stop) -> Denied {
        let at = TargetPath::new(comps[..=self.fds.len()].join(&b'/'))
            .expect("a prefix of a valid path is valid");
        match stop {
            Stop::Missing => Denied::Missing { at },
            Stop::Blocked(what) => Denied::Blocked { at, what },
            Stop::Failed(errno) => Denied::Failed { at, errno },
        }
    }
}

/// Why `name` in `parent` could not be opened as a directory.
fn classify(parent: BorrowedFd<'_>, name: &[u8], e: Errno) -> Stop {
    match e {
        Errno::NOENT => Stop::Missing,
        Errno::LOOP | Errno::NOTDIR => {
            match rustix::fs::statx(parent, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
                Ok(st) => Stop::Blocked(kind_name(FileType::from_raw_mode(u32::from(st.stx_mode)))),
                Err(Errno::NOENT) => Stop::Missing,
                Err(e) => Stop::Failed(e),
            }
        }
        e => Stop::Failed(e),
    }
}

/// Opens the directory behind a path handle for reading or syncing.
pub(crate) fn reopen(dir: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(dir, ".", READ_DIR, Mode::empty())
}

/// The bytes of the directory part of `path` (empty below the root).
pub(crate) fn parent_bytes(path: &TargetPath) -> &[u8] {
    let bytes = path.as_bytes();
    match bytes.iter().rposition(|b| *b == b'/') {
        Some(cut) => &bytes[..cut],
        None => &[],
    }
}

/// Orders paths component by component (`a/b` before `a.b`), so that the
/// paths of one directory are next to each other and follow it.
pub(crate) fn path_order(a: &TargetPath, b: &TargetPath) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // A separator sorts before every byte a name may hold.
    let key = |c: u8| if c == b'/' { 0 } else { c };
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => key(*x).cmp(&key(*y)),
        None => a.len().cmp(&b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_order_is_component_order() {
        let paths = [
            &b"a"[..],
            b"a.b",
            b"a/x",
            b"a/x.c",
            b"a/x/q",
            b"a/x0",
            b"b",
            b"a/x/q/r",
        ];
        let mut sorted: Vec<TargetPath> = paths
            .iter()
            .map(|p| TargetPath::new(p.to_vec()).expect("valid"))
            .collect();
        let mut expected = sorted.clone();
        sorted.sort_by(path_order);
        expected.sort_by(|a, b| a.components().cmp(b.components()));
        assert_eq!(sorted, expected);
    }
}
