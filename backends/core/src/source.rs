//! The contract between a source adapter and the store it writes into.
//!
//! A [`Source`] reads native history (a directory, a Git or Mercurial
//! repository) and writes it through an [`IngestSink`] that the store
//! provides. Sources know nothing about targets, queries, or how the store
//! keeps its bytes.

use std::io::Read;
use std::path::PathBuf;

use crate::id::{BlobId, ObjectId, SnapshotId, TreeId};
use crate::object::{Encoded, Kind, Snapshot, SnapshotError, Tree};

/// A failure of the store underneath a sink. Opaque to sources: they pass it
/// up unchanged. The store's own error is kept as the cause, so a caller
/// can downcast it; its text is this error's text (see the crate's rule on
/// [errors](crate#errors)).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Why a blob handed over as a stream ([`IngestSink::put_blob_stream`])
/// was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The store underneath failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Reading the content failed.
    #[error("{0}")]
    Read(#[source] std::io::Error),
    /// The object is larger than the sink accepts
    /// ([`IngestSink::max_object_size`]); nothing of it was read.
    #[error("an object of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The content was not as long as announced (a file changed while it
    /// was read, or a reader broke its word).
    #[error("content announced as {size} bytes {}", if *read > *size { "ran longer".to_string() } else { format!("ended after {read}") })]
    Length {
        /// The size announced.
        size: u64,
        /// How many bytes were read (at most one past the size).
        read: u64,
    },
}

impl StreamError {
    /// [`TooLarge`](Self::TooLarge) when `size` is over `limit`.
    pub fn check_size(size: u64, limit: u64) -> Result<(), StreamError> {
        if size > limit {
            Err(StreamError::TooLarge { size, limit })
        } else {
            Ok(())
        }
    }
}

/// Reads exactly `size` bytes of `content` into `buf` (cleared first), and
/// checks that nothing follows them.
pub fn read_exactly(
    content: &mut dyn Read,
    size: u64,
    buf: &mut Vec<u8>,
) -> Result<(), StreamError> {
    buf.clear();
    buf.try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX))
        .map_err(|e| StreamError::Read(std::io::Error::other(e)))?;
    let read = content
        .take(size.saturating_add(1))
        .read_to_end(buf)
        .map_err(StreamError::Read)? as u64;
    if read != size {
        return Err(StreamError::Length { size, read });
    }
    Ok(())
}

/// Where a source writes objects, caches and snapshots.
///
/// # Contract
///
/// - **Objects** ([`put_blob`](Self::put_blob), [`put_tree`](Self::put_tree))
///   are idempotent: storing what is already stored is cheap and harmless.
///   They may be buffered; they become durable no later than the next
///   [`commit`](Self::commit). All object methods may be called from many
///   threads at once.
/// - **Cache** entries are the source's private, unhashed memory (for
///   example a stat cache, or foreign id → plumb id). Writes are buffered
///   and become durable atomically with the next `commit`, or after every
///   object when an ingest ends without error; a crash before loses them,
///   which must only cost work, never correctness.
/// - **Commit** records one snapshot: in one atomic step, every object
///   written before it, the snapshot, its native revision, its place at the
///   end of the source's log, and the buffered cache. A snapshot is never
///   visible before all it refers to, and never half there. The sink sees
///   a commit at once ([`snapshot_for`](Self::snapshot_for),
///   [`latest`](Self::latest)); the store may write commits in groups and
///   make them durable at least every second and when the ingest ends: a
///   crash may lose the last second's snapshots, never part of one, and
///   never an earlier one without the later ones.
/// - **Size.** No object is larger than
///   [`max_object_size`](Self::max_object_size): a source checks an
///   object's size before it reads or inflates it, and refuses one over
///   the limit with an error naming it, so a decompression bomb is stopped
///   by the limit, not by the machine's memory. A large file's content is
///   best handed over as a stream ([`put_blob_stream`](Self::put_blob_stream)),
///   which a store keeps in bounded memory whatever its size.
/// - Errors are permanent for this ingest; the source stops and returns
///   them. Everything committed before stays.
pub trait IngestSink: Sync {
    /// Stores a blob holding `data`; returns its id.
    fn put_blob(&self, data: &[u8]) -> Result<BlobId, SinkError>;
    /// Stores a blob whose `size` bytes of content `content` yields, and
    /// nothing after them; returns its id. A store reads the content piece
    /// by piece ([`chunks`](crate::chunks)): memory stays bounded whatever
    /// the size. A size over [`max_object_size`](Self::max_object_size) is
    /// refused before anything is read; content that is shorter or longer
    /// than announced is an error, and nothing is stored under any id.
    ///
    /// The default reads the content whole and calls
    /// [`put_blob`](Self::put_blob).
    fn put_blob_stream(&self, size: u64, content: &mut dyn Read) -> Result<BlobId, StreamError> {
        StreamError::check_size(size, self.max_object_size())?;
        let mut buf = Vec::new();
        read_exactly(content, size, &mut buf)?;
        Ok(self.put_blob(&buf)?)
    }
    /// The largest object, in bytes of content, this sink accepts: by
    /// default [`MAX_OBJECT_SIZE`](crate::chunks::MAX_OBJECT_SIZE).
    fn max_object_size(&self) -> u64 {
        crate::chunks::MAX_OBJECT_SIZE
    }
    /// Stores a tree; returns its id.
    fn put_tree(&self, tree: &Tree) -> Result<TreeId, SinkError>;
    /// Stores a blob or tree already encoded and hashed (see [`Encoded`]),
    /// like [`put_blob`](Self::put_blob) or [`put_tree`](Self::put_tree)
    /// but without encoding or hashing it again. Snapshots go through
    /// [`commit`](Self::commit) only: one given here is an error.
    ///
    /// The default decodes the object and calls those methods; a store
    /// should take the bytes as they are.
    fn put_encoded(&self, object: Encoded) -> Result<ObjectId, SinkError> {
        let bytes = object.bytes();
        match object.kind() {
            Kind::Blob => Ok(self
                .put_blob(
                    crate::decode_blob(bytes)
                        .map_err(|e| SinkError(Box::new(e)))?
                        .data(),
                )?
                .object_id()),
            Kind::Tree => Ok(self
                .put_tree(&crate::decode_tree(bytes).map_err(|e| SinkError(Box::new(e)))?)?
                .object_id()),
            Kind::Snapshot => Err(SinkError(
                "a snapshot is recorded by commit, not stored as an object".into(),
            )),
        }
    }
    /// Reads a value from this source's cache.
    fn cache_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SinkError>;
    /// Buffers a cache write, durable with the next commit.
    fn cache_put(&self, key: &[u8], value: &[u8]) -> Result<(), SinkError>;
    /// The snapshot recorded for a native revision of this source, if any.
    fn snapshot_for(&self, revision: &str) -> Result<Option<SnapshotId>, SinkError>;
    /// The newest snapshot in this source's log, if any.
    fn latest(&self) -> Result<Option<(SnapshotId, Snapshot)>, SinkError>;
    /// Durably records `snapshot` as the next entry of this source's log.
    fn commit(&self, snapshot: &Snapshot) -> Result<SnapshotId, SinkError>;
    /// Records the source's named refs (branches, tags, bookmarks: full
    /// names such as `refs/tags/v1.0`), the snapshots they point at and
    /// their annotations, replacing the set recorded before. Buffered like
    /// cache writes: durable with the next commit or at the end of a
    /// successful ingest. Every snapshot named must be committed by then,
    /// and every annotation blob stored. A sink that keeps no refs may
    /// ignore them.
    fn set_refs(&self, refs: &[NamedRef]) -> Result<(), SinkError> {
        let _ = refs;
        Ok(())
    }
    /// Reports progress: `done` of `total` units (`total` 0 when unknown).
    fn progress(&self, what: &str, done: u64, total: u64);
}

