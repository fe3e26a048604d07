//! The index: source definitions, each source's log, native revisions,
//! times and caches, laid out over the backend's tables (`spec/store.md`).

use std::ops::Bound;

use plumb_core::source::NamedRef;
use plumb_core::{BlobId, ObjectId, SnapshotId};
use serde::{Deserialize, Serialize};

use super::{Batch, KeyRange, Table, prefix_end};
use super::{Store, StoreError};

/// Which kind of repository a source reads: the tag a source definition
/// stores, as the ordinal of its variant (`spec/store.md`), so a new kind
/// is a new variant at the end. What each kind does is its entry in
/// [`crate::sources`] ([`Vcs::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vcs {
    /// A plain directory.
    Dir,
    /// A Git repository.
    Git,
    /// A Mercurial repository.
    Hg,
}

/// A named source, as `plumb source add` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDef {
    /// Its name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// What it reads.
    pub vcs: Vcs,
    /// Path or URL, absolute for local paths.
    pub location: String,
    /// Refs to follow (empty: the default).
    pub refs: Vec<String>,
    /// Subdirectory to snapshot, if not the whole tree.
    pub path: Option<String>,
}

/// The stored form of a source definition; new versions add variants.
#[derive(Serialize, Deserialize)]
enum SourceRecord {
    V1(SourceDef),
}

/// One entry of a source's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position: 1 for the first snapshot ingested.
    pub seq: u64,
    /// The snapshot.
    pub id: SnapshotId,
}

/// Checks a source name.
pub fn check_source_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "bad source name {name:?}: use letters, digits, '.', '_' and '-', not starting with '.' or '-'"
        )))
    }
}

/// A key of the index's per-name tables (and the reconciler's keyspaces):
/// the source or target name, NUL, then `rest` (`spec/store.md`).
pub fn keyed(name: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1 + rest.len());
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

/// The inverse of [`keyed`]: the name before a key's first NUL, and what
/// follows it; `None` for a key without a NUL.
pub fn unkeyed(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let cut = key.iter().position(|b| *b == 0)?;
    Some((&key[..cut], &key[cut + 1..]))
}

pub(crate) fn head_ref(name: &str) -> Vec<u8> {
    format!("source/{name}").into_bytes()
}

