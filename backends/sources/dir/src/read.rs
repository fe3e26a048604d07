//! The parallel phase: stat, read and store every file and symlink.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use plumb_core::chunks::CHUNK_SIZE;
use plumb_core::source::{IngestSink, SourceError, StreamError};
use plumb_core::{Attrs, BlobId, EntryValue, ObjectId};
use rayon::prelude::*;

use crate::cache::{CacheEntry, FileStat, StatCache, Timestamp};
use crate::scan::{DirNode, FileItem};

/// How often, in files, progress is reported.
const PROGRESS_EVERY: u64 = 256;

/// A read buffer larger than this is released after use rather than kept
/// for the worker's next file.
const KEEP_BUFFER: usize = 8 << 20;

/// What the parallel phase produced.
pub(crate) struct ReadAll {
    /// One tree entry value per file, with its attributes, in the order
    /// of the input.
    pub values: Vec<(EntryValue, Attrs)>,
    /// Entries for the next stat cache, by root-relative path.
    pub cache_entries: Vec<(Vec<u8>, CacheEntry)>,
    /// Files whose content was read.
    pub files_read: u64,
    /// Bytes read.
    pub bytes_read: u64,
}

/// One file's outcome.
struct Done {
    value: EntryValue,
    attrs: Attrs,
    cache: Option<CacheEntry>,
    read: Option<u64>,
}

