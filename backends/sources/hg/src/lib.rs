//! Records the history of a Mercurial repository in plumb's store.
//!
//! [`HgSource`] implements [`Source`] for a local Mercurial repository,
//! read **natively**: the revlogs are decoded in-process from the format
//! documentation (`hg help internals.revlogs`,
//! `hg help internals.requirements`); neither Python nor the `hg` program
//! is needed. Every changeset reachable from the chosen heads becomes one
//! snapshot.
//!
//! ```no_run
//! use plumb_source_hg::HgSource;
//!
//! // The tip-most head of the `default` branch, whole tree.
//! let source = HgSource::new("/srv/app", &[], None)?;
//! // A bookmark and a named branch, only the `deploy/` subtree.
//! let refs = ["production".to_owned(), "stable".to_owned()];
//! let scoped = HgSource::new("/srv/app", &refs, Some("deploy"))?;
//! # Ok::<(), plumb_core::source::SourceError>(())
//! ```
//!
//! # Locations
//!
//! A local working directory holding `.hg` (or the `.hg` directory
//! itself); shares (`hg share`, plain or `--relative`) are followed to
//! their store.
//!
//! A remote repository (`http://`, `https://` or `ssh://` URL, through
//! [`HgSource::with_cache`]) is the one case where the `hg` program runs:
//! at each ingest, `hg clone --noupdate` into the cache directory the
//! first time (into a temporary directory renamed into place, so a failed
//! clone leaves nothing), `hg pull` after, non-interactively (`HGPLAIN=1`,
//! `--noninteractive`, `ui.interactive=false`, no standard input; the
//! user's configuration is kept, for credentials). The clone is then read
//! natively like any local repository. `hg` missing from `PATH`, or a
//! failed clone or pull (an unreachable URL, say), is one error naming the
//! URL, before anything is recorded. Other schemes (`file://`, …) are
//! refused: a local repository is added by its path. plumb keeps the
//! clone in `cache/hg/NAME` inside the store directory; a store in memory
//! cannot have remote Mercurial sources.
//!
//! # Requirements
//!
//! `.hg/requires` and, with `share-safe`, `.hg/store/requires` are checked
//! before anything else is read:
//!
//! - **Supported**: `revlogv1`, `store`, `fncache`, `dotencode`,
//!   `generaldelta`, `sparserevlog`, `revlog-compression-zstd` (and its
//!   older spelling `exp-compression-zstd`), `exp-compression-none`
//!   (chunks stored uncompressed), `share-safe`, `shared`,
//!   `relshared`, `bookmarksinstore` — everything Mercurial 6 creates by
//!   default and its common variants, including repositories without
//!   `store`, `fncache` or `dotencode`. Sparse revlogs need nothing
//!   special to read: their deltas are ordinary generaldelta deltas.
//! - **Ignored as harmless**, because they describe caches or the working
//!   directory, never stored history: `persistent-nodemap` (an on-disk
//!   node → revision cache; the index is read directly), `dirstate-v2`
//!   (and its experimental spellings, and `dirstate-tracked-key-v1`), and
//!   `exp-sparse` (a partial checkout; the store is complete).
//! - **Anything else** (`treemanifest`, `lfs`, `largefiles`,
//!   `narrowhg-experimental`, `revlogv2`, `changelogv2`, side-data,
//!   `internal-phase`, an extension's own, …) is one error naming it:
//!   reading such a repository as if it were plain could record wrong
//!   content.
//!
//! # Revlogs
//!
//! Version-1 indexes, inline (data after each 64-byte entry) or split
//! (`.i` + `.d`); delta chains with generaldelta bases or the older
//! "previous revision" chains; binary (bdiff) deltas; chunks stored raw
//! (`\0`, `u`), zlib (`x`) or zstd (`(`). Every text is checked against its
//! node (SHA-1 of the two parent nodes in ascending order, then the text);
//! a mismatch is an error naming the revlog file and revision, as is a
//! revision with flags (censored, ellipsis, externally stored), whose text
//! its node does not name. The decoders live in [`revlog`] and are fuzzed.
//!
//! Files are found through the store's path encoding ([`store_path`]):
//! capitals, `_`, reserved bytes, Windows device names, leading dots and
//! spaces, and the hashed `dh/` form of paths longer than 120 bytes.
//!
//! # What is ingested
//!
//! - By default the tip-most open head of the `default` branch (what
//!   `hg update default` checks out) and its history; a repository with no
//!   changeset on `default` falls back to its tip, with a warning.
//! - Otherwise each `--ref`, looked up as Mercurial does: a bookmark
//!   (`.hg/bookmarks`), else a tag (`.hgtags` as of every head, the
//!   tip-most winning, then `.hg/localtags`), else a named branch (its
//!   tip-most open head, or its tip-most closed one if all are closed),
//!   else `tip` or a full 40-digit changeset id. A ref naming nothing is an
//!   error.
//! - **Hidden changesets are not ingested**: obsolescence markers
//!   (`.hg/store/obsstore`, formats 0 and 1) make a draft or secret
//!   changeset obsolete, and one in the archived or internal phase is
//!   hidden as well (`.hg/store/phaseroots`); such a changeset stays
//!   visible if a visible changeset or a bookmark descends from it, as in
//!   Mercurial. Unlike Mercurial, a hidden changeset that is merely checked
//!   out is not made visible, so the result does not depend on the working
//!   directory.
//!
//! Every changeset reachable from these becomes a snapshot, in revision
//! order (parents before children).
//!
//! The refs are recorded through [`IngestSink::set_refs`]: each followed
//! ref under the name given (`default` when none is), then every bookmark
//! whose changeset is recorded, so `NAME@prod` or `NAME@v1.0` resolve.
//! Tags that were not asked for are not recorded (reading `.hgtags` on
//! every ingest would cost the no-change case its speed).
//!
//! # Snapshots
//!
//! - Native revision: `hg:<40 hex>`, the changeset id.
//! - Parents: the snapshots of the changeset's parents, first parent
//!   first; the null parent is omitted.
//! - Author and committer: both from the changeset's user, split into name
//!   and e-mail at `<…>`; if writing them back would not give the recorded
//!   bytes, the raw user is kept as the extra field `hg.user`. The time is
//!   the changeset's; Mercurial stores the offset in seconds *west* of UTC,
//!   plumb in minutes *east*, so `-3600` becomes `+60`. An offset that is
//!   not whole minutes or lies beyond ±99:59 is recorded as 0, with the raw
//!   date line kept as `hg.date`.
//! - Message: the description, raw bytes.
//! - Extra fields, in this order: `hg.branch` (always; `default` when none
//!   is recorded); every other changeset extra as `hg.extra.<key>` (for
//!   example `hg.extra.close`, `hg.extra.amend_source`), unescaped (a key
//!   that is not UTF-8 becomes `hg.extra-raw` with `key\0value`);
//!   `hg.user`, `hg.date` (above); `hg.copy`, `dest\0source`, for each file
//!   the changeset lists whose revision records a copy or rename source;
//!   `hg.path`, the scoping subdirectory, when scoped.
//!
//! # Trees
//!
//! Flat manifests map to trees: a file to [`EntryValue::File`](plumb_core::EntryValue::File), flag `x`
//! to [`EntryValue::Executable`](plumb_core::EntryValue::Executable), flag `l` to [`EntryValue::Symlink`](plumb_core::EntryValue::Symlink) (the
//! blob is the link target). Directories are implied by paths, so there
//! are no empty ones. File content has its copy metadata (`\1\n…\1\n`)
//! removed. A path plumb cannot store, or an unknown flag, fails the
//! ingest naming it.
//!
//! # Scoping
//!
//! With a subdirectory (`--path`), each snapshot's root tree is that
//! subtree, or the empty tree in changesets where it does not exist.
//! Every changeset still becomes a snapshot, so that `NAME@<node>` resolves
//! for every changeset and parents stay exact.
//!
//! # Incremental ingest
//!
//! A changeset whose revision the store already has ends the walk there:
//! its ancestors were recorded before it, so a second ingest with nothing
//! new opens the indexes, finds the heads and looks each up once.
//!
//! Each file revision is converted once, across changesets and ingests:
//! the sink cache maps `f` + filelog node to the 32-byte blob id and the
//! copy source, and `m` + manifest node + scope to the tree id. A node
//! names its text (the hash covers it), so these never go stale.
//!
//! In memory, the converter keeps the tree of the last manifest it
//! converted, each directory with its id. A new manifest is compared with
//! that one (equal runs of bytes are skipped at memory speed; both are
//! sorted by path, and every line that differs is checked to sort between
//! its neighbours), the differing lines are applied, and only the
//! directories on their paths are encoded and stored again. So a
//! changeset costs work in proportion to what it changed, plus one
//! comparison of its manifest with the last.
//!
//! Each revlog keeps the last text it rebuilt (shared, not copied), so
//! reading revisions in order applies each delta once; zstd chunks are
//! decompressed with one reused context per thread. Every text is still
//! checked against its node, manifests included: that hashing is most of
//! the reading, so a second thread rebuilds and checks changesets and
//! manifests a few changesets ahead of the one converting and committing
//! them, in order.
//!
//! # Errors
//!
//! Each is one [`SourceError::Read`] naming the location, its cause an
//! [`HgError`] naming, while converting, the changeset; file read failures
//! are [`SourceError::Io`], and a location or `subdir` plumb rejects
//! itself is [`SourceError::Invalid`].
//! A repository being written by a running `hg` command may be read
//! mid-transaction and fail; running the ingest again succeeds.
//! Everything committed before an error stays.
//!
//! # Progress
//!
//! Reported as `changesets`, done of total, once the new ones are known.
#![deny(missing_docs)]

