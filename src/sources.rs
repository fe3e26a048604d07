//! The kinds of source: one [`SourceKind`] entry each, listed in
//! [`SOURCES`].
//!
//! An entry holds everything plumb knows about a kind: its stable name,
//! the tag a source definition stores ([`Vcs`]), the schemes of its native
//! revisions, how `plumb source add` recognises and checks a location of
//! it, where it keeps its copy of a remote repository, and how it opens as
//! a [`Source`]. Nothing else matches on the kind.
//!
//! ```
//! use plumb::sources::{self, Place};
//!
//! let git = sources::SourceKind::named("git").unwrap();
//! assert_eq!(git.revision_schemes, ["git:sha1:", "git:sha256:"]);
//! let url = Place::Url("ssh://git@example.invalid/app");
//! assert_eq!(sources::detect(url).map(|k| k.name), Some("git"));
//! ```
//!
//! To add a kind: give it a tag (a new [`Vcs`] variant, at the end, since
//! the tag is stored), write its entry here and put it in [`SOURCES`]; the
//! compiler then asks for its arm in [`Vcs::kind`].

use std::path::{Path, PathBuf};

use plumb_core::source::{Source, SourceError};

use crate::store::{SourceDef, Vcs};

/// A location as `plumb source add` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// A local path (absolute, once the command made it so).
    Path(&'a Path),
    /// A URL, or an scp-like `[user@]host:path`.
    Url(&'a str),
}

/// Whether `location` is a URL rather than a local path: `scheme://…`, or
/// an scp-like `[user@]host:path` that is not an existing local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://")
        || (plumb_source_git::is_remote(location) && !Path::new(location).exists())
}

/// How a kind answers whether a location is of its kind, for detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It is not.
    No,
    /// It may be read as this kind, when no kind answers [`Claim::Yes`]
    /// (any directory is a plain directory).
    Fallback,
    /// It is (a `.git` or `.hg` directory, a Git URL).
    Yes,
}

/// What a named ref's annotation holds, for showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Annotation {
    /// The kind records no annotations.
    None,
    /// A raw Git tag object ([`plumb_source_git::parse_tag`] reads it).
    GitTag,
}

/// Why a location does not suit a kind of source.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The kind reads local paths only.
    #[error("a {kind} source needs a local path, not a URL")]
    NeedsPath {
        /// The kind's name.
        kind: &'static str,
    },
    /// The kind cannot fetch from this URL.
    #[error("{reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why not, naming the URL.
        reason: String,
    },
}

/// Opens a source definition; the path is the directory for its copy of a
/// remote repository (`None` for a store in memory).
pub type OpenFn = fn(&SourceDef, Option<&Path>) -> Result<Box<dyn Source>, SourceError>;

/// One kind of source.
///
/// # Contract
///
/// - `name` and `vcs` are stable: a source definition stores the tag, the
///   command line and `source list` use the name, and the copy of a
///   remote repository lives in `cache/NAME/` of the store directory.
/// - Every native revision the kind records starts with one of its
///   `revision_schemes`, and no scheme of one kind is a prefix of
///   another's, so a revision names its kind.
/// - Opening never fetches or reads history: that happens at ingest.
#[derive(Debug)]
pub struct SourceKind {
    /// The tag a source definition stores for this kind.
    pub vcs: Vcs,
    /// Its stable name: `--vcs NAME`, `source list`, `cache/NAME/`.
    pub name: &'static str,
    /// What a location of this kind is, for messages ("a Mercurial
    /// repository").
    pub noun: &'static str,
    /// A prefix that marks a location as this kind (`hg::URL`); it is
    /// stripped before the location is stored.
    pub prefix: Option<&'static str>,
    /// The prefixes of its native revisions (`git:sha1:`), which a
    /// revision may leave out (`spec/store.md`).
    pub revision_schemes: &'static [&'static str],
    /// Whether it reads remote repositories by URL.
    pub remote: bool,
    /// Whether it follows refs (`--ref`: branches, tags, bookmarks).
    pub follows_refs: bool,
    /// What its named refs' annotations hold.
    pub annotation: Annotation,
    /// What follows the source's name in the name of its cache directory
    /// (`.git` for a bare mirror).
    pub cache_suffix: &'static str,
    detect: fn(Place<'_>) -> Claim,
    check_url: fn(&str) -> Result<(), String>,
    open: OpenFn,
}

