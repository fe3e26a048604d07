//! The directory target's integration tests, as one binary (but for
//! `umask.rs`, which changes process-wide state).

mod conformance;
mod dir_target;
