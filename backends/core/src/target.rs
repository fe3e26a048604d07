//! The contract between the reconciler and a target backend.
//!
//! A target is a place plumb makes match a snapshot: a directory tree, or
//! anything a plugin program can reach. The reconciler owns every decision
//! (what to create, update, delete, what is drift, what is a conflict); a
//! [`Target`] only observes paths and carries out changes, reporting each
//! one it has made durable. Targets know nothing about the store, sources or
//! history.
//!
//! Paths are [`TargetPath`]s: relative, `/`-separated sequences of valid
//! [`Name`]s, so no path handed to a target can name anything outside it.

use std::fmt;

use crate::attrs::{Attrs, ResolvedAttrs};
use crate::id::BlobId;
use crate::name::{Name, NameError};

/// A path below a target's root: one or more valid [`Name`]s joined by `/`.
/// Never empty, never absolute, never holding `.` or `..` components.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetPath(Vec<u8>);

impl TargetPath {
    /// Validates `bytes` (`a/b/c`) as a target path.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, NameError> {
        let bytes = bytes.into();
        for component in bytes.split(|b| *b == b'/') {
            Name::check(component)?;
        }
        Ok(Self(bytes))
    }

    /// The path of `name` inside directory `parent` (the root when `None`).
    pub fn join(parent: Option<&TargetPath>, name: &Name) -> Self {
        match parent {
            None => Self(name.as_bytes().to_vec()),
            Some(p) => {
                let mut bytes = Vec::with_capacity(p.0.len() + 1 + name.as_bytes().len());
                bytes.extend_from_slice(&p.0);
                bytes.push(b'/');
                bytes.extend_from_slice(name.as_bytes());
                Self(bytes)
            }
        }
    }

    /// The raw bytes, `/`-separated.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The components, root first; each is a valid name.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'/')
    }

    /// The parent directory, `None` for a path directly below the root.
    pub fn parent(&self) -> Option<TargetPath> {
        let cut = self.0.iter().rposition(|b| *b == b'/')?;
        Some(Self(self.0[..cut].to_vec()))
    }

    /// The last component.
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(cut) => &self.0[cut + 1..],
            None => &self.0,
        }
    }

    /// How many components deep the path is (1 for a path below the root).
    pub fn depth(&self) -> usize {
        1 + self.0.iter().filter(|b| **b == b'/').count()
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn starts_with(&self, other: &TargetPath) -> bool {
        self.0.len() >= other.0.len()
            && self.0.starts_with(&other.0)
            && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/')
    }
}

/// The path as a person should read it: quoted with escapes when it holds
/// a control character or bytes that are not UTF-8 ([`crate::quote`]).
impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::quote::quote(&self.0))
    }
}

impl fmt::Debug for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetPath({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// How a target names file content, so the reconciler can compare what is
/// there with what should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    /// The plumb blob id of the content ([`crate::Blob::id_of`]).
    Blob,
    /// SHA-256 of the raw content (for plugins: every language has it).
    Sha256,
}

/// The digest of some file content, of the target's [`DigestKind`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    /// A plumb blob id.
    Blob(BlobId),
    /// A SHA-256 of the raw bytes.
    Sha256([u8; 32]),
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Blob(id) => write!(f, "{id}"),
            Digest::Sha256(d) => {
                f.write_str("sha256:")?;
                d.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// What the reconciler asks a target to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserveRequest {
    /// The path to look at.
    pub path: TargetPath,
    /// Whether to compute the digest of a regular file found there.
    pub digest: bool,
    /// Whether to list the names inside a directory found there.
    pub list: bool,
}

/// What a target found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Nothing is there.
    Missing,
    /// A regular file.
    File {
        /// Its size in bytes.
        size: u64,
        /// Whether it is executable (for a directory target: the owner's
        /// execute bit).
        executable: bool,
        /// Its digest, when asked for.
        digest: Option<Digest>,
        /// A change token: equal tokens promise equal content (a
        /// directory's stat data: size, mtime, ctime, inode). `None` when
        /// the target cannot promise it, for instance because the file
        /// changed too recently to tell a later change apart.
        token: Option<Vec<u8>>,
        /// Its permission bits, owner and group, as far as the target
        /// reports them (a target that does not
        /// [support attributes](Target::supports_attrs) reports none).
        attrs: ResolvedAttrs,
    },
    /// A symbolic link (never followed) and its target.
    Symlink {
        /// Where the link points, raw bytes.
        target: Vec<u8>,
    },
    /// A directory.
    Dir {
        /// Its entries' names, sorted, when asked for.
        children: Option<Vec<Name>>,
        /// Its permission bits, owner and group, as for a file.
        attrs: ResolvedAttrs,
    },
    /// Something plumb does not manage (a socket, a device, a FIFO).
    Other {
        /// What it is, in a word or two.
        what: String,
    },
    /// The path cannot be reached: a component above it is a symlink or
    /// not a directory. A target never looks through such a component.
    Blocked {
        /// The component in the way.
        at: TargetPath,
        /// What it is (`symlink`, `file`, …).
        what: String,
    },
}

