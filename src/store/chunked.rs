//! Large blobs: kept as chunks, each an ordinary blob object, and a chunk
//! list under the blob's own id (`spec/store.md`, "Large blobs"); written
//! and read piece by piece, so memory stays bounded whatever their size.

use std::io::{self, Read};

use plumb_core::chunks::{BlobHasher, CHUNK_SIZE, Chunk, ChunkList};
use plumb_core::{BlobId, ObjectId};

use super::packs::CHUNKED_POINTER;
use super::{Batch, Store, StoreError, Table};

/// The packing flag of a chunk list: `0x03`, then the list's encoding.
pub(crate) const CHUNKED: u8 = 0x03;

/// A packed chunk list: the flag, then the list.
fn pack_list(list: &ChunkList) -> Vec<u8> {
    let mut out = vec![CHUNKED];
    out.extend_from_slice(&list.encode());
    out
}

/// Decodes a packed chunk list (its flag included), as a corrupt object
/// `id` when it is not one.
pub(crate) fn unpack_list(id: &ObjectId, packed: &[u8]) -> Result<ChunkList, StoreError> {
    match packed.split_first() {
        Some((&CHUNKED, body)) => ChunkList::decode(body).map_err(|e| StoreError::Corrupt {
            id: *id,
            reason: e.to_string(),
        }),
        _ => Err(StoreError::Corrupt {
            id: *id,
            reason: "not a chunk list".into(),
        }),
    }
}

/// Whether an objects-table value names a chunk list: a pointer to one in
/// a pack, or one kept inline (a store in memory).
pub(crate) fn is_chunked(value: &[u8]) -> bool {
    matches!(value.first(), Some(&CHUNKED_POINTER | &CHUNKED))
}

/// What an object's stored record holds.
pub(crate) enum Stored {
    /// The canonical bytes, verified.
    Whole(Vec<u8>),
    /// A large blob's chunk list (decoded, not yet verified: reading the
    /// chunks verifies it).
    Chunked(ChunkList),
}

impl Store {
    /// Stages a chunk list under the blob id `id`: appended to the pack
    /// with a [`CHUNKED_POINTER`] in the batch, or (in memory) inline.
    pub(crate) fn stage_chunk_list(
        &self,
        batch: &mut Batch,
        id: &ObjectId,
        list: &ChunkList,
    ) -> Result<(), StoreError> {
        let packed = pack_list(list);
        let value = match &self.packs {
            Some(packs) => packs.append(id, &packed)?.encode_as(CHUNKED_POINTER),
            None => packed,
        };
        batch.put(Table::Objects, id.as_bytes().to_vec(), value);
        Ok(())
    }

    /// The chunk list of a blob kept in chunks; `None` when the blob is
    /// absent or kept whole.
    pub fn chunk_list(&self, id: &BlobId) -> Result<Option<ChunkList>, StoreError> {
        let oid = id.object_id();
        let Some(value) = self.engine.get(Table::Objects, oid.as_bytes())? else {
            return Ok(None);
        };
        if !is_chunked(&value) {
            return Ok(None);
        }
        match self.read_stored(&oid, &value)? {
            Stored::Chunked(list) => Ok(Some(list)),
            Stored::Whole(_) => Ok(None),
        }
    }

    /// A reader of a blob's content, verified as it goes: a blob kept
    /// whole is read and verified at once; one kept in chunks is read a
    /// chunk at a time, each verified by its own id before any of its bytes
    /// are handed out, and the whole by the blob's id at the end, where a
    /// difference is an error of kind [`io::ErrorKind::InvalidData`] in
    /// place of end-of-file. So a reader that reaches the end has read
    /// exactly the blob's content; one that stops early with an error may
    /// have handed out a prefix of it (or, when the list itself is damaged,
    /// verified chunks that are not the blob's).
    pub fn blob_reader(&self, id: &BlobId) -> Result<BlobReader<'_>, StoreError> {
        let oid = id.object_id();
        if let Some(list) = self.chunk_list(id)? {
            return Ok(BlobReader {
                inner: Inner::Chunked(Box::new(Chunked {
                    store: self,
                    id: *id,
                    hasher: BlobHasher::new(list.size()),
                    list,
                    next: 0,
                    chunk: io::Cursor::new(Vec::new()),
                })),
            });
        }
        let blob = self.blob(id)?;
        debug_assert_eq!(blob.id().object_id(), oid);
        Ok(BlobReader {
            inner: Inner::Whole(io::Cursor::new(blob.into_data())),
        })
    }

    /// The canonical bytes of a blob kept in chunks, read whole and
    /// verified; refused past [`max_whole`](Self::max_whole) bytes.
    pub(crate) fn assemble(&self, id: &ObjectId, list: &ChunkList) -> Result<Vec<u8>, StoreError> {
        if list.size() > self.max_whole() {
            return Err(StoreError::TooLarge {
                id: *id,
                size: list.size(),
                limit: self.max_whole(),
            });
        }
        let (head, n) = plumb_core::Blob::header(list.size() as usize);
        let mut out = Vec::new();
        out.try_reserve_exact(n + list.size() as usize)
            .map_err(|_| StoreError::TooLarge {
                id: *id,
                size: list.size(),
                limit: self.max_whole(),
            })?;
        out.extend_from_slice(&head[..n]);
        let mut reader = self.blob_reader(&BlobId::new(*id))?;
        reader
            .read_to_end(&mut out)
            .map_err(|e| reader_error(id, e))?;
        Ok(out)
    }

    /// The largest object read whole into memory: the store's
    /// [object size limit](Self::max_object_size).
    pub fn max_whole(&self) -> u64 {
        self.max_object_size()
    }

    /// Verifies a blob kept in chunks by reading it through, in bounded
    /// memory (for `fsck`). `Ok(false)` when it is kept whole.
    pub fn verify_chunked(&self, id: &BlobId) -> Result<bool, StoreError> {
        if self.chunk_list(id)?.is_none() {
            return Ok(false);
        }
        let mut reader = self.blob_reader(id)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|e| reader_error(&id.object_id(), e))?;
        Ok(true)
    }
}