mod changeset;
mod convert;
mod error;
mod obsolete;
pub mod remote;
mod repo;
mod requires;
pub mod revlog;
pub mod store_path;

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use plumb_core::source::{IngestReport, IngestSink, NamedRef, Source, SourceError};
use plumb_core::{Person, Snapshot, SnapshotId};

pub use error::HgError;
pub use requires::{HARMLESS, SUPPORTED};

use changeset::Changeset;
use convert::{Converter, manifest_find};
use repo::Repo;
use revlog::hex;

/// The scheme prefix of this source's native revisions: `hg:<40 hex>`.
pub const REVISION_PREFIX: &str = "hg:";

/// The native revision of a changeset node.
pub fn revision(node: &[u8; 20]) -> String {
    format!("{REVISION_PREFIX}{}", hex(node))
}

/// Heads by the names they were found by, and warnings.
type Heads = (Vec<(String, usize)>, Vec<String>);

/// How many changesets (with their manifests) may be read ahead of the
/// conversion.
const READ_AHEAD: usize = 16;

/// The largest timezone offset plumb records, in minutes (±99:59).
const MAX_TZ_MINUTES: i64 = 99 * 60 + 59;

/// A Mercurial repository as a [`Source`]. See the [crate docs](crate) for
/// what is ingested and how.
#[derive(Debug, Clone)]
pub struct HgSource {
    /// The location as given, for messages.
    location: String,
    /// The repository root (for a remote one, its local clone).
    root: PathBuf,
    /// The URL of a remote repository, fetched into `root` first.
    url: Option<String>,
    /// Whether [`Source::fetch_remote`] fetched already.
    fetched: std::sync::OnceLock<()>,
    refs: Vec<String>,
    /// The scoping subdirectory, normalised, without a trailing `/`.
    subdir: Option<Vec<u8>>,
}

