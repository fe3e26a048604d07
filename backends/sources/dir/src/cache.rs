//! The stat cache: root-relative path → stat fields and blob id, so an
//! unchanged file need not be read again.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use plumb_core::attrs::MODE_BITS;
use plumb_core::source::{IngestSink, SourceError};
use plumb_core::{Attrs, BlobId, Owner};
use serde::{Deserialize, Serialize};

use crate::STAT_CACHE_KEY;

/// The layout version of the encoded cache; another version is ignored.
const VERSION: u32 = 1;

/// How long before the scan began a file must have last changed for its
/// stat to be trusted later (covers file systems with 1–2 s timestamps).
const RACY_WINDOW_SECS: i64 = 2;

/// A file time: seconds since the Unix epoch and nanoseconds within them.
/// The derived order is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// The earliest time at which a change makes a stat untrustworthy, for
    /// a scan that began at `started`.
    pub fn racy_limit(started: SystemTime) -> Self {
        match started.duration_since(UNIX_EPOCH) {
            Ok(d) => Self {
                secs: i64::try_from(d.as_secs())
                    .unwrap_or(i64::MAX)
                    .saturating_sub(RACY_WINDOW_SECS),
                nanos: d.subsec_nanos(),
            },
            // A clock before 1970: trust nothing.
            Err(_) => Self {
                secs: i64::MIN,
                nanos: 0,
            },
        }
    }

    fn new(secs: i64, nanos: i64) -> Self {
        Self {
            secs,
            nanos: u32::try_from(nanos).unwrap_or(0),
        }
    }
}

/// What is remembered of one file or symlink.
/// The stat fields plumb looks at, from `statx` or from `fstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub size: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub ino: u64,
    /// The file type and permission bits (`st_mode`).
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
    /// The group's gid.
    pub gid: u32,
}

impl FileStat {
    pub fn from_statx(st: &rustix::fs::Statx) -> Self {
        Self {
            size: st.stx_size,
            mtime: Timestamp::new(st.stx_mtime.tv_sec, i64::from(st.stx_mtime.tv_nsec)),
            ctime: Timestamp::new(st.stx_ctime.tv_sec, i64::from(st.stx_ctime.tv_nsec)),
            ino: st.stx_ino,
            mode: u32::from(st.stx_mode),
            uid: st.stx_uid,
            gid: st.stx_gid,
        }
    }

    pub fn from_metadata(meta: &Metadata) -> Self {
        Self {
            size: meta.len(),
            mtime: Timestamp::new(meta.mtime(), meta.mtime_nsec()),
            ctime: Timestamp::new(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    /// The attributes a snapshot records: permission bits, uid and gid.
    pub fn attrs(&self) -> Attrs {
        Attrs {
            mode: Some(self.mode & MODE_BITS),
            owner: Some(Owner::Id(self.uid)),
            group: Some(Owner::Id(self.gid)),
        }
    }

    fn file_type(&self) -> rustix::fs::FileType {
        rustix::fs::FileType::from_raw_mode(self.mode)
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == rustix::fs::FileType::Symlink
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == rustix::fs::FileType::RegularFile
    }

    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheEntry {
    size: u64,
    mtime: Timestamp,
    ctime: Timestamp,
    ino: u64,
    /// A symlink rather than a regular file.
    link: bool,
    /// The blob holding the content (or link target).
    pub blob: [u8; 32],
}

impl CacheEntry {
    /// An entry for a file with `meta` stored as `blob`, or `None` if it
    /// changed too recently (at or after `racy_limit`) to be trusted.
    pub fn new(meta: &FileStat, blob: BlobId, racy_limit: Timestamp) -> Option<Self> {
        let entry = Self {
            size: meta.size,
            mtime: meta.mtime,
            ctime: meta.ctime,
            ino: meta.ino,
            link: meta.is_symlink(),
            blob: *blob.as_bytes(),
        };
        (entry.mtime < racy_limit && entry.ctime < racy_limit).then_some(entry)
    }

    fn matches(&self, meta: &FileStat) -> bool {
        self.size == meta.size
            && self.ino == meta.ino
            && self.link == meta.is_symlink()
            && self.mtime == meta.mtime
            && self.ctime == meta.ctime
    }
}

/// The whole cache of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatCache {
    version: u32,
    /// The root the paths are relative to; a cache for another root is
    /// ignored.
    root: Vec<u8>,
    /// Sorted by path, each path once. Encoded exactly as a map would be
    /// (a count, then key and value pairs), but decoded without building
    /// one: a sorted list is searched as fast and loads several times
    /// faster.
    entries: Vec<(Vec<u8>, CacheEntry)>,
}

impl StatCache {
    /// A cache of `entries` for `root`.
    pub fn new(root: &Path, mut entries: Vec<(Vec<u8>, CacheEntry)>) -> Self {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|a, b| a.0 == b.0);
        }
        Self {
            version: VERSION,
            root: root.as_os_str().as_bytes().to_vec(),
            entries,
        }
    }

    /// Whether the entries are sorted by path, each path once (a decoded
    /// cache that is not was not written by this code).
    fn is_well_formed(&self) -> bool {
        self.entries.is_sorted_by(|a, b| a.0 < b.0)
    }

    /// The entry for `rel`, if its stat still matches `meta`.
    pub fn lookup(&self, rel: &[u8], meta: &FileStat) -> Option<&CacheEntry> {
        let i = self
            .entries
            .binary_search_by(|(path, _)| path.as_slice().cmp(rel))
            .ok()?;
        Some(&self.entries[i].1).filter(|e| e.matches(meta))
    }

    /// The encoding stored in the sink.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding plain data into a Vec cannot fail")
    }
}

