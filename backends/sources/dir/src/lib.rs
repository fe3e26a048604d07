//! Snapshots a plain directory into plumb's store.
//!
//! [`DirSource`] implements [`Source`] for a directory on a Unix file
//! system. Each [`ingest`](Source::ingest) walks the directory, stores its
//! files as blobs and its directories as trees, and commits one snapshot
//! (revision `dir:<n>`) if the tree differs from the latest snapshot's.
//!
//! ```no_run
//! use plumb_source_dir::DirSource;
//!
//! let source = DirSource::new("/srv/config", None)?;
//! let scoped = DirSource::new("/srv/config", Some("nginx".as_ref()))?;
//! # Ok::<(), plumb_core::source::SourceError>(())
//! ```
//!
//! # What is recorded
//!
//! - A regular file becomes [`EntryValue::File`], or
//!   [`EntryValue::Executable`] if any of its three execute bits is set.
//!   No other permission bit, owner or time is recorded.
//! - A symbolic link becomes [`EntryValue::Symlink`] whose blob holds the raw
//!   bytes of the link target. Links are never followed, wherever they
//!   point (inside or outside the root, dangling or not). Only the root
//!   itself may be a link: it is resolved once, by [`DirSource::new`].
//! - A directory becomes [`EntryValue::Tree`]. **Empty directories are
//!   kept** as empty trees (git drops them), since a configuration tree may
//!   need an empty directory to exist. A directory whose whole content is
//!   ignored is kept the same way.
//! - Names are the raw bytes the file system returns, UTF-8 or not.
//! - Sockets, FIFOs and device nodes are **skipped**; each one adds a
//!   warning naming its path to [`IngestReport::warnings`] (and to the
//!   `tracing` log). They are never opened.
//! - A root that became empty while the previous snapshot was not still
//!   gives a snapshot (the empty tree), with a warning naming the root: a
//!   pruning target applying it would lose everything plumb put there.
//!
//! # What is left out
//!
//! - Entries named `.git`, `.hg` or `.plumb`, at any depth, in any letter
//!   case and in the disguises [`plumb_core::is_reserved_name`] lists. This
//!   covers the repository directories and also a `.git` *file* (the
//!   pointer a git worktree or submodule checkout holds), which is
//!   repository metadata, never configuration. They are left out silently:
//!   a checkout's own `.git` is expected.
//! - Paths matched by `.gitignore` files and by `.plumbignore` files, which
//!   use the same syntax. Both kinds are read in every directory under the
//!   root, whether or not the directory is a git repository. A match in
//!   any `.plumbignore` takes precedence over any `.gitignore` match; among
//!   files of one kind the deepest match wins, and `!pattern` re-includes
//!   as in git. The ignore files themselves are snapshotted, as git does.
//! - Nothing outside the root shapes the result: ignore files above the
//!   root, `.git/info/exclude`, the user's global git excludes and
//!   ripgrep-style `.ignore` files are all disregarded. Hidden files are
//!   included like any other.
//! - A malformed line in an ignore file is skipped with a warning; an
//!   ignore file that cannot be read fails the ingest.
//!
//! # Errors and atomicity
//!
//! A file or directory that cannot be read (permission denied), or that
//! vanishes or changes kind while the snapshot is taken, fails the whole
//! ingest with [`SourceError::Io`] naming the path, and nothing is
//! committed. A snapshot silently missing a file would later have it pruned
//! from every target, so failing is the safe choice; running the ingest
//! again once the directory is quiet succeeds.
//!
//! A regular file is opened with `O_NOFOLLOW | O_NONBLOCK`, so a file
//! swapped for a link or a FIFO between listing and reading is detected
//! (and fails the ingest) instead of being followed or blocking.
//!
//! # Scoping
//!
//! With a subdirectory (`--path`), the snapshot's root tree is that
//! subdirectory. It must be relative, must not contain `..`, must lie
//! outside any `.git`/`.hg`/`.plumb` directory, and every component must be
//! a real directory (not a link). The walk still starts at the root, so
//! ignore files between the root and the subdirectory apply; a subdirectory
//! that they ignore is an error rather than an empty snapshot.
//!
//! # Snapshots
//!
//! - If the tree equals the latest snapshot's tree, nothing is committed.
//! - Otherwise the snapshot has the latest snapshot as its only parent,
//!   revision `dir:<n>` with `n` one more than the latest's (`dir:1` first;
//!   a latest snapshot whose revision is not `dir:<n>` is an error), and
//!   message `snapshot of <path>`.
//! - Author and committer are `$USER` (else `$LOGNAME`, else `unknown`) with
//!   e-mail `<user>@<hostname>`, the hostname read from `/etc/hostname` (else
//!   `/proc/sys/kernel/hostname`, else `localhost`). The time is when the
//!   scan began, in UTC: the timezone offset is always 0, as the local zone
//!   is not consulted.
//! - Extra fields: `dir.root`, the absolute (canonical) root path as bytes,
//!   and, when scoped, `dir.path`, the subdirectory relative to the root.
//!
//! # Stat cache
//!
//! Like git's index, a stat cache spares re-reading unchanged files. It is
//! stored under the sink cache key `stat-cache` as a postcard-encoded map
//! from root-relative path bytes to size, modification time, change time,
//! inode, kind (file or link) and blob id. A cached blob id is used only if
//! all of these still match; the execute bit is always taken from the
//! fresh `lstat`.
//!
//! - **Racy-clean guard:** an entry whose modification or change time is
//!   later than two seconds before the scan began is not cached, so a file
//!   written again within the same timestamp tick (file systems keep times
//!   as coarsely as 1–2 s) is never mistaken for unchanged. Such files are
//!   simply read again next time. Files with times in the future are never
//!   cached.
//! - The cache is written only when it changed, and is durable once the
//!   ingest ends (with the snapshot, or after it when nothing new was
//!   committed); an ingest that fails or is killed loses only the refreshed
//!   entries, which costs re-reading but never correctness.
//! - The cache is an optimisation: a value that does not decode, or was
//!   written for another root or format version, is ignored (with a
//!   `tracing` warning if undecodable) and rebuilt, never an error.
//! - Cached blob ids are trusted to be in the store: cache writes are only
//!   made durable together with a snapshot whose tree holds those blobs.
//!
//! # Performance
//!
//! The walk is sequential; stat, read, hash, compress and store of the
//! files run in parallel on the rayon pool. Each worker holds at most one
//! file's content at a time (a file is passed to
//! [`IngestSink::put_blob`] whole), so memory is bounded by the largest
//! files, not by the tree. Progress is reported as `files` every 256 files.
#![deny(missing_docs)]

