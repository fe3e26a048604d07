//! Git trees and blobs to plumb trees and blobs, each Git object once.

use gix::hashtable::HashMap;

use gix::ObjectId;
use gix::objs::Kind as GitKind;
use plumb_core::chunks::CHUNK_SIZE;
use plumb_core::source::{IngestSink, SinkError};
use plumb_core::{
    BlobId, EntryValue, Name, ObjectId as PlumbId, Tree, TreeEntry, TreeId, is_reserved_name,
};

use crate::error::GitError;
use crate::revision;
use crate::writer::Writer;

/// The sink cache key prefix of a converted Git tree.
pub(crate) const TREE_KEY: u8 = b't';
/// The sink cache key prefix of a converted Git blob.
pub(crate) const BLOB_KEY: u8 = b'b';

/// How many conversions the newer half of the memo holds before it
/// becomes the older half and the older one is dropped (the sink cache
/// still has them all).
const MEMO_LIMIT: usize = 1 << 16;

/// Bits in the filter of ids converted in this ingest (4 MiB: about three
/// million objects before false positives pass 5%).
const SEEN_BITS: usize = 1 << 25;

/// Converts objects of one repository, remembering what it converted.
pub(crate) struct Converter<'a> {
    repo: &'a gix::Repository,
    sink: &'a dyn IngestSink,
    /// Recent conversions, Git id → plumb id (both kinds; Git ids are unique
    /// across kinds): the newer half, then the older.
    memo: HashMap<ObjectId, [u8; 32]>,
    older: HashMap<ObjectId, [u8; 32]>,
    /// For a source with no history yet: every id converted in this
    /// ingest. An id it has not seen cannot be in the sink cache (short of
    /// leftovers of an interrupted first ingest, which are then merely
    /// converted again), so the cache is not asked.
    seen: Option<Seen>,
    /// Conversions not yet handed to the sink cache; written just before
    /// the snapshot that needs them is committed.
    pending: Vec<(Vec<u8>, [u8; 32])>,
    /// Blobs read from Git.
    pub files_read: u64,
    /// Their bytes.
    pub bytes_read: u64,
    /// Entries left out (reserved names, see [`plumb_core::is_reserved_name`]),
    /// one line each naming the commit and the path.
    pub warnings: Vec<String>,
}

/// One tree being converted: the Git entries still to visit and the plumb
/// entries made so far.
struct Frame {
    id: ObjectId,
    /// The entry name in the parent, `None` for the root.
    name: Option<Name>,
    todo: std::vec::IntoIter<(Name, gix::objs::tree::EntryMode, ObjectId)>,
    done: Vec<TreeEntry>,
}

impl<'a> Converter<'a> {
    /// A converter; `fresh` when the source has no history yet.
    pub(crate) fn new(repo: &'a gix::Repository, sink: &'a dyn IngestSink, fresh: bool) -> Self {
        Self {
            repo,
            sink,
            memo: HashMap::default(),
            older: HashMap::default(),
            seen: fresh.then(Seen::new),
            pending: Vec::new(),
            files_read: 0,
            bytes_read: 0,
            warnings: Vec::new(),
        }
    }

    /// Hands the conversions made since the last call to the sink cache.
    /// Call right before committing the snapshot whose objects they are.
    pub(crate) fn flush(&mut self, writer: &mut Writer<'_>) -> Result<(), SinkError> {
        writer.cache_put(std::mem::take(&mut self.pending))
    }

    fn lookup(&mut self, kind: u8, id: &ObjectId) -> Result<Option<[u8; 32]>, SinkError> {
        if let Some(v) = self.memo.get(id).or_else(|| self.older.get(id)) {
            return Ok(Some(*v));
        }
        if self.seen.as_ref().is_some_and(|s| !s.may_contain(id)) {
            return Ok(None);
        }
        let Some(v) = self.sink.cache_get(&key(kind, id))? else {
            return Ok(None);
        };
        // A value of another length is not ours: convert again.
        let Ok(v) = <[u8; 32]>::try_from(v.as_slice()) else {
            return Ok(None);
        };
        self.remember_only(*id, v);
        Ok(Some(v))
    }

    fn remember_only(&mut self, id: ObjectId, v: [u8; 32]) {
        if self.memo.len() >= MEMO_LIMIT {
            self.older = std::mem::take(&mut self.memo);
        }
        if let Some(seen) = &mut self.seen {
            seen.insert(&id);
        }
        self.memo.insert(id, v);
    }

