//! Remote repositories: fetched into a bare mirror in a cache directory,
//! then read as a local repository.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::bstr::{BString, ByteSlice};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};
use gix::remote::Direction;
use plumb_core::source::{IngestReport, IngestSink, Source, SourceError};

use crate::{GitError, GitSource};

/// The fetch refspecs of the cache: every branch and tag, to the same name,
/// forced, so the cache mirrors the remote's branches and tags.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// The ref namespaces the cache mirrors; refs in them the remote no longer
/// has are deleted after each fetch.
const MIRRORED: [&str; 2] = ["refs/heads/", "refs/tags/"];

/// Whether `location` names a remote repository rather than a local path:
/// a URL (`scheme://…`) or an scp-like `[user@]host:path`.
pub fn is_remote(location: &str) -> bool {
    if location.contains("://") {
        return true;
    }
    scp_like(location)
}

/// `[user@]host:path`: a colon with no `/` before it, a host of more than
/// one character (not a drive letter), and something after it.
fn scp_like(location: &str) -> bool {
    match location.split_once(':') {
        Some((host, path)) => {
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            !host.contains('/') && host.len() > 1 && !path.is_empty() && !host.starts_with('-')
        }
        None => false,
    }
}

/// A remote Git repository as a [`Source`]: each ingest fetches it into a
/// bare mirror (`cache`), then reads that mirror as [`GitSource`] does. See
/// the [crate docs](crate#remote-repositories).
#[derive(Debug, Clone)]
pub struct RemoteGitSource {
    url: String,
    cache: PathBuf,
    refs: Vec<String>,
    subdir: Option<String>,
    /// Whether [`Source::fetch_remote`] fetched already.
    fetched: std::sync::OnceLock<()>,
}

impl RemoteGitSource {
    /// A remote repository at `url` (`file://`, `git://`, `ssh://`,
    /// scp-like `user@host:path`, `http://` or `https://`), mirrored in the
    /// directory `cache` (created at the first ingest), to ingest `refs`
    /// (the remote's `HEAD` when empty), optionally scoped to `subdir`.
    ///
    /// Nothing is fetched here; an unparsable URL is
    /// [`SourceError::Read`].
    pub fn new(
        url: &str,
        cache: impl Into<PathBuf>,
        refs: &[String],
        subdir: Option<&str>,
    ) -> Result<Self, SourceError> {
        gix::url::parse(url.as_bytes().as_bstr()).map_err(|e| SourceError::Read {
            location: url.to_owned(),
            source: Box::new(GitError::Url {
                source: Box::new(e),
            }),
        })?;
        crate::parse_subdir(subdir).map_err(|reason| SourceError::Invalid {
            location: subdir.unwrap_or_default().to_owned(),
            reason,
        })?;
        Ok(Self {
            url: url.to_owned(),
            cache: cache.into(),
            refs: refs.to_vec(),
            subdir: subdir.map(str::to_owned),
            fetched: Default::default(),
        })
    }