/// One change for a target to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Make `path` a regular file holding the blob's bytes, replacing a
    /// file or symlink there.
    ///
    /// Its attributes: those `attrs` sets, in place before the file
    /// appears at `path` (never visible with wider permissions, not even
    /// for an instant); the mode, when `attrs` has none, is the mode of the
    /// file it replaces with the execute bits set or cleared as
    /// `executable` says, or `0755`/`0644` for a new file, whatever the
    /// process's umask.
    WriteFile {
        /// Where.
        path: TargetPath,
        /// The content, fetched through [`Content`].
        blob: BlobId,
        /// Its size in bytes.
        size: u64,
        /// Whether it is executable.
        executable: bool,
        /// Permission bits, owner and group to set (empty for none).
        attrs: ResolvedAttrs,
    },
    /// Make `path` a symlink to `target`, replacing a file or symlink there.
    Symlink {
        /// Where.
        path: TargetPath,
        /// The link's target, raw bytes.
        target: Vec<u8>,
    },
    /// Make `path` an (empty) directory; a directory there already is
    /// fine. The attributes `attrs` sets are given to it, new or not; a
    /// new directory without a mode gets `0755`, whatever the umask.
    MakeDir {
        /// Where.
        path: TargetPath,
        /// Permission bits, owner and group to set (empty for none).
        attrs: ResolvedAttrs,
    },
    /// Remove the file or symlink at `path`; nothing there is fine.
    Remove {
        /// Where.
        path: TargetPath,
    },
    /// Remove the empty directory at `path`; nothing there is fine, a
    /// directory that is not empty is an error.
    RemoveDir {
        /// Where.
        path: TargetPath,
    },
}

impl Change {
    /// The path the change is about.
    pub fn path(&self) -> &TargetPath {
        match self {
            Change::WriteFile { path, .. }
            | Change::Symlink { path, .. }
            | Change::MakeDir { path, .. }
            | Change::Remove { path }
            | Change::RemoveDir { path } => path,
        }
    }
}

/// A temporary file a target left beside a path (an apply killed or
/// raced between writing it and renaming it into place), found by
/// [`Target::leftovers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The path the temporary file was for.
    pub of: TargetPath,
    /// The temporary file itself.
    pub path: TargetPath,
}

/// Where a target gets file content from: the store, behind the reconciler.
/// Safe to call from many threads at once.
///
/// # Contract
///
/// [`get`](Self::get) hands over verified bytes whole. [`open`](Self::open)
/// hands them over as a reader, in bounded memory whatever the size, and
/// verifies as it goes: a reader that reaches end-of-file has yielded
/// exactly the blob's bytes, and one that fails (with
/// [`std::io::ErrorKind::InvalidData`] for damage) may have yielded part of
/// them, or bytes that are not the blob's. A target writing from a reader
/// therefore writes aside and puts nothing in place unless the reader
/// reached its end without error and yielded the size the change names.
pub trait Content: Sync {
    /// The bytes of `blob`, verified.
    fn get(&self, blob: &BlobId) -> Result<Vec<u8>, TargetError>;

    /// The bytes of `blob` as a reader, verified as read (see the
    /// contract). The default reads them whole with [`get`](Self::get).
    fn open(&self, blob: &BlobId) -> Result<Box<dyn std::io::Read + '_>, TargetError> {
        Ok(Box::new(std::io::Cursor::new(self.get(blob)?)))
    }
}