    fn remember(&mut self, kind: u8, id: ObjectId, v: [u8; 32]) {
        self.pending.push((key(kind, &id), v));
        self.remember_only(id, v);
    }

    /// Reads an object that must be of kind `expected`.
    fn read(&self, id: ObjectId, expected: GitKind) -> Result<gix::Object<'a>, GitError> {
        read(self.repo, id, expected)
    }

    /// The plumb blob holding the Git blob `id`.
    pub(crate) fn blob(
        &mut self,
        writer: &mut Writer<'_>,
        id: ObjectId,
    ) -> Result<BlobId, GitError> {
        if let Some(v) = self.lookup(BLOB_KEY, &id)? {
            return Ok(BlobId::new(PlumbId::from_bytes(v)));
        }
        // Sized (and refused past the limit) before anything is inflated.
        let size = crate::large::checked_size(self.repo, self.sink, id)?;
        let streamed = if size > CHUNK_SIZE {
            crate::large::stream_loose(self.repo, self.sink, id, size)?
        } else {
            None
        };
        let blob = match streamed {
            Some(blob) => blob,
            None => {
                let obj = self.read(id, GitKind::Blob)?;
                writer.put_blob(&obj.data)?
            }
        };
        self.files_read += 1;
        self.bytes_read += size;
        self.remember(BLOB_KEY, id, *blob.as_bytes());
        Ok(blob)
    }

    /// The plumb tree of the Git tree `root` of `commit`, converting what is
    /// not yet converted. Depth is handled without recursion, so a deep tree
    /// cannot exhaust the stack; memory holds one tree per level. Entries
    /// with a reserved name are left out, with a warning naming `commit`
    /// (the first commit converting that tree) and the path.
    pub(crate) fn tree(
        &mut self,
        writer: &mut Writer<'_>,
        root: ObjectId,
        commit: ObjectId,
    ) -> Result<TreeId, GitError> {
        if let Some(v) = self.lookup(TREE_KEY, &root)? {
            return Ok(TreeId::new(PlumbId::from_bytes(v)));
        }
        let mut current = self.open(root, None)?;
        let mut parents: Vec<Frame> = Vec::new();
        loop {
            if let Some((name, mode, id)) = current.todo.next() {
                if is_reserved_name(name.as_bytes()) {
                    let path = parents
                        .iter()
                        .chain([&current])
                        .filter_map(|f| f.name.as_ref())
                        .chain([&name])
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join("/");
                    let warning = format!(
                        "{}: left out {path}: repository metadata or a plumb store is never snapshotted",
                        revision(&commit)
                    );
                    self.warnings.push(warning);
                    continue;
                }
                let value = if mode.is_tree() {
                    match self.lookup(TREE_KEY, &id)? {
                        Some(v) => EntryValue::Tree(TreeId::new(PlumbId::from_bytes(v))),
                        None => {
                            let child = self.open(id, Some(name))?;
                            parents.push(std::mem::replace(&mut current, child));
                            continue;
                        }
                    }
                } else if mode.is_commit() {
                    EntryValue::Submodule(revision(&id))
                } else if mode.is_link() {
                    EntryValue::Symlink(self.blob(writer, id)?)
                } else if mode.is_executable() {
                    EntryValue::Executable(self.blob(writer, id)?)
                } else if mode.is_blob() {
                    EntryValue::File(self.blob(writer, id)?)
                } else {
                    return Err(GitError::BadEntry {
                        tree: current.id.to_hex().to_string(),
                        name: name.to_string(),
                        reason: format!("unknown mode {mode:o}"),
                    });
                };
                current.done.push(TreeEntry::new(name, value));
                continue;
            }
            let git_id = current.id;
            let tree =
                Tree::new(std::mem::take(&mut current.done)).map_err(|e| GitError::BadEntry {
                    tree: git_id.to_hex().to_string(),
                    name: e.name().to_owned(),
                    reason: e.to_string(),
                })?;
            let id = writer.put_tree(&tree)?;
            self.remember(TREE_KEY, git_id, *id.as_bytes());
            let Some(parent) = parents.pop() else {
                return Ok(id);
            };
            let done = std::mem::replace(&mut current, parent);
            if let Some(name) = done.name {
                current
                    .done
                    .push(TreeEntry::new(name, EntryValue::Tree(id)));
            }
        }
    }

    /// Reads the Git tree `id` into a frame.
    fn open(&self, id: ObjectId, name: Option<Name>) -> Result<Frame, GitError> {
        let entries = self.entries(id)?;
        Ok(Frame {
            id,
            name,
            todo: entries.into_iter(),
            done: Vec::new(),
        })
    }

    /// The entries of the Git tree `id`, names checked.
    pub(crate) fn entries(
        &self,
        id: ObjectId,
    ) -> Result<Vec<(Name, gix::objs::tree::EntryMode, ObjectId)>, GitError> {
        let obj = self.read(id, GitKind::Tree)?;
        let hex = || id.to_hex().to_string();
        let mut out = Vec::new();
        for entry in gix::objs::TreeRefIter::from_bytes(&obj.data, self.repo.object_hash()) {
            let entry = entry.map_err(|e| GitError::Malformed {
                what: "tree",
                id: hex(),
                reason: e.to_string(),
            })?;
            let name = Name::new(entry.filename.to_vec()).map_err(|e| GitError::BadEntry {
                tree: hex(),
                name: String::from_utf8_lossy(entry.filename).into_owned(),
                reason: e.to_string(),
            })?;
            out.push((name, entry.mode, entry.oid.to_owned()));
        }
        Ok(out)
    }

    /// The Git tree at `path` below the tree `root`, if there is a tree.
    pub(crate) fn subtree(
        &self,
        root: ObjectId,
        path: &[Name],
    ) -> Result<Option<ObjectId>, GitError> {
        let mut at = root;
        for component in path {
            let found = self
                .entries(at)?
                .into_iter()
                .find(|(name, _, _)| name == component);
            match found {
                Some((_, mode, id)) if mode.is_tree() => at = id,
                _ => return Ok(None),
            }
        }
        Ok(Some(at))
    }
}

