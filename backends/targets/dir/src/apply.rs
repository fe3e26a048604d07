//! Making changes: temporary files written in parallel, one file-system
//! sync, renames, then one sync per directory touched (or, past a few
//! directories, one more file-system sync).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use plumb_core::ResolvedAttrs;
use plumb_core::target::{Change, Content, TargetError, TargetPath};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use crate::error::{DirError, errno_error, kind_name, path_error, target_error};
use crate::observe;
use crate::owners::Credentials;
use crate::temp::temp_name;
use crate::walk::{READ_DIR, Root, Walker, parent_bytes, path_order, reopen};

/// How a temporary file is created: a new file, never an existing one,
/// never through a link.
const CREATE: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// How many fresh temporary names are tried before giving up, each taken
/// already (only a file crafted to look like one could be).
const TEMP_ATTEMPTS: usize = 8;

/// How a temporary file is reopened to sync it.
const SYNC_FILE: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// The mode of a new directory, unless one is declared.
const DIR_MODE: u32 = 0o755;

/// How many threads make changes. Creating, writing, renaming and
/// syncing mostly wait in the kernel, so there are more than cores.
const THREADS: usize = 8;

/// Above this many directories changed on the root's file system, they are
/// made durable by one `syncfs` rather than one fsync each.
const DEFERRED_DIR_SYNCS: usize = 16;

type Outcome = (usize, Result<(), TargetError>);

/// A change staged: its index and its temporary name, if it has one.
type Staged = (usize, Option<Vec<u8>>);

/// How staging a change went: its temporary name, if it has one.
type StageOutcome = Result<Option<Vec<u8>>, TargetError>;

