//! The store's side of ingest: parallel-safe object writes, and snapshots
//! recorded in groups of atomic, ordered transactions.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use plumb_core::chunks::CHUNK_SIZE;
use plumb_core::source::{IngestSink, NamedRef, SinkError, StreamError, read_exactly};
use plumb_core::{Blob, BlobId, Encoded, Kind, ObjectId, Snapshot, SnapshotId, Tree, TreeId};

use super::index::{
    LogEntry, encode_entry, encode_named_ref, head_ref, keyed, named_ref_prefix, time_key,
};
use super::{Batch, Table};
use super::{Store, StoreError};

/// Buffered writes go to the backend in one transaction once they reach
/// about this many bytes…
const FLUSH_BYTES: usize = 32 << 20;
/// …or this many entries…
const FLUSH_ENTRIES: usize = 1 << 16;
/// …or, at a snapshot, once this much time has passed since the last
/// flush: many small transactions would each copy the index's dirty pages
/// again.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// A flush is durable (synced) when this much time has passed since the
/// last durable one, and always at the end of an ingest; in between it is
/// atomic and visible but lazy. A history of thousands of commits costs a
/// few syncs, not thousands, and a crash loses at most about a second.
const DURABLE_EVERY: Duration = Duration::from_secs(1);

/// Everything written through the sink and not yet committed to the
/// backend, and what readers need to see it.
struct State {
    /// Objects and snapshot index entries, in the order written.
    batch: Batch,
    /// `batch.size()`, kept as ops are added (summing it at every write
    /// would cost time quadratic in the batch).
    batch_bytes: usize,
    /// Ids of the objects in `batch`.
    ids: HashSet<ObjectId>,
    /// Cache values not yet in the backend (the newest per key).
    cache: HashMap<Vec<u8>, Vec<u8>>,
    /// Native revisions of snapshots in `batch`.
    revisions: HashMap<String, LogEntry>,
    /// The source's newest snapshot, committed or buffered.
    head: Option<LogEntry>,
    /// That snapshot, once read or written.
    head_snapshot: Option<Snapshot>,
    /// The head as the backend has it.
    flushed_head: Option<LogEntry>,
    /// Whether a lazy flush happened since the last durable one.
    unsynced: bool,
    last_flush: Instant,
    last_durable: Instant,
}

impl State {
    /// Appends the writes of `more` to the buffered batch.
    fn stage(&mut self, mut more: Batch) {
        self.batch_bytes += more.size();
        self.batch.ops.append(&mut more.ops);
    }
}

/// A progress callback: what, done, total (0 when unknown).
pub type ProgressFn<'a> = dyn Fn(&str, u64, u64) + Sync + 'a;

/// Writes one source's ingest into a [`Store`]; see [`IngestSink`] for the
/// contract it keeps.
pub struct StoreSink<'a> {
    store: &'a Store,
    source: String,
    state: Mutex<State>,
    refs: Mutex<Option<Vec<NamedRef>>>,
    progress: Box<ProgressFn<'a>>,
    /// [`FLUSH_EVERY`], or [`DURABLE_EVERY`] on an engine whose every
    /// commit is durable: a flush then costs a sync, as often as before.
    flush_every: Duration,
}