/// The key prefix of a source's named refs in the refs table:
/// `ref` NUL source NUL (then the ref name).
pub(crate) fn named_ref_prefix(name: &str) -> Vec<u8> {
    let mut k = b"ref\0".to_vec();
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

/// Orders signed times as unsigned big-endian bytes.
pub(crate) fn time_key(time: i64) -> [u8; 8] {
    ((time as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn encode_entry(e: &LogEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&e.seq.to_be_bytes());
    v.extend_from_slice(e.id.as_bytes());
    v
}

pub(super) fn decode_entry(table: Table, key: &[u8], v: &[u8]) -> Result<LogEntry, StoreError> {
    if v.len() != 40 {
        return Err(corrupt(table, key, "expected 40 bytes"));
    }
    let (seq, id) = v.split_at(8);
    Ok(LogEntry {
        seq: u64::from_be_bytes(seq.try_into().expect("split at 8")),
        id: snapshot_id(table, key, id)?,
    })
}

pub(super) fn snapshot_id(table: Table, key: &[u8], v: &[u8]) -> Result<SnapshotId, StoreError> {
    let bytes: [u8; 32] = v
        .try_into()
        .map_err(|_| corrupt(table, key, "expected a 32-byte id"))?;
    Ok(SnapshotId::new(ObjectId::from_bytes(bytes)))
}

/// A named ref's value: the snapshot id, then the annotation blob's id
/// when there is one (`spec/store.md`).
pub(crate) fn encode_named_ref(r: &NamedRef) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(r.snapshot.as_bytes());
    if let Some(a) = &r.annotation {
        v.extend_from_slice(a.as_bytes());
    }
    v
}

pub(super) fn decode_named_ref(name: String, key: &[u8], v: &[u8]) -> Result<NamedRef, StoreError> {
    let (snapshot, annotation) = match v.len() {
        32 => (v, None),
        64 => (&v[..32], Some(&v[32..])),
        _ => return Err(corrupt(Table::Refs, key, "expected one or two 32-byte ids")),
    };
    Ok(NamedRef {
        name,
        snapshot: snapshot_id(Table::Refs, key, snapshot)?,
        annotation: annotation
            .map(|a| snapshot_id(Table::Refs, key, a).map(|id| BlobId::new(id.object_id())))
            .transpose()?,
    })
}

fn corrupt(table: Table, key: &[u8], reason: &str) -> StoreError {
    StoreError::CorruptIndex {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.into(),
    }
}

impl Store {
    /// Records a new source; fails if the name is taken.
    pub fn add_source(&self, def: &SourceDef) -> Result<(), StoreError> {
        check_source_name(&def.name)?;
        let value = postcard::to_stdvec(&SourceRecord::V1(def.clone()))
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut batch = Batch::new();
        batch.expect(Table::Sources, def.name.as_bytes(), None);
        batch.put(Table::Sources, def.name.as_bytes(), value);
        match self.commit(batch) {
            Err(StoreError::Engine(super::EngineError::Conflict { .. })) => {
                Err(StoreError::SourceExists {
                    name: def.name.clone(),
                })
            }
            other => Ok(other?),
        }
    }

    /// The source named `name`.
    pub fn source(&self, name: &str) -> Result<SourceDef, StoreError> {
        let raw = self
            .engine
            .get(Table::Sources, name.as_bytes())?
            .ok_or_else(|| StoreError::NoSuchSource { name: name.into() })?;
        decode_source(name.as_bytes(), &raw)
    }

    /// Every source, by name.
    pub fn sources(&self) -> Result<Vec<SourceDef>, StoreError> {
        let mut out = Vec::new();
        self.engine
            .scan(Table::Sources, KeyRange::all(), false, &mut |k, v| {
                out.push(decode_source(k, v).map_err(|e| super::EngineError::Other {
                    engine: "index",
                    message: e.to_string(),
                })?);
                Ok(true)
            })?;
        Ok(out)
    }

    /// Removes a source, its log, revisions, times and cache. Its objects
    /// stay until `gc`.
    pub fn remove_source(&self, name: &str) -> Result<(), StoreError> {
        self.source(name)?;
        let mut batch = Batch::new();
        batch.delete(Table::Sources, name.as_bytes());
        batch.delete(Table::Refs, head_ref(name));
        let prefix = keyed(name, b"");
        for table in [Table::Log, Table::Revisions, Table::Times, Table::Cache] {
            self.for_prefix(table, &prefix, false, |k, _| {
                batch.delete(table, k);
                Ok(true)
            })?;
        }
        self.for_prefix(Table::Refs, &named_ref_prefix(name), false, |k, _| {
            batch.delete(Table::Refs, k);
            Ok(true)
        })?;
        let mut snapshot_keys = Vec::new();
        self.log(name, |e| {
            let mut k = e.id.as_bytes().to_vec();
            k.extend_from_slice(name.as_bytes());
            snapshot_keys.push(k);
            Ok(true)
        })?;
        for k in snapshot_keys {
            batch.delete(Table::Snapshots, k);
        }
        self.commit(batch)
    }

    /// Visits entries of `table` whose key starts with `prefix`; stops when
    /// `visit` returns `false` or an error.
    pub(super) fn for_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        reverse: bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let end = prefix_end(prefix);
        let range = KeyRange::new(
            Bound::Included(prefix),
            end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        );
        let mut failure = None;
        self.engine
            .scan(table, range, reverse, &mut |k, v| match visit(k, v) {
                Ok(more) => Ok(more),
                Err(e) => {
                    failure = Some(e);
                    Ok(false)
                }
            })?;
        failure.map_or(Ok(()), Err)
    }

    /// The newest entry of a source's log.
    pub fn head(&self, name: &str) -> Result<Option<LogEntry>, StoreError> {
        let key = head_ref(name);
        self.engine
            .get(Table::Refs, &key)?
            .map(|v| decode_entry(Table::Refs, &key, &v))
            .transpose()
    }

    /// Visits a source's log newest first until `visit` returns `false`.
    pub fn log(
        &self,
        name: &str,
        mut visit: impl FnMut(LogEntry) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let prefix = keyed(name, b"");
        self.for_prefix(Table::Log, &prefix, true, |k, v| {
            let seq_bytes: [u8; 8] = k[prefix.len()..]
                .try_into()
                .map_err(|_| corrupt(Table::Log, k, "bad sequence number"))?;
            visit(LogEntry {
                seq: u64::from_be_bytes(seq_bytes),
                id: snapshot_id(Table::Log, k, v)?,
            })
        })
    }

    /// The log entry at position `seq`.
    pub fn log_at(&self, name: &str, seq: u64) -> Result<Option<LogEntry>, StoreError> {
        let key = keyed(name, &seq.to_be_bytes());
        self.engine
            .get(Table::Log, &key)?
            .map(|v| {
                Ok(LogEntry {
                    seq,
                    id: snapshot_id(Table::Log, &key, &v)?,
                })
            })
            .transpose()
    }

    /// The log entry recorded for an exact native revision.
    pub fn revision(&self, name: &str, revision: &str) -> Result<Option<LogEntry>, StoreError> {
        let key = keyed(name, revision.as_bytes());
        self.engine
            .get(Table::Revisions, &key)?
            .map(|v| decode_entry(Table::Revisions, &key, &v))
            .transpose()
    }

    /// Native revisions of a source starting with `prefix`, at most `limit`.
    pub fn revisions_with_prefix(
        &self,
        name: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, LogEntry)>, StoreError> {
        let key_prefix = keyed(name, prefix.as_bytes());
        let start = name.len() + 1;
        let mut out = Vec::new();
        self.for_prefix(Table::Revisions, &key_prefix, false, |k, v| {
            let rev = String::from_utf8_lossy(&k[start..]).into_owned();
            out.push((rev, decode_entry(Table::Revisions, k, v)?));
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The snapshot with the latest committer time at or before `time`
    /// (ties: the later in the log).
    pub fn as_of(&self, name: &str, time: i64) -> Result<Option<LogEntry>, StoreError> {
        let start = keyed(name, b"");
        let mut end = keyed(name, &time_key(time));
        end.extend_from_slice(&u64::MAX.to_be_bytes());
        let range = KeyRange::new(Bound::Included(&start), Bound::Included(&end));
        let mut found = None;
        let mut failure = None;
        self.engine.scan(Table::Times, range, true, &mut |k, v| {
            let seq = k
                .len()
                .checked_sub(8)
                .and_then(|i| k[i..].try_into().ok())
                .map(u64::from_be_bytes);
            match (seq, snapshot_id(Table::Times, k, v)) {
                (Some(seq), Ok(id)) => found = Some(LogEntry { seq, id }),
                (_, Err(e)) => failure = Some(e),
                (None, _) => failure = Some(corrupt(Table::Times, k, "short key")),
            }
            Ok(false)
        })?;
        failure.map_or(Ok(found), Err)
    }

    /// Snapshots whose id starts with the hex digits `hex` (any source),
    /// each with the sources that hold it; at most `limit` ids.
    pub fn snapshots_with_prefix(
        &self,
        hex: &str,
        limit: usize,
    ) -> Result<Vec<(SnapshotId, Vec<String>)>, StoreError> {
        let hex = hex
            .strip_prefix("blake3:")
            .unwrap_or(hex)
            .to_ascii_lowercase();
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() > 64 {
            return Ok(Vec::new());
        }
        // Scan by the whole bytes of the prefix, then filter on an odd digit.
        let whole: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex"))
            .collect();
        let mut out: Vec<(SnapshotId, Vec<String>)> = Vec::new();
        self.for_prefix(Table::Snapshots, &whole, false, |k, _| {
            if k.len() < 32 {
                return Err(corrupt(Table::Snapshots, k, "short key"));
            }
            let id = snapshot_id(Table::Snapshots, k, &k[..32])?;
            if !id.to_hex().starts_with(&hex) {
                return Ok(true);
            }
            let source = String::from_utf8_lossy(&k[32..]).into_owned();
            match out.last_mut() {
                Some((last, sources)) if *last == id => sources.push(source),
                _ => {
                    if out.len() == limit {
                        return Ok(false);
                    }
                    out.push((id, vec![source]));
                }
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Whether any source's log holds the snapshot.
    pub fn sources_of(&self, id: &SnapshotId) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        self.for_prefix(Table::Snapshots, id.as_bytes(), false, |k, v| {
            let seq: [u8; 8] = v
                .try_into()
                .map_err(|_| corrupt(Table::Snapshots, k, "bad sequence number"))?;
            out.push((
                String::from_utf8_lossy(&k[32..]).into_owned(),
                u64::from_be_bytes(seq),
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// A source's named refs (full names), their snapshots and
    /// annotations, by name.
    pub fn source_refs(&self, name: &str) -> Result<Vec<NamedRef>, StoreError> {
        let prefix = named_ref_prefix(name);
        let mut out = Vec::new();
        self.for_prefix(Table::Refs, &prefix, false, |k, v| {
            let refname = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push(decode_named_ref(refname, k, v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The snapshot a source's named ref points at.
    pub fn source_ref(&self, name: &str, refname: &str) -> Result<Option<SnapshotId>, StoreError> {
        let mut key = named_ref_prefix(name);
        key.extend_from_slice(refname.as_bytes());
        self.engine
            .get(Table::Refs, &key)?
            .map(|v| decode_named_ref(refname.to_owned(), &key, &v).map(|r| r.snapshot))
            .transpose()
    }

    /// A value of a source's private cache.
    pub fn cache_get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.engine.get(Table::Cache, &keyed(name, key))?)
    }
}

pub(super) fn decode_source(key: &[u8], raw: &[u8]) -> Result<SourceDef, StoreError> {
    match postcard::from_bytes::<SourceRecord>(raw) {
        Ok(SourceRecord::V1(def)) => Ok(def),
        Err(e) => Err(corrupt(Table::Sources, key, &e.to_string())),
    }
}