/// Runs `f` on the pool that makes changes (on rayon's global pool if that
/// one could not be started).
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: OnceLock<Option<ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        ThreadPoolBuilder::new()
            .num_threads(THREADS)
            .thread_name(|i| format!("plumb-dir-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Makes `changes`, calling `done` for each; see the crate docs for the
/// order of writes and syncs.
pub(crate) fn apply_all(
    root: &Root,
    changes: &[Change],
    content: &dyn Content,
    done: &mut dyn FnMut(usize, Result<(), TargetError>),
    describe: &str,
) -> Result<(), TargetError> {
    // Sorted by components, changes in one directory are next to each
    // other: walkers reuse open directories, and each directory is synced
    // once.
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.par_sort_unstable_by(|&a, &b| path_order(changes[a].path(), changes[b].path()));

    // 1. Write every file and link at its temporary name.
    let staged: Vec<(usize, StageOutcome)> = on_pool(|| {
        order
            .par_iter()
            .map_init(
                || Walker::new(root),
                |walker, &i| (i, stage(walker, root.dev, &changes[i], content)),
            )
            .collect()
    });
    let mut ready: Vec<Staged> = Vec::with_capacity(staged.len());
    let mut temps = false;
    for (i, outcome) in staged {
        match outcome {
            Ok(tmp) => {
                temps |= tmp.is_some();
                ready.push((i, tmp));
            }
            Err(e) => done(i, Err(e)),
        }
    }

    // 2. One sync makes every temporary file on the root's file system
    //    durable (those on other file systems were synced when written).
    let mut fsync_temps = false;
    if temps {
        let fail = |what: &'static str, e: Errno| target_error(describe, DirError::doing(what, e));
        let fd = reopen(root.fd.as_fd()).map_err(|e| fail("cannot open the root", e))?;
        match rustix::fs::syncfs(&fd) {
            Ok(()) => {}
            Err(Errno::NOSYS) => fsync_temps = true,
            Err(e) => return Err(fail("syncing the file system failed", e)),
        }
    }

    // 3. Rename, make and remove, a directory at a time, then sync each
    //    directory (past a few, the whole file system once) before
    //    confirming its changes.
    let groups: Vec<&[Staged]> = ready
        .chunk_by(|(a, _), (b, _)| {
            parent_bytes(changes[*a].path()) == parent_bytes(changes[*b].path())
        })
        .collect();
    // Many directories on the root's file system: one more `syncfs` is
    // cheaper than a journal commit forced by each directory's fsync.
    let defer = (groups.len() > DEFERRED_DIR_SYNCS && !fsync_temps).then_some(root.dev);
    let finished: Vec<(Outcome, bool)> = on_pool(|| {
        groups
            .par_iter()
            .map_init(
                || Walker::new(root),
                |walker, group| finish(walker, changes, group, fsync_temps, defer),
            )
            .flatten()
            .collect()
    });
    let deferred = finished.iter().any(|((_, r), d)| *d && r.is_ok());
    let synced = if deferred {
        reopen(root.fd.as_fd()).and_then(|fd| rustix::fs::syncfs(&fd))
    } else {
        Ok(())
    };
    let mut outcomes: Vec<Outcome> = finished
        .into_iter()
        .map(|((i, r), d)| match (&synced, r) {
            (Err(e), Ok(())) if d => (i, Err(dir_sync_failed(changes[i].path(), *e))),
            (_, r) => (i, r),
        })
        .collect();
    outcomes.sort_unstable_by_key(|(i, _)| *i);
    for (i, outcome) in outcomes {
        done(i, outcome);
    }
    Ok(())
}

/// Prepares one change: writes a file or link at a fresh temporary name,
/// which it returns.
fn stage(
    walker: &mut Walker<'_>,
    root_dev: u64,
    change: &Change,
    content: &dyn Content,
) -> StageOutcome {
    match change {
        Change::WriteFile {
            path,
            blob,
            size,
            executable,
            attrs,
        } => {
            let (dir, dev) = walker.parent(path).map_err(|d| d.into_error(path))?;
            let old = refuse_dir(dir, path)?;
            let mut bytes = content
                .open(blob)
                .map_err(|source| path_error(path, DirError::Content { source }))?;
            let (tmp, fd) = create_temp(path, |tmp| create_private(dir, tmp))?;
            let attrs = file_attrs(attrs, *executable, old);
            let written = write_temp(fd, &mut *bytes, &attrs, dev != root_dev);
            let failed = match written {
                Ok(n) if n == *size => return Ok(Some(tmp)),
                Ok(actual) => path_error(
                    path,
                    DirError::WrongSize {
                        actual,
                        expected: *size,
                    },
                ),
                Err(Written::Content(e)) => path_error(
                    path,
                    DirError::Content {
                        source: TargetError::Content(Box::new(e)),
                    },
                ),
                Err(Written::File(e)) => errno_error(path, e),
            };
            let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
            Err(failed)
        }
        Change::Symlink { path, target } => {
            if target.is_empty() {
                return Err(path_error(path, DirError::EmptyLinkTarget));
            }
            if target.contains(&0) {
                return Err(path_error(path, DirError::NulInLinkTarget));
            }
            let (dir, dev) = walker.parent(path).map_err(|d| d.into_error(path))?;
            refuse_dir(dir, path)?;
            let (tmp, ()) = create_temp(path, |tmp| {
                rustix::fs::symlinkat(target.as_slice(), dir, tmp)
            })?;
            if dev != root_dev {
                // A link on another file system: sync that one.
                if let Err(e) = reopen(dir).and_then(|fd| rustix::fs::syncfs(&fd)) {
                    let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
                    return Err(errno_error(path, e));
                }
            }
            Ok(Some(tmp))
        }
        Change::MakeDir { .. } | Change::Remove { .. } | Change::RemoveDir { .. } => Ok(None),
    }
}

/// Fails if a directory is at `path` (a file or link cannot replace it);
/// returns the attributes of a regular file there.
fn refuse_dir(
    dir: BorrowedFd<'_>,
    path: &TargetPath,
) -> Result<Option<ResolvedAttrs>, TargetError> {
    let mask = StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::UID | StatxFlags::GID;
    match rustix::fs::statx(dir, path.file_name(), AtFlags::SYMLINK_NOFOLLOW, mask) {
        Ok(st) => match FileType::from_raw_mode(u32::from(st.stx_mode)) {
            FileType::Directory => Err(path_error(path, DirError::IsA { kind: "directory" })),
            FileType::RegularFile => Ok(Some(observe::attrs(&st))),
            _ => Ok(None),
        },
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(errno_error(path, e)),
    }
}

/// Whether the process runs as root, read once.
fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(Credentials::is_root)
}

/// The attributes a written file gets: those declared; for the rest, the
/// replaced file's (its mode with the execute bits set or cleared, and,
/// when running as root, its owner and group), else mode 0755 or 0644.
fn file_attrs(
    declared: &ResolvedAttrs,
    executable: bool,
    old: Option<ResolvedAttrs>,
) -> ResolvedAttrs {
    let mode = declared
        .mode
        .unwrap_or_else(|| match old.and_then(|o| o.mode) {
            Some(m) if executable => {
                // Execute wherever read is allowed, and for the owner always.
                m & 0o777 | 0o100 | (m & 0o444) >> 2
            }
            Some(m) => m & 0o666,
            None if executable => 0o755,
            None => 0o644,
        });
    // Only root may give a file away; others' files become theirs.
    let old = old.filter(|_| is_root());
    ResolvedAttrs {
        mode: Some(mode),
        uid: declared.uid.or(old.and_then(|o| o.uid)),
        gid: declared.gid.or(old.and_then(|o| o.gid)),
    }
}

/// Creates a new temporary file `tmp` in `dir`, readable by its owner only
/// (whatever the umask) until its attributes are set.
fn create_private(dir: BorrowedFd<'_>, tmp: &[u8]) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(dir, tmp, CREATE, Mode::from_raw_mode(0o600))
}

/// Creates something new at a fresh temporary name for `path` with
/// `create`, which must fail with `EEXIST` when the name is taken: a taken
/// name is never reused or removed, another is drawn.
fn create_temp<T>(
    path: &TargetPath,
    mut create: impl FnMut(&[u8]) -> rustix::io::Result<T>,
) -> Result<(Vec<u8>, T), TargetError> {
    let mut attempts = 0;
    loop {
        let tmp = temp_name(path.file_name());
        match create(&tmp) {
            Ok(made) => return Ok((tmp, made)),
            Err(Errno::EXIST) if attempts + 1 < TEMP_ATTEMPTS => attempts += 1,
            Err(e) => return Err(errno_error(path, e)),
        }
    }
}

/// Sets the temporary file's attributes and writes its content; syncs it
/// if `sync` (it is on another file system than the root). The file was
/// created 0600, so it is never readable by more than its final mode lets.
/// Why a temporary file was not written.
#[derive(Debug)]
enum Written {
    /// Reading the content failed (the store found it damaged).
    Content(std::io::Error),
    /// Writing the file failed.
    File(Errno),
}

/// Writes what `bytes` yields into the new file `fd`, a piece at a time
/// (memory stays bounded whatever the size); returns how many bytes.
fn write_temp(
    fd: OwnedFd,
    bytes: &mut dyn Read,
    attrs: &ResolvedAttrs,
    sync: bool,
) -> Result<u64, Written> {
    set_attrs(fd.as_fd(), attrs).map_err(Written::File)?;
    let mut f = File::from(fd);
    let io = |e: std::io::Error| Written::File(Errno::from_io_error(&e).unwrap_or(Errno::IO));
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match bytes.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Written::Content(e)),
        };
        f.write_all(&buf[..n]).map_err(io)?;
        total += n as u64;
    }
    if sync {
        f.sync_all().map_err(io)?;
    }
    Ok(total)
}