/// Reads an object that must be of kind `expected`.
pub(crate) fn read(
    repo: &gix::Repository,
    id: ObjectId,
    expected: GitKind,
) -> Result<gix::Object<'_>, GitError> {
    let what = kind_name(expected);
    let obj = repo
        .try_find_object(id)
        .map_err(|e| GitError::Read {
            what,
            id: id.to_hex().to_string(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| GitError::Missing {
            what,
            id: id.to_hex().to_string(),
        })?;
    if obj.kind != expected {
        return Err(GitError::WrongKind {
            id: id.to_hex().to_string(),
            expected: what,
            actual: obj.kind.to_string(),
        });
    }
    Ok(obj)
}

/// A Bloom filter of Git ids (two probes; ids are uniformly distributed
/// already, so their bytes serve as the hashes).
struct Seen {
    bits: Vec<u64>,
}

impl Seen {
    fn new() -> Self {
        Self {
            bits: vec![0; SEEN_BITS / 64],
        }
    }

    fn probes(id: &ObjectId) -> [usize; 2] {
        let b = id.as_bytes();
        let word = |at: usize| {
            let bytes: [u8; 8] = b[at..at + 8]
                .try_into()
                .expect("Git ids are at least 20 bytes");
            u64::from_le_bytes(bytes) as usize % SEEN_BITS
        };
        [word(0), word(8)]
    }

    fn insert(&mut self, id: &ObjectId) {
        for p in Self::probes(id) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_contain(&self, id: &ObjectId) -> bool {
        Self::probes(id)
            .iter()
            .all(|&p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

fn key(kind: u8, id: &ObjectId) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.as_bytes().len());
    k.push(kind);
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn kind_name(kind: GitKind) -> &'static str {
    match kind {
        GitKind::Blob => "blob",
        GitKind::Tree => "tree",
        GitKind::Commit => "commit",
        GitKind::Tag => "tag",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_holds_what_was_inserted_and_little_else() {
        let id = |n: u32| {
            let mut b = [0u8; 20];
            b[..4].copy_from_slice(&n.to_le_bytes());
            b[8..12].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
            ObjectId::from_bytes_or_panic(&b)
        };
        let mut seen = Seen::new();
        for n in 0..10_000 {
            seen.insert(&id(n));
        }
        assert!((0..10_000).all(|n| seen.may_contain(&id(n))));
        let false_positives = (10_000..20_000)
            .filter(|&n| seen.may_contain(&id(n)))
            .count();
        assert!(false_positives < 10, "{false_positives} false positives");
    }
}
