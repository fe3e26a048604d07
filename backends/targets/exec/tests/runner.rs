//! The plugin target's integration tests, as one binary.

mod plugin;