/// Why a target could not observe or change something.
///
/// The cause is the target's own error, kept so a caller can downcast it:
/// a directory target's failed system calls are [`std::io::Error`]s (their
/// [`kind`](std::io::Error::kind) tells a full disk or a denied permission
/// apart), a plugin's are the plugin target's error type. The text is one
/// line, `WHERE: CAUSE` (see the crate's rule on [errors](crate#errors)).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// One path failed; the others in the same call may have succeeded.
    #[error("{path}: {source}")]
    Path {
        /// The path.
        path: TargetPath,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The target as a whole failed (unreachable, a plugin that crashed,
    /// hung, or broke the protocol); nothing after this can be trusted.
    #[error("{target}: {source}")]
    Target {
        /// The target's location (a directory, a program).
        target: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Content could not be read from the store; the store's error.
    #[error("{0}")]
    Content(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl TargetError {
    /// A failure at one path.
    pub fn path(
        path: &TargetPath,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        TargetError::Path {
            path: path.clone(),
            source: source.into(),
        }
    }

    /// A failure of the target at `target` as a whole.
    pub fn target(
        target: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        TargetError::Target {
            target: target.into(),
            source: source.into(),
        }
    }
}

/// A place the reconciler makes match a snapshot.
///
/// # Contract
///
/// - **Confinement.** A target touches nothing outside its root and never
///   follows a symlink: a symlink or non-directory above a path makes that
///   path [`Observed::Blocked`] when observed and an error when changed.
/// - **Observe** is read-only. It answers every request, in order, with
///   one [`Observed`] each; a path it cannot look at is a
///   [`TargetError::Path`] for that entry alone.
/// - **Apply** is handed changes that touch distinct paths, none inside
///   another's, and may make them in any order or in parallel. It calls
///   `done` once per change, with the change's index and its outcome;
///   `Ok` means the change is made **and durable** (it survives a crash
///   or power loss), so a target may batch its syncs but must not confirm
///   before them. A change that is not confirmed may or may not have
///   happened; the reconciler observes again before trusting either.
///   An `Err` return from `apply` itself means the target as a whole
///   failed; changes confirmed before stay confirmed.
/// - Changes are idempotent: making a change that is already made succeeds.
/// - After a confirmed [`Change::WriteFile`], observing the path with a
///   digest gives the blob's content digest, and its token is stable until
///   something else changes the file.
/// - **Attributes.** A target that [supports](Target::supports_attrs)
///   them resolves owner and group names at plan time
///   ([`resolve_attrs`](Target::resolve_attrs)), refusing there what it
///   could not apply; applies every attribute a change sets; and reports
///   mode, uid and gid of every file and directory it observes. One that
///   does not is never handed attributes and reports none.
pub trait Target {
    /// The target's location, for messages (`dir:/etc/app`, `exec:prog`).
    fn describe(&self) -> String;

    /// The digest kind [`Observed::File::digest`] uses.
    fn digest_kind(&self) -> DigestKind;

    /// Looks at each requested path; see the contract.
    fn observe(
        &mut self,
        requests: &[ObserveRequest],
    ) -> Result<Vec<Result<Observed, TargetError>>, TargetError>;

    /// How long after a change a file's change token can be trusted (a
    /// target withholds tokens of files changed more recently, see
    /// [`Observed::File`]). When many tokens of files it just wrote were
    /// withheld, the reconciler waits until this long after it began
    /// reading them and reads those again, so the next check can trust
    /// them instead of hashing. The default is zero.
    fn settle_time(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Whether `name` is reserved by the target for its own use (a
    /// directory target's temporary files): the reconciler never manages a
    /// path with such a name, and a target never lists one. The default
    /// reserves nothing.
    fn reserved(&self, name: &[u8]) -> bool {
        let _ = name;
        false
    }

    /// Called before observing, with the paths of changes an earlier apply
    /// may have left unfinished (killed before confirming them): the target
    /// removes any leftovers of its own there, such as temporary files, so
    /// nothing is orphaned. Idempotent. The default does nothing.
    fn recover(&mut self, paths: &[TargetPath]) -> Result<(), TargetError> {
        let _ = paths;
        Ok(())
    }

    /// Whether the target applies and observes permission bits, owner and
    /// group. The default is no.
    fn supports_attrs(&self) -> bool {
        false
    }

    /// Resolves `attrs` into numbers as this target will apply them (an
    /// owner or group name looked up where the target is), and checks
    /// that it can apply them: an unknown name, or a change of owner or
    /// group the target is not permitted to make, is an error here, before
    /// anything is changed. Called only when the target
    /// [supports attributes](Target::supports_attrs); the default refuses.
    fn resolve_attrs(&mut self, attrs: &Attrs) -> Result<ResolvedAttrs, TargetError> {
        Err(TargetError::target(
            self.describe(),
            format!("cannot apply attributes ({attrs})"),
        ))
    }

    /// The target's own leftovers beside `paths`: temporary files an
    /// apply made for one of them and never renamed into place. Only what
    /// the target can prove is its own is reported (never a file merely
    /// named alike), and [`recover`](Target::recover) of the path a
    /// leftover is [`of`](Leftover::of) removes it. Read-only, like
    /// observe. The default finds none.
    fn leftovers(&mut self, paths: &[TargetPath]) -> Result<Vec<Leftover>, TargetError> {
        let _ = paths;
        Ok(Vec::new())
    }

    /// Reads the bytes of the regular file at `path` (for showing a diff).
    fn read(&mut self, path: &TargetPath) -> Result<Vec<u8>, TargetError>;

    /// Makes `changes`; see the contract.
    fn apply(
        &mut self,
        changes: &[Change],
        content: &dyn Content,
        done: &mut dyn FnMut(usize, Result<(), TargetError>),
    ) -> Result<(), TargetError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_validated_and_split() {
        assert!(TargetPath::new(b"a/b".to_vec()).is_ok());
        for bad in [&b""[..], b"/a", b"a/", b"a//b", b"a/../b", b"./a", b"a\0b"] {
            assert!(TargetPath::new(bad.to_vec()).is_err(), "{bad:?}");
        }
        let p = TargetPath::new(b"etc/app/conf".to_vec()).expect("valid");
        assert_eq!(p.depth(), 3);
        assert_eq!(p.file_name(), b"conf");
        assert_eq!(p.parent().expect("has one").as_bytes(), b"etc/app");
        let etc = TargetPath::new(b"etc".to_vec()).expect("valid");
        assert!(p.starts_with(&etc));
        assert!(
            !TargetPath::new(b"etcetera".to_vec())
                .expect("valid")
                .starts_with(&etc)
        );
        assert_eq!(etc.parent(), None);
    }
}
