//! The engines a store directory can hold: one [`EngineKind`] entry each,
//! listed in [`ENGINES`].
//!
//! An entry holds everything the store knows about an engine: the name
//! its format file records (`engine = NAME`, `spec/store.md`), the file or
//! directory it keeps inside the store directory, and how it is created
//! and opened. Nothing else matches on the engine.
//!
//! To add an engine: write its entry here and put it in [`ENGINES`]. An
//! engine behind a cargo feature keeps its entry in every build, with
//! no opener where the feature is off, so a store that uses it says why
//! it cannot be opened.

use std::path::Path;

use plumb_core::engine::{Engine, EngineError};
use plumb_engine_redb::RedbEngine;

/// Makes or opens an engine's database at a path.
pub type OpenFn = fn(&Path) -> Result<Box<dyn Engine>, EngineError>;

/// How an engine's database is created and opened.
#[derive(Debug, Clone, Copy)]
pub struct Opener {
    /// Creates it (the path does not exist yet).
    pub create: OpenFn,
    /// Opens it for reading and writing: one writer at a time.
    pub open: OpenFn,
    /// Opens it for reading, beside other readers and a writer when the
    /// engine is shared.
    pub open_read_only: OpenFn,
}

/// One engine.
///
/// # Contract
///
/// - `name` and `file` are stable: a store directory records the name in
///   its format file, and keeps the engine's data at `file`.
/// - What the opener returns meets the `Engine` contract
///   (`backends/core/src/engine/mod.rs`), sharing between processes as
///   `shared` says: a second writer, or any second handle of an engine not
///   shared, gets [`EngineError::Locked`] at once.
#[derive(Debug)]
pub struct EngineKind {
    /// Its name in the format file and for `plumb init --engine`.
    pub name: &'static str,
    /// Its database's file or directory inside the store directory.
    pub file: &'static str,
    /// The cargo feature that builds it in, when it is optional.
    pub feature: Option<&'static str>,
    /// Whether it is shared between processes (readers beside a writer),
    /// or admits one process at a time (the `Engine` contract's sharing).
    pub shared: bool,
    /// How to create and open it; `None` when this build leaves it out.
    pub opener: Option<Opener>,
}

/// redb: one file, ACID. The default.
pub static REDB: EngineKind = EngineKind {
    name: "redb",
    file: "store.redb",
    feature: None,
    shared: true,
    opener: Some(Opener {
        create: |path| Ok(Box::new(RedbEngine::create(path)?)),
        open: |path| Ok(Box::new(RedbEngine::open(path)?)),
        open_read_only: |path| Ok(Box::new(RedbEngine::open_read_only(path)?)),
    }),
};

/// sled 0.34 (cargo feature `sled`), kept to measure against redb. It is
/// single-process: sled locks its directory for one handle, with no
/// read-only mode, so a reader holds the store as a writer does and any
/// second process is refused at once.
pub static SLED: EngineKind = EngineKind {
    name: "sled",
    file: "sled",
    feature: Some("sled"),
    shared: false,
    #[cfg(feature = "sled")]
    opener: Some(Opener {
        create: open_sled,
        open: open_sled,
        open_read_only: open_sled,
    }),
    #[cfg(not(feature = "sled"))]
    opener: None,
};

#[cfg(feature = "sled")]
fn open_sled(path: &Path) -> Result<Box<dyn Engine>, EngineError> {
    Ok(Box::new(plumb_engine_sled::SledEngine::open(path)?))
}

/// Every engine, the default first.
pub static ENGINES: [&EngineKind; 2] = [&REDB, &SLED];

/// A name that is no engine's.
#[derive(Debug, thiserror::Error)]
#[error("unknown store engine {name:?} (known: {})", known.join(", "))]
pub struct UnknownEngine {
    /// The name given.
    pub name: String,
    /// The engines there are.
    pub known: Vec<&'static str>,
}

impl EngineKind {
    /// The engine called `name`.
    pub fn named(name: &str) -> Result<&'static EngineKind, UnknownEngine> {
        ENGINES
            .iter()
            .copied()
            .find(|k| k.name == name)
            .ok_or_else(|| UnknownEngine {
                name: name.to_owned(),
                known: ENGINES.iter().map(|k| k.name).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn every_engine_is_found_by_its_name() {
        for kind in ENGINES {
            assert!(std::ptr::eq(EngineKind::named(kind.name).unwrap(), kind));
        }
        assert!(REDB.opener.is_some());
        assert_eq!(SLED.opener.is_some(), cfg!(feature = "sled"));
        let err = EngineKind::named("lmdb").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown store engine "lmdb" (known: redb, sled)"#
        );
    }

    #[test]
    fn files_are_distinct() {
        for a in ENGINES {
            for b in ENGINES.iter().filter(|b| b.name != a.name) {
                assert_ne!(a.file, b.file);
            }
        }
    }
}