/// A plain directory, snapshotted as it is at each ingest.
pub static DIR: SourceKind = SourceKind {
    vcs: Vcs::Dir,
    name: "dir",
    noun: "a directory",
    prefix: None,
    revision_schemes: &["dir:"],
    remote: false,
    follows_refs: false,
    annotation: Annotation::None,
    cache_suffix: "",
    detect: detect_dir,
    check_url: accept_url,
    open: open_dir,
};

/// A Git repository: a work tree, a bare repository or a remote one.
pub static GIT: SourceKind = SourceKind {
    vcs: Vcs::Git,
    name: "git",
    noun: "a Git repository",
    prefix: None,
    revision_schemes: &["git:sha1:", "git:sha256:"],
    remote: true,
    follows_refs: true,
    annotation: Annotation::GitTag,
    cache_suffix: ".git",
    detect: detect_git,
    check_url: accept_url,
    open: open_git,
};

/// A Mercurial repository, local or remote (`hg::` marks either).
pub static HG: SourceKind = SourceKind {
    vcs: Vcs::Hg,
    name: "hg",
    noun: "a Mercurial repository",
    prefix: Some("hg::"),
    revision_schemes: &["hg:"],
    remote: true,
    follows_refs: true,
    annotation: Annotation::None,
    cache_suffix: "",
    detect: detect_hg,
    check_url: plumb_source_hg::remote::check_url,
    open: open_hg,
};

/// Every kind, in the order detection asks them (and `--vcs` lists them).
pub static SOURCES: [&SourceKind; 3] = [&DIR, &GIT, &HG];

impl Vcs {
    /// The entry of this kind.
    pub fn kind(self) -> &'static SourceKind {
        match self {
            Vcs::Dir => &DIR,
            Vcs::Git => &GIT,
            Vcs::Hg => &HG,
        }
    }
}

impl SourceKind {
    /// The kind called `name`.
    pub fn named(name: &str) -> Option<&'static SourceKind> {
        SOURCES.iter().copied().find(|k| k.name == name)
    }

    /// The kind whose prefix `location` starts with, and the location
    /// without it (`hg::http://…`).
    pub fn prefixed(location: &str) -> Option<(&'static SourceKind, &str)> {
        SOURCES.iter().find_map(|k| {
            let rest = location.strip_prefix(k.prefix?)?;
            Some((*k, rest))
        })
    }

    /// How this kind answers whether `place` is of its kind.
    pub fn claim(&self, place: Place<'_>) -> Claim {
        (self.detect)(place)
    }

    /// Checks that a source of this kind can read `place`.
    pub fn check(&self, place: Place<'_>) -> Result<(), LocationError> {
        let Place::Url(url) = place else {
            return Ok(());
        };
        if !self.remote {
            return Err(LocationError::NeedsPath { kind: self.name });
        }
        (self.check_url)(url).map_err(|reason| LocationError::Url {
            url: url.to_owned(),
            reason,
        })
    }

    /// Where a source of this kind named `source` keeps its copy of a
    /// remote repository inside the store directory: `cache/KIND/NAME`
    /// and the kind's suffix (`cache/git/NAME.git`, a bare mirror;
    /// `cache/hg/NAME`, a clone). Only remote sources use it.
    pub fn cache_dir(&self, store_dir: &Path, source: &str) -> PathBuf {
        store_dir
            .join("cache")
            .join(self.name)
            .join(format!("{source}{}", self.cache_suffix))
    }

    /// Builds the reader for `def`, a source of this kind. `store_dir` is
    /// the store's directory (`None` for a store in memory), where a remote
    /// source keeps its copy ([`cache_dir`](Self::cache_dir)).
    pub fn open(
        &self,
        def: &SourceDef,
        store_dir: Option<&Path>,
    ) -> Result<Box<dyn Source>, SourceError> {
        let cache = store_dir.map(|d| self.cache_dir(d, &def.name));
        (self.open)(def, cache.as_deref())
    }
}

