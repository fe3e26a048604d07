//! Checks the chunk lists of large blobs against the golden vectors in
//! `spec/vectors/chunks.txt` (format described at the top of that file).

use plumb_core::Blob;
use plumb_core::chunks::{BlobHasher, ChunkList, ChunkListError};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/chunks.txt");

#[derive(Debug, Default)]
struct Vector {
    name: String,
    valid: bool,
    content: String,
    hex: String,
    id: String,
    error: String,
}

fn load() -> Vec<Vector> {
    let text = std::fs::read_to_string(VECTORS).unwrap();
    let mut out: Vec<Vector> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("line {}: no `key:`", i + 1));
        let value = value.trim().to_owned();
        if key == "valid" || key == "invalid" {
            out.push(Vector {
                name: value,
                valid: key == "valid",
                ..Vector::default()
            });
            continue;
        }
        let v = out.last_mut().expect("a field before the first vector");
        match key {
            "content" => v.content = value,
            "hex" => v.hex.push_str(&value),
            "id" => v.id = value,
            "error" => v.error = value,
            "note" => {}
            _ => panic!("line {}: unknown field {key:?}", i + 1),
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

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
    let vectors = load();
    assert!(vectors.iter().filter(|v| v.valid).count() >= 3);
    assert!(vectors.iter().filter(|v| !v.valid).count() >= 6);
    for v in vectors {
        let bytes = unhex(&v.hex);
        if v.valid {
            let data = content(&v.content);
            let list = ChunkList::of(&data);
            assert_eq!(hex(&list.encode()), v.hex, "{}: chunk list", v.name);
            assert_eq!(ChunkList::decode(&bytes), Ok(list.clone()), "{}", v.name);
            assert_eq!(Blob::id_of(&data).to_string(), v.id, "{}: id", v.name);
            let mut h = BlobHasher::new(data.len() as u64);
            for c in list.chunks() {
                let start = h.seen() as usize;
                let piece = &data[start..start + c.len as usize];
                assert_eq!(Blob::id_of(piece), c.id, "{}: chunk id", v.name);
                h.update(piece);
            }
            assert_eq!(h.finish().unwrap().to_string(), v.id, "{}", v.name);
        } else {
            let e = ChunkList::decode(&bytes).expect_err(&v.name);
            assert_eq!(error_name(&e), v.error, "{}: {e}", v.name);
        }
    }
}
