//! Makes a directory tree on the local file system match a snapshot.
//!
//! [`DirTarget`] implements [`Target`] for a directory on Linux. The
//! reconciler decides what to change; this crate observes paths and makes
//! changes confined to the root, atomically and durably.
//!
//! ```
//! use plumb_core::target::{Change, ObserveRequest, Observed, Target, TargetPath};
//! use plumb_target_dir::DirTarget;
//!
//! # struct NoContent;
//! # impl plumb_core::target::Content for NoContent {
//! #     fn get(&self, _: &plumb_core::BlobId) -> Result<Vec<u8>, plumb_core::target::TargetError> {
//! #         Err(plumb_core::target::TargetError::Content("none".into()))
//! #     }
//! # }
//! let tmp = tempfile::tempdir()?;
//! let mut target = DirTarget::new(tmp.path().join("etc/app"));
//! let conf = TargetPath::new(b"conf.d".to_vec())?;
//! let request = ObserveRequest { path: conf.clone(), digest: false, list: true };
//! assert!(matches!(target.observe(&[request.clone()])?[0], Ok(Observed::Missing)));
//!
//! let make = Change::MakeDir { path: conf, attrs: Default::default() };
//! target.apply(&[make], &NoContent, &mut |_, r| r.expect("made"))?;
//! assert!(matches!(
//!     target.observe(&[request])?[0],
//!     Ok(Observed::Dir { children: Some(ref c), attrs }) if c.is_empty() && attrs.mode == Some(0o755),
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The root
//!
//! The root need not exist: every path is then [`Observed::Missing`], and
//! the first [`apply`](Target::apply) with changes creates it and any
//! missing parents (like `mkdir -p`, mode 0755 before the umask), syncing
//! each parent. A root that exists but is a symlink or not a directory
//! makes every call fail with [`TargetError::Target`] naming the root.
//! Directories *above* the root are resolved normally.
//!
//! # Confinement
//!
//! Each call opens the root without following a link, and reaches every
//! path from that handle one component at a time (`openat` with
//! `O_PATH | O_DIRECTORY | O_NOFOLLOW`). A symlink or non-directory above a
//! path makes it [`Observed::Blocked`] and any change to it an error; the
//! last component is looked at with `statx(AT_SYMLINK_NOFOLLOW)`, opened
//! with `O_NOFOLLOW`, and replaced by `renameat`, which replaces a link
//! itself. Nothing is ever looked up through a link.
//!
//! # Observing
//!
//! Requests are sorted by path and observed on the rayon pool; each worker
//! keeps its chain of open directories, so a directory costs one `openat`
//! per worker and a path one `statx`.
//!
//! - A regular file reports its size, the owner's execute bit, and a change
//!   token: its size, modification and change times, inode and device.
//!   The token is `None` when the file's change time is less than 50 ms
//!   before the observation began (or later): a write in the same timestamp
//!   tick could leave the stat unchanged. The window assumes the
//!   fine-grained timestamps of Linux's local file systems.
//! - Its digest, when asked for, is the plumb blob id of its content
//!   ([`plumb_core::Blob::id_of`]), hashed while streaming the file. A file
//!   whose size or times change while it is read is an error for that path.
//! - A symlink reports its raw target; a directory, when asked, its sorted
//!   entry names without this target's temporary files; sockets, FIFOs and
//!   devices are [`Observed::Other`] and are never opened.
//!
//! # Applying
//!
//! Changes (distinct paths, none inside another) run in parallel, on a
//! pool of 8 threads of the crate's own (making files mostly waits in the
//! kernel, so more threads than cores help):
//!
//! 1. Each [`Change::WriteFile`] is written to a new temporary file in its
//!    directory (see below), created with `O_CREAT | O_EXCL | O_NOFOLLOW`
//!    (never an existing file: a taken name means another is drawn) with
//!    mode 0600, then given its owner and group (`fchown`) and mode
//!    (`fchmod`) before any byte is written: those the change sets, else
//!    the replaced file's mode with its execute bits set or cleared (and,
//!    as root, its owner and group), else 0644 or 0755, whatever the
//!    umask. A secret is never readable by more than its final mode
//!    allows. Each [`Change::Symlink`] is created at a temporary name the
//!    same way.
//! 2. One `syncfs` on the root makes all of them durable (temporary files on
//!    another file system mounted below the root are synced one by one; if
//!    the kernel lacks `syncfs`, every file is).
//! 3. A directory at a time: each temporary file is renamed over its final
//!    name, directories are made (`mkdirat`, then their attributes, 0755
//!    unless a mode is given, set exactly on the open directory) and
//!    removed, files and links unlinked; then the directory is synced, and
//!    only then are its changes confirmed through `done`. When more than a
//!    few directories on the root's file system changed, they are synced
//!    together by a second `syncfs` once all are done (one journal commit
//!    rather than one forced by each directory's fsync).
//!
//! A file or link cannot replace a directory, [`Change::Remove`] does not
//! remove a directory, and [`Change::RemoveDir`] only an empty one: each is
//! an error for that change alone. Errors are one line naming the path
//! ("permission denied", "directory not empty"). A failing `syncfs` fails
//! the whole call, since nothing written can then be trusted.
//!
//! # Owners and groups
//!
//! [`resolve_attrs`](Target::resolve_attrs) looks names up in
//! `/etc/passwd` and `/etc/group` (not through the C library's name
//! service switch; a name only a directory service knows is unknown) and
//! refuses an owner or group the running user may not give: anyone but
//! root may give only their own uid and their own groups.
//!
//! # Temporary files
//!
//! The change to `name` is prepared at `.<name>.plumb-tmp-<tag>`, where
//! the tag is 16 hex digits drawn afresh for each file, or at
//! `.<16 hex digits of BLAKE3(name)>.plumb-tmp-<tag>` when that would
//! exceed 255 bytes. The fresh tag and `O_EXCL` mean a temporary file never
//! replaces anything. [`leftovers`](Target::leftovers) finds, and
//! [`recover`](Target::recover) removes, the regular files and symlinks of
//! exactly that shape beside the paths asked about, which only an apply
//! killed or raced between writing and renaming leaves. Listings leave such
//! names out; any other name, `.name.plumb-tmp` included, is an ordinary
//! file that is listed, and never removed as a temporary.
#![deny(missing_docs)]