/// Why a source definition cannot be made (`plumb source add`, a
/// `[source.NAME]` of the agent's configuration).
#[derive(Debug, thiserror::Error)]
pub enum DefineError {
    /// A prefix names one kind and `vcs` another.
    #[error("{location} names {noun}; --vcs must be {kind}")]
    PrefixMismatch {
        /// The location as given.
        location: String,
        /// What the prefix names ("a Mercurial repository").
        noun: &'static str,
        /// The kind the prefix names.
        kind: &'static str,
    },
    /// No kind has this name.
    #[error("unknown kind {name:?} (known: {known})")]
    UnknownKind {
        /// The name given.
        name: String,
        /// The names known, comma-separated.
        known: String,
    },
    /// A local location that cannot be resolved.
    #[error("source location {location}: {source}")]
    Unreadable {
        /// The location as given.
        location: String,
        /// Why.
        source: std::io::Error,
    },
    /// No kind reads the location.
    #[error("{0}")]
    Undetected(String),
    /// The kind cannot read the location.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// Refs given to a kind that follows none.
    #[error("--ref does not apply to a {kind} source")]
    RefsUnsupported {
        /// The kind.
        kind: &'static str,
    },
    /// A `--path` that leaves the snapshot.
    #[error(transparent)]
    Path(#[from] crate::store::StoreError),
}

/// The definition of source `name` as `plumb source add` makes it: a
/// prefix or `vcs` names the kind, else it is detected; a local location
/// is made absolute (resolving links); the kind checks it, and `refs`
/// and `path` must suit it. Nothing is recorded.
pub fn define(
    name: &str,
    location: &str,
    vcs: Option<&str>,
    refs: &[String],
    path: Option<&str>,
) -> Result<SourceDef, DefineError> {
    // A prefix names the kind (`hg::LOCATION`, a Mercurial repository,
    // local or remote).
    let (location, forced) = match SourceKind::prefixed(location) {
        Some((kind, rest)) if vcs.is_none_or(|v| v == kind.name) => (rest, Some(kind)),
        Some((kind, _)) => {
            return Err(DefineError::PrefixMismatch {
                location: location.to_owned(),
                noun: kind.noun,
                kind: kind.name,
            });
        }
        None => (location, vcs.map(named).transpose()?),
    };
    let is_url = is_url(location);
    let location = if is_url {
        location.to_owned()
    } else {
        let abs = std::fs::canonicalize(location).map_err(|source| DefineError::Unreadable {
            location: location.to_owned(),
            source,
        })?;
        abs.to_string_lossy().into_owned()
    };
    let place = if is_url {
        Place::Url(&location)
    } else {
        Place::Path(Path::new(&location))
    };
    let kind = match forced {
        Some(kind) => kind,
        None => detect_or_explain(place)?,
    };
    kind.check(place)?;
    if !kind.follows_refs && !refs.is_empty() {
        return Err(DefineError::RefsUnsupported { kind: kind.name });
    }
    if let Some(p) = path {
        crate::query::components(p.as_bytes())?;
    }
    Ok(SourceDef {
        name: name.to_owned(),
        vcs: kind.vcs,
        location,
        refs: refs.to_vec(),
        path: path.map(str::to_owned),
    })
}

/// The kind called `name`, or an error listing the known ones.
fn named(name: &str) -> Result<&'static SourceKind, DefineError> {
    SourceKind::named(name).ok_or_else(|| DefineError::UnknownKind {
        name: name.to_owned(),
        known: SOURCES.map(|k| k.name).join(", "),
    })
}

