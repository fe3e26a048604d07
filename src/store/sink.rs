//! The store's side of ingest: buffered, parallel-safe object writes and the
//! atomic commit of each snapshot.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use plumb_core::source::{IngestSink, SinkError};
use plumb_core::{Blob, BlobId, ObjectId, Snapshot, SnapshotId, Tree, TreeId};

use super::backend::{Batch, Table};
use super::index::{LogEntry, encode_entry, head_ref, keyed, named_ref_prefix, time_key};
use super::{Store, StoreError};

/// Objects are written in transactions of about this many packed bytes:
/// large enough to amortize a commit's sync, small enough to bound memory.
const FLUSH_BYTES: usize = 32 << 20;
/// …or of this many objects (index entries), whichever comes first.
const FLUSH_OBJECTS: usize = 1 << 16;
/// Snapshot commits are made durable (synced) at least this often, and at
/// the end of an ingest; in between they are atomic and visible but lazy,
/// so a history of thousands of commits costs a few syncs, not thousands.
const DURABLE_EVERY: Duration = Duration::from_secs(1);

struct Pending {
    /// Objects not yet written: a lazy batch (durable with the next commit).
    batch: Batch,
    ids: HashSet<ObjectId>,
    /// Whether a lazy batch was written since the last durable commit.
    unsynced: bool,
    /// When the last durable commit returned.
    last_durable: Instant,
}

impl Pending {
    /// Takes the buffered objects, leaving an empty lazy batch.
    fn take(&mut self) -> Batch {
        self.ids.clear();
        std::mem::replace(&mut self.batch, Batch::lazy())
    }
}

/// A progress callback: what, done, total (0 when unknown).
pub type ProgressFn<'a> = dyn Fn(&str, u64, u64) + Sync + 'a;

/// Writes one source's ingest into a [`Store`]; see
/// [`IngestSink`] for the contract it keeps.
pub struct StoreSink<'a> {
    store: &'a Store,
    source: String,
    pending: Mutex<Pending>,
    cache: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    refs: Mutex<Option<Vec<(String, SnapshotId)>>>,
    head: Mutex<Option<LogEntry>>,
    progress: Box<ProgressFn<'a>>,
}