/// The piece of content copied at a time into a file being written.
const COPY_BUFFER: usize = 256 << 10;

/// Gives the open file `fd` the attributes `attrs` sets: owner and group
/// first (a change of owner clears set-user-id bits), then the mode.
fn set_attrs(fd: BorrowedFd<'_>, attrs: &ResolvedAttrs) -> rustix::io::Result<()> {
    if attrs.uid.is_some() || attrs.gid.is_some() {
        let uid = attrs.uid.map(rustix::fs::Uid::from_raw);
        let gid = attrs.gid.map(rustix::fs::Gid::from_raw);
        rustix::fs::fchown(fd, uid, gid)?;
    }
    if let Some(mode) = attrs.mode {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?;
    }
    Ok(())
}

/// Gives the directory `name` in `dir` the attributes `attrs` sets.
fn set_dir_attrs(
    dir: BorrowedFd<'_>,
    name: &[u8],
    attrs: &ResolvedAttrs,
) -> rustix::io::Result<()> {
    let fd = rustix::fs::openat(dir, name, READ_DIR, Mode::empty())?;
    set_attrs(fd.as_fd(), attrs)
}

/// Carries out the staged changes of one directory, then syncs it, unless
/// it is on the device `defer` (the caller syncs that whole file system).
/// Each outcome says whether its sync was left to the caller.
fn finish(
    walker: &mut Walker<'_>,
    changes: &[Change],
    group: &[Staged],
    fsync_temps: bool,
    defer: Option<u64>,
) -> Vec<(Outcome, bool)> {
    let first = changes[group[0].0].path();
    let (dir, dev) = match walker.parent(first) {
        Ok(found) => found,
        Err(denied) => {
            return group
                .iter()
                .map(|&(i, _)| {
                    (
                        (i, Err(denied.clone().into_error(changes[i].path()))),
                        false,
                    )
                })
                .collect();
        }
    };
    let mut outcomes: Vec<Outcome> = group
        .iter()
        .map(|(i, tmp)| (*i, make(dir, &changes[*i], tmp.as_deref(), fsync_temps)))
        .collect();
    let deferred = defer == Some(dev);
    if !deferred
        && outcomes.iter().any(|(_, r)| r.is_ok())
        && let Err(e) = reopen(dir).and_then(|fd| rustix::fs::fsync(&fd))
    {
        for (i, r) in &mut outcomes {
            if r.is_ok() {
                *r = Err(dir_sync_failed(changes[*i].path(), e));
            }
        }
    }
    outcomes.into_iter().map(|o| (o, deferred)).collect()
}