    /// The remote's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bare mirror the remote is fetched into.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    /// A failed step of a fetch, with gix's (or the file system's) error.
    fn failed(
        &self,
        what: String,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> SourceError {
        SourceError::Read {
            location: self.url.clone(),
            source: Box::new(GitError::Remote {
                what,
                source: source.into(),
            }),
        }
    }

    /// Brings the mirror up to date with the remote, creating it the first
    /// time. On failure the mirror is as it was (or absent).
    pub fn fetch(&self, sink: Option<&dyn IngestSink>) -> Result<(), SourceError> {
        if self.cache.exists() {
            return self.fetch_into(&self.cache, sink);
        }
        // A first clone goes to a temporary directory beside the cache and
        // is renamed into place once complete.
        let parent = self.cache.parent().unwrap_or(Path::new("."));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SourceError::Io { path, source }
        };
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let mut tmp = self.cache.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        let result = self
            .init(&tmp)
            .and_then(|()| self.fetch_into(&tmp, sink))
            .and_then(|()| std::fs::rename(&tmp, &self.cache).map_err(io(&self.cache)));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Creates the bare mirror at `dir`, its remote recorded in its
    /// configuration (for people and `git` reading it; fetches use the
    /// source's URL).
    fn init(&self, dir: &Path) -> Result<(), SourceError> {
        gix::init_bare(dir)
            .map_err(|e| self.failed(format!("cannot create {}", dir.display()), e))?;
        let escaped = self.url.replace('\\', "\\\\").replace('"', "\\\"");
        let mut section = format!("[remote \"origin\"]\n\turl = \"{escaped}\"\n");
        for spec in REFSPECS {
            section.push_str(&format!("\tfetch = {spec}\n"));
        }
        section.push_str("\ttagOpt = --no-tags\n");
        let config = dir.join("config");
        let mut text = std::fs::read_to_string(&config).map_err(|source| SourceError::Io {
            path: config.clone(),
            source,
        })?;
        text.push_str(&section);
        std::fs::write(&config, text).map_err(|source| SourceError::Io {
            path: config.clone(),
            source,
        })
    }

    /// Fetches into the bare repository at `dir`: objects first, then the
    /// mirrored refs (forced), then the deletion of refs the remote no
    /// longer has, then `HEAD` as the remote has it.
    fn fetch_into(&self, dir: &Path, sink: Option<&dyn IngestSink>) -> Result<(), SourceError> {
        let options = gix::open::Options::isolated().config_overrides(crate::CONFIG_OVERRIDES);
        let repo = gix::ThreadSafeRepository::open_opts(dir, options)
            .map_err(|e| self.failed(format!("cannot open the cache {}", dir.display()), e))?
            .to_thread_local();
        let remote = repo
            .remote_at(self.url.as_str())
            .and_then(|r| r.with_refspecs(REFSPECS, Direction::Fetch))
            .map_err(|e| self.failed("not a usable Git URL".into(), e))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let head_spec = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
            .map_err(|e| self.failed("internal refspec".into(), e))?
            .to_owned();
        let ref_map_options = gix::remote::ref_map::Options {
            extra_refspecs: vec![head_spec],
            ..Default::default()
        };
        let outcome = remote
            .connect(Direction::Fetch)
            .and_then(|c| c.prepare_fetch(gix::progress::Discard, ref_map_options))
            .and_then(|p| p.receive(gix::progress::Discard, &AtomicBool::new(false)))
            .map_err(|e| self.failed("cannot fetch".into(), e))?;
        if let (
            Some(sink),
            gix::remote::fetch::Status::Change {
                write_pack_bundle, ..
            },
        ) = (sink, &outcome.status)
        {
            let objects = write_pack_bundle.index.num_objects.into();
            sink.progress("objects", objects, objects);
        }

        let mut edits = Vec::new();
        // Prune: refs the remote no longer has.
        let kept: HashSet<&[u8]> = outcome
            .ref_map
            .mappings
            .iter()
            .filter_map(|m| m.local.as_ref().map(|l| l.as_slice()))
            .collect();
        let platform = repo
            .references()
            .map_err(|e| self.failed("cannot list the cache's refs".into(), e))?;
        for prefix in MIRRORED {
            let iter = platform
                .prefixed(prefix)
                .map_err(|e| self.failed("cannot list the cache's refs".into(), e))?;
            for r in iter {
                let r = r.map_err(|e| self.failed("cannot read the cache's refs".into(), e))?;
                let name = r.name().as_bstr();
                if !kept.contains(name.as_bytes()) {
                    edits.push(RefEdit {
                        change: Change::Delete {
                            expected: PreviousValue::Any,
                            log: RefLog::AndReference,
                        },
                        name: r.name().to_owned(),
                        deref: false,
                    });
                }
            }
        }
        // HEAD as the remote has it: the branch it names, or a commit.
        let head = outcome.ref_map.remote_refs.iter().find_map(|r| {
            use gix::protocol::handshake::Ref;
            match r {
                Ref::Symbolic {
                    full_ref_name,
                    target,
                    ..
                }
                | Ref::Unborn {
                    full_ref_name,
                    target,
                } if full_ref_name == "HEAD" => FullName::try_from(target.clone())
                    .ok()
                    .map(Target::Symbolic),
                Ref::Direct {
                    full_ref_name,
                    object,
                } if full_ref_name == "HEAD" => Some(Target::Object(*object)),
                _ => None,
            }
        });
        if let Some(target) = head {
            let name: FullName = BString::from("HEAD")
                .try_into()
                .map_err(|e| self.failed("internal ref name".into(), e))?;
            edits.push(RefEdit {
                change: Change::Update {
                    log: LogChange::default(),
                    expected: PreviousValue::Any,
                    new: target,
                },
                name,
                deref: false,
            });
        }
        if !edits.is_empty() {
            repo.edit_references(edits)
                .map_err(|e| self.failed("cannot update the cache's refs".into(), e))?;
        }
        tracing::debug!(url = %self.url, cache = %dir.display(), "fetched");
        Ok(())
    }
}

impl Source for RemoteGitSource {
    fn fetch_remote(&self) -> Result<(), SourceError> {
        self.fetch(None)?;
        let _ = self.fetched.set(());
        Ok(())
    }

    fn ingest(&self, sink: &dyn IngestSink) -> Result<IngestReport, SourceError> {
        if self.fetched.get().is_none() {
            self.fetch(Some(sink))?;
        }
        let local = GitSource::new(&self.cache, &self.refs, self.subdir.as_deref())
            .map_err(|e| match e {
                SourceError::Invalid { reason, .. } => SourceError::Invalid {
                    location: self.url.clone(),
                    reason,
                },
                SourceError::Read { source, .. } => SourceError::Read {
                    location: self.url.clone(),
                    source,
                },
                e => e,
            })?
            .with_location(self.url.clone());
        local.ingest(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::is_remote;

    #[test]
    fn remote_locations() {
        for r in [
            "file:///srv/app.git",
            "git://host/app.git",
            "ssh://git@host/app.git",
            "https://host/app",
            "git@host:app.git",
            "host:srv/app",
        ] {
            assert!(is_remote(r), "{r}");
        }
        for l in ["/srv/app", "./a:b", "app", "C:/x", "/a/b:c", "rel/dir:x"] {
            assert!(!is_remote(l), "{l}");
        }
    }
}
