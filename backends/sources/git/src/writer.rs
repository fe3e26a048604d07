//! Sink writes on a second thread, so compressing and storing overlap
//! reading Git.
//!
//! Reading and converting Git objects (inflating, walking trees, hashing)
//! and storing them (compressing, indexing, committing) each take about
//! half of an ingest. The reader computes every object id itself — they
//! depend on content alone — and queues the writes; one writer thread
//! carries them out in the order queued, so a snapshot is committed after
//! every object and cache value queued before it, as the sink's contract
//! requires. The writer also builds each snapshot (its metadata, and its
//! parents' snapshots, which the sink knows as soon as they are
//! committed): that is the reader's lighter half.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use gix::ObjectId;
use plumb_core::source::{IngestSink, SinkError};
use plumb_core::{Blob, BlobId, Encoded, SnapshotId, Tree, TreeId};

use crate::error::GitError;
use crate::snapshot::{self, CommitJob};

/// Jobs are handed over in batches (one hand-over per object would cost a
/// channel operation and often a thread wake-up each): a batch is sent
/// once it holds this many jobs…
const BATCH_JOBS: usize = 128;
/// …or this many bytes of objects.
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued at most: with blobs above [`QUEUED_BLOB_MAX`] bytes not
/// queued, the queue holds at most about this many times
/// `BATCH_BYTES + QUEUED_BLOB_MAX` bytes.
const QUEUE: usize = 16;

/// Blobs larger than this are stored by the reader itself rather than
/// copied into the queue (objects may be stored in any order).
const QUEUED_BLOB_MAX: usize = 256 << 10;

enum Job {
    /// A blob or tree, encoded and hashed by the reader.
    Object(Encoded),
    Cache(Vec<(Vec<u8>, [u8; 32])>),
    Commit(Box<CommitJob>),
}

/// Why the reader or the writer stopped: the error, and the commit being
/// recorded, if any.
pub(crate) struct Failure {
    pub error: GitError,
    pub commit: Option<ObjectId>,
}

impl From<SinkError> for Failure {
    fn from(e: SinkError) -> Self {
        Self {
            error: e.into(),
            commit: None,
        }
    }
}

/// The reader's end: queues writes.
pub(crate) struct Writer<'s> {
    sink: &'s dyn IngestSink,
    jobs: SyncSender<Vec<Job>>,
    /// Jobs not yet handed over, and the bytes of their objects.
    batch: Vec<Job>,
    batch_bytes: usize,
}

/// Runs `read` with a [`Writer`] whose writes a second thread carries out.
/// Returns `read`'s result and the writer's: the snapshots it committed,
/// in order, or why it stopped (the reader then stops at its next write).
/// Everything queued before `read` returns is written, even after an
/// error: each snapshot queued was complete.
pub(crate) fn with_writer<T>(
    sink: &dyn IngestSink,
    read: impl FnOnce(&mut Writer<'_>) -> Result<T, Failure>,
) -> (Result<T, Failure>, Result<Vec<SnapshotId>, Failure>) {
    let (jobs, queue) = sync_channel(QUEUE);
    std::thread::scope(|scope| {
        let worker = match std::thread::Builder::new()
            .name("plumb-git-writer".into())
            .spawn_scoped(scope, || write_all(sink, queue))
        {
            Ok(worker) => worker,
            Err(e) => {
                let e = SinkError(Box::new(e));
                return (Err(stopped().into()), Err(e.into()));
            }
        };
        let mut writer = Writer {
            sink,
            jobs,
            batch: Vec::with_capacity(BATCH_JOBS),
            batch_bytes: 0,
        };
        let mut read = read(&mut writer);
        let sent = writer.send();
        if read.is_ok()
            && let Err(e) = sent
        {
            read = Err(e.into());
        }
        drop(writer);
        let written = match worker.join() {
            Ok(written) => written,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (read, written)
    })
}

/// The writer thread: carries out jobs in order until the queue closes or
/// a write fails.
fn write_all(sink: &dyn IngestSink, queue: Receiver<Vec<Job>>) -> Result<Vec<SnapshotId>, Failure> {
    let mut committed = Vec::new();
    for job in queue.into_iter().flatten() {
        match job {
            Job::Object(object) => {
                sink.put_encoded(object)?;
            }
            Job::Cache(values) => {
                for (k, v) in values {
                    sink.cache_put(&k, &v)?;
                }
            }
            Job::Commit(job) => {
                let id = snapshot::build(&job, sink)
                    .and_then(|s| Ok(sink.commit(&s)?))
                    .map_err(|error| Failure {
                        error,
                        commit: Some(job.id),
                    })?;
                committed.push(id);
            }
        }
    }
    Ok(committed)
}

/// The error a reader sees once the writer has stopped; the writer's own
/// error is the one reported.
fn stopped() -> SinkError {
    SinkError("the store writer stopped".into())
}

impl Writer<'_> {
    fn queue(&mut self, job: Job, bytes: usize) -> Result<(), SinkError> {
        self.batch.push(job);
        self.batch_bytes += bytes;
        if self.batch.len() >= BATCH_JOBS || self.batch_bytes >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    /// Hands the jobs batched so far to the writer thread.
    fn send(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_JOBS));
        self.batch_bytes = 0;
        self.jobs.send(batch).map_err(|_| stopped())
    }

    /// Stores a blob; returns its id at once.
    pub(crate) fn put_blob(&mut self, data: &[u8]) -> Result<BlobId, SinkError> {
        if data.len() > QUEUED_BLOB_MAX {
            return self.sink.put_blob(data);
        }
        let object = Blob::encoded(data);
        let id = BlobId::new(object.id());
        let len = object.bytes().len();
        self.queue(Job::Object(object), len)?;
        Ok(id)
    }

    /// Stores a tree; returns its id at once.
    pub(crate) fn put_tree(&mut self, tree: &Tree) -> Result<TreeId, SinkError> {
        let object = tree.encoded();
        let id = TreeId::new(object.id());
        let len = object.bytes().len();
        self.queue(Job::Object(object), len)?;
        Ok(id)
    }

    /// Buffers cache values, written before the next commit.
    pub(crate) fn cache_put(&mut self, values: Vec<(Vec<u8>, [u8; 32])>) -> Result<(), SinkError> {
        if values.is_empty() {
            return Ok(());
        }
        self.queue(Job::Cache(values), 0)
    }

    /// Records the snapshot of a commit after everything queued before it.
    pub(crate) fn commit(&mut self, job: CommitJob) -> Result<(), SinkError> {
        let bytes = job.data.len();
        self.queue(Job::Commit(Box::new(job)), bytes)
    }
}
