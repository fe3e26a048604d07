//! The Git source's integration tests, as one binary.

mod ingest;
