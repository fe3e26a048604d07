//! Large blobs kept in chunks (`spec/store.md`, "Large blobs").
//!
//! A blob is named by the hash of its whole canonical encoding, whatever its
//! size, so a large blob keeps the id it would have had whole. A store keeps
//! the content of a blob larger than [`CHUNK_SIZE`] as a sequence of chunks,
//! each an ordinary blob object of at most [`CHUNK_SIZE`] bytes, and a
//! [`ChunkList`] that names them in order. Readers verify each chunk by its
//! own id as they read it and the whole content by the blob's id at the end,
//! and never need more than one chunk in memory.
//!
//! [`BlobHasher`] computes a blob's id from its content in pieces, and
//! [`MAX_OBJECT_SIZE`] is the default limit on how large an object any
//! source may hand the store.

use crate::id::{BlobId, ObjectId};
use crate::leb128::{self, Leb128Error};
use crate::object::Blob;

/// The size of every chunk but the last (4 MiB), and the largest blob
/// content kept whole: a blob of more bytes is kept in chunks.
pub const CHUNK_SIZE: u64 = 4 << 20;

/// The default largest object a sink accepts (4 GiB of content): larger
/// ones are refused before anything is read or inflated.
pub const MAX_OBJECT_SIZE: u64 = 4 << 30;

/// The smallest encoded chunk entry: a 32-byte id and a one-byte length.
const MIN_ENTRY: usize = 33;

/// One chunk of a large blob: the id of the blob object holding its bytes,
/// and how many bytes that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// The chunk's own blob id.
    pub id: BlobId,
    /// Its length in bytes (at least 1).
    pub len: u64,
}

/// The chunks that hold a large blob's content, in order.
///
/// Encoded as `uleb(size) uleb(n) (id uleb(len))*n`: the content's size,
/// then each chunk's blob id and length. The lengths are at least 1 and
/// add up to the size, and there is at least one chunk. How content is cut
/// is the writer's choice (plumb cuts every [`CHUNK_SIZE`] bytes); a
/// reader accepts any cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkList {
    size: u64,
    chunks: Vec<Chunk>,
}

/// Why bytes are not a chunk list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkListError {
    /// The bytes end inside the list.
    #[error("chunk list truncated at byte {offset}")]
    Truncated {
        /// Where the bytes ran out.
        offset: usize,
    },
    /// A number is malformed.
    #[error("chunk list number at byte {offset}: {source}")]
    Number {
        /// Where the number starts.
        offset: usize,
        /// What is wrong with it.
        source: Leb128Error,
    },
    /// The list names no chunk.
    #[error("chunk list names no chunk")]
    Empty,
    /// A chunk has no bytes.
    #[error("chunk {index} of the list is empty")]
    EmptyChunk {
        /// Its position, from 0.
        index: usize,
    },
    /// The chunks do not add up to the size.
    #[error("chunk list of {size} bytes names chunks of {sum} bytes")]
    SizeMismatch {
        /// The size the list states.
        size: u64,
        /// What its chunks add up to (saturating).
        sum: u64,
    },
    /// Bytes follow the list.
    #[error("{count} bytes follow the chunk list")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

impl ChunkList {
    /// An empty list, to [`push`](Self::push) chunks onto.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk.
    pub fn push(&mut self, chunk: Chunk) {
        self.size = self.size.saturating_add(chunk.len);
        self.chunks.push(chunk);
    }

    /// The content's size: the chunks' lengths added up.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The list cut from `data` as plumb cuts it: a chunk every
    /// [`CHUNK_SIZE`] bytes, the last one shorter.
    pub fn of(data: &[u8]) -> Self {
        let mut list = Self::new();
        for piece in data.chunks(CHUNK_SIZE as usize) {
            list.push(Chunk {
                id: Blob::id_of(piece),
                len: piece.len() as u64,
            });
        }
        list
    }

