//! The `plumb` package's integration tests, as one binary: each module
//! below was a test binary of its own, and linking is most of what a test
//! build costs. Run one module with `cargo test -p plumb --test runner
//! MODULE::`.

mod agent;
mod attributes;
mod backup;
mod cli;
mod concurrency;
mod damage;
mod full_disk;
mod git;
mod git_remote;
mod hg;
mod hooks;
mod kill;
mod kill_apply;
mod large;
mod output;
mod packaging;
mod reconcile_hostile;
mod repair;
mod revisions;
mod store;
mod target_conformance;
mod target_safety;

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

/// A byte string as plumb's JSON holds it: a string when UTF-8, else
/// `{"b64": …}`.
fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => {
            let b64 = other["b64"].as_str().expect("a string or {\"b64\": …}");
            plumb_target_exec::protocol::base64::decode(b64).expect("base64")
        }
    }
}

impl AsRef<Path> for Env {
    /// The scratch directory.
    fn as_ref(&self) -> &Path {
        self.0.as_ref()
    }
}
