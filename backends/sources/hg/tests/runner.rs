//! The Mercurial source's integration tests, as one binary.

mod ingest;
