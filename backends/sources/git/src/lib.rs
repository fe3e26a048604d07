//! Records the history of a Git repository in plumb's store.
//!
//! [`GitSource`] implements [`Source`] for a local Git repository, read
//! in-process through [gix](https://docs.rs/gix): no `git` program runs.
//! Every commit reachable from the chosen refs becomes one snapshot.
//!
//! ```no_run
//! use plumb_source_git::GitSource;
//!
//! // The branch HEAD points to, whole tree.
//! let source = GitSource::new("/srv/app", &[], None)?;
//! // Two branches and every release tag, only the `deploy/` subtree.
//! let refs = ["main".to_owned(), "staging".to_owned(), "refs/tags/v*".to_owned()];
//! let scoped = GitSource::new("/srv/app.git", &refs, Some("deploy"))?;
//! # Ok::<(), plumb_core::source::SourceError>(())
//! ```
//!
//! # Locations
//!
//! The location is a work tree (a directory holding a `.git` directory or a
//! `.git` file, as linked work trees and submodule checkouts have), a bare
//! repository, or a `.git` directory itself. It is opened as it is: parent
//! directories are not searched. Both object formats are read: SHA-1
//! repositories, and SHA-256 ones (`git init --object-format=sha256`).
//!
//! The repository is opened **isolated**: only its own configuration file
//! is consulted — not the system or user configuration, nor `GIT_*`
//! environment variables — so the result does not depend on the machine.
//! Replacement refs (`refs/replace/`) are not applied: a snapshot records
//! the commit its revision names, byte for byte. A repository owned by
//! another user is opened with reduced trust (its configuration's
//! program-running settings are ignored), but without gitoxide's 16 MiB
//! object-size limit for such repositories, so large files still load.
//!
//! A remote repository is read through [`RemoteGitSource`]: fetched into
//! a local bare mirror first, then read by this same code (below).
//!
//! ## Remote repositories
//!
//! [`RemoteGitSource`] takes a URL — `file://`, `git://`, `ssh://` (and
//! scp-like `user@host:path`, through the `ssh` program), `https://` or
//! `http://` — and a cache directory (plumb uses `cache/git/NAME.git` in
//! the store). Each ingest first fetches, in-process through gix: the first
//! time into a new bare repository, renamed into place only once complete;
//! later incrementally. The mirror's fetch refspecs are
//! `+refs/heads/*:refs/heads/*` and `+refs/tags/*:refs/tags/*` (also
//! written to its `config` as remote `origin`), so each fetch updates the
//! very refs the reader reads, forced updates included; branches and tags
//! the remote no longer has are deleted (pruned), and the mirror's `HEAD`
//! is set to the remote's. Only then is the mirror read as a local bare
//! repository, so no snapshot is committed before the fetch has succeeded.
//! A failed fetch (connection refused, unknown host, missing repository,
//! authentication) is one [`SourceError::Read`] naming the URL; it
//! leaves the mirror as it was, or absent, and commits nothing. Once
//! fetched, the number of objects received is reported as `objects`
//! progress.
//!
//! # What is ingested
//!
//! - By default the commit `HEAD` points to (the checked-out branch, or a
//!   detached `HEAD`), and its history.
//! - Otherwise the given refs, in order: full names (`refs/heads/main`),
//!   short names resolved the way Git does (`main`, `v1.0`, `origin/main`),
//!   or glob patterns (`refs/tags/v*`, `release-*`; a pattern not starting
//!   with `refs/` is tried below `refs/`, `refs/heads/`, `refs/tags/` and
//!   `refs/remotes/`, and `*` also matches `/`). Annotated tags are peeled
//!   to their commit.
//! - A named ref that does not exist, or that leads to a tree or blob
//!   rather than a commit, is an error naming it. A glob matching nothing
//!   or matching such refs only adds a warning; if no ref leads anywhere,
//!   nothing is ingested. An unborn `HEAD` (an empty repository) is an
//!   error: "no commits".
//!
//! Every commit reachable from these becomes a snapshot, recorded parents
//! before children, so the source's log is in topological order: a
//! depth-first post-order from the refs in the order given, first parents
//! first (deterministic for a given repository and refs).
//!
//! ## Refs
//!
//! After the commits, the refs that led to them are recorded through
//! [`IngestSink::set_refs`], by full name (`refs/heads/main`,
//! `refs/tags/v1.0`; `HEAD` when it is detached) with the snapshot of the
//! commit each peels to, so `app@main` and `app@v1.0` resolve. The set
//! replaces the one recorded before: a deleted tag disappears, a moved
//! branch moves. A ref that points at an annotated tag object keeps that
//! object, byte for byte, as its annotation: a blob holding the raw tag
//! (tagger, message, and for a signed tag the signature at its end), so a
//! signature can be verified later without Git; [`parse_tag`] reads it
//! back, and `plumb show` displays it. For a tag of a tag, the outermost
//! one is kept. A copy of the set (names, snapshots, Git tag ids) is kept
//! in the sink cache (key `refs`), and the refs are handed to the sink only
//! when they differ from it, so an ingest with nothing new reads no tag
//! object and writes nothing.
//!
//! # Snapshots
//!
//! - Native revision: `git:sha1:<40 hex>`, or `git:sha256:<64 hex>` in a
//!   SHA-256 repository.
//! - Parents: the snapshots of the commit's parents, in order (a merge
//!   keeps all of them, first parent first).
//! - Author and committer: name and e-mail as raw bytes, time in seconds
//!   and timezone offset in minutes. Should writing them back in Git's
//!   format not give the original bytes (a malformed date, a `-0000`
//!   zone, odd spacing), the raw value is kept as an extra field too.
//! - Message: the raw bytes after the header, in whatever encoding the
//!   commit says it uses.
//! - Extra fields, in this order:
//!   1. every commit header other than `tree`, the `parent` lines, and the
//!      first `author` and `committer`, in header order, with its raw value
//!      (continuation lines unfolded: joined by `\n`, the leading space of
//!      each removed) — for example `gpgsig`, `gpgsig-sha256`, `mergetag`,
//!      `encoding`;
//!   2. `git.raw-author`, `git.raw-committer`: the raw identity line, only
//!      when it does not round-trip (above);
//!   3. `git.shallow-parent`: the hex id of each parent cut off by a
//!      shallow clone (below);
//!   4. `git.signed-payload`: for a commit with a `gpgsig` or
//!      `gpgsig-sha256` header, the exact commit bytes without those
//!      headers — what the signature covers — so signatures can be verified
//!      later without reading Git again.
//!
//! # Trees
//!
//! Git tree entries map one to one: a regular file to
//! [`EntryValue::File`](plumb_core::EntryValue::File), an executable (`100755`) to
//! [`EntryValue::Executable`](plumb_core::EntryValue::Executable), a symbolic link to [`EntryValue::Symlink`](plumb_core::EntryValue::Symlink)
//! whose blob is the link target, a directory to [`EntryValue::Tree`](plumb_core::EntryValue::Tree), and a
//! submodule (gitlink) to [`EntryValue::Submodule`](plumb_core::EntryValue::Submodule) with the pinned commit's
//! revision (`git:sha1:<hex>`), never followed. Names are the raw bytes Git
//! stores, UTF-8 or not. File content is stored as committed, whatever its
//! size: an LFS pointer stays a pointer, and no filters or attributes apply.
//! A tree entry whose name plumb cannot store (empty, `.`, `..`, or holding
//! `/` or NUL, which Git itself never writes) or with an unknown mode fails
//! the ingest, naming the tree and the entry.
//!
//! # Scoping
//!
//! With a subdirectory (`--path`), each snapshot's root tree is that
//! subtree of the commit's tree; a commit in which it does not exist (or is
//! not a directory) gets the empty tree. **Every commit still becomes a
//! snapshot**, even one that does not touch the subtree (it has the same
//! tree id as its parent, so it costs no new objects), so that `NAME@<git
//! hash>` resolves for every commit and parents stay exact.
//!
//! # Incremental ingest
//!
//! A commit whose revision the store already has ends the walk: its
//! ancestors were recorded before it. A second ingest with nothing new
//! reads only the refs and looks each tip up once.
//!
//! Each Git tree and blob is converted once, across commits and across
//! ingests: the sink cache maps `t` + raw Git tree id and `b` + raw Git blob
//! id to the 32-byte plumb id. An unchanged subtree therefore costs one
//! look-up, whatever its size. These cache entries are handed to the sink
//! just before the snapshot that needs them is committed, so they become
//! durable with it and always name stored objects. Memory holds the list of
//! new commit ids (with their parents' ids), one tree per level of the tree
//! being converted, one blob, and a bounded memo of recent conversions —
//! never the content of the whole history. On a source's first ingest, a
//! fixed 4 MiB Bloom filter of the ids converted so far spares asking the
//! sink cache about objects that cannot be in it yet.
//!
//! Reading Git and storing run side by side: this thread walks commits,
//! reads and converts trees and blobs, and computes every object id (ids
//! depend on content alone); a second thread hands the objects and cache
//! entries to the sink in the order they were made, and builds and commits
//! each snapshot after them (a snapshot's parents are known to the sink
//! by then), so a snapshot is still committed after everything it refers
//! to. Work is handed over in batches of up to 128 jobs or 1 MiB, at most
//! 16 batches waiting; blobs over 256 KiB are stored by the reading thread
//! itself rather than copied. A sink error stops the reader at its next
//! hand-over and is the error reported. The walk keeps the content of up
//! to 64 MiB of commits, so most commits are read from Git once.
//!
//! # Shallow clones
//!
//! A shallow clone is ingested as far as it goes. A commit on the shallow
//! boundary (listed in `.git/shallow`) whose parent is absent is recorded
//! with the parents that are present, plus one `git.shallow-parent` extra
//! field (hex id) per absent parent. Deepening the clone later does not
//! change snapshots already recorded: the older commits it brings are not
//! reachable through those snapshots' parents. A missing parent of a commit
//! not on the boundary is corruption, and an error.
//!
//! # Errors
//!
//! Each is one [`SourceError::Read`] naming the location, its cause a
//! [`GitError`] naming, for objects, the object and the commit being read:
//! not a repository, an unknown ref, an empty repository, a missing or
//! unreadable object, a malformed commit or tree. A store failure is
//! [`SourceError::Sink`]; a location or `subdir` plumb rejects itself is
//! [`SourceError::Invalid`]. Everything committed before the error stays,
//! and the next ingest continues from there.
//!
//! # Progress
//!
//! Reported as `commits`, done of total, once the new commits are known.
//!
//! # Log order and `@latest`
//!
//! The source's log grows in the order commits are recorded, so `@latest`
//! is the last commit recorded (with one ref, its tip when it was
//! ingested), not necessarily a branch's tip today: a branch reset to an
//! older commit records nothing new. Name a branch (`app@main`) for its
//! current tip.
#![deny(missing_docs)]