mod apply;
mod error;
mod leftover;
mod observe;
mod owners;
mod temp;
mod walk;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use plumb_core::Name;
use plumb_core::target::{
    Change, Content, DigestKind, Leftover, ObserveRequest, Observed, Target, TargetError,
    TargetPath,
};
use plumb_core::{Attrs, ResolvedAttrs};
use rustix::fs::{AtFlags, FileType, Mode, StatxFlags};
use rustix::io::Errno;

pub use crate::error::DirError;
use crate::error::{errno_error, kind_name, path_error, target_error};
use crate::observe::READ_FILE;
pub use crate::owners::OwnerError;
use crate::walk::{Root, Walker, open_root};

/// A directory tree on the local file system, as a [`Target`].
#[derive(Clone)]
pub struct DirTarget {
    root: PathBuf,
    owners: Option<owners::Owners>,
}

impl std::fmt::Debug for DirTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirTarget")
            .field("root", &self.root)
            .finish()
    }
}

impl DirTarget {
    /// A target for the directory `root`, which need not exist yet.
    pub fn new(root: PathBuf) -> DirTarget {
        // Rebuilt from its components, the path loses a trailing `/`,
        // which would make opening it follow a link.
        let root = root.components().collect();
        DirTarget { root, owners: None }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn open_root(&self) -> Result<Option<Root>, TargetError> {
        open_root(&self.root, &self.describe())
    }
}

impl Target for DirTarget {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    fn digest_kind(&self) -> DigestKind {
        DigestKind::Blob
    }

    fn observe(
        &mut self,
        requests: &[ObserveRequest],
    ) -> Result<Vec<Result<Observed, TargetError>>, TargetError> {
        let root = self.open_root()?;
        Ok(observe::observe_all(root.as_ref(), requests))
    }

    fn settle_time(&self) -> std::time::Duration {
        observe::racy_window() + std::time::Duration::from_millis(10)
    }

    fn reserved(&self, name: &[u8]) -> bool {
        temp::is_temp_name(name)
    }

