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
#![deny(missing_docs)]

mod codec;
pub mod engine;
mod id;
pub mod leb128;
mod name;
mod object;
pub mod source;
pub mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use codec::{DecodeError, decode, decode_blob, decode_snapshot, decode_tree};
pub use id::{BlobId, IdParseError, ObjectId, SnapshotId, TreeId};
pub use name::{Name, NameError};
pub use object::{
    Blob, Encoded, EntryValue, Kind, Object, Person, Snapshot, SnapshotError, Tree, TreeEntry,
    TreeError,
};
