//! Sink writes on a second thread, so compressing and storing overlap
//! reading Git.
//!
//! Reading and converting Git objects (inflating, walking trees, hashing)
//! and storing them (compressing, indexing, committing) each take about
//! half of an ingest. The reader computes every id itself — they depend on
//! content alone — and queues the writes; one writer thread carries them
//! out in the order queued, so a snapshot is committed after every object
//! and cache value queued before it, as the sink's contract requires.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use plumb_core::source::{IngestSink, SinkError};
use plumb_core::{Blob, BlobId, Encoded, Snapshot, SnapshotId, Tree, TreeId};

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

/// Commits remembered by the reader before it waits for the writer to
/// catch up and forgets them (the sink knows them all by then).
const REMEMBERED_COMMITS: usize = 1 << 16;

enum Job {
    /// A blob or tree, encoded and hashed by the reader.
    Object(Encoded),
    Cache(Vec<(Vec<u8>, [u8; 32])>),
    Commit(Box<Snapshot>, SnapshotId),
    /// Answers once everything queued before it is done.
    Barrier(SyncSender<()>),
}

/// The reader's end: queues writes and answers what was queued.
pub(crate) struct Writer<'s> {
    sink: &'s dyn IngestSink,
    jobs: SyncSender<Vec<Job>>,
    /// Jobs not yet handed over, and the bytes of their objects.
    batch: Vec<Job>,
    batch_bytes: usize,
    /// Snapshots queued (or committed) in this ingest, by native revision.
    committed: HashMap<String, SnapshotId>,
}

/// Runs `read` with a [`Writer`] whose writes a second thread carries out;
/// returns `read`'s result, or the writer's error if the writer failed
/// first (the reader then stops at its next write).
pub(crate) fn with_writer<T, E: From<SinkError>>(
    sink: &dyn IngestSink,
    read: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let (jobs, queue) = sync_channel(QUEUE);
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("plumb-git-writer".into())
            .spawn_scoped(scope, || write_all(sink, queue))
            .map_err(|e| SinkError(Box::new(e)))?;
        let mut writer = Writer {
            sink,
            jobs,
            batch: Vec::with_capacity(BATCH_JOBS),
            batch_bytes: 0,
            committed: HashMap::new(),
        };
        let mut read = read(&mut writer);
        // Hand over what is batched even after an error: every snapshot
        // queued before it was complete, and is kept.
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
        // The writer's error comes first: the reader's is then only that
        // its queue was gone.
        written?;
        read
    })
}

/// The writer thread: carries out jobs in order until the queue closes or
/// a write fails.
fn write_all(sink: &dyn IngestSink, queue: Receiver<Vec<Job>>) -> Result<(), SinkError> {
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
            Job::Commit(snapshot, expected) => {
                let id = sink.commit(&snapshot)?;
                if id != expected {
                    return Err(SinkError(
                        format!("snapshot committed as {id}, but its content hashes to {expected}")
                            .into(),
                    ));
                }
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
    Ok(())
}

/// The error a reader sees once the writer has stopped; the writer's own
/// error replaces it in [`with_writer`]'s result.
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

    /// Records `snapshot` after everything queued before it; returns its id
    /// at once.
    pub(crate) fn commit(&mut self, snapshot: Snapshot) -> Result<SnapshotId, SinkError> {
        let id = snapshot.id().map_err(|e| SinkError(Box::new(e)))?;
        if self.committed.len() >= REMEMBERED_COMMITS {
            self.wait()?;
            self.committed.clear();
        }
        self.committed.insert(snapshot.revision.clone(), id);
        self.queue(Job::Commit(Box::new(snapshot), id), 0)?;
        Ok(id)
    }

    /// The snapshot of a native revision, queued in this ingest or
    /// recorded before.
    pub(crate) fn snapshot_for(&self, revision: &str) -> Result<Option<SnapshotId>, SinkError> {
        match self.committed.get(revision) {
            Some(id) => Ok(Some(*id)),
            None => self.sink.snapshot_for(revision),
        }
    }

    /// Waits until everything queued so far is written.
    pub(crate) fn wait(&mut self) -> Result<(), SinkError> {
        let (done, answer) = sync_channel(1);
        self.batch.push(Job::Barrier(done));
        self.send()?;
        answer.recv().map_err(|_| stopped())
    }
}