pub mod commit;
mod convert;
mod error;
mod large;
mod refs;
mod remote;
mod snapshot;
mod tag;
mod walk;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use plumb_core::source::{IngestReport, IngestSink, NamedRef, Source, SourceError};
use plumb_core::{Name, Tree};

pub use error::GitError;
pub use refs::Tip;
pub use remote::{RemoteGitSource, is_remote};
pub use tag::{Tag, TagError, parse_tag};

use convert::Converter;
use snapshot::CommitJob;
use writer::Writer;

/// The scheme prefix of revisions in SHA-1 repositories: `git:sha1:<hex>`.
pub const SHA1_PREFIX: &str = "git:sha1:";
/// The scheme prefix of revisions in SHA-256 repositories: `git:sha256:<hex>`.
pub const SHA256_PREFIX: &str = "git:sha256:";

/// The extra field holding the signed part of a signed commit.
pub const SIGNED_PAYLOAD_FIELD: &str = "git.signed-payload";
/// The extra field naming a parent cut off by a shallow clone.
pub const SHALLOW_PARENT_FIELD: &str = "git.shallow-parent";
/// The extra field holding an author line that does not round-trip.
pub const RAW_AUTHOR_FIELD: &str = "git.raw-author";
/// The extra field holding a committer line that does not round-trip.
pub const RAW_COMMITTER_FIELD: &str = "git.raw-committer";

