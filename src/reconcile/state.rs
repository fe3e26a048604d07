//! What the reconciler knows of its targets: each one's definition and
//! its inventory, what plumb last applied there. How they are kept in the
//! store is [`records`](super::records).

use std::collections::BTreeMap;

use plumb_core::{ObjectId, ResolvedAttrs, SnapshotId};

use super::hooks::Hooks;
use super::targets::Location;
use serde::{Deserialize, Serialize};

/// A named target, as `plumb target add` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDef {
    /// Its name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Where: `dir:PATH` (absolute) or `exec:PROGRAM [ARGS…]`.
    pub location: Location,
    /// The source whose snapshots it follows.
    pub source: String,
    /// The subdirectory of each snapshot to reconcile, if not the whole tree.
    pub path: Option<String>,
    /// What to follow instead of the source's latest snapshot: a selector
    /// (`main`, `refs/tags/v1.2`, a native revision…), as after `NAME@`.
    pub sel: Option<String>,
    /// Whether apply deletes what plumb created and the snapshot dropped.
    pub prune: bool,
    /// The snapshot a rollback pinned the target to, until `unpin`.
    pub pin: Option<[u8; 32]>,
    /// The largest share (percent) of the paths plumb owns that one apply
    /// may delete without `--allow-mass-delete`; `None` for the default
    /// ([`guard::DEFAULT_MAX_DELETE`](super::guard::DEFAULT_MAX_DELETE)).
    pub max_delete: Option<u8>,
    /// The directory a plugin target's program runs in: the current
    /// directory at `target add`. `None` for a directory target (and a
    /// plugin target recorded before plumb kept it: the caller's).
    pub workdir: Option<String>,
    /// Commands run around an apply ([`hooks`](super::hooks)).
    pub hooks: Hooks,
}

/// A target definition as version 2 of its record held it, before hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDefV2 {
    /// See [`TargetDef::name`].
    pub name: String,
    /// See [`TargetDef::location`].
    pub location: Location,
    /// See [`TargetDef::source`].
    pub source: String,
    /// See [`TargetDef::path`].
    pub path: Option<String>,
    /// See [`TargetDef::sel`].
    pub sel: Option<String>,
    /// See [`TargetDef::prune`].
    pub prune: bool,
    /// See [`TargetDef::pin`].
    pub pin: Option<[u8; 32]>,
    /// See [`TargetDef::max_delete`].
    pub max_delete: Option<u8>,
    /// See [`TargetDef::workdir`].
    pub workdir: Option<String>,
}

impl From<TargetDefV2> for TargetDef {
    fn from(v2: TargetDefV2) -> TargetDef {
        let TargetDefV2 {
            name,
            location,
            source,
            path,
            sel,
            prune,
            pin,
            max_delete,
            workdir,
        } = v2;
        TargetDef {
            name,
            location,
            source,
            path,
            sel,
            prune,
            pin,
            max_delete,
            workdir,
            hooks: Hooks::default(),
        }
    }
}

/// A target definition as version 1 of its record held it, before the
/// delete guard and the plugin's working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDefV1 {
    /// See [`TargetDef::name`].
    pub name: String,
    /// See [`TargetDef::location`].
    pub location: Location,
    /// See [`TargetDef::source`].
    pub source: String,
    /// See [`TargetDef::path`].
    pub path: Option<String>,
    /// See [`TargetDef::sel`].
    pub sel: Option<String>,
    /// See [`TargetDef::prune`].
    pub prune: bool,
    /// See [`TargetDef::pin`].
    pub pin: Option<[u8; 32]>,
}

impl From<TargetDefV1> for TargetDef {
    fn from(v1: TargetDefV1) -> TargetDef {
        let TargetDefV1 {
            name,
            location,
            source,
            path,
            sel,
            prune,
            pin,
        } = v1;
        TargetDefV2 {
            name,
            location,
            source,
            path,
            sel,
            prune,
            pin,
            max_delete: None,
            workdir: None,
        }
        .into()
    }
}

impl TargetDef {
    /// The share of owned paths one apply may delete, in percent.
    pub fn max_delete(&self) -> u8 {
        self.max_delete.unwrap_or(super::guard::DEFAULT_MAX_DELETE)
    }

    /// The pinned snapshot, if any.
    pub fn pinned(&self) -> Option<SnapshotId> {
        self.pin
            .map(|bytes| SnapshotId::new(ObjectId::from_bytes(bytes)))
    }
}

/// What plumb applied at one path of a target, as it last confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// A regular file.
    File {
        /// Its content, a blob in the store.
        blob: [u8; 32],
        /// Its size.
        size: u64,
        /// Whether it is executable.
        executable: bool,
        /// The target's digest of the content, when the target's digest
        /// kind is not the blob id (SHA-256 for plugins).
        sha256: Option<[u8; 32]>,
        /// The target's change token seen right after it was written.
        token: Option<Vec<u8>>,
    },
    /// A symbolic link.
    Symlink {
        /// Its target.
        target: Vec<u8>,
    },
    /// A directory.
    Dir,
}

/// One path of an inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// What is there, as plumb last applied or confirmed it.
    pub state: Applied,
    /// Whether plumb created (or adopted) it, so may delete it. Paths that
    /// already held the desired content before plumb came are recorded
    /// but not owned.
    pub owned: bool,
    /// Whether a change to it was started and not confirmed (a kill or an
    /// error in the middle of an apply): its real state is unknown until
    /// observed again. Pending paths are owned.
    pub pending: bool,
    /// The permission bits, owner and group plumb applied (those the
    /// snapshot recorded or declared, resolved by the target); drift
    /// checks these. Empty when none were.
    pub attrs: ResolvedAttrs,
}

/// Changes to an inventory, recorded as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryDelta {
    /// The new last-applied snapshot, when it changes.
    pub snapshot: Option<Option<[u8; 32]>>,
    /// Paths and their new records (`None`: dropped).
    pub paths: BTreeMap<Vec<u8>, Option<Held>>,
}

impl InventoryDelta {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.paths.is_empty()
    }

    /// The delta that records `inv`'s current value at each of `keys`.
    pub fn of_keys<'k>(inv: &Inventory, keys: impl IntoIterator<Item = &'k Vec<u8>>) -> Self {
        Self {
            snapshot: None,
            paths: keys
                .into_iter()
                .map(|k| (k.clone(), inv.entries.get(k).cloned()))
                .collect(),
        }
    }
}

/// Everything plumb last applied to a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The snapshot last applied completely, if any.
    pub snapshot: Option<[u8; 32]>,
    /// Paths (raw, `/`-separated) and what plumb put there.
    pub entries: BTreeMap<Vec<u8>, Held>,
}

impl Inventory {
    /// Applies a delta.
    pub fn apply(&mut self, delta: &InventoryDelta) {
        if let Some(s) = delta.snapshot {
            self.snapshot = s;
        }
        for (path, held) in &delta.paths {
            match held {
                Some(h) => {
                    self.entries.insert(path.clone(), h.clone());
                }
                None => {
                    self.entries.remove(path);
                }
            }
        }
    }

    /// The snapshot last applied completely.
    pub fn applied(&self) -> Option<SnapshotId> {
        self.snapshot
            .map(|bytes| SnapshotId::new(ObjectId::from_bytes(bytes)))
    }
}