    fn recover(&mut self, paths: &[TargetPath]) -> Result<(), TargetError> {
        let Some(root) = self.open_root()? else {
            return Ok(());
        };
        let mut first_error = None;
        leftover::scan(&root, paths, &mut |found| match found {
            Ok((dir, found)) => {
                for (i, name) in found {
                    match rustix::fs::unlinkat(dir, &name, AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => {
                            first_error.get_or_insert(path_error(
                                &paths[i],
                                DirError::doing("cannot remove its temporary file", e),
                            ));
                        }
                    }
                }
            }
            Err((i, e)) => {
                first_error.get_or_insert(path_error(
                    &paths[i],
                    DirError::doing("cannot look for its temporary files", e),
                ));
            }
        });
        first_error.map_or(Ok(()), Err)
    }

    fn supports_attrs(&self) -> bool {
        true
    }

    fn resolve_attrs(&mut self, attrs: &Attrs) -> Result<ResolvedAttrs, TargetError> {
        let describe = self.describe();
        self.owners
            .get_or_insert_with(owners::Owners::new)
            .resolve(attrs)
            .map_err(|e| TargetError::target(describe, e))
    }

    fn leftovers(&mut self, paths: &[TargetPath]) -> Result<Vec<Leftover>, TargetError> {
        let Some(root) = self.open_root()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        // A directory that cannot be listed is reported by observing it.
        leftover::scan(&root, paths, &mut |found| {
            for (i, name) in found.map(|(_, found)| found).unwrap_or_default() {
                let of = &paths[i];
                if let Ok(name) = Name::new(name) {
                    out.push(Leftover {
                        of: of.clone(),
                        path: TargetPath::join(of.parent().as_ref(), &name),
                    });
                }
            }
        });
        Ok(out)
    }

    fn read(&mut self, path: &TargetPath) -> Result<Vec<u8>, TargetError> {
        let Some(root) = self.open_root()? else {
            return Err(path_error(path, DirError::NoSuchFile));
        };
        let mut walker = Walker::new(&root);
        let (dir, _) = walker.parent(path).map_err(|d| d.into_error(path))?;
        let name = path.file_name();
        // Look before opening: opening a device can have effects.
        let not_a_file = |kind: FileType| {
            path_error(
                path,
                DirError::IsA {
                    kind: kind_name(kind),
                },
            )
        };
        match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
            Ok(st) => match FileType::from_raw_mode(u32::from(st.stx_mode)) {
                FileType::RegularFile => {}
                kind => return Err(not_a_file(kind)),
            },
            Err(Errno::NOENT) => return Err(path_error(path, DirError::NoSuchFile)),
            Err(e) => return Err(errno_error(path, e)),
        }
        let fd = match rustix::fs::openat(dir, name, READ_FILE, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(not_a_file(FileType::Symlink)),
            Err(Errno::NOENT) => return Err(path_error(path, DirError::NoSuchFile)),
            Err(e) => return Err(errno_error(path, e)),
        };
        let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE)
            .map_err(|e| errno_error(path, e))?;
        match FileType::from_raw_mode(u32::from(st.stx_mode)) {
            FileType::RegularFile => {}
            kind => return Err(not_a_file(kind)),
        }
        let mut bytes = Vec::new();
        File::from(fd).read_to_end(&mut bytes).map_err(|e| {
            path_error(
                path,
                DirError::Os {
                    doing: None,
                    source: e,
                },
            )
        })?;
        Ok(bytes)
    }

    fn apply(
        &mut self,
        changes: &[Change],
        content: &dyn Content,
        done: &mut dyn FnMut(usize, Result<(), TargetError>),
    ) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let root = match self.open_root()? {
            Some(root) => root,
            None => {
                create_root(&self.root).map_err(|e| {
                    target_error(
                        &self.describe(),
                        DirError::doing("cannot create the root", e),
                    )
                })?;
                self.open_root()?
                    .ok_or_else(|| target_error(&self.describe(), DirError::RootVanished))?
            }
        };
        apply::apply_all(&root, changes, content, done, &self.describe())
    }
}

/// Creates `root` and its missing parents, syncing each parent.
fn create_root(root: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut p = root;
    loop {
        match std::fs::symlink_metadata(p) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(p);
                match p.parent() {
                    Some(q) if !q.as_os_str().is_empty() => p = q,
                    _ => break,
                }
            }
            Err(e) => return Err(e),
        }
    }
    for dir in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o755).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let parent = dir
            .parent()
            .filter(|q| !q.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}
