//! Drift: what the target holds now against what plumb last applied.

use plumb_core::target::{Digest, DigestKind, Leftover, Observed, TargetPath};
use plumb_core::{BlobId, ObjectId};

use plumb_core::attrs::AttrChange;

use super::observe::{Observations, content_digest, kind_name};
use super::plan::attr_changes;
use super::state::{Applied, Held, Inventory, InventoryDelta};

/// How one path drifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftKind {
    /// Its content changed.
    Modified,
    /// It is gone.
    Deleted,
    /// Something new appeared inside a directory plumb manages.
    Added,
    /// Its executable bit changed (where no mode was recorded or
    /// declared; otherwise that is an [`Attribute`](Self::Attribute)).
    Mode,
    /// A permission bit, its owner or its group changed (of those plumb
    /// applied from the snapshot's attributes).
    Attribute,
    /// A symlink points elsewhere.
    LinkTarget,
    /// Something of another kind replaced it.
    Kind,
    /// A component above it became a symlink or a file.
    Blocked,
    /// An earlier apply did not confirm its change here.
    Unconfirmed,
    /// It could not be looked at.
    Unreadable,
    /// A temporary file an interrupted apply left (the next apply removes
    /// it).
    Temporary,
}

impl DriftKind {
    /// A word for listings and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            DriftKind::Modified => "modified",
            DriftKind::Deleted => "deleted",
            DriftKind::Added => "added",
            DriftKind::Mode => "mode",
            DriftKind::Attribute => "attribute",
            DriftKind::LinkTarget => "link",
            DriftKind::Kind => "kind",
            DriftKind::Blocked => "blocked",
            DriftKind::Unconfirmed => "unconfirmed",
            DriftKind::Unreadable => "unreadable",
            DriftKind::Temporary => "temporary",
        }
    }
}

/// One drifted path.
#[derive(Debug, Clone)]
pub struct Drifted {
    /// The path.
    pub path: TargetPath,
    /// How.
    pub kind: DriftKind,
    /// Details, in a few words.
    pub detail: String,
    /// The blob plumb applied there, for a content diff.
    pub applied_blob: Option<BlobId>,
    /// For [`DriftKind::Attribute`]: which attribute, applied and found.
    pub attr: Option<AttrChange>,
}

