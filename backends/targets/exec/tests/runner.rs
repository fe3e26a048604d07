//! The plugin target's integration tests, as one binary.

mod conformance;
mod plugin;