fn sink_error(e: impl Into<StoreError>) -> SinkError {
    SinkError(Box::new(e.into()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        let now = Instant::now();
        Ok(Self {
            store,
            source: name.to_owned(),
            state: Mutex::new(State {
                batch: Batch::new(),
                batch_bytes: 0,
                ids: HashSet::new(),
                cache: HashMap::new(),
                revisions: HashMap::new(),
                head,
                head_snapshot: None,
                flushed_head: head,
                unsynced: false,
                last_flush: now,
                last_durable: now,
            }),
            refs: Mutex::default(),
            progress,
            flush_every: if store.engine.lazy_commits() {
                FLUSH_EVERY
            } else {
                DURABLE_EVERY
            },
        })
    }

    fn put_canonical(
        &self,
        id: ObjectId,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> Result<(), SinkError> {
        self.put_staged(id, |store, batch| store.stage_object(batch, &id, &encode()))
    }

    /// Stores a blob of at most [`CHUNK_SIZE`] bytes, kept whole.
    fn put_whole_blob(&self, data: &[u8]) -> Result<BlobId, SinkError> {
        let id = Blob::id_of(data);
        self.put_canonical(id.object_id(), || Blob::encoding_of(data))?;
        Ok(id)
    }

    /// Stores the object `id` as `stage` adds it to a batch, unless it is
    /// stored already.
    fn put_staged(
        &self,
        id: ObjectId,
        stage: impl FnOnce(&Store, &mut Batch) -> Result<(), StoreError>,
    ) -> Result<(), SinkError> {
        // A stored copy is verified before it is trusted: content written
        // again replaces a corrupt one.
        if lock(&self.state).ids.contains(&id)
            || self.store.contains_intact(&id).map_err(sink_error)?
        {
            return Ok(());
        }
        // Pack (compress) outside the lock: this is where the CPU goes.
        let mut one = Batch::new();
        stage(self.store, &mut one).map_err(sink_error)?;
        let mut state = lock(&self.state);
        if state.ids.insert(id) {
            state.stage(one);
            if state.batch_bytes >= FLUSH_BYTES || state.batch.ops.len() >= FLUSH_ENTRIES {
                self.flush(&mut state, false).map_err(sink_error)?;
            }
        }
        Ok(())
    }

    /// Commits everything buffered in one transaction, durable if asked or
    /// if a second has passed since the last durable one. Holding the state
    /// lock keeps transactions in the order their writes were made.
    fn flush(&self, state: &mut State, durable: bool) -> Result<(), StoreError> {
        let durable = durable || state.last_durable.elapsed() >= DURABLE_EVERY;
        let mut batch = std::mem::take(&mut state.batch);
        state.batch_bytes = 0;
        for (k, v) in state.cache.drain() {
            batch.put(Table::Cache, keyed(&self.source, &k), v);
        }
        if state.head != state.flushed_head {
            // The head moves by compare-and-swap: a second writer (which
            // the store's lock should already exclude) cannot interleave.
            let key = head_ref(&self.source);
            batch.expect(
                Table::Refs,
                key.clone(),
                state.flushed_head.map(|e| encode_entry(&e)),
            );
            if let Some(head) = state.head {
                batch.put(Table::Refs, key, encode_entry(&head));
            }
        }
        if batch.is_empty() && !(durable && state.unsynced) {
            return Ok(());
        }
        batch.lazy = !durable;
        self.store.commit(batch)?;
        state.ids.clear();
        state.revisions.clear();
        state.flushed_head = state.head;
        let now = Instant::now();
        state.last_flush = now;
        if durable {
            state.unsynced = false;
            state.last_durable = now;
        } else {
            state.unsynced = true;
        }
        Ok(())
    }

    /// Adds a new ref set (replacing the recorded one) to the buffer.
    fn stage_refs(&self, state: &mut State, refs: Vec<NamedRef>) -> Result<(), StoreError> {
        let prefix = named_ref_prefix(&self.source);
        let mut current = Vec::new();
        self.store.for_prefix(Table::Refs, &prefix, false, |k, _| {
            current.push(k.to_vec());
            Ok(true)
        })?;
        for k in current {
            state.batch.delete(Table::Refs, k);
        }
        for r in refs {
            let mut k = prefix.clone();
            k.extend_from_slice(r.name.as_bytes());
            state.batch.put(Table::Refs, k, encode_named_ref(&r));
        }
        Ok(())
    }

    /// Ends a successful ingest: durably writes everything buffered —
    /// objects, snapshots, cache values and the new ref set.
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
        let refs = lock(&self.refs).take();
        let mut state = lock(&self.state);
        if with_refs && let Some(refs) = refs {
            self.stage_refs(&mut state, refs)?;
        }
        self.flush(&mut state, true)
    }
}

impl IngestSink for StoreSink<'_> {
    fn put_blob(&self, data: &[u8]) -> Result<BlobId, SinkError> {
        StreamError::check_size(data.len() as u64, self.max_object_size())
            .map_err(|e| sink_error(StoreError::Invalid(e.to_string())))?;
        if data.len() as u64 > CHUNK_SIZE {
            return self
                .put_blob_stream(data.len() as u64, &mut &data[..])
                .map_err(|e| match e {
                    StreamError::Sink(e) => e,
                    other => sink_error(StoreError::Invalid(other.to_string())),
                });
        }
        self.put_whole_blob(data)
    }

    fn put_blob_stream(
        &self,
        size: u64,
        content: &mut dyn std::io::Read,
    ) -> Result<BlobId, StreamError> {
        StreamError::check_size(size, self.max_object_size())?;
        if size <= CHUNK_SIZE {
            let mut buf = Vec::new();
            read_exactly(content, size, &mut buf)?;
            return Ok(self.put_whole_blob(&buf)?);
        }
        let (id, list) =
            super::chunked::write_chunks(size, content, |piece| Ok(self.put_whole_blob(piece)?))?;
        self.put_staged(id.object_id(), |store, batch| {
            store.stage_chunk_list(batch, &id.object_id(), &list)
        })?;
        Ok(id)
    }

    fn max_object_size(&self) -> u64 {
        self.store.max_object_size()
    }

    fn put_tree(&self, tree: &Tree) -> Result<TreeId, SinkError> {
        let bytes = tree.encode();
        let id = ObjectId::of_encoding(&bytes);
        self.put_canonical(id, || bytes)?;
        Ok(TreeId::new(id))
    }

    fn put_encoded(&self, object: Encoded) -> Result<ObjectId, SinkError> {
        if object.kind() == Kind::Snapshot {
            return Err(sink_error(StoreError::Invalid(
                "a snapshot is recorded by commit, not stored as an object".into(),
            )));
        }
        let id = object.id();
        self.put_canonical(id, || object.into_bytes())?;
        Ok(id)
    }

    fn cache_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SinkError> {
        if let Some(v) = lock(&self.state).cache.get(key) {
            return Ok(Some(v.clone()));
        }
        self.store.cache_get(&self.source, key).map_err(sink_error)
    }

    fn cache_put(&self, key: &[u8], value: &[u8]) -> Result<(), SinkError> {
        lock(&self.state).cache.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn snapshot_for(&self, revision: &str) -> Result<Option<SnapshotId>, SinkError> {
        if let Some(e) = lock(&self.state).revisions.get(revision) {
            return Ok(Some(e.id));
        }
        Ok(self
            .store
            .revision(&self.source, revision)
            .map_err(sink_error)?
            .map(|e| e.id))
    }

    fn latest(&self) -> Result<Option<(SnapshotId, Snapshot)>, SinkError> {
        let mut state = lock(&self.state);
        let Some(head) = state.head else {
            return Ok(None);
        };
        if state.head_snapshot.is_none() {
            state.head_snapshot = Some(self.store.snapshot(&head.id).map_err(sink_error)?);
        }
        Ok(state.head_snapshot.clone().map(|s| (head.id, s)))
    }

    fn commit(&self, snapshot: &Snapshot) -> Result<SnapshotId, SinkError> {
        let bytes = snapshot
            .encode()
            .map_err(|e| sink_error(StoreError::Invalid(e.to_string())))?;
        let id = SnapshotId::new(ObjectId::of_encoding(&bytes));
        let name = &self.source;
        let mut state = lock(&self.state);
        let entry = LogEntry {
            seq: state.head.map_or(1, |e| e.seq + 1),
            id,
        };
        let mut batch = Batch::new();
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
        state.stage(batch);
        state.ids.insert(id.object_id());
        state.revisions.insert(snapshot.revision.clone(), entry);
        state.head = Some(entry);
        state.head_snapshot = Some(snapshot.clone());
        if state.last_flush.elapsed() >= self.flush_every
            || state.batch_bytes >= FLUSH_BYTES
            || state.batch.ops.len() >= FLUSH_ENTRIES
        {
            self.flush(&mut state, false).map_err(sink_error)?;
        }
        Ok(id)
    }

    fn set_refs(&self, refs: &[NamedRef]) -> Result<(), SinkError> {
        *lock(&self.refs) = Some(refs.to_vec());
        Ok(())
    }

    fn progress(&self, what: &str, done: u64, total: u64) {
        (self.progress)(what, done, total);
    }
}