/// The sink cache key of the refs last handed to [`IngestSink::set_refs`].
pub const REFS_CACHE_KEY: &[u8] = b"refs";

/// Configuration applied on top of the repository's own when opening it.
const CONFIG_OVERRIDES: [&str; 2] = [
    // Read large objects from repositories owned by another user too.
    "gitoxide.objects.allocLimitIfReducedTrust=0",
    // Record commits as they are, not as `refs/replace/` would show them.
    "core.useReplaceRefs=false",
];

/// The native revision of a Git object id: `git:sha1:<hex>` or
/// `git:sha256:<hex>`.
pub fn revision(id: &gix::oid) -> String {
    format!("{}{}", scheme(id.kind()), id.to_hex())
}

/// The revision scheme of an object format.
fn scheme(kind: gix::hash::Kind) -> std::borrow::Cow<'static, str> {
    match kind {
        gix::hash::Kind::Sha1 => SHA1_PREFIX.into(),
        gix::hash::Kind::Sha256 => SHA256_PREFIX.into(),
        other => format!("git:{other}:").into(),
    }
}

/// A local Git repository as a [`Source`]. See the [crate docs](crate) for
/// what is recorded.
#[derive(Clone)]
pub struct GitSource {
    /// The location as the user gave it, for messages.
    location: String,
    repo: gix::ThreadSafeRepository,
    refs: Vec<String>,
    /// The subtree the snapshots are scoped to, as names; empty for all.
    subdir: Vec<Name>,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("location", &self.location)
            .field("git_dir", &self.repo.git_dir())
            .field("refs", &self.refs)
            .field("subdir", &self.subdir)
            .finish()
    }
}

