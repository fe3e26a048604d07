//! What can go wrong while reading a repository.

use plumb_core::source::SinkError;

pub use crate::refs::RefError;

/// Why reading the repository failed. Every variant names the Git object,
/// ref or step concerned; [`crate::GitSource`] reports it, with the
/// location, as the cause of [`plumb_core::source::SourceError::Read`]
/// (a store failure as [`plumb_core::source::SourceError::Sink`]).
///
/// The text of each variant includes the text of its cause, as every
/// plumb error's does; gix's errors leave their own causes out of their
/// text, so theirs are written out in full.
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
    /// An object is larger than the store accepts; refused from its
    /// header, before it is inflated.
    #[error(
        "blob {id} is {size} bytes, over the limit of {limit} bytes (max-object-size in the store's plumb-store file)"
    )]
    TooLarge {
        /// Its id, in hex.
        id: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
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
    /// The location is not a Git repository gix can open.
    #[error("not a Git repository ({})", chain(&**source))]
    NotARepository {
        /// gix's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A remote location is not a Git URL.
    #[error("not a Git URL ({})", chain(&**source))]
    Url {
        /// gix's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The refs to ingest name no starting point.
    #[error(transparent)]
    Refs(#[from] RefError),
    /// A ref points to a commit that was not recorded (a source bug).
    #[error("ref {name} points to commit {commit}, which has not been recorded")]
    Unrecorded {
        /// The ref's full name.
        name: String,
        /// The commit, in hex.
        commit: String,
    },
    /// The list of shallow commits could not be read.
    #[error("cannot read the shallow file: {}", chain(&**source))]
    Shallow {
        /// gix's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A remote could not be reached, fetched or mirrored.
    #[error("{what}: {}", chain(&**source))]
    Remote {
        /// The step that failed (`cannot fetch`, …).
        what: String,
        /// gix's (or the file system's) error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Converting a commit failed.
    #[error("commit {commit}: {source}")]
    InCommit {
        /// The commit, in hex.
        commit: String,
        /// Why.
        source: Box<GitError>,
    },
    /// Walking to a commit failed.
    #[error("{source} (a parent of commit {child})")]
    ParentOf {
        /// The commit whose parent could not be walked, in hex.
        child: String,
        /// Why.
        source: Box<GitError>,
    },
    /// Reading what a ref leads to (its tag object) failed.
    #[error("ref {name}: {source}")]
    InRef {
        /// The ref's full name.
        name: String,
        /// Why.
        source: Box<GitError>,
    },
    /// The store failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// An error and its causes on one line, each cause once: for errors (such
/// as gix's) that leave their causes out of their own text.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out.replace('\n', " ")
}
