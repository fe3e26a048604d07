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
use plumb_core::{Blob, BlobId, Snapshot, SnapshotId, Tree, TreeId};

/// Writes queued at most (blobs above [`QUEUED_BLOB_MAX`] bytes are not
/// queued, so the queue holds at most this many times that much).
const QUEUE: usize = 256;

/// Blobs larger than this are stored by the reader itself rather than
/// copied into the queue (objects may be stored in any order).
const QUEUED_BLOB_MAX: usize = 256 << 10;

/// Commits remembered by the reader before it waits for the writer to
/// catch up and forgets them (the sink knows them all by then).
const REMEMBERED_COMMITS: usize = 1 << 16;

enum Job {
    Blob(Vec<u8>),
    Tree(Tree),
    Cache(Vec<(Vec<u8>, [u8; 32])>),
    Commit(Box<Snapshot>, SnapshotId),
    /// Answers once everything queued before it is done.
    Barrier(SyncSender<()>),
}

/// The reader's end: queues writes and answers what was queued.
pub(crate) struct Writer<'s> {
    sink: &'s dyn IngestSink,
    jobs: SyncSender<Job>,
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
            committed: HashMap::new(),
        };
        let read = read(&mut writer);
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
fn write_all(sink: &dyn IngestSink, queue: Receiver<Job>) -> Result<(), SinkError> {
    for job in queue {
        match job {
            Job::Blob(data) => {
                sink.put_blob(&data)?;
            }
            Job::Tree(tree) => {
                sink.put_tree(&tree)?;
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
    fn queue(&self, job: Job) -> Result<(), SinkError> {
        self.jobs.send(job).map_err(|_| stopped())
    }

    /// Stores a blob; returns its id at once.
    pub(crate) fn put_blob(&self, data: &[u8]) -> Result<BlobId, SinkError> {
        if data.len() > QUEUED_BLOB_MAX {
            return self.sink.put_blob(data);
        }
        let id = Blob::id_of(data);
        self.queue(Job::Blob(data.to_vec()))?;
        Ok(id)
    }

    /// Stores a tree; returns its id at once.
    pub(crate) fn put_tree(&self, tree: Tree) -> Result<TreeId, SinkError> {
        let id = tree.id();
        self.queue(Job::Tree(tree))?;
        Ok(id)
    }

    /// Buffers cache values, written before the next commit.
    pub(crate) fn cache_put(&self, values: Vec<(Vec<u8>, [u8; 32])>) -> Result<(), SinkError> {
        if values.is_empty() {
            return Ok(());
        }
        self.queue(Job::Cache(values))
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
        self.queue(Job::Commit(Box::new(snapshot), id))?;
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
    pub(crate) fn wait(&self) -> Result<(), SinkError> {
        let (done, answer) = sync_channel(1);
        self.queue(Job::Barrier(done))?;
        answer.recv().map_err(|_| stopped())
    }
}
