//! plumb's object model, its canonical encoding, and the contracts that
//! sources and stores meet at.
//!
//! Every object plumb stores is one of three kinds — [`Blob`], [`Tree`],
//! [`Snapshot`] — and is named by the BLAKE3-256 hash of its canonical
//! encoding (`spec/encoding.md`). The decoder accepts exactly the bytes the
//! encoder produces, so an object has one byte string and one id.
//!
//! ```
//! use plumb_core::{Blob, Object, decode};
//!
//! let blob = Blob::new(b"port = 8080\n".to_vec());
//! let bytes = blob.encode();
//! assert_eq!(decode(&bytes).unwrap(), Object::Blob(blob.clone()));
//! println!("{}", blob.id()); // blake3:…
//! ```
//!
//! # Errors
//!
//! Every error type here ([`source::SourceError`], [`target::TargetError`],
//! [`engine::EngineError`], …), and in every crate built on these
//! contracts, follows one rule: **its text is one line that says what
//! failed and where, and includes the text of its cause.** The cause is
//! kept as well, as [`std::error::Error::source`] (boxed when it is another
//! crate's error), so a caller can walk the chain and downcast it, but
//! never has to print it: whoever shows an error to a person prints the
//! outermost error's text, and nothing of its chain after it.
#![deny(missing_docs)]

pub mod attributes;
pub mod attrs;
pub mod chunks;
mod codec;
pub mod engine;
mod id;
pub mod journal;
pub mod leb128;
mod name;
mod object;
pub mod quote;
pub mod source;
pub mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use attrs::{Attrs, Owner, ResolvedAttrs};
pub use codec::{DecodeError, decode, decode_blob, decode_snapshot, decode_tree};
pub use id::{BlobId, IdParseError, ObjectId, SnapshotId, TreeId};
pub use name::{Name, NameError, is_reserved_name};
pub use object::{
    Blob, Encoded, EntryValue, Kind, Object, Person, Snapshot, SnapshotError, Tree, TreeEntry,
    TreeError,
};
