//! Fixtures shared by plumb's tests, for its packages' test binaries only
//! (a dev-dependency, never published).
//!
//! - [`cli`]: a scratch directory with a store, running a `plumb` binary
//!   and checking what it prints.
//! - [`git`] and [`hg`]: repositories built with the real `git` and `hg`,
//!   isolated from the machine's configuration, so fixtures are
//!   reproducible and the real tools are the oracles.
//! - [`fixture`]: a fixture built once per test process and copied for
//!   each test that uses it.
//! - [`fs`] and [`tree`]: files, modes and whole trees, looked at without
//!   following links.
//! - [`net`]: a free loopback port for a test server.
//! - [`programs`]: programs a test needs, skipped outside CI when absent.
//!
//! Everything here panics on failure: in a test that is the report.
#![deny(missing_docs)]

pub mod cli;
pub mod fixture;
pub mod fs;
pub mod git;
pub mod hg;
pub mod net;
pub mod programs;
pub mod rss;
pub mod tree;
