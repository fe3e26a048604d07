//! Links the `plumb` executable as position-dependent (non-PIE) on Linux.
//!
//! A position-independent executable of plumb's size carries some 32,000
//! relative relocations; the dynamic loader applies them at every start,
//! copying about 150 pages of the binary on write. That is a third of the
//! time of a short command such as `plumb cat` (about 0.6 ms of 2). A
//! position-dependent executable needs none of them. The price is that the
//! executable's own code and data load at a fixed address (libraries, heap
//! and stack are still randomized); this is also how Go links its Linux
//! binaries by default, `kubectl`, Flux and Argo CD among them.
//!
//! Set `PLUMB_PIE=1` when building to keep a position-independent
//! executable.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PLUMB_PIE");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let keep_pie = std::env::var_os("PLUMB_PIE").is_some_and(|v| v != "0" && !v.is_empty());
    if linux_gnu && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
