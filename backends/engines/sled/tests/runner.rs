//! The sled engine's integration tests, as one binary.

mod conformance;