mod cache;
mod read;
mod scan;
mod snapshot;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use plumb_core::source::{IngestReport, IngestSink, Source, SourceError};
use plumb_core::{EntryValue, Tree, TreeEntry, is_reserved_name};

/// The name of plumb's own ignore files (gitignore syntax).
pub const IGNORE_FILENAME: &str = ".plumbignore";

/// The sink cache key of the stat cache.
pub const STAT_CACHE_KEY: &[u8] = b"stat-cache";

/// The scheme prefix of this source's native revisions: `dir:<n>`.
pub const REVISION_PREFIX: &str = "dir:";

/// A plain directory as a [`Source`]. See the [crate docs](crate) for what
/// is recorded and what is left out.
#[derive(Debug, Clone)]
pub struct DirSource {
    /// The canonical, absolute root.
    root: PathBuf,
    /// The normalised subdirectory the snapshot is scoped to, if any.
    subdir: Option<PathBuf>,
}

impl DirSource {
    /// A source for the directory `root`, optionally scoped to `subdir`, a
    /// path relative to `root` whose content becomes the snapshot's root
    /// tree (`None`, or an empty path or `.`, for the whole root).
    ///
    /// `root` must exist and be a directory (a link to one is resolved
    /// here, once). `subdir` must be relative, must not contain `..` or a
    /// `.git`/`.hg`/`.plumb` component, and must name a directory reached
    /// without following links. Anything else is [`SourceError::Invalid`];
    /// other failures to inspect the paths are [`SourceError::Io`].
    pub fn new(root: impl AsRef<Path>, subdir: Option<&Path>) -> Result<Self, SourceError> {
        let given = root.as_ref();
        let invalid = |reason: &str| SourceError::Invalid {
            location: given.display().to_string(),
            reason: reason.to_owned(),
        };
        let root = match std::fs::canonicalize(given) {
            Ok(root) => root,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid("no such directory"));
            }
            Err(source) => {
                return Err(SourceError::Io {
                    path: given.to_path_buf(),
                    source,
                });
            }
        };
        let meta = std::fs::metadata(&root).map_err(|source| SourceError::Io {
            path: root.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(invalid("not a directory"));
        }
        let subdir = match subdir {
            None => None,
            Some(sub) => check_subdir(&root, sub)?,
        };
        Ok(Self { root, subdir })
    }

    /// The canonical, absolute root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The subdirectory (relative to [`root`](Self::root)) the snapshot is
    /// scoped to, if any.
    pub fn subdir(&self) -> Option<&Path> {
        self.subdir.as_deref()
    }

    /// The directory whose content becomes the snapshot's root tree.
    pub fn snapshot_root(&self) -> PathBuf {
        match &self.subdir {
            Some(sub) => self.root.join(sub),
            None => self.root.clone(),
        }
    }
}

