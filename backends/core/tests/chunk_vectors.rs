//! Checks the chunk lists of large blobs against the golden vectors in
//! `spec/vectors/chunks.txt` (format described at the top of that file).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use plumb_core::Blob;
use plumb_core::chunks::{BlobHasher, ChunkList, ChunkListError};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/chunks.txt");

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The content a `content:` field describes: `pattern N` (byte i is
/// i mod 251) or `zeros N`.
fn content(spec: &str) -> Vec<u8> {
    let (kind, n) = spec.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    match kind {
        "pattern" => (0..n).map(|i| (i % 251) as u8).collect(),
        "zeros" => vec![0; n],
        _ => panic!("unknown content {spec:?}"),
    }
}

fn error_name(e: &ChunkListError) -> &'static str {
    match e {
        ChunkListError::Truncated { .. } => "Truncated",
        ChunkListError::Number { .. } => "Number",
        ChunkListError::Empty => "Empty",
        ChunkListError::EmptyChunk { .. } => "EmptyChunk",
        ChunkListError::SizeMismatch { .. } => "SizeMismatch",
        ChunkListError::TrailingBytes { .. } => "TrailingBytes",
    }
}

#[test]
fn chunk_vectors_cut_hash_and_decode() {
    let vectors = crate::vectors::load_from(VECTORS);
    assert!(vectors.iter().filter(|v| v.valid).count() >= 3);
    assert!(vectors.iter().filter(|v| !v.valid).count() >= 6);
    for v in vectors {
        let bytes = v.bytes();
        let (id, error) = (v.id.unwrap_or_default(), v.error.unwrap_or_default());
        if v.valid {
            let data = content(v.content.as_deref().expect("valid vectors have content"));
            let list = ChunkList::of(&data);
            assert_eq!(hex(&list.encode()), v.hex, "{}: chunk list", v.name);
            assert_eq!(ChunkList::decode(&bytes), Ok(list.clone()), "{}", v.name);
            assert_eq!(Blob::id_of(&data).to_string(), id, "{}: id", v.name);
            let mut h = BlobHasher::new(data.len() as u64);
            for c in list.chunks() {
                let start = h.seen() as usize;
                let piece = &data[start..start + c.len as usize];
                assert_eq!(Blob::id_of(piece), c.id, "{}: chunk id", v.name);
                h.update(piece);
            }
            assert_eq!(h.finish().unwrap().to_string(), id, "{}", v.name);
        } else {
            let e = ChunkList::decode(&bytes).expect_err(&v.name);
            assert_eq!(error_name(&e), error, "{}: {e}", v.name);
        }
    }
}