/// The kind a location is, or why none can tell.
fn detect_or_explain(place: Place<'_>) -> Result<&'static SourceKind, DefineError> {
    if let Some(kind) = detect(place) {
        return Ok(kind);
    }
    Err(DefineError::Undetected(match place {
        Place::Path(p) => format!("{} is not a directory", p.display()),
        Place::Url(url) => {
            let choices: Vec<_> = SOURCES
                .iter()
                .filter(|k| k.remote)
                .map(|k| format!("--vcs {}", k.name))
                .collect();
            let choices = match choices.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            format!("cannot tell what {url} is; pass {choices}")
        }
    }))
}

/// The kind a location is: the first that claims it, else the first that
/// would take it as a fallback; `None` when no kind reads it.
pub fn detect(place: Place<'_>) -> Option<&'static SourceKind> {
    let claims: Vec<_> = SOURCES.iter().map(|k| (*k, k.claim(place))).collect();
    [Claim::Yes, Claim::Fallback]
        .into_iter()
        .find_map(|want| claims.iter().find(|(_, c)| *c == want).map(|(k, _)| *k))
}

/// Every scheme of every kind's native revisions.
pub fn revision_schemes() -> impl Iterator<Item = &'static str> {
    SOURCES
        .iter()
        .flat_map(|k| k.revision_schemes.iter().copied())
}

fn accept_url(_: &str) -> Result<(), String> {
    Ok(())
}

fn detect_dir(place: Place<'_>) -> Claim {
    match place {
        Place::Path(p) if p.is_dir() => Claim::Fallback,
        _ => Claim::No,
    }
}

fn open_dir(def: &SourceDef, _cache: Option<&Path>) -> Result<Box<dyn Source>, SourceError> {
    let dir = plumb_source_dir::DirSource::new(&def.location, def.path.as_deref().map(Path::new))?;
    Ok(Box::new(dir))
}

fn detect_git(place: Place<'_>) -> Claim {
    let yes = match place {
        Place::Url(url) => {
            let git_scheme = ["git://", "ssh://", "git+ssh://", "ssh+git://", "file://"]
                .iter()
                .any(|s| url.starts_with(s));
            git_scheme || !url.contains("://") || url.ends_with(".git")
        }
        // A work tree (a `.git` directory, or a `.git` file as in linked
        // work trees and submodules), or a bare repository or `.git`
        // directory.
        Place::Path(p) => {
            let git_dir = |d: &Path| {
                d.join("HEAD").is_file() && d.join("objects").is_dir() && d.join("refs").is_dir()
            };
            p.is_dir() && (p.join(".git").exists() || git_dir(p))
        }
    };
    if yes { Claim::Yes } else { Claim::No }
}

fn open_git(def: &SourceDef, cache: Option<&Path>) -> Result<Box<dyn Source>, SourceError> {
    if !plumb_source_git::is_remote(&def.location) {
        let git = plumb_source_git::GitSource::new(&def.location, &def.refs, def.path.as_deref())?;
        return Ok(Box::new(git));
    }
    // A remote is fetched into a bare mirror, `cache/git/NAME.git`.
    let cache = cache.ok_or_else(|| SourceError::Invalid {
        location: def.location.clone(),
        reason: "a remote repository needs a store on disk to keep its mirror in".to_owned(),
    })?;
    let git = plumb_source_git::RemoteGitSource::new(
        &def.location,
        cache,
        &def.refs,
        def.path.as_deref(),
    )?;
    Ok(Box::new(git))
}

fn detect_hg(place: Place<'_>) -> Claim {
    match place {
        Place::Path(p) if p.join(".hg").is_dir() => Claim::Yes,
        _ => Claim::No,
    }
}

fn open_hg(def: &SourceDef, cache: Option<&Path>) -> Result<Box<dyn Source>, SourceError> {
    let hg = plumb_source_hg::HgSource::with_cache(
        &def.location,
        &def.refs,
        def.path.as_deref(),
        cache,
    )?;
    Ok(Box::new(hg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name_and_tag() {
        for kind in SOURCES {
            assert!(std::ptr::eq(SourceKind::named(kind.name).unwrap(), kind));
            assert!(std::ptr::eq(kind.vcs.kind(), kind), "{}", kind.name);
        }
        assert!(SourceKind::named("svn").is_none());
        assert!(SourceKind::named("").is_none());
    }

    #[test]
    fn no_scheme_is_a_prefix_of_another_kinds() {
        for a in SOURCES {
            for b in SOURCES.iter().filter(|b| b.name != a.name) {
                for sa in a.revision_schemes {
                    for sb in b.revision_schemes {
                        assert!(!sb.starts_with(sa), "{sa} is a prefix of {sb}");
                    }
                }
            }
        }
        let all: Vec<_> = revision_schemes().collect();
        assert_eq!(all, ["dir:", "git:sha1:", "git:sha256:", "hg:"]);
    }

    #[test]
    fn detects_local_repositories() {
        let d = tempfile::tempdir().unwrap();
        let at = |sub: &str| d.path().join(sub);
        for dir in ["plain", "work/.git", "hg/.hg", "bare/objects", "bare/refs"] {
            std::fs::create_dir_all(at(dir)).unwrap();
        }
        std::fs::write(at("bare/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::create_dir_all(at("linked")).unwrap();
        std::fs::write(at("linked/.git"), "gitdir: ../work/.git\n").unwrap();
        std::fs::write(at("file"), "").unwrap();
        for (sub, want) in [
            ("plain", Some("dir")),
            ("work", Some("git")),
            ("linked", Some("git")),
            ("bare", Some("git")),
            ("hg", Some("hg")),
            ("file", None),
            ("missing", None),
        ] {
            let p = at(sub);
            assert_eq!(detect(Place::Path(&p)).map(|k| k.name), want, "{sub}");
        }
    }

    #[test]
    fn detects_remote_repositories() {
        for (url, want) in [
            ("ssh://git@example.invalid/srv/app", Some("git")),
            ("git@example.invalid:srv/app", Some("git")),
            ("https://example.invalid/app.git", Some("git")),
            ("git://example.invalid/app", Some("git")),
            ("file:///srv/app", Some("git")),
            ("http://example.invalid/app", None),
        ] {
            assert_eq!(detect(Place::Url(url)).map(|k| k.name), want, "{url}");
        }
        assert!(is_url("git@example.invalid:srv/app"));
        assert!(is_url("https://example.invalid/app"));
        assert!(!is_url("/srv/app"));
    }

    #[test]
    fn prefixes_name_their_kind() {
        let (kind, rest) = SourceKind::prefixed("hg::http://example.invalid/r").unwrap();
        assert_eq!((kind.name, rest), ("hg", "http://example.invalid/r"));
        assert!(SourceKind::prefixed("http://example.invalid/r").is_none());
    }

    #[test]
    fn checks_locations() {
        let local = Place::Path(Path::new("/srv/app"));
        for kind in SOURCES {
            kind.check(local).unwrap();
        }
        let url = Place::Url("https://example.invalid/r");
        GIT.check(url).unwrap();
        HG.check(url).unwrap();
        let err = DIR.check(url).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a dir source needs a local path, not a URL"
        );
        let err = HG.check(Place::Url("ftp://example.invalid/r")).unwrap_err();
        assert!(
            matches!(&err, LocationError::Url { url, .. } if url == "ftp://example.invalid/r"),
            "{err}"
        );
    }

    #[test]
    fn caches_live_under_the_kind() {
        let store = Path::new("/s");
        assert_eq!(GIT.cache_dir(store, "a"), Path::new("/s/cache/git/a.git"));
        assert_eq!(HG.cache_dir(store, "a"), Path::new("/s/cache/hg/a"));
    }

    #[test]
    fn a_remote_git_source_needs_a_store_on_disk() {
        let def = SourceDef {
            name: "r".into(),
            vcs: Vcs::Git,
            location: "https://example.invalid/r.git".into(),
            refs: vec![],
            path: None,
        };
        assert!(matches!(
            def.vcs.kind().open(&def, None),
            Err(SourceError::Invalid { .. })
        ));
    }
}
