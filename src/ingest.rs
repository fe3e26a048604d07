//! Running sources: from a stored definition to new snapshots.

use std::path::Path;

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

/// Builds the reader for a source definition.
pub fn open_source(def: &SourceDef) -> Result<Box<dyn Source>, IngestError> {
    let wrap = |source| IngestError::Source {
        name: def.name.clone(),
        source,
    };
    match def.vcs {
        Vcs::Dir => {
            let dir = plumb_dir::DirSource::new(&def.location, def.path.as_deref().map(Path::new))
                .map_err(wrap)?;
            Ok(Box::new(dir))
        }
        Vcs::Git => {
            let git = plumb_git::GitSource::new(&def.location, &def.refs, def.path.as_deref())
                .map_err(wrap)?;
            Ok(Box::new(git))
        }
        Vcs::Hg => {
            let hg = plumb_hg::HgSource::new(&def.location, &def.refs, def.path.as_deref())
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
    let source = open_source(&def)?;
    let sink = StoreSink::new(store, name, progress)?;
    match source.ingest(&sink) {
        Ok(report) => {
            // Makes the snapshots durable, and keeps the work of a source
            // that committed nothing (a refreshed stat cache, say).
            sink.finish()?;
            Ok(report)
        }
        Err(source) => {
            // Every snapshot committed before the failure stays.
            if let Err(e) = sink.finish_after_error() {
                tracing::warn!(error = %e, "could not make the last snapshots durable");
            }
            Err(IngestError::Source {
                name: name.to_owned(),
                source,
            })
        }
    }
}
