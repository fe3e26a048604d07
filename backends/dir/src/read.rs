//! The parallel phase: stat, read and store every file and symlink.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use plumb_core::source::{IngestSink, SourceError};
use plumb_core::{BlobId, EntryValue, ObjectId};
use rayon::prelude::*;

use crate::cache::{CacheEntry, StatCache, Timestamp};
use crate::scan::FileItem;

/// How often, in files, progress is reported.
const PROGRESS_EVERY: u64 = 256;

/// A read buffer larger than this is released after use rather than kept
/// for the worker's next file.
const KEEP_BUFFER: usize = 8 << 20;

/// What the parallel phase produced.
pub(crate) struct ReadAll {
    /// One tree entry value per file, in the order of the input.
    pub values: Vec<EntryValue>,
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
    cache: Option<CacheEntry>,
    read: Option<u64>,
}

/// Stats, reads and stores `files` in parallel, using `cache` to skip
/// files that have not changed. Entries whose times are at or after
/// `racy_limit` are not cached.
pub(crate) fn read_all(
    sink: &dyn IngestSink,
    root: &Path,
    files: &[FileItem],
    cache: Option<&StatCache>,
    racy_limit: Timestamp,
) -> Result<ReadAll, SourceError> {
    let total = files.len() as u64;
    let done = AtomicU64::new(0);
    let progress = Mutex::new(());
    sink.progress("files", 0, total);

    let results: Vec<Done> = files
        .par_iter()
        .map_init(Vec::new, |buf, file| {
            let out = one(sink, root, file, cache, racy_limit, buf);
            if buf.capacity() > KEEP_BUFFER {
                *buf = Vec::new();
            }
            if (done.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(PROGRESS_EVERY) {
                // Under the lock, so reported counts never go backwards.
                let _guard = progress.lock().unwrap_or_else(|e| e.into_inner());
                sink.progress("files", done.load(Ordering::Relaxed), total);
            }
            out
        })
        .collect::<Result<_, _>>()?;
    sink.progress("files", total, total);

    let mut all = ReadAll {
        values: Vec::with_capacity(results.len()),
        cache_entries: Vec::new(),
        files_read: 0,
        bytes_read: 0,
    };
    for (file, d) in files.iter().zip(results) {
        all.values.push(d.value);
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

fn changed(path: PathBuf, what: &str) -> SourceError {
    SourceError::Io {
        path,
        source: std::io::Error::other(format!("{what} while the snapshot was taken")),
    }
}

/// Stats, and if needed reads and stores, one file or symlink.
fn one(
    sink: &dyn IngestSink,
    root: &Path,
    file: &FileItem,
    cache: Option<&StatCache>,
    racy_limit: Timestamp,
    buf: &mut Vec<u8>,
) -> Result<Done, SourceError> {
    let path = file.path(root);
    let meta = std::fs::symlink_metadata(&path).map_err(io_error(path.clone()))?;
    let ft = meta.file_type();
    let is_link = ft.is_symlink();
    if !is_link && !ft.is_file() {
        return Err(changed(path, "changed kind"));
    }
    let exec = meta.mode() & 0o111 != 0;
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
            cache: Some(hit.clone()),
            read: None,
        });
    }

    if is_link {
        let target = std::fs::read_link(&path).map_err(io_error(path.clone()))?;
        let bytes = target.as_os_str().as_bytes();
        let id = sink.put_blob(bytes)?;
        return Ok(Done {
            value: wrap(id),
            cache: CacheEntry::new(&meta, id, racy_limit),
            read: Some(bytes.len() as u64),
        });
    }

    // Never follow a link nor block on a FIFO that replaced the file since
    // it was listed.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(changed(path, "became a symbolic link"));
        }
        Err(e) => return Err(io_error(path)(e)),
    };
    let meta = f.metadata().map_err(io_error(path.clone()))?;
    if !meta.is_file() {
        return Err(changed(path, "changed kind"));
    }
    let n = read_into(&f, &meta, buf).map_err(io_error(path.clone()))?;
    let id = sink.put_blob(buf)?;
    // The execute bit and the cache entry describe what was read: the
    // opened file, which may differ from the one stat'ed above.
    let exec = meta.mode() & 0o111 != 0;
    let value = if exec {
        EntryValue::Executable(id)
    } else {
        EntryValue::File(id)
    };
    // A size that moved while reading means the file is being written:
    // its stat describes no particular content, so don't cache it.
    let cache = if n == meta.len() {
        CacheEntry::new(&meta, id, racy_limit)
    } else {
        None
    };
    Ok(Done {
        value,
        cache,
        read: Some(n),
    })
}

/// Reads all of `f` into `buf` (cleared first); returns the byte count.
fn read_into(mut f: &File, meta: &Metadata, buf: &mut Vec<u8>) -> std::io::Result<u64> {
    buf.clear();
    let hint = usize::try_from(meta.len()).unwrap_or(0);
    // One extra byte lets read_to_end see end-of-file without growing.
    buf.reserve(hint.saturating_add(1));
    let n = f.read_to_end(buf)?;
    Ok(n as u64)
}
