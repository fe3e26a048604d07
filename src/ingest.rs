//! Running sources: from a stored definition to new snapshots.

use std::path::Path;

use plumb_core::source::{IngestReport, Source, SourceError};

use crate::reconcile::TargetStore;
use crate::store::lock::{self, Holder, NotTaken, Turn, Wait};
use crate::store::{SourceDef, Store, StoreError, StoreSink};

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
    /// Another process is fetching or ingesting the source.
    #[error("source {name:?} is being fetched by {holder}")]
    Busy {
        /// The source's name.
        name: String,
        /// Who holds it (`pid 12 (plumb ingest app)`).
        holder: String,
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

/// Builds the reader for a source definition, as its kind's entry in
/// [`crate::sources`] opens it. `store_dir` is the store's directory
/// (`None` for a store in memory), where remote sources keep their copy
/// ([`SourceKind::cache_dir`](crate::sources::SourceKind::cache_dir)).
pub fn open_source(
    def: &SourceDef,
    store_dir: Option<&Path>,
) -> Result<Box<dyn Source>, IngestError> {
    def.vcs
        .kind()
        .open(def, store_dir)
        .map_err(|source| IngestError::Source {
            name: def.name.clone(),
            source,
        })
}

/// Ingests what is new in the source `name`; `progress` hears of the work.
pub fn ingest(
    store: &Store,
    name: &str,
    progress: Box<crate::store::sink::ProgressFn<'_>>,
) -> Result<IngestReport, IngestError> {
    let def = store.source(name)?;
    let source = open_source(&def, store.path())?;
    ingest_source(store, name, source.as_ref(), progress)
}

/// Fetches what source `def` reads from elsewhere (a remote repository,
/// into its copy under the store directory `store_dir`), holding the
/// source's lock (`locks/source-NAME`, taken as `wait` allows) but not the
/// store's writer turn; returns the source, ready for [`ingest_source`],
/// and the lock, to hold until that is done, so two processes never
/// fetch into or read one copy at once.
pub fn fetch(
    store_dir: &Path,
    def: &SourceDef,
    wait: Wait,
    waiting: &dyn Fn(&Holder),
) -> Result<(Box<dyn Source>, Turn), IngestError> {
    let path = lock::path(store_dir, &format!("source-{}", def.name));
    let turn = lock::take(&path, wait, waiting).map_err(|e| match e {
        NotTaken::Busy { holder, .. } => IngestError::Busy {
            name: def.name.clone(),
            holder: holder.to_string(),
        },
        NotTaken::Failed(e) => IngestError::Store(e),
    })?;
    let source = open_source(def, Some(store_dir))?;
    source
        .fetch_remote()
        .map_err(|source| IngestError::Source {
            name: def.name.clone(),
            source,
        })?;
    Ok((source, turn))
}

/// Ingests what is new in `source`, the reader of source `name`.
pub fn ingest_source(
    store: &Store,
    name: &str,
    source: &dyn Source,
    progress: Box<crate::store::sink::ProgressFn<'_>>,
) -> Result<IngestReport, IngestError> {
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

/// What the newest snapshot of source `name` leaves empty: the source's
/// own `--path` (a Git or Mercurial subtree no commit holds any more
/// gives an empty tree) and the `--path` of each target following it.
/// Each is a warning at ingest and an error at plan and apply, where an
/// empty tree would prune the target.
pub fn path_warnings(store: &Store, name: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let Some(head) = store.head(name)? else {
        return Ok(out);
    };
    let snapshot = store.snapshot(&head.id)?;
    let short = crate::reconcile::desired::short(&head.id);
    let def = store.source(name)?;
    if let Some(path) = &def.path
        && store.tree(&snapshot.tree)?.is_empty()
    {
        out.push(format!(
            "--path {path} matches nothing in the latest snapshot {short}"
        ));
    }
    for target in store.targets()? {
        let Some(path) = target.path.as_deref().filter(|_| target.source == name) else {
            continue;
        };
        if crate::reconcile::desired::subtree(store, snapshot.tree, path)?.is_none() {
            out.push(format!(
                "target {}: --path {path} matches nothing in the latest snapshot {short}",
                target.name
            ));
        }
    }
    Ok(out)
}