    /// The encoding: `uleb(size) uleb(n) (id uleb(len))*n`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.chunks.len() * 36);
        leb128::write(&mut out, self.size);
        leb128::write(&mut out, self.chunks.len() as u64);
        for c in &self.chunks {
            out.extend_from_slice(c.id.as_bytes());
            leb128::write(&mut out, c.len);
        }
        out
    }

    /// Decodes exactly one list, rejecting anything [`encode`](Self::encode)
    /// could not have produced.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChunkListError> {
        let mut at = 0;
        let number = |at: &mut usize| -> Result<u64, ChunkListError> {
            let (value, used) = leb128::read(&bytes[*at..]).map_err(|source| match source {
                Leb128Error::Truncated => ChunkListError::Truncated {
                    offset: bytes.len(),
                },
                source => ChunkListError::Number {
                    offset: *at,
                    source,
                },
            })?;
            *at += used;
            Ok(value)
        };
        let size = number(&mut at)?;
        let n = number(&mut at)?;
        if n == 0 {
            return Err(ChunkListError::Empty);
        }
        // Check the count against what remains before allocating for it.
        if n > ((bytes.len() - at) / MIN_ENTRY) as u64 {
            return Err(ChunkListError::Truncated {
                offset: bytes.len(),
            });
        }
        let mut list = Self::new();
        for index in 0..n as usize {
            let id: [u8; 32] = bytes
                .get(at..at + 32)
                .and_then(|b| b.try_into().ok())
                .ok_or(ChunkListError::Truncated {
                    offset: bytes.len(),
                })?;
            at += 32;
            let len = number(&mut at)?;
            if len == 0 {
                return Err(ChunkListError::EmptyChunk { index });
            }
            list.push(Chunk {
                id: BlobId::new(ObjectId::from_bytes(id)),
                len,
            });
        }
        if at != bytes.len() {
            return Err(ChunkListError::TrailingBytes {
                count: bytes.len() - at,
            });
        }
        if list.size != size {
            return Err(ChunkListError::SizeMismatch {
                size,
                sum: list.size,
            });
        }
        Ok(list)
    }
}

/// Computes a blob's id from its content given in pieces, the size known
/// up front (it is part of the encoding, before the content).
#[derive(Debug, Clone)]
pub struct BlobHasher {
    hasher: blake3::Hasher,
    size: u64,
    seen: u64,
}

impl BlobHasher {
    /// A hasher for content of `size` bytes.
    pub fn new(size: u64) -> Self {
        let mut hasher = blake3::Hasher::new();
        let (head, n) = Blob::header(size as usize);
        hasher.update(&head[..n]);
        Self {
            hasher,
            size,
            seen: 0,
        }
    }

    /// Adds the next piece of the content.
    pub fn update(&mut self, piece: &[u8]) {
        self.seen = self.seen.saturating_add(piece.len() as u64);
        self.hasher.update(piece);
    }

    /// How many bytes have been added.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The blob's id, or `None` when the pieces did not add up to the size
    /// given at the start.
    pub fn finish(&self) -> Option<BlobId> {
        (self.seen == self.size)
            .then(|| BlobId::new(ObjectId::from_bytes(*self.hasher.finalize().as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trips_and_rejects_damage() {
        let data: Vec<u8> = (0..(CHUNK_SIZE as usize + 10)).map(|i| i as u8).collect();
        let list = ChunkList::of(&data);
        assert_eq!(list.chunks().len(), 2);
        assert_eq!(list.size(), data.len() as u64);
        let bytes = list.encode();
        assert_eq!(ChunkList::decode(&bytes), Ok(list));
        for cut in 0..bytes.len() {
            assert!(ChunkList::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert!(matches!(
            ChunkList::decode(&more),
            Err(ChunkListError::TrailingBytes { count: 1 })
        ));
    }

    #[test]
    fn hasher_matches_whole_id() {
        let data = b"0123456789".repeat(1000);
        let mut h = BlobHasher::new(data.len() as u64);
        for piece in data.chunks(333) {
            h.update(piece);
        }
        assert_eq!(h.finish(), Some(Blob::id_of(&data)));
        let mut short = BlobHasher::new(data.len() as u64 + 1);
        short.update(&data);
        assert_eq!(short.finish(), None);
    }
}
