//! Large blobs: sized from the object's header before anything is
//! inflated, refused past the sink's limit, and streamed from a loose
//! object into the store in bounded memory. A large blob in a pack is read
//! whole (within the limit): gix inflates pack entries, deltas included,
//! only as a whole.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use gix::ObjectId;
use gix::objs::Kind as GitKind;
use plumb_core::BlobId;
use plumb_core::chunks::CHUNK_SIZE;
use plumb_core::source::{IngestSink, StreamError};

use crate::error::GitError;

/// The size of the blob `id`, read from its header (a loose object's first
/// bytes, a pack entry's header), checked against the sink's limit.
pub(crate) fn checked_size(
    repo: &gix::Repository,
    sink: &dyn IngestSink,
    id: ObjectId,
) -> Result<u64, GitError> {
    let hex = || id.to_hex().to_string();
    let header = repo
        .try_find_header(id)
        .map_err(|e| GitError::Read {
            what: "blob",
            id: hex(),
            reason: crate::error::chain(&e),
        })?
        .ok_or_else(|| GitError::Missing {
            what: "blob",
            id: hex(),
        })?;
    if header.kind() != GitKind::Blob {
        return Err(GitError::WrongKind {
            id: hex(),
            expected: "blob",
            actual: header.kind().to_string(),
        });
    }
    let size = header.size();
    let limit = sink.max_object_size();
    if size > limit {
        return Err(GitError::TooLarge {
            id: hex(),
            size,
            limit,
        });
    }
    Ok(size)
}

/// Stores the blob `id` of `size` bytes (over [`CHUNK_SIZE`]) by streaming
/// its loose object; `None` when it is not loose (it is in a pack).
pub(crate) fn stream_loose(
    repo: &gix::Repository,
    sink: &dyn IngestSink,
    id: ObjectId,
    size: u64,
) -> Result<Option<BlobId>, GitError> {
    debug_assert!(size > CHUNK_SIZE);
    let hex = id.to_hex().to_string();
    let path = repo
        .objects
        .store_ref()
        .path()
        .join(&hex[..2])
        .join(&hex[2..]);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(&hex, e)),
    };
    let mut inflated = BufReader::new(flate2::read::ZlibDecoder::new(BufReader::new(file)));
    // The loose object's own header: `blob <size>\0`.
    let mut head = Vec::new();
    (&mut inflated)
        .take(32)
        .read_until(0, &mut head)
        .map_err(|e| read_error(&hex, e))?;
    if head != format!("blob {size}\0").as_bytes() {
        return Err(GitError::Malformed {
            what: "blob",
            id: hex,
            reason: format!(
                "its loose object's header {:?} does not match its size {size}",
                String::from_utf8_lossy(&head)
            ),
        });
    }
    sink.put_blob_stream(size, &mut inflated)
        .map(Some)
        .map_err(|e| match e {
            StreamError::Sink(e) => GitError::Sink(e),
            StreamError::Read(e) => read_error(&hex, e),
            e @ (StreamError::Length { .. } | StreamError::TooLarge { .. }) => {
                GitError::Malformed {
                    what: "blob",
                    id: hex,
                    reason: e.to_string(),
                }
            }
        })
}

fn read_error(hex: &str, e: std::io::Error) -> GitError {
    GitError::Read {
        what: "blob",
        id: hex.to_owned(),
        reason: e.to_string(),
    }
}