impl HgSource {
    /// A source for the repository at `location` following `refs` (none:
    /// the tip-most head of `default`), optionally scoped to `subdir`.
    ///
    /// The repository is opened once here, so a missing repository or an
    /// unsupported requirement is reported at once, as
    /// [`SourceError::Read`]. `subdir` must be relative, without `..`
    /// or empty components ([`SourceError::Invalid`]).
    pub fn new(location: &str, refs: &[String], subdir: Option<&str>) -> Result<Self, SourceError> {
        Self::with_cache(location, refs, subdir, None)
    }

    /// Like [`new`](Self::new), but `location` may also be an `http://`,
    /// `https://` or `ssh://` URL, cloned into (then pulled into) the
    /// directory `cache` by the `hg` program at each ingest before being
    /// read. A URL without a cache directory is an error, as is any other
    /// URL scheme. Nothing is fetched here.
    pub fn with_cache(
        location: &str,
        refs: &[String],
        subdir: Option<&str>,
        cache: Option<&Path>,
    ) -> Result<Self, SourceError> {
        let invalid = |reason: String| SourceError::Invalid {
            location: location.to_owned(),
            reason,
        };
        let subdir = match subdir {
            None => None,
            Some(s) => check_subdir(s).map_err(invalid)?,
        };
        if remote::is_url(location) {
            remote::check_url(location).map_err(invalid)?;
            let cache = cache.ok_or_else(|| {
                invalid(
                    "a remote repository is cloned into the store's directory, \
                     and this store has none (it is in memory)"
                        .to_owned(),
                )
            })?;
            return Ok(Self {
                location: location.to_owned(),
                root: cache.to_path_buf(),
                url: Some(location.to_owned()),
                fetched: Default::default(),
                refs: refs.to_vec(),
                subdir,
            });
        }
        let source = Self {
            location: location.to_owned(),
            root: PathBuf::from(location),
            url: None,
            fetched: Default::default(),
            refs: refs.to_vec(),
            subdir,
        };
        Repo::open(&source.root).map_err(|e| source.error(e))?;
        Ok(source)
    }