/// A named ref of a source (a branch, tag or bookmark) and what it leads
/// to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRef {
    /// The full name, such as `refs/tags/v1.0`.
    pub name: String,
    /// The snapshot it leads to.
    pub snapshot: SnapshotId,
    /// A blob holding the ref's own metadata in the source's native form,
    /// when it has any: for Git, the raw annotated tag object (tagger,
    /// message, signature).
    pub annotation: Option<BlobId>,
}

impl NamedRef {
    /// A ref without an annotation.
    pub fn new(name: impl Into<String>, snapshot: SnapshotId) -> Self {
        Self {
            name: name.into(),
            snapshot,
            annotation: None,
        }
    }
}

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Snapshots newly committed, oldest first.
    pub new_snapshots: Vec<SnapshotId>,
    /// Files whose bytes were read (not served from a cache).
    pub files_read: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Warnings the user should see (skipped special files, …). Whoever
    /// runs the ingest shows them, once; a source does not also log them
    /// at warning level, which would print each twice.
    pub warnings: Vec<String>,
}

/// Why an ingest stopped.
///
/// Each variant's text is one line naming what failed and where, and
/// includes the text of its cause (see the crate's rule on
/// [errors](crate#errors)).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store underneath failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Reading a path of the source failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The source's location or its settings are unusable; `reason` says
    /// why. For a failure the source's own reader reports, see
    /// [`Read`](Self::Read).
    #[error("{location}: {reason}")]
    Invalid {
        /// The path or URL, as the user gave it.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The source's reader failed on what the location holds (a
    /// repository it cannot open, an object it cannot convert, a name
    /// plumb cannot store); `source` is the reader's own error (for
    /// example `plumb_source_git::GitError`), kept so a caller can
    /// downcast it. A file that cannot be read is [`Io`](Self::Io).
    #[error("{location}: {source}")]
    Read {
        /// The path or URL, as the user gave it.
        location: String,
        /// The reader's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A snapshot the source built is malformed (a source bug).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// A source of history.
///
/// # Contract
///
/// - `ingest` is incremental: it commits only revisions the sink does not
///   already know (see [`IngestSink::snapshot_for`] and
///   [`IngestSink::latest`]), parents before children, so a source's log is
///   in topological order.
/// - It is restartable: after a crash or error, calling it again finishes
///   the job and commits nothing twice.
/// - It never changes what it reads.
///
/// A source that reads a copy of a repository kept elsewhere (a remote
/// one) brings that copy up to date in [`fetch_remote`](Self::fetch_remote),
/// which the store calls first, without its writer turn, so that a slow
/// network holds up no other writer; `ingest` then reads the copy without
/// fetching again. Called on its own, `ingest` fetches first.
pub trait Source {
    /// Brings the source's copy of a remote repository up to date, writing
    /// nothing to any store. The default has nothing to fetch.
    fn fetch_remote(&self) -> Result<(), SourceError> {
        Ok(())
    }
    /// Reads what is new and commits it through `sink`.
    fn ingest(&self, sink: &dyn IngestSink) -> Result<IngestReport, SourceError>;
}