/// Normalises and checks a scoping subdirectory; `None` if it names the
/// root itself.
fn check_subdir(root: &Path, sub: &Path) -> Result<Option<PathBuf>, SourceError> {
    let invalid = |reason: String| SourceError::Invalid {
        location: sub.display().to_string(),
        reason,
    };
    let mut norm = PathBuf::new();
    for c in sub.components() {
        match c {
            Component::Normal(name) => {
                if is_reserved_name(name.as_bytes()) {
                    return Err(invalid(format!(
                        "lies inside a {} directory, which is never snapshotted",
                        name.display()
                    )));
                }
                norm.push(name);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(invalid("must not contain `..`".to_owned()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid(
                    "must be a path relative to the root directory".to_owned(),
                ));
            }
        }
    }
    if norm.as_os_str().is_empty() {
        return Ok(None);
    }
    let mut at = root.to_path_buf();
    for c in norm.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(invalid(format!(
                    "{} is a symbolic link; links are never followed",
                    at.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(invalid(format!("{} is not a directory", at.display())));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid(format!("{} does not exist", at.display())));
            }
            Err(source) => return Err(SourceError::Io { path: at, source }),
        }
    }
    Ok(Some(norm))
}

impl Source for DirSource {
    fn ingest(&self, sink: &dyn IngestSink) -> Result<IngestReport, SourceError> {
        let started = SystemTime::now();
        let latest = sink.latest()?;
        let next_revision = snapshot::next_revision(latest.as_ref().map(|(_, s)| s), &self.root)?;

        // The walk waits on the file system, loading the cache on the CPU:
        // do both at once.
        let (scan, old_cache) = rayon::join(
            || scan::walk(&self.root, self.subdir.as_deref()),
            || cache::load(sink, &self.root),
        );
        let (scan, old_cache) = (scan?, old_cache?);
        let mut report = IngestReport {
            warnings: scan.warnings,
            ..IngestReport::default()
        };

        let read = read::read_all(
            sink,
            &self.root,
            &scan.dirs,
            &scan.files,
            old_cache.as_ref(),
            cache::Timestamp::racy_limit(started),
        )?;
        report.files_read = read.files_read;
        report.bytes_read = read.bytes_read;

        // Bottom-up: a directory's index is always greater than its
        // parent's (the walk is depth-first, pre-order).
        let mut dirs = scan.dirs;
        for (file, (value, attrs)) in scan.files.iter().zip(read.values) {
            dirs[file.dir].entries.push(TreeEntry {
                name: file.name.clone(),
                value,
                attrs,
            });
        }
        let mut root_tree = None;
        let mut root_empty = false;
        while let Some(dir) = dirs.pop() {
            if dir.parent.is_none() {
                root_empty = dir.entries.is_empty();
            }
            let tree = Tree::new(dir.entries).map_err(|e| SourceError::Read {
                location: self
                    .root
                    .join(OsStr::from_bytes(&dir.rel))
                    .display()
                    .to_string(),
                source: Box::new(e),
            })?;
            let id = sink.put_tree(&tree)?;
            match dir.parent {
                Some((parent, name)) => dirs[parent].entries.push(TreeEntry {
                    name,
                    value: EntryValue::Tree(id),
                    attrs: dir.attrs,
                }),
                None => root_tree = Some(id),
            }
        }
        let root_tree = root_tree.expect("the walk always records the snapshot root first");

        let new_cache = cache::StatCache::new(&self.root, read.cache_entries);
        if old_cache.as_ref() != Some(&new_cache) {
            sink.cache_put(STAT_CACHE_KEY, &new_cache.encode())?;
        }

        if root_empty
            && latest
                .as_ref()
                .is_some_and(|(_, prev)| prev.tree != root_tree)
        {
            // An emptied tree applied to a pruning target deletes
            // everything there: say so before anyone applies it.
            report.warnings.push(format!(
                "{} is empty now, and the previous snapshot was not",
                self.snapshot_root().display()
            ));
        }
        if let Some((_, prev)) = &latest
            && prev.tree == root_tree
        {
            tracing::debug!(root = %self.root.display(), "tree unchanged; nothing to commit");
            return Ok(report);
        }
        let snap = snapshot::build(
            root_tree,
            latest.map(|(id, _)| id),
            next_revision,
            &self.root,
            self.subdir.as_deref(),
            started,
        );
        let id = sink.commit(&snap)?;
        report.new_snapshots.push(id);
        Ok(report)
    }
}