    /// The repository root, as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The reader's error as the source's: a store failure and a file
    /// that cannot be read as such, anything else kept as the cause.
    fn error(&self, e: HgError) -> SourceError {
        match e {
            HgError::Sink(s) => SourceError::Sink(s),
            HgError::Io { path, source } => SourceError::Io { path, source },
            e => SourceError::Read {
                location: self.location.clone(),
                source: Box::new(e),
            },
        }
    }

    /// The heads to ingest, each with the name it was found by, and
    /// warnings.
    fn heads(&self, repo: &Repo) -> Result<Heads, HgError> {
        let cl = repo.changelog();
        let visible_tip = (0..cl.len()).rev().find(|r| !repo.is_hidden(*r));
        let Some(tip) = visible_tip else {
            return Err(HgError::Empty(String::new()));
        };
        let mut warnings = Vec::new();
        if self.refs.is_empty() {
            let head = match repo.branch_tip(b"default")? {
                Some(r) => ("default".to_owned(), r),
                None => {
                    warnings.push(format!(
                        "{}: no changeset on branch default; following tip",
                        self.location
                    ));
                    ("tip".to_owned(), tip)
                }
            };
            return Ok((vec![head], warnings));
        }
        let mut bookmarks = None;
        let mut tags = None;
        let mut heads = Vec::new();
        let visible = |node: &[u8; 20], what: &str, name: &str| -> Result<usize, HgError> {
            match cl.rev(node) {
                Some(r) if !repo.is_hidden(r) => Ok(r),
                Some(_) => Err(HgError::Corrupt(format!(
                    "{what} {name:?} points at hidden changeset {}",
                    hex(node)
                ))),
                None => Err(HgError::Corrupt(format!(
                    "{what} {name:?} points at unknown changeset {}",
                    hex(node)
                ))),
            }
        };
        for name in &self.refs {
            let key = name.as_bytes();
            let bms = match &bookmarks {
                Some(b) => b,
                None => bookmarks.insert(repo.bookmarks()?),
            };
            let rev = if let Some(node) = bms.get(key) {
                visible(node, "bookmark", name)?
            } else {
                let tgs = match &tags {
                    Some(t) => t,
                    None => tags.insert(repo.tags()?),
                };
                if let Some(node) = tgs.get(key) {
                    visible(node, "tag", name)?
                } else if let Some(r) = repo.branch_tip(key)? {
                    r
                } else if name == "tip" {
                    tip
                } else if let Some(node) = revlog::parse_node(key) {
                    visible(&node, "changeset", name)
                        .map_err(|_| HgError::UnknownRef(name.clone()))?
                } else {
                    return Err(HgError::UnknownRef(name.clone()));
                }
            };
            heads.push((name.clone(), rev));
        }
        Ok((heads, warnings))
    }

