//! plumb library.
#![deny(missing_docs)]