/// The store's error inside a reader's I/O error, or the reader's failure
/// as damage to `id`.
fn reader_error(id: &ObjectId, e: io::Error) -> StoreError {
    match e.downcast::<StoreError>() {
        Ok(inner) => inner,
        Err(e) => StoreError::Corrupt {
            id: *id,
            reason: e.to_string(),
        },
    }
}

/// A blob's content, read verified; see [`Store::blob_reader`].
pub struct BlobReader<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Whole(io::Cursor<Vec<u8>>),
    Chunked(Box<Chunked<'a>>),
}

/// Where a read of a blob kept in chunks is.
struct Chunked<'a> {
    store: &'a Store,
    id: BlobId,
    list: ChunkList,
    /// The index of the next chunk to load.
    next: usize,
    chunk: io::Cursor<Vec<u8>>,
    hasher: BlobHasher,
}

impl BlobReader<'_> {
    /// The content's size in bytes.
    pub fn size(&self) -> u64 {
        match &self.inner {
            Inner::Whole(c) => c.get_ref().len() as u64,
            Inner::Chunked(c) => c.list.size(),
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Chunked {
            store,
            id,
            list,
            next,
            chunk,
            hasher,
        } = match &mut self.inner {
            Inner::Whole(c) => return c.read(buf),
            Inner::Chunked(c) => &mut **c,
        };
        let (store, id) = (*store, *id);
        loop {
            let n = chunk.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(&Chunk { id: cid, len }) = list.chunks().get(*next) else {
                return match hasher.finish() {
                    Some(got) if got == id => Ok(0),
                    got => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        StoreError::Corrupt {
                            id: id.object_id(),
                            reason: match got {
                                Some(got) => format!("its chunks hash to {got}"),
                                None => "its chunks do not add up to its size".into(),
                            },
                        },
                    )),
                };
            };
            *next += 1;
            let data = store
                .blob(&cid)
                .map_err(|e| {
                    let e = match e {
                        StoreError::Missing { id: c } => StoreError::Corrupt {
                            id: id.object_id(),
                            reason: format!("its chunk {c} is missing"),
                        },
                        e => e,
                    };
                    io::Error::new(io::ErrorKind::InvalidData, e)
                })?
                .into_data();
            if data.len() as u64 != len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    StoreError::Corrupt {
                        id: id.object_id(),
                        reason: format!("its chunk {cid} holds {} bytes, not {len}", data.len()),
                    },
                ));
            }
            hasher.update(&data);
            *chunk = io::Cursor::new(data);
        }
    }
}

/// Reads `size` bytes of content from `content` a chunk at a time,
/// storing each chunk through `put_chunk`; returns the blob's id and its
/// chunk list. Content shorter or longer than `size` is an error.
pub(crate) fn write_chunks(
    size: u64,
    content: &mut dyn Read,
    mut put_chunk: impl FnMut(&[u8]) -> Result<BlobId, plumb_core::source::StreamError>,
) -> Result<(BlobId, ChunkList), plumb_core::source::StreamError> {
    use plumb_core::source::StreamError;
    let mut hasher = BlobHasher::new(size);
    let mut list = ChunkList::new();
    let mut buf = Vec::with_capacity(CHUNK_SIZE as usize);
    loop {
        buf.clear();
        let want = (size - hasher.seen()).min(CHUNK_SIZE);
        // One byte more than the last chunk needs shows content that runs
        // past its size.
        let want = if want == 0 { 1 } else { want };
        let n = content
            .take(want)
            .read_to_end(&mut buf)
            .map_err(StreamError::Read)?;
        if hasher.seen() == size {
            if n > 0 {
                return Err(StreamError::Length {
                    size,
                    read: size + 1,
                });
            }
            break;
        }
        if (n as u64) < want {
            return Err(StreamError::Length {
                size,
                read: hasher.seen() + n as u64,
            });
        }
        hasher.update(&buf);
        list.push(Chunk {
            id: put_chunk(&buf)?,
            len: n as u64,
        });
    }
    let id = hasher.finish().ok_or(StreamError::Length {
        size,
        read: hasher.seen(),
    })?;
    Ok((id, list))
}

/// Re-appends a chunk list's record as it is (for `gc`'s repacking,
/// which must not read a large blob whole).
pub(crate) fn restage_list(
    store: &Store,
    batch: &mut Batch,
    id: &ObjectId,
    value: &[u8],
) -> Result<(), StoreError> {
    let Stored::Chunked(list) = store.read_stored(id, value)? else {
        return Err(StoreError::Corrupt {
            id: *id,
            reason: "not a chunk list".into(),
        });
    };
    store.stage_chunk_list(batch, id, &list)
}