    /// The revisions to record (ascending) and the snapshots of the known
    /// ones the walk stopped at.
    fn plan(
        &self,
        repo: &Repo,
        sink: &dyn IngestSink,
        heads: &[usize],
    ) -> Result<(Vec<usize>, HashMap<usize, SnapshotId>), HgError> {
        let cl = repo.changelog();
        let mut known = HashMap::new();
        let mut new = Vec::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<usize> = heads.iter().rev().copied().collect();
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            if let Some(id) = sink.snapshot_for(&revision(&cl.node(r as i32)))? {
                known.insert(r, id);
                continue;
            }
            if repo.is_hidden(r) {
                return Err(HgError::Corrupt(format!(
                    "hidden changeset {} is an ancestor of a visible one",
                    hex(&cl.node(r as i32))
                )));
            }
            new.push(r);
            let (p1, p2) = repo.parents(r);
            for p in [p2, p1] {
                if let Ok(p) = usize::try_from(p) {
                    stack.push(p);
                }
            }
        }
        new.sort_unstable();
        Ok((new, known))
    }

    /// Converts and commits changeset `rev`.
    fn record(
        &self,
        repo: &Repo,
        conv: &mut Converter<'_>,
        sink: &dyn IngestSink,
        ids: &HashMap<usize, SnapshotId>,
        rev: usize,
        (cs, manifest): (Changeset, Arc<Vec<u8>>),
    ) -> Result<SnapshotId, HgError> {
        let cl = repo.changelog();
        let node = cl.node(rev as i32);

        let (p1, p2) = repo.parents(rev);
        let mut parents = Vec::new();
        for p in [p1, p2] {
            if let Ok(p) = usize::try_from(p) {
                parents.push(*ids.get(&p).ok_or_else(|| {
                    HgError::Corrupt(format!("parent revision {p} was not recorded"))
                })?);
            }
        }

        let mut extra: Vec<(String, Vec<u8>)> =
            vec![("hg.branch".to_owned(), cs.branch().to_vec())];
        for (k, v) in &cs.extra {
            if k == b"branch" {
                continue;
            }
            match std::str::from_utf8(k) {
                Ok(k) if !k.is_empty() => extra.push((format!("hg.extra.{k}"), v.clone())),
                _ => extra.push(("hg.extra-raw".to_owned(), [k.as_slice(), b"\0", v].concat())),
            }
        }
        let (name, email, round_trips) = split_user(&cs.user);
        if !round_trips {
            extra.push(("hg.user".to_owned(), cs.user.clone()));
        }
        let tz_minutes = if cs.tz_west % 60 == 0 && (cs.tz_west / 60).abs() <= MAX_TZ_MINUTES {
            i32::try_from(-cs.tz_west / 60).unwrap_or(0)
        } else {
            extra.push((
                "hg.date".to_owned(),
                format!("{} {}", cs.time, cs.tz_west).into_bytes(),
            ));
            0
        };
        for f in &cs.files {
            if !conv.in_scope(f) || convert::is_reserved_path(f) {
                continue;
            }
            if let Some((fnode, _)) = manifest_find(&manifest, f) {
                let rec = conv.record(f, &fnode)?;
                if let Some(src) = rec.copy {
                    extra.push(("hg.copy".to_owned(), [f.as_slice(), b"\0", &src].concat()));
                }
            }
        }
        if let Some(sub) = &self.subdir {
            extra.push(("hg.path".to_owned(), sub.clone()));
        }
        let tree = conv.tree(&cs.manifest, manifest, &revision(&node))?;
        let person = Person {
            name,
            email,
            time: cs.time,
            tz_minutes,
        };
        let snap = Snapshot {
            tree,
            parents,
            revision: revision(&node),
            author: person.clone(),
            committer: person,
            message: cs.description,
            extra,
        };
        Ok(sink.commit(&snap)?)
    }
}