fn sink_error(e: impl Into<StoreError>) -> SinkError {
    SinkError(Box::new(e.into()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section below leaves its data consistent before any
    // call that could panic, so a poisoned lock still guards valid data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'a> StoreSink<'a> {
    /// A sink for the source `name`, which must exist.
    pub fn new(
        store: &'a Store,
        name: &str,
        progress: Box<ProgressFn<'a>>,
    ) -> Result<Self, StoreError> {
        store.source(name)?;
        let head = store.head(name)?;
        Ok(Self {
            store,
            source: name.to_owned(),
            pending: Mutex::new(Pending {
                batch: Batch::lazy(),
                ids: HashSet::new(),
                unsynced: false,
                last_durable: Instant::now(),
            }),
            cache: Mutex::default(),
            refs: Mutex::default(),
            head: Mutex::new(head),
            progress,
        })
    }

    fn put_encoded(&self, id: ObjectId, encode: impl FnOnce() -> Vec<u8>) -> Result<(), SinkError> {
        if lock(&self.pending).ids.contains(&id) || self.store.contains(&id).map_err(sink_error)? {
            return Ok(());
        }
        // Pack (compress) outside the lock: this is where the CPU goes.
        let mut one = Batch::lazy();
        self.store
            .stage_object(&mut one, &id, &encode())
            .map_err(sink_error)?;
        let full = {
            let mut p = lock(&self.pending);
            if !p.ids.insert(id) {
                return Ok(());
            }
            p.batch.ops.append(&mut one.ops);
            if p.batch.size() >= FLUSH_BYTES || p.batch.ops.len() >= FLUSH_OBJECTS {
                p.unsynced = true;
                Some(p.take())
            } else {
                None
            }
        };
        if let Some(batch) = full {
            self.store.commit(batch).map_err(sink_error)?;
        }
        Ok(())
    }

    /// Adds buffered cache writes and a new ref set to `batch`.
    fn stage_buffered(&self, batch: &mut Batch) -> Result<(), StoreError> {
        for (k, v) in std::mem::take(&mut *lock(&self.cache)) {
            batch.put(Table::Cache, keyed(&self.source, &k), v);
        }
        if let Some(refs) = lock(&self.refs).take() {
            let prefix = named_ref_prefix(&self.source);
            let mut current = Vec::new();
            self.store.for_prefix(Table::Refs, &prefix, false, |k, _| {
                current.push(k.to_vec());
                Ok(true)
            })?;
            for k in current {
                batch.delete(Table::Refs, k);
            }
            for (name, id) in refs {
                let mut k = prefix.clone();
                k.extend_from_slice(name.as_bytes());
                batch.put(Table::Refs, k, id.as_bytes().to_vec());
            }
        }
        Ok(())
    }

    /// Ends a successful ingest: durably writes buffered objects, cache
    /// values and refs (which may name those objects, never the reverse),
    /// and makes every snapshot committed so far durable.
    pub fn finish(&self) -> Result<(), StoreError> {
        self.finish_with(true)
    }

    /// Ends a failed ingest: like [`finish`](Self::finish), so every
    /// snapshot committed before the failure is kept, but without a new ref
    /// set, which may name snapshots never committed.
    pub fn finish_after_error(&self) -> Result<(), StoreError> {
        self.finish_with(false)
    }

    fn finish_with(&self, with_refs: bool) -> Result<(), StoreError> {
        if !with_refs {
            lock(&self.refs).take();
        }
        let (mut batch, unsynced) = {
            let mut p = lock(&self.pending);
            (p.take(), std::mem::take(&mut p.unsynced))
        };
        batch.lazy = false;
        self.stage_buffered(&mut batch)?;
        if unsynced || !batch.is_empty() {
            self.store.commit(batch)?;
            lock(&self.pending).last_durable = Instant::now();
        }
        Ok(())
    }
}

impl IngestSink for StoreSink<'_> {
    fn put_blob(&self, data: &[u8]) -> Result<BlobId, SinkError> {
        let id = Blob::id_of(data);
        self.put_encoded(id.object_id(), || {
            let (head, n) = Blob::header(data.len());
            let mut bytes = Vec::with_capacity(n + data.len());
            bytes.extend_from_slice(&head[..n]);
            bytes.extend_from_slice(data);
            bytes
        })?;
        Ok(id)
    }

    fn put_tree(&self, tree: &Tree) -> Result<TreeId, SinkError> {
        let bytes = tree.encode();
        let id = ObjectId::of_encoding(&bytes);
        self.put_encoded(id, || bytes)?;
        Ok(TreeId::new(id))
    }

    fn cache_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SinkError> {
        if let Some((_, v)) = lock(&self.cache).iter().rev().find(|(k, _)| k == key) {
            return Ok(Some(v.clone()));
        }
        self.store.cache_get(&self.source, key).map_err(sink_error)
    }

    fn cache_put(&self, key: &[u8], value: &[u8]) -> Result<(), SinkError> {
        lock(&self.cache).push((key.to_vec(), value.to_vec()));
        Ok(())
    }

    fn snapshot_for(&self, revision: &str) -> Result<Option<SnapshotId>, SinkError> {
        Ok(self
            .store
            .revision(&self.source, revision)
            .map_err(sink_error)?
            .map(|e| e.id))
    }

    fn latest(&self) -> Result<Option<(SnapshotId, Snapshot)>, SinkError> {
        let head = *lock(&self.head);
        head.map(|e| Ok((e.id, self.store.snapshot(&e.id).map_err(sink_error)?)))
            .transpose()
    }

    fn commit(&self, snapshot: &Snapshot) -> Result<SnapshotId, SinkError> {
        let bytes = snapshot
            .encode()
            .map_err(|e| sink_error(StoreError::Invalid(e.to_string())))?;
        let id = SnapshotId::new(ObjectId::of_encoding(&bytes));
        let mut head = lock(&self.head);
        let previous = *head;
        let entry = LogEntry {
            seq: previous.map_or(1, |e| e.seq + 1),
            id,
        };
        let name = &self.source;
        // Buffered objects go first, in the same transaction. It is durable
        // when a second has passed since the last durable one (making every
        // lazy batch before it durable too), else lazy.
        let (mut batch, durable) = {
            let mut p = lock(&self.pending);
            let durable = p.last_durable.elapsed() >= DURABLE_EVERY;
            (p.take(), durable)
        };
        batch.lazy = !durable;
        self.store
            .stage_object(&mut batch, &id.object_id(), &bytes)
            .map_err(sink_error)?;
        batch.put(
            Table::Log,
            keyed(name, &entry.seq.to_be_bytes()),
            id.as_bytes().to_vec(),
        );
        batch.put(
            Table::Revisions,
            keyed(name, snapshot.revision.as_bytes()),
            encode_entry(&entry),
        );
        let mut time = time_key(snapshot.committer.time).to_vec();
        time.extend_from_slice(&entry.seq.to_be_bytes());
        batch.put(Table::Times, keyed(name, &time), id.as_bytes().to_vec());
        let mut snap_key = id.as_bytes().to_vec();
        snap_key.extend_from_slice(name.as_bytes());
        batch.put(Table::Snapshots, snap_key, entry.seq.to_be_bytes().to_vec());
        // The source's head moves by compare-and-swap: a second writer
        // (which the store's lock should already exclude) cannot interleave.
        batch.expect(
            Table::Refs,
            head_ref(name),
            previous.map(|e| encode_entry(&e)),
        );
        batch.put(Table::Refs, head_ref(name), encode_entry(&entry));
        self.stage_buffered(&mut batch).map_err(sink_error)?;
        self.store.commit(batch).map_err(sink_error)?;
        {
            let mut p = lock(&self.pending);
            if durable {
                p.unsynced = false;
                p.last_durable = Instant::now();
            } else {
                p.unsynced = true;
            }
        }
        *head = Some(entry);
        Ok(id)
    }

    fn set_refs(&self, refs: &[(String, SnapshotId)]) -> Result<(), SinkError> {
        *lock(&self.refs) = Some(refs.to_vec());
        Ok(())
    }

    fn progress(&self, what: &str, done: u64, total: u64) {
        (self.progress)(what, done, total);
    }
}
