//! plumb: the configuration history of any version-control system in one
//! content-addressed store, queried and reconciled.
//!
//! This crate holds the store ([`store`]), revision syntax ([`rev`]),
//! queries ([`query`]), ingest ([`ingest`]), the reconciler
//! ([`reconcile`]) and store maintenance ([`maintenance`]); sources,
//! targets and engines live in their own crates under `backends/`, and
//! [`sources`], [`reconcile::targets`] and [`store::engines`] list their
//! kinds.
//!
//! ```
//! use plumb::store::{Store, SourceDef, Vcs};
//!
//! let store = Store::memory();
//! store.add_source(&SourceDef {
//!     name: "app".into(),
//!     vcs: Vcs::Dir,
//!     location: "/srv/app".into(),
//!     refs: vec![],
//!     path: None,
//! }).unwrap();
//! assert_eq!(store.sources().unwrap().len(), 1);
//! ```
#![deny(missing_docs)]

pub mod agent;
pub mod ingest;
pub mod maintenance;
pub mod query;
pub mod reconcile;
pub mod rev;
pub mod sources;
pub mod status;
pub mod store;
