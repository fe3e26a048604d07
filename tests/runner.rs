//! The `plumb` package's integration tests, as one binary: each module
//! below was a test binary of its own, and linking is most of what a test
//! build costs. Run one module with `cargo test -p plumb --test runner
//! MODULE::`.

mod attributes;
mod cli;
mod full_disk;
mod git;
mod git_remote;
mod hg;
mod kill;
mod kill_apply;
mod reconcile_hostile;
mod store;
mod target_conformance;

use std::path::Path;

use plumb_testutils::cli::TestEnv;

/// A scratch directory holding a store and whatever a test needs, running
/// this package's `plumb` binary ([`TestEnv`], which it dereferences to).
struct Env(TestEnv);

impl Env {
    /// A fresh environment.
    fn new() -> Self {
        Self(TestEnv::new(env!("CARGO_BIN_EXE_plumb")))
    }
}

impl std::ops::Deref for Env {
    type Target = TestEnv;

    fn deref(&self) -> &TestEnv {
        &self.0
    }
}

impl AsRef<Path> for Env {
    /// The scratch directory.
    fn as_ref(&self) -> &Path {
        self.0.as_ref()
    }
}
