//! The desired state: a snapshot's tree (or one directory of it) flattened
//! into the paths a target should hold.

use std::collections::BTreeMap;

use plumb_core::target::TargetPath;
use plumb_core::{BlobId, EntryValue, SnapshotId, Tree, TreeId};

use super::ReconcileError;
use super::state::Applied;
use crate::query;
use crate::store::{Store, StoreError};

/// What one path should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// A regular file with a blob's content.
    File {
        /// The content.
        blob: BlobId,
        /// Whether it is executable.
        executable: bool,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points.
        target: Vec<u8>,
    },
    /// A directory.
    Dir,
}

impl Desired {
    /// A word for listings.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Desired::File {
                executable: false, ..
            } => "file",
            Desired::File {
                executable: true, ..
            } => "executable",
            Desired::Symlink { .. } => "symlink",
            Desired::Dir => "directory",
        }
    }

    /// Whether `applied` records exactly this.
    pub fn is(&self, applied: &Applied) -> bool {
        match (self, applied) {
            (
                Desired::File { blob, executable },
                Applied::File {
                    blob: b,
                    executable: e,
                    ..
                },
            ) => blob.as_bytes() == b && executable == e,
            (Desired::Symlink { target }, Applied::Symlink { target: t }) => target == t,
            (Desired::Dir, Applied::Dir) => true,
            _ => false,
        }
    }
}

/// The paths a target should hold, parents before children.
#[derive(Debug, Clone)]
pub struct DesiredTree {
    /// The snapshot it comes from.
    pub snapshot: SnapshotId,
    /// Every path and what it should be.
    pub entries: BTreeMap<TargetPath, Desired>,
    /// Entries that cannot be reconciled (submodules), with why.
    pub skipped: Vec<String>,
}

/// Flattens `snapshot`'s tree, or its directory `subdir`, into paths.
pub fn desired(
    store: &Store,
    snapshot: SnapshotId,
    subdir: Option<&str>,
) -> Result<DesiredTree, ReconcileError> {
    let s = store.snapshot(&snapshot)?;
    let root = match subdir {
        None => s.tree,
        Some(dir) => subtree(store, s.tree, dir)?.ok_or_else(|| {
            ReconcileError::Invalid(format!(
                "snapshot {} has no directory {dir:?}; refusing to reconcile an empty tree in its place",
                short(&snapshot)
            ))
        })?,
    };
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    flatten(store, &store.tree(&root)?, None, &mut entries, &mut skipped)?;
    Ok(DesiredTree {
        snapshot,
        // Built in one pass from the (nearly sorted) depth-first order.
        entries: entries.into_iter().collect(),
        skipped,
    })
}

/// The tree at directory `dir` of the tree `root` (`root` itself for an
/// empty `dir` or `/`), if there is a directory there.
pub fn subtree(store: &Store, root: TreeId, dir: &str) -> Result<Option<TreeId>, StoreError> {
    if dir.trim_matches('/').is_empty() {
        return Ok(Some(root));
    }
    Ok(match query::lookup(store, root, dir.as_bytes())? {
        Some(EntryValue::Tree(id)) => Some(id),
        _ => None,
    })
}

fn flatten(
    store: &Store,
    tree: &Tree,
    parent: Option<&TargetPath>,
    out: &mut Vec<(TargetPath, Desired)>,
    skipped: &mut Vec<String>,
) -> Result<(), ReconcileError> {
    for e in tree.entries() {
        let path = TargetPath::join(parent, &e.name);
        let want = match &e.value {
            EntryValue::File(blob) => Desired::File {
                blob: *blob,
                executable: false,
            },
            EntryValue::Executable(blob) => Desired::File {
                blob: *blob,
                executable: true,
            },
            EntryValue::Symlink(blob) => Desired::Symlink {
                target: store.blob(blob)?.into_data(),
            },
            EntryValue::Tree(id) => {
                out.push((path.clone(), Desired::Dir));
                flatten(store, &store.tree(id)?, Some(&path), out, skipped)?;
                continue;
            }
            EntryValue::Submodule(rev) => {
                skipped.push(format!(
                    "{path}: a submodule pinned at {rev}; submodules are not reconciled"
                ));
                continue;
            }
        };
        out.push((path, want));
    }
    Ok(())
}

/// The first 12 hex digits of a snapshot id, as listings show it.
pub fn short(id: &SnapshotId) -> String {
    id.to_hex()[..12].to_string()
}