/// Reads the cache for `root`; `None` if there is none usable. Only a sink
/// failure is an error: an undecodable value is ignored and rebuilt.
pub(crate) fn load(sink: &dyn IngestSink, root: &Path) -> Result<Option<StatCache>, SourceError> {
    let Some(bytes) = sink.cache_get(STAT_CACHE_KEY)? else {
        return Ok(None);
    };
    // The version leads, so another layout is recognised before decoding it.
    if let Ok((version, _)) = postcard::take_from_bytes::<u32>(&bytes)
        && version != VERSION
    {
        tracing::debug!(version, "ignoring a stat cache of another version");
        return Ok(None);
    }
    let cache = match postcard::from_bytes::<StatCache>(&bytes) {
        Ok(cache) => cache,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable stat cache; it will be rebuilt");
            return Ok(None);
        }
    };
    if !cache.is_well_formed() {
        tracing::warn!("ignoring a stat cache with unsorted entries; it will be rebuilt");
        return Ok(None);
    }
    if cache.root != root.as_os_str().as_bytes() {
        tracing::debug!("ignoring a stat cache written for another root");
        return Ok(None);
    }
    Ok(Some(cache))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> CacheEntry {
        CacheEntry {
            size: u64::from(n),
            mtime: Timestamp::new(1, 2),
            ctime: Timestamp::new(3, 4),
            ino: 5,
            link: false,
            blob: [n; 32],
        }
    }

    #[test]
    fn encoded_like_a_map_and_searched_in_order() {
        // The layout written when entries were a map reads back the same.
        #[derive(Serialize)]
        struct AsMap {
            version: u32,
            root: Vec<u8>,
            entries: std::collections::BTreeMap<Vec<u8>, CacheEntry>,
        }
        let pairs = vec![
            (b"b/c".to_vec(), entry(2)),
            (b"a".to_vec(), entry(1)),
            (b"z".to_vec(), entry(3)),
        ];
        let map = AsMap {
            version: VERSION,
            root: b"/r".to_vec(),
            entries: pairs.iter().cloned().collect(),
        };
        let cache = StatCache::new(Path::new("/r"), pairs);
        assert_eq!(postcard::to_allocvec(&map).unwrap(), cache.encode());
        let back: StatCache = postcard::from_bytes(&cache.encode()).unwrap();
        assert!(back.is_well_formed());
        assert_eq!(back, cache);
        let stat = |e: &CacheEntry| FileStat {
            size: e.size,
            mtime: e.mtime,
            ctime: e.ctime,
            ino: e.ino,
            mode: 0o100644,
            uid: 0,
            gid: 0,
        };
        assert_eq!(back.lookup(b"b/c", &stat(&entry(2))), Some(&entry(2)));
        assert_eq!(back.lookup(b"b/c", &stat(&entry(9))), None, "stat differs");
        assert_eq!(back.lookup(b"b", &stat(&entry(2))), None, "no such path");

        // Unsorted entries on disk are not trusted.
        let mut bad = back.clone();
        bad.entries.swap(0, 2);
        assert!(!bad.is_well_formed());
    }
}
