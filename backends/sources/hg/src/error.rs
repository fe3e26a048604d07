//! What can go wrong while reading a repository.

use std::path::PathBuf;

use plumb_core::source::SinkError;

use crate::revlog::ReadError;

/// Why reading the repository failed. [`crate::HgSource`] reports it, with
/// the location, as the cause of
/// [`plumb_core::source::SourceError::Read`] (a store failure as
/// [`plumb_core::source::SourceError::Sink`], a file it cannot read as
/// [`plumb_core::source::SourceError::Io`]).
#[derive(Debug, thiserror::Error)]
pub enum HgError {
    /// The location holds no `.hg` directory.
    #[error("not a Mercurial repository (no .hg directory)")]
    NotARepository,
    /// A requirement this reader does not implement.
    #[error(
        "the repository requires {0:?}, a format this reader does not support \
         (it supports {supported})",
        supported = crate::requires::SUPPORTED.join(", ")
    )]
    Requirement(String),
    /// A remote repository could not be fetched.
    #[error("{0}")]
    Fetch(String),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A revlog could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The repository's content is inconsistent.
    #[error("{0}")]
    Corrupt(String),
    /// A ref names nothing.
    #[error("unknown ref {0:?}: not a bookmark, tag, named branch or changeset id")]
    UnknownRef(String),
    /// The repository has no changesets (on the branch asked for).
    #[error("no changesets{0}")]
    Empty(String),
    /// A file revision is larger than the store accepts; refused from the
    /// revlog's index, before its text is rebuilt.
    #[error(
        "file {path:?} revision {node} is {size} bytes, over the limit of {limit} bytes (max-object-size in the store's plumb-store file)"
    )]
    TooLarge {
        /// The file's path, lossily as text.
        path: String,
        /// The file revision's node, in hex.
        node: String,
        /// Its full text's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A path in a manifest that plumb cannot store.
    #[error("file {path:?} cannot be stored: {reason}")]
    BadPath {
        /// The path, lossily as text.
        path: String,
        /// Why.
        reason: String,
    },
    /// Converting a changeset failed.
    #[error("changeset {changeset}: {source}")]
    InChangeset {
        /// The changeset id, in hex.
        changeset: String,
        /// Why.
        source: Box<HgError>,
    },
    /// The store failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}