/// The error of a change made but not made durable.
fn dir_sync_failed(path: &TargetPath, e: Errno) -> TargetError {
    path_error(path, DirError::doing("syncing its directory failed", e))
}

/// Makes one change in `dir`, the directory holding its path; a file or
/// link is renamed from its temporary name `tmp`.
fn make(
    dir: BorrowedFd<'_>,
    change: &Change,
    tmp: Option<&[u8]>,
    fsync_temps: bool,
) -> Result<(), TargetError> {
    let path = change.path();
    let name = path.file_name();
    match (change, tmp) {
        (Change::WriteFile { .. } | Change::Symlink { .. }, Some(tmp)) => {
            if fsync_temps && matches!(change, Change::WriteFile { .. }) {
                rustix::fs::openat(dir, tmp, SYNC_FILE, Mode::empty())
                    .and_then(|fd| rustix::fs::fsync(&fd))
                    .map_err(|e| errno_error(path, e))?;
            }
            rustix::fs::renameat(dir, tmp, dir, name).map_err(|e| {
                let _ = rustix::fs::unlinkat(dir, tmp, AtFlags::empty());
                match e {
                    Errno::ISDIR => path_error(path, DirError::IsA { kind: "directory" }),
                    e => errno_error(path, e),
                }
            })
        }
        (Change::WriteFile { .. } | Change::Symlink { .. }, None) => {
            Err(path_error(path, DirError::NotStaged))
        }
        (Change::MakeDir { attrs, .. }, _) => {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) => {
                    // The umask narrowed the mode: set it exactly.
                    let exact = ResolvedAttrs {
                        mode: Some(attrs.mode.unwrap_or(DIR_MODE)),
                        ..*attrs
                    };
                    set_dir_attrs(dir, name, &exact).map_err(|e| errno_error(path, e))
                }
                Err(Errno::EXIST) => match kind(dir, name) {
                    Ok(FileType::Directory) if attrs.is_empty() => Ok(()),
                    Ok(FileType::Directory) => {
                        set_dir_attrs(dir, name, attrs).map_err(|e| errno_error(path, e))
                    }
                    Ok(other) => Err(path_error(
                        path,
                        DirError::InTheWay {
                            kind: kind_name(other),
                        },
                    )),
                    Err(e) => Err(errno_error(path, e)),
                },
                Err(e) => Err(errno_error(path, e)),
            }
        }
        (Change::Remove { .. }, _) => match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e @ (Errno::ISDIR | Errno::PERM)) => match kind(dir, name) {
                Ok(FileType::Directory) => {
                    Err(path_error(path, DirError::IsA { kind: "directory" }))
                }
                _ => Err(errno_error(path, e)),
            },
            Err(e) => Err(errno_error(path, e)),
        },
        (Change::RemoveDir { .. }, _) => {
            match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(Errno::NOTEMPTY | Errno::EXIST) => Err(path_error(path, DirError::NotEmpty)),
                Err(Errno::NOTDIR) => match kind(dir, name) {
                    Ok(other) => Err(path_error(
                        path,
                        DirError::NotADirectory {
                            kind: kind_name(other),
                        },
                    )),
                    Err(e) => Err(errno_error(path, e)),
                },
                Err(e) => Err(errno_error(path, e)),
            }
        }
    }
}

