//! plumb-core's integration tests, as one binary.

mod chunk_vectors;
mod journal_vectors;
mod memory_engine;
mod roundtrip;
mod vectors;

use plumb_core::Object;

/// The canonical encoding of any object.
fn encode(object: &Object) -> Vec<u8> {
    match object {
        Object::Blob(b) => b.encode(),
        Object::Tree(t) => t.encode(),
        Object::Snapshot(s) => s.encode().expect("a valid snapshot encodes"),
    }
}
