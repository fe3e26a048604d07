//! Directory source (placeholder while the crate takes shape).
#![deny(missing_docs)]