impl HgSource {
    /// The refs to record: the ones followed, by the names given (or
    /// `default`), then every bookmark whose changeset is recorded.
    fn named_refs(
        &self,
        repo: &Repo,
        sink: &dyn IngestSink,
        named: &[(String, usize)],
        ids: &HashMap<usize, SnapshotId>,
    ) -> Result<Vec<NamedRef>, HgError> {
        let mut out: Vec<NamedRef> = Vec::new();
        for (name, rev) in named {
            if let Some(id) = ids.get(rev)
                && !out.iter().any(|r| r.name == *name)
            {
                out.push(NamedRef::new(name.clone(), *id));
            }
        }
        let mut bookmarks: Vec<(Vec<u8>, [u8; 20])> = repo.bookmarks()?.into_iter().collect();
        bookmarks.sort();
        for (name, node) in bookmarks {
            let Ok(name) = String::from_utf8(name) else {
                continue;
            };
            if out.iter().any(|r| r.name == name) {
                continue;
            }
            let id = match repo.changelog().rev(&node).and_then(|r| ids.get(&r)) {
                Some(id) => Some(*id),
                None => sink.snapshot_for(&revision(&node))?,
            };
            if let Some(id) = id {
                out.push(NamedRef::new(name, id));
            }
        }
        Ok(out)
    }
}

/// Splits `Name <email>`; also says whether writing the parts back gives
/// the original bytes.
fn split_user(user: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    if user.ends_with(b">")
        && let Some(lt) = user.iter().rposition(|b| *b == b'<')
    {
        let name = user[..lt].trim_ascii_end().to_vec();
        let email = user[lt + 1..user.len() - 1].to_vec();
        let mut back = name.clone();
        if !back.is_empty() {
            back.push(b' ');
        }
        back.push(b'<');
        back.extend_from_slice(&email);
        back.push(b'>');
        let ok = back == user;
        return (name, email, ok);
    }
    (user.to_vec(), Vec::new(), !user.contains(&b'<'))
}

/// Normalises a scoping subdirectory; `None` for the root itself.
fn check_subdir(s: &str) -> Result<Option<Vec<u8>>, String> {
    let mut parts = Vec::new();
    for c in Path::new(s).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("--path {s:?} must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "--path {s:?} must be relative to the repository root"
                ));
            }
        }
    }
    if parts.iter().any(|p| p == ".hg") {
        return Err(format!("--path {s:?} lies inside .hg"));
    }
    Ok((!parts.is_empty()).then(|| parts.join("/").into_bytes()))
}

impl Source for HgSource {
    fn fetch_remote(&self) -> Result<(), SourceError> {
        if let Some(url) = &self.url {
            remote::fetch(url, &self.root).map_err(|e| self.error(e))?;
            let _ = self.fetched.set(());
        }
        Ok(())
    }

