//! Observing paths: `statx` without following links, in parallel.

use std::fs::File;
use std::io::Read;
use std::os::fd::BorrowedFd;
use std::time::{SystemTime, UNIX_EPOCH};

use plumb_core::attrs::MODE_BITS;
use plumb_core::target::{Digest, ObserveRequest, Observed, TargetError, TargetPath};
use plumb_core::{Blob, BlobId, Name, ObjectId, ResolvedAttrs};
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Statx, StatxFlags};
use rustix::io::Errno;

use crate::error::{DirError, errno_error, kind_name, path_error};
use crate::temp::is_temp_name;
use crate::walk::{Denied, READ_DIR, Root, Walker, path_order};

/// A change token is withheld from a file whose status changed less than
/// this long before the observation began: a later write within the same
/// timestamp tick could leave its stat unchanged.
const RACY_WINDOW_NS: i128 = 50_000_000;

/// [`RACY_WINDOW_NS`] as a duration.
pub(crate) fn racy_window() -> std::time::Duration {
    std::time::Duration::from_nanos(RACY_WINDOW_NS as u64)
}

/// The layout version of change tokens.
const TOKEN_VERSION: u8 = 1;

/// The statx fields observation needs.
pub(crate) const MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::INO)
    .union(StatxFlags::SIZE)
    .union(StatxFlags::MTIME)
    .union(StatxFlags::CTIME)
    .union(StatxFlags::UID)
    .union(StatxFlags::GID);

/// How a regular file is opened for reading: never through a link, never
/// blocking on a FIFO swapped in, never becoming a controlling terminal.
pub(crate) const READ_FILE: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// The read buffer for digests.
const CHUNK: usize = 64 << 10;

/// Observes every request; `root` is `None` when the root does not exist.
pub(crate) fn observe_all(
    root: Option<&Root>,
    requests: &[ObserveRequest],
) -> Vec<Result<Observed, TargetError>> {
    let Some(root) = root else {
        return requests.iter().map(|_| Ok(Observed::Missing)).collect();
    };
    let now = now_ns();
    // Sorted by components, requests in one directory are next to each
    // other and each worker's walker reuses its open directories.
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.par_sort_unstable_by(|&a, &b| path_order(&requests[a].path, &requests[b].path));
    let found: Vec<(usize, Result<Observed, TargetError>)> = order
        .par_iter()
        .map_init(
            || (Walker::new(root), Vec::new()),
            |(walker, buf), &i| (i, observe_one(walker, &requests[i], now, buf)),
        )
        .collect();
    let mut out: Vec<Option<Result<Observed, TargetError>>> =
        (0..requests.len()).map(|_| None).collect();
    for (i, r) in found {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.expect("every request is observed once"))
        .collect()
}

/// The current time in nanoseconds since the Unix epoch.
fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn observe_one(
    walker: &mut Walker<'_>,
    req: &ObserveRequest,
    now: i128,
    buf: &mut Vec<u8>,
) -> Result<Observed, TargetError> {
    let path = &req.path;
    let dir = match walker.parent(path) {
        Ok((dir, _)) => dir,
        Err(Denied::Missing { .. }) => return Ok(Observed::Missing),
        Err(Denied::Blocked { at, what }) => {
            return Ok(Observed::Blocked {
                at,
                what: what.to_owned(),
            });
        }
        Err(denied) => return Err(denied.into_error(path)),
    };
    let name = path.file_name();
    let st = match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, MASK) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Observed::Missing),
        Err(e) => return Err(errno_error(path, e)),
    };
    match file_type(&st) {
        FileType::RegularFile if req.digest => digest_file(dir, path, now, buf),
        FileType::RegularFile => Ok(file(&st, None, now)),
        FileType::Symlink => match rustix::fs::readlinkat(dir, name, Vec::new()) {
            Ok(target) => Ok(Observed::Symlink {
                target: target.into_bytes(),
            }),
            Err(Errno::NOENT) => Ok(Observed::Missing),
            Err(Errno::INVAL) => Err(path_error(path, DirError::Changed { during: "observed" })),
            Err(e) => Err(errno_error(path, e)),
        },
        FileType::Directory if req.list => list(dir, path, attrs(&st)),
        FileType::Directory => Ok(Observed::Dir {
            children: None,
            attrs: attrs(&st),
        }),
        kind => Ok(Observed::Other {
            what: kind_name(kind).to_owned(),
        }),
    }
}

fn file_type(st: &Statx) -> FileType {
    FileType::from_raw_mode(u32::from(st.stx_mode))
}

/// A regular file's observation from its stat.
fn file(st: &Statx, digest: Option<Digest>, now: i128) -> Observed {
    Observed::File {
        size: st.stx_size,
        executable: st.stx_mode & 0o100 != 0,
        digest,
        token: token(st, now),
        attrs: attrs(st),
    }
}

