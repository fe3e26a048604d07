//! What can go wrong while reading a repository.

use plumb_core::source::SinkError;

/// Why reading the repository failed. Every variant names the Git object
/// concerned; [`crate::GitSource`] adds the commit being converted and the
/// location, and reports it as a [`plumb_core::source::SourceError`].
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// An object the history refers to is not in the repository.
    #[error("{what} {id} is missing from the repository")]
    Missing {
        /// What the object should be (`commit`, `tree`, `blob`, …).
        what: &'static str,
        /// Its id, in hex.
        id: String,
    },
    /// An object could not be read (a corrupt loose object or pack).
    #[error("cannot read {what} {id}: {reason}")]
    Read {
        /// What the object should be.
        what: &'static str,
        /// Its id, in hex.
        id: String,
        /// The reader's explanation.
        reason: String,
    },
    /// An object is of another kind than the history says.
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        /// Its id, in hex.
        id: String,
        /// The kind expected.
        expected: &'static str,
        /// The kind found.
        actual: String,
    },
    /// An object's content is malformed.
    #[error("{what} {id} is malformed: {reason}")]
    Malformed {
        /// The object's kind.
        what: &'static str,
        /// Its id, in hex.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A tree entry that plumb's object model cannot hold.
    #[error("tree {tree} has an entry {name:?} that cannot be stored: {reason}")]
    BadEntry {
        /// The tree's id, in hex.
        tree: String,
        /// The entry's name, lossily as text.
        name: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}
