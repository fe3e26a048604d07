//! The desired state: a snapshot's tree (or one directory of it) flattened
//! into the paths a target should hold, with the attributes each should
//! have: those the snapshot records, overridden by those its attributes
//! files (`.plumbattributes`) declare.
//!
//! Attributes files are read here, at plan time, from the snapshot's tree,
//! rather than when a source is ingested: the snapshot then keeps exactly
//! what the repository holds (a Git or Mercurial tree converts one to one,
//! and its conversion is remembered and shared), every source kind is
//! served by one code path, and a change to the file is a change to the
//! snapshot like any other. Neither attributes files nor `.plumbignore`
//! files are applied to targets.

use std::collections::{BTreeMap, HashMap};

use plumb_core::attributes::{self, AttributesFile};
use plumb_core::target::{Target, TargetPath};
use plumb_core::{Attrs, BlobId, EntryValue, ResolvedAttrs, SnapshotId, Tree, TreeId};

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
    /// The attributes of the paths that have any, recorded or declared.
    pub attrs: BTreeMap<TargetPath, Attrs>,
    /// [`attrs`](Self::attrs) as the target resolved them for applying
    /// (empty until [`resolve_attrs`](Self::resolve_attrs), and for a
    /// target that does not support attributes).
    pub resolved: HashMap<TargetPath, ResolvedAttrs>,
}

/// Files of a snapshot that configure plumb and are not applied.
const NOT_APPLIED: [&[u8]; 2] = [
    attributes::FILE_NAME,
    plumb_source_dir::IGNORE_FILENAME.as_bytes(),
];

impl DesiredTree {
    /// The resolved attributes of `path` (empty when it has none).
    pub fn attrs_of(&self, path: &TargetPath) -> ResolvedAttrs {
        self.resolved.get(path).copied().unwrap_or_default()
    }

    /// Has `target` resolve every path's attributes, each distinct set
    /// once. An attribute the target cannot apply (an unknown user, an
    /// owner the running user may not give) is an error naming the first
    /// path that has it: nothing is changed. A target without attribute
    /// support gets none, with a warning.
    pub fn resolve_attrs(&mut self, target: &mut dyn Target) -> Result<(), ReconcileError> {
        if self.attrs.is_empty() {
            return Ok(());
        }
        if !target.supports_attrs() {
            self.skipped.push(format!(
                "{} paths have attributes (mode, owner, group); {} does not apply them",
                self.attrs.len(),
                target.describe()
            ));
            return Ok(());
        }
        let mut seen: HashMap<&Attrs, ResolvedAttrs> = HashMap::new();
        for (path, attrs) in &self.attrs {
            let r = match seen.get(attrs) {
                Some(r) => *r,
                None => {
                    let r = target
                        .resolve_attrs(attrs)
                        .map_err(|e| ReconcileError::Invalid(format!("{path}: {attrs}: {e}")))?;
                    seen.insert(attrs, r);
                    r
                }
            };
            self.resolved.insert(path.clone(), r);
        }
        Ok(())
    }
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
    let mut walk = Flatten {
        store,
        out: Vec::new(),
        skipped: Vec::new(),
        attrs: Vec::new(),
        rules: Vec::new(),
    };
    walk.tree(&store.tree(&root)?, None)?;
    Ok(DesiredTree {
        snapshot,
        // Built in one pass from the (nearly sorted) depth-first order.
        entries: walk.out.into_iter().collect(),
        skipped: walk.skipped,
        attrs: walk.attrs.into_iter().collect(),
        resolved: HashMap::new(),
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

/// The depth-first walk of a tree into paths.
struct Flatten<'s> {
    store: &'s Store,
    out: Vec<(TargetPath, Desired)>,
    skipped: Vec<String>,
    attrs: Vec<(TargetPath, Attrs)>,
    /// The attributes files of the directories being walked, outermost
    /// first: the directory each is in (`None`: the root) and its rules.
    rules: Vec<(Option<TargetPath>, AttributesFile)>,
}

impl Flatten<'_> {
    /// The attributes of `path`: those recorded, overlaid by every
    /// attributes file above it, the deepest last.
    fn attrs_of(&self, path: &TargetPath, recorded: &Attrs, is_dir: bool) -> Attrs {
        let mut attrs = recorded.clone();
        for (dir, file) in &self.rules {
            let rel = match dir {
                None => path.as_bytes(),
                Some(d) => &path.as_bytes()[d.as_bytes().len() + 1..],
            };
            attrs = attrs.overlay(&file.attrs_for(rel, is_dir));
        }
        attrs
    }

    /// Reads the attributes file of `tree`, if it has one.
    fn rules_of(
        &self,
        tree: &Tree,
        parent: Option<&TargetPath>,
    ) -> Result<Option<AttributesFile>, ReconcileError> {
        let Some(e) = tree.get(attributes::FILE_NAME) else {
            return Ok(None);
        };
        let (EntryValue::File(blob) | EntryValue::Executable(blob)) = &e.value else {
            return Ok(None);
        };
        let bytes = self.store.blob(blob)?.into_data();
        AttributesFile::parse(&bytes).map(Some).map_err(|err| {
            ReconcileError::Invalid(format!("{}: {err}", TargetPath::join(parent, &e.name)))
        })
    }

    fn tree(&mut self, tree: &Tree, parent: Option<&TargetPath>) -> Result<(), ReconcileError> {
        let file = self.rules_of(tree, parent)?;
        let pushed = file.is_some();
        if let Some(file) = file {
            self.rules.push((parent.cloned(), file));
        }
        self.entries(tree, parent)?;
        if pushed {
            self.rules.pop();
        }
        Ok(())
    }

    fn entries(&mut self, tree: &Tree, parent: Option<&TargetPath>) -> Result<(), ReconcileError> {
        for e in tree.entries() {
            if NOT_APPLIED.contains(&e.name.as_bytes()) {
                continue;
            }
            let path = TargetPath::join(parent, &e.name);
            let is_dir = matches!(e.value, EntryValue::Tree(_));
            let attrs = match &e.value {
                EntryValue::File(_) | EntryValue::Executable(_) | EntryValue::Tree(_) => {
                    self.attrs_of(&path, &e.attrs, is_dir)
                }
                EntryValue::Symlink(_) | EntryValue::Submodule(_) => Attrs::default(),
            };
            // A mode says whether a file is executable.
            let executable = |default: bool| attrs.mode.map_or(default, |m| m & 0o111 != 0);
            let want = match &e.value {
                EntryValue::File(blob) => Desired::File {
                    blob: *blob,
                    executable: executable(false),
                },
                EntryValue::Executable(blob) => Desired::File {
                    blob: *blob,
                    executable: executable(true),
                },
                EntryValue::Symlink(blob) => Desired::Symlink {
                    target: self.store.blob(blob)?.into_data(),
                },
                EntryValue::Tree(id) => {
                    self.out.push((path.clone(), Desired::Dir));
                    if !attrs.is_empty() {
                        self.attrs.push((path.clone(), attrs));
                    }
                    let sub = self.store.tree(id)?;
                    self.tree(&sub, Some(&path))?;
                    continue;
                }
                EntryValue::Submodule(rev) => {
                    self.skipped.push(format!(
                        "{path}: a submodule pinned at {rev}; submodules are not reconciled"
                    ));
                    continue;
                }
            };
            if !attrs.is_empty() {
                self.attrs.push((path.clone(), attrs));
            }
            self.out.push((path, want));
        }
        Ok(())
    }
}

/// The first 12 hex digits of a snapshot id, as listings show it.
pub fn short(id: &SnapshotId) -> String {
    id.to_hex()[..12].to_string()
}
