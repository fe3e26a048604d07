//! The redb engine's integration tests, as one binary.

mod conformance;