/// The kind of file `name` in `dir` is, without following a link.
fn kind(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<FileType> {
    let st = rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)?;
    Ok(FileType::from_raw_mode(u32::from(st.stx_mode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret is never readable by more than its final mode allows: its
    /// temporary file is created 0600 (owner only, whatever the umask),
    /// and owner, group and mode are set on the open file before any byte
    /// is written and long before the rename makes it visible.
    #[test]
    fn a_temporary_file_is_private_until_its_attributes_are_set() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(tmp.path(), flags, Mode::empty()).expect("open");
        let old = rustix::process::umask(Mode::empty());
        let fd = create_private(dir.as_fd(), b".key.plumb-tmp-0123456789abcdef");
        rustix::process::umask(old);
        let fd = fd.expect("created");
        let mode = |fd: BorrowedFd<'_>| rustix::fs::fstat(fd).expect("fstat").st_mode & 0o7777;
        assert_eq!(mode(fd.as_fd()), 0o600, "created owner-only");
        let probe = rustix::io::dup(&fd).expect("dup");
        let attrs = ResolvedAttrs {
            mode: Some(0o400),
            ..ResolvedAttrs::default()
        };
        write_temp(fd, &mut &b"secret"[..], &attrs, false).expect("written");
        assert_eq!(mode(probe.as_fd()), 0o400);
        assert_eq!(rustix::fs::fstat(&probe).expect("fstat").st_size, 6);
    }

    #[test]
    fn written_files_keep_what_they_replace_but_the_execute_bits() {
        let none = ResolvedAttrs::default();
        let old = |mode| {
            Some(ResolvedAttrs {
                mode: Some(mode),
                uid: Some(7),
                gid: Some(8),
            })
        };
        let mode = |declared: &ResolvedAttrs, exec, was| file_attrs(declared, exec, was).mode;
        assert_eq!(mode(&none, false, None), Some(0o644));
        assert_eq!(mode(&none, true, None), Some(0o755));
        assert_eq!(mode(&none, false, old(0o4755)), Some(0o644));
        assert_eq!(mode(&none, true, old(0o640)), Some(0o750));
        assert_eq!(mode(&none, true, old(0o604)), Some(0o705));
        assert_eq!(mode(&none, false, old(0o600)), Some(0o600));
        let declared = ResolvedAttrs {
            mode: Some(0o2750),
            ..none
        };
        assert_eq!(mode(&declared, true, old(0o600)), Some(0o2750));
        let kept = file_attrs(&none, false, old(0o600));
        let root = is_root();
        assert_eq!(
            kept.uid,
            root.then_some(7),
            "only root keeps another's owner"
        );
    }
}
