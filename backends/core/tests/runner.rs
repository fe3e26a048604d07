//! plumb-core's integration tests, as one binary.

mod memory_engine;
mod roundtrip;
mod vectors;
