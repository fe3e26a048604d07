//! plumb's plugin target: any program that speaks the plugin protocol
//! (`spec/plugin-protocol.md`) on its standard input and output becomes a
//! [`Target`](plumb_core::target::Target), whatever language it is written
//! in.
//!
//! [`ExecTarget::spawn`] starts the program and does the handshake; the
//! target then observes in batches, applies one change at a time
//! (confirming each only when the plugin answers `ok`), and gives up on a
//! plugin that crashes, hangs past the timeout or breaks the protocol,
//! killing it. [`protocol`] holds the messages and their decoder, free of
//! I/O.
//!
//! ```no_run
//! use plumb_core::target::{ObserveRequest, Target, TargetPath};
//! use plumb_target_exec::ExecTarget;
//!
//! let mut target = ExecTarget::spawn("python3 plugin.py --db state.sqlite", ".")?;
//! let path = TargetPath::new(b"etc/app.conf".to_vec()).expect("valid");
//! let seen = target.observe(&[ObserveRequest { path, digest: true, list: false }])?;
//! println!("{seen:?}");
//! # Ok::<(), plumb_core::target::TargetError>(())
//! ```
#![deny(missing_docs)]

mod error;
mod exec;
mod io;
pub mod protocol;

pub use error::{ExecError, Violation};
pub use exec::{
    Capabilities, DEFAULT_TIMEOUT, ExecTarget, SpawnOptions, TIMEOUT_ENV, timeout_from_env,
};