/// Compares every inventory path's observation with the inventory.
pub fn drift(inventory: &Inventory, observed: &Observations, kind: DigestKind) -> Vec<Drifted> {
    let mut out = Vec::new();
    for (raw, held) in &inventory.entries {
        let Ok(path) = TargetPath::new(raw.clone()) else {
            continue;
        };
        let Some(seen) = observed.get(&path) else {
            continue;
        };
        if let Ok(o) = seen
            && !held.pending
        {
            for change in attr_changes(&held.attrs, o) {
                out.push(Drifted {
                    path: path.clone(),
                    kind: DriftKind::Attribute,
                    detail: change.to_string(),
                    applied_blob: None,
                    attr: Some(change),
                });
            }
        }
        let mut push = |kind: DriftKind, detail: String, blob: Option<BlobId>| {
            out.push(Drifted {
                path: path.clone(),
                kind,
                detail,
                applied_blob: blob,
                attr: None,
            });
        };
        let seen = match seen {
            Err(reason) => {
                push(DriftKind::Unreadable, reason.clone(), None);
                continue;
            }
            Ok(o) => o,
        };
        if held.pending {
            push(
                DriftKind::Unconfirmed,
                "an earlier apply did not finish here; apply again".into(),
                None,
            );
            continue;
        }
        match (&held.state, seen) {
            (_, Observed::Missing) => push(DriftKind::Deleted, "gone".into(), None),
            (_, Observed::Blocked { at, what }) => push(
                DriftKind::Blocked,
                format!("a {what} at {at} is in the way"),
                None,
            ),
            (Applied::Dir, Observed::Dir { children, .. }) => {
                for name in children.iter().flatten() {
                    let child = TargetPath::join(Some(&path), name);
                    if !inventory.entries.contains_key(child.as_bytes()) {
                        out.push(Drifted {
                            path: child,
                            kind: DriftKind::Added,
                            detail: "not in the applied snapshot".into(),
                            applied_blob: None,
                            attr: None,
                        });
                    }
                }
            }
            (Applied::Symlink { target }, Observed::Symlink { target: t }) => {
                if target != t {
                    push(
                        DriftKind::LinkTarget,
                        format!(
                            "points to {} instead of {}",
                            String::from_utf8_lossy(t),
                            String::from_utf8_lossy(target)
                        ),
                        None,
                    );
                }
            }
            (
                Applied::File {
                    blob,
                    executable,
                    sha256,
                    size,
                    ..
                },
                o @ Observed::File {
                    executable: e,
                    size: s,
                    ..
                },
            ) => {
                let blob = BlobId::new(ObjectId::from_bytes(*blob));
                let want = match kind {
                    DigestKind::Blob => Some(Digest::Blob(blob)),
                    DigestKind::Sha256 => sha256.map(Digest::Sha256),
                };
                let same =
                    size == s && want.is_some() && content_digest(Some(held), o, kind) == want;
                if !same {
                    let detail = if s == size {
                        "content changed".to_string()
                    } else {
                        format!("content changed ({s} bytes, was {size})")
                    };
                    push(DriftKind::Modified, detail, Some(blob));
                }
                // A recorded or declared mode reports the execute bits
                // too, as an attribute.
                if executable != e && held.attrs.mode.is_none() {
                    push(
                        DriftKind::Mode,
                        if *e {
                            "became executable".into()
                        } else {
                            "lost its executable bit".into()
                        },
                        None,
                    );
                }
            }
            (state, o) => push(
                DriftKind::Kind,
                format!(
                    "a {} where plumb applied a {}",
                    kind_name(o),
                    match state {
                        Applied::File { .. } => "file",
                        Applied::Symlink { .. } => "symlink",
                        Applied::Dir => "directory",
                    }
                ),
                None,
            ),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The target's leftover temporary files, as drift.
pub fn leftovers(found: Vec<Leftover>) -> Vec<Drifted> {
    found
        .into_iter()
        .map(|l| Drifted {
            detail: format!(
                "a temporary file for {} that an interrupted apply left; the next apply removes it",
                l.of
            ),
            path: l.path,
            kind: DriftKind::Temporary,
            applied_blob: None,
            attr: None,
        })
        .collect()
}

/// The paths to observe for a drift check, directories listed.
pub fn requests(inventory: &Inventory) -> Vec<(TargetPath, bool)> {
    inventory
        .entries
        .iter()
        .filter_map(|(raw, held)| {
            TargetPath::new(raw.clone())
                .ok()
                .map(|p| (p, held.state == Applied::Dir))
        })
        .collect()
}

/// Fresh tokens for files whose content was verified unchanged, so the
/// next check need not hash them.
pub fn refresh(
    inventory: &Inventory,
    observed: &Observations,
    drifted: &[Drifted],
) -> InventoryDelta {
    let mut delta = InventoryDelta::default();
    let drifted: std::collections::HashSet<&TargetPath> = drifted.iter().map(|d| &d.path).collect();
    for (path, seen) in observed {
        let Ok(Observed::File {
            token: Some(t),
            digest: Some(_),
            ..
        }) = seen
        else {
            continue;
        };
        let Some(
            held @ Held {
                state: Applied::File { token, .. },
                pending: false,
                ..
            },
        ) = inventory.entries.get(path.as_bytes())
        else {
            continue;
        };
        if token.as_ref() == Some(t) || drifted.contains(path) {
            continue;
        }
        let mut fresh = held.clone();
        if let Applied::File { token, .. } = &mut fresh.state {
            *token = Some(t.clone());
        }
        delta.paths.insert(path.as_bytes().to_vec(), Some(fresh));
    }
    delta
}