impl GitSource {
    /// Opens the repository at `location` (a work tree, a bare repository
    /// or a `.git` directory), to ingest `refs` (`HEAD` when empty),
    /// optionally scoped to the subdirectory `subdir` (`/`-separated,
    /// relative; `None`, empty or `.` for the whole tree).
    ///
    /// A location that is not a directory, or a `subdir` holding `..`, is
    /// [`SourceError::Invalid`]; a directory that is not a repository is
    /// [`SourceError::Read`]. Refs are resolved at each ingest, not here.
    pub fn new(
        location: impl AsRef<Path>,
        refs: &[String],
        subdir: Option<&str>,
    ) -> Result<Self, SourceError> {
        let path = location.as_ref();
        let shown = path.display().to_string();
        let invalid = |reason: String| SourceError::Invalid {
            location: shown.clone(),
            reason,
        };
        if shown.contains("://") {
            return Err(invalid(
                "a URL, not a local repository (remote repositories are read through RemoteGitSource)"
                    .to_owned(),
            ));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(invalid("not a directory".to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid("no such directory".to_owned()));
            }
            Err(source) => {
                return Err(SourceError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let subdir = parse_subdir(subdir).map_err(|reason| SourceError::Invalid {
            location: subdir.unwrap_or_default().to_owned(),
            reason,
        })?;
        let options = gix::open::Options::isolated().config_overrides(CONFIG_OVERRIDES);
        let repo =
            gix::ThreadSafeRepository::open_opts(path, options).map_err(|e| SourceError::Read {
                location: shown.clone(),
                source: Box::new(GitError::NotARepository {
                    source: Box::new(e),
                }),
            })?;
        Ok(Self {
            location: shown,
            repo,
            refs: refs.to_vec(),
            subdir,
        })
    }

    /// Names the source `location` in messages instead of its path.
    pub(crate) fn with_location(mut self, location: String) -> Self {
        self.location = location;
        self
    }

    /// The repository's Git directory (`.git`, or the bare repository).
    pub fn git_dir(&self) -> &Path {
        self.repo.git_dir()
    }

    /// The work tree, if the repository has one.
    pub fn work_dir(&self) -> Option<PathBuf> {
        self.repo.work_dir().map(Path::to_path_buf)
    }

    /// The refs to ingest, as given (empty for `HEAD`).
    pub fn refs(&self) -> &[String] {
        &self.refs
    }

    /// The revision scheme of this repository's commits: [`SHA1_PREFIX`] or
    /// [`SHA256_PREFIX`].
    pub fn revision_prefix(&self) -> String {
        scheme(self.repo.to_thread_local().object_hash()).into_owned()
    }

    /// Resolves the refs to ingest now: each with the commit it leads to,
    /// and warnings about refs passed over.
    pub fn tips(&self) -> Result<(Vec<Tip>, Vec<String>), SourceError> {
        let repo = self.repo.to_thread_local();
        let tips = refs::resolve(&repo, &self.refs).map_err(|e| self.failed(e.into()))?;
        Ok((tips.tips, tips.warnings))
    }

    /// A failure of the repository (not of the store), with the location.
    fn failed(&self, e: GitError) -> SourceError {
        match e {
            GitError::Sink(s) => SourceError::Sink(s),
            e => SourceError::Read {
                location: self.location.clone(),
                source: Box::new(e),
            },
        }
    }

    /// Converts commit `id`'s tree and queues its snapshot, whose parents
    /// are queued already. `data` is the commit's content if the walk kept
    /// it.
    fn record(
        &self,
        repo: &gix::Repository,
        conv: &mut Converter<'_>,
        writer: &mut Writer<'_>,
        shallow: &HashSet<ObjectId>,
        id: ObjectId,
        data: Option<Vec<u8>>,
    ) -> Result<(), GitError> {
        let data = match data {
            Some(data) => data,
            None => walk::read_commit(repo, id)?.detach().data,
        };
        let raw = commit::parse(&data).map_err(|e| walk::malformed(id, e.to_string()))?;
        let tree = walk::parse_id(id, raw.tree)?;
        let mut absent_parents = Vec::new();
        if shallow.contains(&id) {
            for hex in &raw.parents {
                let parent = walk::parse_id(id, hex)?;
                if !repo.has_object(parent) {
                    absent_parents.push(parent);
                }
            }
        }
        drop(raw);
        let root = if self.subdir.is_empty() {
            Some(tree)
        } else {
            conv.subtree(tree, &self.subdir)?
        };
        let tree = match root {
            Some(t) => conv.tree(writer, t, id)?,
            None => writer.put_tree(&Tree::default())?,
        };
        conv.flush(writer)?;
        Ok(writer.commit(CommitJob {
            id,
            data,
            tree,
            absent_parents,
        })?)
    }
}

/// Splits a `/`-separated subdirectory into checked names.
fn parse_subdir(subdir: Option<&str>) -> Result<Vec<Name>, String> {
    let mut out = Vec::new();
    for part in subdir.unwrap_or_default().split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("must not contain `..`".to_owned()),
            name => out.push(Name::try_from(name).map_err(|e| e.to_string())?),
        }
    }
    Ok(out)
}

impl Source for GitSource {
    fn ingest(&self, sink: &dyn IngestSink) -> Result<IngestReport, SourceError> {
        let repo = self.repo.to_thread_local();
        let tips = refs::resolve(&repo, &self.refs).map_err(|e| self.failed(e.into()))?;
        let mut report = IngestReport {
            warnings: tips.warnings,
            ..IngestReport::default()
        };
        for w in &report.warnings {
            tracing::debug!(location = %self.location, "{w}");
        }
        let shallow: HashSet<ObjectId> = repo
            .shallow_commits()
            .map_err(|e| {
                self.failed(GitError::Shallow {
                    source: Box::new(e),
                })
            })?
            .map(|list| list.iter().copied().collect())
            .unwrap_or_default();

        let mut tip_ids: Vec<ObjectId> = Vec::with_capacity(tips.tips.len());
        for t in &tips.tips {
            if !tip_ids.contains(&t.commit) {
                tip_ids.push(t.commit);
            }
        }
        let fresh = sink.latest()?.is_none();
        let order = walk::plan(&repo, sink, &tip_ids, &shallow, fresh)
            .map_err(|e| self.failed(e.into()))?;
        tracing::debug!(
            location = %self.location,
            tips = tip_ids.len(),
            new = order.len(),
            "planned ingest"
        );

        let total = order.len() as u64;
        sink.progress("commits", 0, total);
        let mut conv = Converter::new(&repo, sink, fresh);
        let mut done = 0u64;
        let (read, written) = writer::with_writer(sink, |writer| {
            for (id, data) in order {
                self.record(&repo, &mut conv, writer, &shallow, id, data)
                    .map_err(|error| writer::Failure {
                        error,
                        commit: Some(id),
                    })?;
                done += 1;
                sink.progress("commits", done, total);
            }
            Ok(())
        });
        let commit_error = |e: GitError, id: Option<ObjectId>| match (e, id) {
            (GitError::Sink(s), _) => SourceError::Sink(s),
            (e, Some(id)) => self.failed(GitError::InCommit {
                commit: id.to_hex().to_string(),
                source: Box::new(e),
            }),
            (e, None) => self.failed(e),
        };
        // The writer's error comes first: the reader's is then only that
        // its queue was gone.
        report.new_snapshots = written.map_err(|f| commit_error(f.error, f.commit))?;
        read.map_err(|f| commit_error(f.error, f.commit))?;
        report.files_read = conv.files_read;
        report.bytes_read = conv.bytes_read;
        report.warnings.append(&mut conv.warnings);
        self.record_refs(&repo, sink, &tips.tips)?;
        Ok(report)
    }
}

impl GitSource {
    /// Hands the refs, their snapshots and their annotations (annotated
    /// tag objects, stored as blobs) to the sink, if they changed. The
    /// sink cache keeps the set as names, snapshots and Git tag ids, so an
    /// ingest with nothing new reads no tag object.
    fn record_refs(
        &self,
        repo: &gix::Repository,
        sink: &dyn IngestSink,
        tips: &[Tip],
    ) -> Result<(), SourceError> {
        let mut refs = Vec::with_capacity(tips.len());
        for tip in tips {
            let id = sink.snapshot_for(&revision(&tip.commit))?.ok_or_else(|| {
                self.failed(GitError::Unrecorded {
                    name: tip.name.clone(),
                    commit: tip.commit.to_hex().to_string(),
                })
            })?;
            refs.push((tip, id));
        }
        refs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let mut encoded = Vec::with_capacity(refs.len() * 96);
        for (tip, id) in &refs {
            encoded.extend_from_slice(tip.name.as_bytes());
            encoded.push(0);
            encoded.extend_from_slice(id.as_bytes());
            if let Some(tag) = &tip.tag {
                encoded.extend_from_slice(tag.as_bytes());
            }
        }
        if sink.cache_get(REFS_CACHE_KEY)?.as_deref() == Some(encoded.as_slice()) {
            return Ok(());
        }
        let mut named = Vec::with_capacity(refs.len());
        for (tip, snapshot) in refs {
            let annotation = match tip.tag {
                Some(tag) => {
                    let obj = convert::read(repo, tag, gix::objs::Kind::Tag).map_err(|e| {
                        self.failed(GitError::InRef {
                            name: tip.name.clone(),
                            source: Box::new(e),
                        })
                    })?;
                    Some(sink.put_blob(&obj.data)?)
                }
                None => None,
            };
            named.push(NamedRef {
                name: tip.name.clone(),
                snapshot,
                annotation,
            });
        }
        sink.set_refs(&named)?;
        sink.cache_put(REFS_CACHE_KEY, &encoded)?;
        Ok(())
    }
}
