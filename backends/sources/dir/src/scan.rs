//! The sequential walk: which directories, files and links the snapshot
//! holds, honouring ignore files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use plumb_core::source::SourceError;
use plumb_core::{Attrs, Name, TreeEntry, is_reserved_name};

use crate::cache::FileStat;

use crate::IGNORE_FILENAME;

/// A directory of the snapshot.
pub(crate) struct DirNode {
    /// The parent directory's index and this directory's name in it;
    /// `None` for the snapshot root.
    pub parent: Option<(usize, Name)>,
    /// The path relative to the source root, for messages.
    pub rel: Vec<u8>,
    /// The entries, filled in as files are read and subtrees stored.
    pub entries: Vec<TreeEntry>,
    /// Its permission bits, owner and group (none for the root, which has
    /// no entry to carry them).
    pub attrs: Attrs,
}

/// A regular file or symlink of the snapshot.
pub(crate) struct FileItem {
    /// The index of the directory holding it.
    pub dir: usize,
    /// Its name there.
    pub name: Name,
    /// The path relative to the source root: the stat cache key.
    pub rel: Vec<u8>,
}

impl FileItem {
    /// The absolute path, given the source root.
    pub fn path(&self, root: &Path) -> PathBuf {
        root.join(OsStr::from_bytes(&self.rel))
    }
}

/// What the walk found.
pub(crate) struct Scan {
    /// Directories in depth-first pre-order: the snapshot root first, and
    /// every directory after its parent.
    pub dirs: Vec<DirNode>,
    /// Regular files and symlinks.
    pub files: Vec<FileItem>,
    /// Warnings for the report (skipped special files, bad ignore rules).
    pub warnings: Vec<String>,
}

/// Walks `root`, keeping only `subdir` (relative, normalised) if given.
pub(crate) fn walk(root: &Path, subdir: Option<&Path>) -> Result<Scan, SourceError> {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILENAME);
    {
        let root = root.to_path_buf();
        let subdir = subdir.map(Path::to_path_buf);
        builder.filter_entry(move |entry| {
            let name = entry.file_name();
            if is_reserved_name(name.as_bytes()) {
                return false;
            }
            // Only the subdirectory, its content, and the directories
            // leading to it (whose ignore files still apply).
            match &subdir {
                Some(sub) => entry
                    .path()
                    .strip_prefix(&root)
                    .is_ok_and(|rel| sub.starts_with(rel) || rel.starts_with(sub)),
                None => true,
            }
        });
    }

    let target_depth = subdir.map_or(0, |s| s.components().count());
    let mut scan = Scan {
        dirs: Vec::new(),
        files: Vec::new(),
        warnings: Vec::new(),
    };
    // The index of the directory being listed at each depth below the target.
    let mut stack: Vec<usize> = Vec::new();

    for item in builder.build() {
        let entry = item.map_err(|e| hard_error(e, root))?;
        if let Some(err) = entry.error() {
            soft_error(err, root, &mut scan.warnings)?;
        }
        let path = entry.path();
        let depth = entry.depth();
        if depth < target_depth {
            continue; // a directory leading to the subdirectory
        }
        let Some(ft) = entry.file_type() else {
            continue; // stdin; never produced for a directory walk
        };
        let rel = path
            .strip_prefix(root)
            .expect("the walker yields paths under its root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        if depth == target_depth {
            if ft.is_dir() {
                stack.clear();
                stack.push(scan.dirs.len());
                scan.dirs.push(DirNode {
                    parent: None,
                    rel,
                    entries: Vec::new(),
                    attrs: Attrs::default(),
                });
            }
            // Otherwise the subdirectory turned into something else since
            // it was checked; reported below as missing.
            continue;
        }
        let parent = *stack
            .get(depth - target_depth - 1)
            .expect("a directory is listed before its entries");
        let name = Name::new(entry.file_name().as_bytes()).map_err(|e| SourceError::Read {
            location: path.display().to_string(),
            source: Box::new(e),
        })?;
        if ft.is_dir() {
            let meta = std::fs::symlink_metadata(path).map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            stack.truncate(depth - target_depth);
            stack.push(scan.dirs.len());
            scan.dirs.push(DirNode {
                parent: Some((parent, name)),
                rel,
                entries: Vec::new(),
                attrs: FileStat::from_metadata(&meta).attrs(),
            });
        } else if ft.is_file() || ft.is_symlink() {
            scan.files.push(FileItem {
                dir: parent,
                name,
                rel,
            });
        } else {
            let kind = if ft.is_fifo() {
                "FIFO"
            } else if ft.is_socket() {
                "socket"
            } else if ft.is_block_device() {
                "block device"
            } else if ft.is_char_device() {
                "character device"
            } else {
                "special file"
            };
            tracing::debug!(path = %path.display(), kind, "skipping special file");
            scan.warnings
                .push(format!("skipped {kind} {}", path.display()));
        }
    }
    if scan.dirs.is_empty() {
        let sub = subdir.unwrap_or(Path::new("."));
        return Err(SourceError::Invalid {
            location: root.join(sub).display().to_string(),
            reason: "not a directory, or excluded by an ignore file".to_owned(),
        });
    }
    Ok(scan)
}

/// The deepest path an ignore error names.
fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, err } => Some(error_path(err).unwrap_or(path)),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Partial(errs) => errs.iter().find_map(error_path),
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

/// An error that ends the walk: the root or a directory could not be read.
fn hard_error(err: ignore::Error, root: &Path) -> SourceError {
    let path = error_path(&err).unwrap_or(root).to_path_buf();
    if err.io_error().is_none() {
        return SourceError::Read {
            location: path.display().to_string(),
            source: Box::new(err),
        };
    }
    let source = err
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("an unreadable directory"));
    SourceError::Io { path, source }
}

/// A problem with a directory's ignore files: unreadable ones fail the
/// ingest, malformed rules become warnings.
fn soft_error(
    err: &ignore::Error,
    root: &Path,
    warnings: &mut Vec<String>,
) -> Result<(), SourceError> {
    if let ignore::Error::Partial(errs) = err {
        for e in errs {
            soft_error(e, root, warnings)?;
        }
        return Ok(());
    }
    if let Some(io) = err.io_error() {
        return Err(SourceError::Io {
            path: error_path(err).unwrap_or(root).to_path_buf(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        });
    }
    tracing::debug!(error = %err, "skipping a malformed ignore rule");
    warnings.push(format!("skipped a malformed ignore rule: {err}"));
    Ok(())
}