    fn ingest(&self, sink: &dyn IngestSink) -> Result<IngestReport, SourceError> {
        if let Some(url) = &self.url
            && self.fetched.get().is_none()
        {
            sink.progress("fetching", 0, 0);
            remote::fetch(url, &self.root).map_err(|e| self.error(e))?;
        }
        let repo = Repo::open(&self.root).map_err(|e| self.error(e))?;
        let (named, warnings) = self.heads(&repo).map_err(|e| self.error(e))?;
        let mut heads: Vec<usize> = Vec::new();
        for (_, r) in &named {
            if !heads.contains(r) {
                heads.push(*r);
            }
        }
        for w in &warnings {
            tracing::debug!("{w}");
        }
        let mut report = IngestReport {
            warnings,
            ..IngestReport::default()
        };
        let (order, mut ids) = self.plan(&repo, sink, &heads).map_err(|e| self.error(e))?;
        tracing::debug!(location = %self.location, heads = heads.len(), new = order.len(), "planned ingest");
        let total = order.len() as u64;
        sink.progress("changesets", 0, total);
        let scope = self
            .subdir
            .as_ref()
            .map(|s| [s.as_slice(), b"/"].concat())
            .unwrap_or_default();
        let mut conv = Converter::new(&repo, sink, scope);
        let in_changeset = |rev: usize, e: HgError| match e {
            e @ (HgError::Sink(_) | HgError::Io { .. }) => self.error(e),
            e => self.error(HgError::InChangeset {
                changeset: hex(&repo.changelog().node(rev as i32)),
                source: Box::new(e),
            }),
        };
        // One thread rebuilds and verifies changesets and manifests (the
        // bulk of the reading: every manifest is a full text to hash) while
        // this one converts and commits them, in order.
        let history = match order.is_empty() {
            true => None,
            false => Some(repo.history().map_err(|e| self.error(e))?),
        };
        std::thread::scope(|scope| -> Result<(), SourceError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD);
            let revs = order.clone();
            scope.spawn(move || {
                let Some(history) = history else { return };
                for rev in revs {
                    let item = history.read(rev);
                    let failed = item.is_err();
                    // A closed channel means the converter stopped.
                    if tx.send((rev, item)).is_err() || failed {
                        break;
                    }
                }
            });
            for (done, (rev, item)) in rx.into_iter().enumerate() {
                let id = item
                    .and_then(|read| self.record(&repo, &mut conv, sink, &ids, rev, read))
                    .map_err(|e| in_changeset(rev, e))?;
                ids.insert(rev, id);
                report.new_snapshots.push(id);
                sink.progress("changesets", done as u64 + 1, total);
            }
            Ok(())
        })?;
        if report.new_snapshots.len() != order.len() {
            return Err(self.error(HgError::Corrupt(
                "the changeset reader stopped early".to_owned(),
            )));
        }
        report.files_read = conv.files_read;
        report.bytes_read = conv.bytes_read;
        report.warnings.append(&mut conv.warnings);
        let refs = self
            .named_refs(&repo, sink, &named, &ids)
            .map_err(|e| self.error(e))?;
        sink.set_refs(&refs)?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(
            split_user(b"Ann <a@x>"),
            (b"Ann".to_vec(), b"a@x".to_vec(), true)
        );
        assert_eq!(split_user(b"<a@x>"), (b"".to_vec(), b"a@x".to_vec(), true));
        assert_eq!(split_user(b"ann"), (b"ann".to_vec(), b"".to_vec(), true));
        assert!(!split_user(b"Ann  <a@x>").2);
        assert!(!split_user(b"a <b> c").2);
    }

    #[test]
    fn subdirs() {
        assert_eq!(check_subdir("./a/b/").unwrap(), Some(b"a/b".to_vec()));
        assert_eq!(check_subdir(".").unwrap(), None);
        assert!(check_subdir("../a").is_err());
        assert!(check_subdir("/a").is_err());
    }
}
