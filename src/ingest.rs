//! Running sources: from a stored definition to new snapshots.

use std::path::{Path, PathBuf};

use plumb_core::source::{IngestReport, Source, SourceError};

use crate::store::{SourceDef, Store, StoreError, StoreSink, Vcs};

/// Why an ingest failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source failed.
    #[error("source {name:?}: {source}")]
    Source {
        /// The source's name.
        name: String,
        /// What went wrong.
        source: SourceError,
    },
    /// This build cannot read the source's kind yet.
    #[error("source {name:?}: {vcs} sources are not supported by this build")]
    Unsupported {
        /// The source's name.
        name: String,
        /// Its kind.
        vcs: &'static str,
    },
}

/// Where a source keeps its copy of a remote repository inside the store
/// directory: `cache/git/NAME.git` (a bare mirror) or `cache/hg/NAME` (a
/// clone). Only remote sources use it.
pub fn cache_dir(store_dir: &Path, def: &SourceDef) -> PathBuf {
    match def.vcs {
        Vcs::Git => store_dir
            .join("cache")
            .join("git")
            .join(format!("{}.git", def.name)),
        Vcs::Hg | Vcs::Dir => store_dir.join("cache").join(def.vcs.name()).join(&def.name),
    }
}

/// Builds the reader for a source definition. `store_dir` is the store's
/// directory (`None` for a store in memory), where remote sources keep
/// their copy ([`cache_dir`]).
pub fn open_source(
    def: &SourceDef,
    store_dir: Option<&Path>,
) -> Result<Box<dyn Source>, IngestError> {
    let wrap = |source| IngestError::Source {
        name: def.name.clone(),
        source,
    };
    match def.vcs {
        Vcs::Dir => {
            let dir =
                plumb_source_dir::DirSource::new(&def.location, def.path.as_deref().map(Path::new))
                    .map_err(wrap)?;
            Ok(Box::new(dir))
        }
        Vcs::Git if plumb_source_git::is_remote(&def.location) => {
            // A remote is fetched into a bare mirror, `cache/git/NAME.git`.
            let dir = store_dir.ok_or_else(|| {
                wrap(SourceError::Invalid {
                    location: def.location.clone(),
                    reason: "a remote repository needs a store on disk to keep its mirror in"
                        .to_owned(),
                })
            })?;
            let cache = cache_dir(dir, def);
            let git = plumb_source_git::RemoteGitSource::new(
                &def.location,
                cache,
                &def.refs,
                def.path.as_deref(),
            )
            .map_err(wrap)?;
            Ok(Box::new(git))
        }
        Vcs::Git => {
            let git =
                plumb_source_git::GitSource::new(&def.location, &def.refs, def.path.as_deref())
                    .map_err(wrap)?;
            Ok(Box::new(git))
        }
        Vcs::Hg => {
            let cache = store_dir.map(|d| cache_dir(d, def));
            let hg = plumb_source_hg::HgSource::with_cache(
                &def.location,
                &def.refs,
                def.path.as_deref(),
                cache.as_deref(),
            )
            .map_err(wrap)?;
            Ok(Box::new(hg))
        }
    }
}

/// Ingests what is new in the source `name`; `progress` hears of the work.
pub fn ingest(
    store: &Store,
    name: &str,
    progress: Box<crate::store::sink::ProgressFn<'_>>,
) -> Result<IngestReport, IngestError> {
    let def = store.source(name)?;
    let source = open_source(&def, store.path())?;
    let sink = StoreSink::new(store, name, progress)?;
    match source.ingest(&sink) {
        Ok(report) => {
            // Makes the snapshots durable, and keeps the work of a source
            // that committed nothing (a refreshed stat cache, say).
            sink.finish()?;
            Ok(report)
        }
        Err(source) => {
            // Every snapshot committed before the failure stays. When the
            // store itself failed (a full disk, say), it fails here again
            // for the same reason, which the error reported already says.
            if let Err(e) = sink.finish_after_error() {
                if matches!(source, SourceError::Sink(_)) {
                    tracing::debug!(error = %e, "could not make the last snapshots durable");
                } else {
                    tracing::warn!(error = %e, "could not make the last snapshots durable");
                }
            }
            Err(IngestError::Source {
                name: name.to_owned(),
                source,
            })
        }
    }
}