/// Stats, reads and stores `files` in parallel, using `cache` to skip
/// files that have not changed. Entries whose times are at or after
/// `racy_limit` are not cached.
pub(crate) fn read_all(
    sink: &dyn IngestSink,
    root: &Path,
    dirs: &[DirNode],
    files: &[FileItem],
    cache: Option<&StatCache>,
    racy_limit: Timestamp,
) -> Result<ReadAll, SourceError> {
    let total = files.len() as u64;
    let done = AtomicU64::new(0);
    let progress = Mutex::new(());
    sink.progress("files", 0, total);

    // Files are visited a directory at a time: each run of files in one
    // directory shares an open handle on it, so every stat and open is
    // relative to that handle and the kernel never walks the full path.
    // Opening the directory without following links keeps a directory
    // swapped for a link from leading the read outside the root.
    let results: Vec<Vec<Done>> = files
        .par_chunk_by(|a, b| a.dir == b.dir)
        .map(|run| {
            let rel = &dirs[run[0].dir].rel;
            let dir_path = root.join(OsStr::from_bytes(rel));
            let dir = open_dir(&dir_path)?;
            run.par_iter()
                .map_init(Vec::new, |buf, file| {
                    let out = one(sink, &dir, root, file, cache, racy_limit, buf);
                    if buf.capacity() > KEEP_BUFFER {
                        *buf = Vec::new();
                    }
                    if (done.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(PROGRESS_EVERY) {
                        let _guard = progress.lock().unwrap_or_else(|e| e.into_inner());
                        sink.progress("files", done.load(Ordering::Relaxed), total);
                    }
                    out
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    sink.progress("files", total, total);

    let mut all = ReadAll {
        values: Vec::with_capacity(files.len()),
        cache_entries: Vec::new(),
        files_read: 0,
        bytes_read: 0,
    };
    for (file, d) in files.iter().zip(results.into_iter().flatten()) {
        all.values.push((d.value, d.attrs));
        if let Some(entry) = d.cache {
            all.cache_entries.push((file.rel.clone(), entry));
        }
        if let Some(n) = d.read {
            all.files_read += 1;
            all.bytes_read += n;
        }
    }
    Ok(all)
}

fn io_error(path: PathBuf) -> impl FnOnce(std::io::Error) -> SourceError {
    move |source| SourceError::Io { path, source }
}

fn errno(path: PathBuf) -> impl FnOnce(rustix::io::Errno) -> SourceError {
    move |e| SourceError::Io {
        path,
        source: e.into(),
    }
}

/// A large file that could not be stored: the store's failure as it is,
/// anything else as a failure at `path`.
fn stream_error(path: PathBuf, e: StreamError) -> SourceError {
    match e {
        StreamError::Sink(e) => SourceError::Sink(e),
        StreamError::Read(source) => SourceError::Io { path, source },
        StreamError::Length { .. } => changed(path, "changed size"),
        e @ StreamError::TooLarge { .. } => SourceError::Io {
            path,
            source: std::io::Error::other(e),
        },
    }
}

fn changed(path: PathBuf, what: &str) -> SourceError {
    SourceError::Io {
        path,
        source: std::io::Error::other(format!("{what} while the snapshot was taken")),
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd, SourceError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
            changed(path.to_path_buf(), "was replaced")
        } else {
            errno(path.to_path_buf())(e)
        }
    })
}

/// Stats, and if needed reads and stores, one file. `dir` is an open
/// handle on the file's directory.
fn one(
    sink: &dyn IngestSink,
    dir: &OwnedFd,
    root: &Path,
    file: &FileItem,
    cache: Option<&StatCache>,
    racy_limit: Timestamp,
    buf: &mut Vec<u8>,
) -> Result<Done, SourceError> {
    let name = file.name.as_bytes();
    let mask = StatxFlags::TYPE
        | StatxFlags::MODE
        | StatxFlags::INO
        | StatxFlags::SIZE
        | StatxFlags::MTIME
        | StatxFlags::CTIME
        | StatxFlags::UID
        | StatxFlags::GID;
    let st = rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, mask)
        .map_err(|e| errno(file.path(root))(e))?;
    let meta = FileStat::from_statx(&st);
    let is_link = meta.is_symlink();
    if !is_link && !meta.is_file() {
        return Err(changed(file.path(root), "changed kind"));
    }
    let exec = meta.is_executable();
    // A symlink's own mode and owner mean nothing to a target; not kept.
    let attrs = if is_link {
        Attrs::default()
    } else {
        meta.attrs()
    };
    let wrap = |id: BlobId| {
        if is_link {
            EntryValue::Symlink(id)
        } else if exec {
            EntryValue::Executable(id)
        } else {
            EntryValue::File(id)
        }
    };

    if let Some(hit) = cache.and_then(|c| c.lookup(&file.rel, &meta)) {
        let id = BlobId::new(ObjectId::from_bytes(hit.blob));
        return Ok(Done {
            value: wrap(id),
            attrs,
            cache: Some(hit.clone()),
            read: None,
        });
    }

    if is_link {
        let target =
            rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| errno(file.path(root))(e))?;
        let bytes = target.as_bytes();
        let id = sink.put_blob(bytes)?;
        return Ok(Done {
            value: wrap(id),
            attrs,
            cache: CacheEntry::new(&meta, id, racy_limit),
            read: Some(bytes.len() as u64),
        });
    }

    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let f = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::LOOP) => {
            return Err(changed(file.path(root), "became a symbolic link"));
        }
        Err(e) => return Err(errno(file.path(root))(e)),
    };
    let path = || file.path(root);
    let meta = FileStat::from_metadata(&f.metadata().map_err(|e| io_error(path())(e))?);
    if !meta.is_file() {
        return Err(changed(path(), "changed kind"));
    }
    let (id, n) = if meta.size > CHUNK_SIZE {
        // A large file is read, hashed and stored a chunk at a time.
        let id = sink
            .put_blob_stream(meta.size, &mut &f)
            .map_err(|e| stream_error(path(), e))?;
        (id, meta.size)
    } else {
        let n = read_into(&f, meta.size, buf).map_err(|e| io_error(path())(e))?;
        (sink.put_blob(buf)?, n)
    };
    // The execute bit and the cache entry describe what was read: the
    // opened file, which may differ from the one stat'ed above.
    let value = if meta.is_executable() {
        EntryValue::Executable(id)
    } else {
        EntryValue::File(id)
    };
    // A size that moved while reading means the file is being written:
    // its stat describes no particular content, so don't cache it.
    let cache = if n == meta.size {
        CacheEntry::new(&meta, id, racy_limit)
    } else {
        None
    };
    Ok(Done {
        value,
        attrs: meta.attrs(),
        cache,
        read: Some(n),
    })
}

/// Reads all of `f` into `buf` (cleared first); returns the byte count.
fn read_into(mut f: &File, size: u64, buf: &mut Vec<u8>) -> std::io::Result<u64> {
    buf.clear();
    let hint = usize::try_from(size).unwrap_or(0);
    // One extra byte lets read_to_end see end-of-file without growing.
    buf.reserve(hint.saturating_add(1));
    let n = f.read_to_end(buf)?;
    Ok(n as u64)
}