/// Permission bits, owner and group from a stat.
pub(crate) fn attrs(st: &Statx) -> ResolvedAttrs {
    ResolvedAttrs {
        mode: Some(u32::from(st.stx_mode) & MODE_BITS),
        uid: Some(st.stx_uid),
        gid: Some(st.stx_gid),
    }
}

/// The change token of a stat, or `None` if it changed too recently.
fn token(st: &Statx, now: i128) -> Option<Vec<u8>> {
    let ctime = i128::from(st.stx_ctime.tv_sec) * 1_000_000_000 + i128::from(st.stx_ctime.tv_nsec);
    if ctime >= now - RACY_WINDOW_NS {
        return None;
    }
    let mut t = Vec::with_capacity(49);
    t.push(TOKEN_VERSION);
    t.extend_from_slice(&st.stx_size.to_le_bytes());
    t.extend_from_slice(&st.stx_mtime.tv_sec.to_le_bytes());
    t.extend_from_slice(&st.stx_mtime.tv_nsec.to_le_bytes());
    t.extend_from_slice(&st.stx_ctime.tv_sec.to_le_bytes());
    t.extend_from_slice(&st.stx_ctime.tv_nsec.to_le_bytes());
    t.extend_from_slice(&st.stx_ino.to_le_bytes());
    t.extend_from_slice(&st.stx_dev_major.to_le_bytes());
    t.extend_from_slice(&st.stx_dev_minor.to_le_bytes());
    Some(t)
}

/// Observes a regular file with its digest: opens it, hashes it as a blob,
/// and checks that it did not change meanwhile.
fn digest_file(
    dir: BorrowedFd<'_>,
    path: &TargetPath,
    now: i128,
    buf: &mut Vec<u8>,
) -> Result<Observed, TargetError> {
    let fd = match rustix::fs::openat(dir, path.file_name(), READ_FILE, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Observed::Missing),
        Err(Errno::LOOP) => return Err(path_error(path, DirError::Changed { during: "observed" })),
        Err(e) => return Err(errno_error(path, e)),
    };
    let stat = |fd: &std::os::fd::OwnedFd| {
        rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, MASK).map_err(|e| errno_error(path, e))
    };
    let before = stat(&fd)?;
    if file_type(&before) != FileType::RegularFile {
        return Err(path_error(path, DirError::Changed { during: "observed" }));
    }
    let len = usize::try_from(before.stx_size).map_err(|_| path_error(path, DirError::TooLarge))?;
    let (head, n) = Blob::header(len);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&head[..n]);
    buf.resize(CHUNK, 0);
    let mut f = File::from(fd);
    let mut read = 0u64;
    loop {
        match f.read(buf) {
            Ok(0) => break,
            Ok(k) => {
                hasher.update(&buf[..k]);
                read += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(path_error(
                    path,
                    DirError::Os {
                        doing: None,
                        source: e,
                    },
                ));
            }
        }
    }
    let after = stat(&std::os::fd::OwnedFd::from(f))?;
    let same = |a: &Statx, b: &Statx| {
        a.stx_size == b.stx_size
            && a.stx_mtime.tv_sec == b.stx_mtime.tv_sec
            && a.stx_mtime.tv_nsec == b.stx_mtime.tv_nsec
            && a.stx_ctime.tv_sec == b.stx_ctime.tv_sec
            && a.stx_ctime.tv_nsec == b.stx_ctime.tv_nsec
    };
    if read != before.stx_size || !same(&before, &after) {
        return Err(path_error(path, DirError::Changed { during: "read" }));
    }
    let id = BlobId::new(ObjectId::from_bytes(*hasher.finalize().as_bytes()));
    Ok(file(&before, Some(Digest::Blob(id)), now))
}

/// Lists a directory's entries, sorted, leaving out temporary files.
fn list(
    dir: BorrowedFd<'_>,
    path: &TargetPath,
    attrs: ResolvedAttrs,
) -> Result<Observed, TargetError> {
    let fd = match rustix::fs::openat(dir, path.file_name(), READ_DIR, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Observed::Missing),
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return Err(path_error(path, DirError::Changed { during: "observed" }));
        }
        Err(e) => return Err(errno_error(path, e)),
    };
    let entries = rustix::fs::Dir::new(fd).map_err(|e| errno_error(path, e))?;
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| errno_error(path, e))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." || is_temp_name(name) {
            continue;
        }
        let name = Name::new(name).map_err(|e| path_error(path, e.into()))?;
        children.push(name);
    }
    children.sort_unstable();
    Ok(Observed::Dir {
        children: Some(children),
        attrs,
    })
}
