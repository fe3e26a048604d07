//! The plan: from the desired tree, the inventory and what the target
//! holds, the action for every path.

use std::collections::{BTreeSet, HashSet};

use plumb_core::target::{Observed, TargetPath};

use super::ReconcileError;
use super::desired::{Desired, DesiredTree};
use super::observe::{Digests, Observations, content_digest, kind_name};
use super::state::{Applied, Held, Inventory};

/// What the reconciler will do at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing is there: make it.
    Create,
    /// Something else is there that plumb owns (or adopts): replace it.
    /// `remove_first` when what is there cannot simply be overwritten
    /// (a directory where a file goes, or the reverse).
    Update {
        /// Why it differs, in a few words.
        reason: String,
        /// Whether the old entry is removed before the new one is made.
        remove_first: bool,
    },
    /// Plumb made it, the snapshot dropped it, and pruning is on: remove it.
    Delete,
    /// It is already right.
    Keep,
    /// Plumb made it and the snapshot dropped it, but pruning is off (or a
    /// directory still holds what plumb does not own): left in place, and
    /// still owned, so a later prune removes it.
    Retain {
        /// Why it stays.
        reason: String,
    },
    /// No longer wanted and not plumb's (or already gone): forgotten.
    Forget,
    /// Plumb must not touch it; nothing is applied while one remains.
    Conflict {
        /// Why.
        reason: String,
    },
}

impl Action {
    /// A word for listings and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update { .. } => "update",
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Retain { .. } => "retain",
            Action::Forget => "forget",
            Action::Conflict { .. } => "conflict",
        }
    }

    /// Whether applying it changes the target.
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update { .. } | Action::Delete
        )
    }
}

/// One path of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// The path.
    pub path: TargetPath,
    /// What to do.
    pub action: Action,
    /// What the snapshot wants there (`None` for deletions).
    pub desired: Option<Desired>,
    /// What the target holds there now.
    pub observed: Observed,
}

/// Whether apply may take over paths plumb does not own, and delete what
/// it owns but the snapshot dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Delete owned paths the snapshot dropped.
    pub prune: bool,
    /// Take over unowned paths that are in the way, and delete owned ones
    /// changed by hand.
    pub adopt: bool,
}

/// A plan: every path's step, in path order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The steps, parents before children.
    pub steps: Vec<Step>,
}

impl Plan {
    /// How many steps take each action.
    pub fn count(&self, name: &str) -> u64 {
        self.steps
            .iter()
            .filter(|s| s.action.name() == name)
            .count() as u64
    }

    /// Whether applying changes anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action.changes())
    }

    /// The conflicts.
    pub fn conflicts(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Conflict { .. }))
    }
}

/// Whether plumb may overwrite what is at a path: it made it, or a change
/// it began there is unconfirmed.
fn owns(held: Option<&Held>) -> bool {
    held.is_some_and(|h| h.owned || h.pending)
}

/// Whether what is observed is exactly `want`.
fn matches(
    want: &Desired,
    observed: &Observed,
    held: Option<&Held>,
    digests: &mut Digests<'_>,
) -> Result<bool, ReconcileError> {
    Ok(match (want, observed) {
        (Desired::Dir, Observed::Dir { .. }) => true,
        (Desired::Symlink { target }, Observed::Symlink { target: t }) => target == t,
        (
            Desired::File { blob, executable },
            Observed::File {
                executable: e,
                size,
                ..
            },
        ) => {
            if executable != e {
                return Ok(false);
            }
            if let Some(Held {
                state: Applied::File { size: s, .. },
                pending: false,
                ..
            }) = held
                && held.is_some_and(|h| want.is(&h.state))
                && s != size
            {
                return Ok(false);
            }
            match content_digest(held, observed, digests.kind()) {
                Some(d) => d == digests.of(blob)?,
                None => false,
            }
        }
        _ => false,
    })
}

/// Why what is there differs from what should be, in a few words.
fn difference(want: &Desired, observed: &Observed) -> String {
    match (want, observed) {
        (Desired::File { executable, .. }, Observed::File { executable: e, .. })
            if executable != e =>
        {
            "mode".into()
        }
        (Desired::File { .. }, Observed::File { .. }) => "content".into(),
        (Desired::Symlink { .. }, Observed::Symlink { .. }) => "link target".into(),
        (want, seen) => format!("{} → {}", kind_name(seen), want.kind_name()),
    }
}

/// Computes the plan. `observed` must hold every path of `desired` and of
/// `inventory`. All three are walked together in path order.
pub fn plan(
    desired: &DesiredTree,
    inventory: &Inventory,
    observed: Observations,
    options: Options,
    digests: &mut Digests<'_>,
    reserved: &dyn Fn(&[u8]) -> bool,
) -> Result<Plan, ReconcileError> {
    let mut steps: Vec<Step> = Vec::with_capacity(observed.len());
    // Paths that become directories in this plan, replacing a file or
    // symlink: whatever is observed below them is moot.
    let mut becoming_dirs: BTreeSet<TargetPath> = BTreeSet::new();
    // Owned directories that become files: their owned contents go too.
    let mut dirs_replaced: Vec<TargetPath> = Vec::new();
    // Paths plumb recorded that the snapshot no longer has.
    let mut dropped: Vec<(TargetPath, &Held, Result<Observed, String>)> = Vec::new();

    let mut wanted = desired.entries.iter().peekable();
    let mut recorded = inventory.entries.iter().peekable();
    for (path, seen) in observed {
        let want = wanted.next_if(|(p, _)| **p == path).map(|(_, w)| w);
        // Inventory paths sort like target paths; skip any the walk passed.
        while recorded
            .next_if(|(k, _)| k.as_slice() < path.as_bytes())
            .is_some()
        {}
        let held = recorded
            .next_if(|(k, _)| k.as_slice() == path.as_bytes())
            .map(|(_, h)| h);
        let Some(want) = want else {
            if let Some(held) = held {
                dropped.push((path, held, seen));
            }
            continue;
        };
        let seen = match &seen {
            Ok(Observed::Blocked { at, .. }) if becoming_dirs.contains(at) => Ok(Observed::Missing),
            _ => seen,
        };
        let action = match &seen {
            _ if reserved(path.file_name()) => Action::Conflict {
                reason: "the target reserves this name for its temporary files".into(),
            },
            Err(reason) => Action::Conflict {
                reason: reason.clone(),
            },
            Ok(Observed::Blocked { at, what }) => Action::Conflict {
                reason: format!(
                    "a {what} at {at} is in the way; plumb never follows or replaces it"
                ),
            },
            Ok(Observed::Other { what }) => Action::Conflict {
                reason: format!("a {what} is there"),
            },
            Ok(Observed::Missing) => Action::Create,
            Ok(o) if matches(want, o, held, digests)? => Action::Keep,
            Ok(o @ Observed::Dir { children }) => {
                // A pending entry may be a directory half turned into
                // something else by an interrupted apply: still plumb's.
                let owned_dir =
                    held.is_some_and(|h| h.state == Applied::Dir || h.pending) && owns(held);
                let strangers: Vec<String> = children
                    .iter()
                    .flatten()
                    .map(|n| TargetPath::join(Some(&path), n))
                    .filter(|c| !owns(inventory.entries.get(c.as_bytes())))
                    .map(|c| c.to_string())
                    .collect();
                if owned_dir && !strangers.is_empty() {
                    Action::Conflict {
                        reason: format!(
                            "must become a {}, but holds what plumb does not own: {}",
                            want.kind_name(),
                            strangers.join(", ")
                        ),
                    }
                } else if owned_dir {
                    dirs_replaced.push(path.clone());
                    Action::Update {
                        reason: difference(want, o),
                        remove_first: true,
                    }
                } else {
                    Action::Conflict {
                        reason: format!(
                            "a directory plumb does not own is where a {} must go",
                            want.kind_name()
                        ),
                    }
                }
            }
            Ok(o) => {
                if owns(held) || options.adopt {
                    if *want == Desired::Dir {
                        becoming_dirs.insert(path.clone());
                    }
                    Action::Update {
                        reason: difference(want, o),
                        remove_first: *want == Desired::Dir,
                    }
                } else {
                    Action::Conflict {
                        reason: format!(
                            "a {} plumb does not own is there (--adopt takes it over)",
                            kind_name(o)
                        ),
                    }
                }
            }
        };
        steps.push(Step {
            path,
            action,
            desired: Some(want.clone()),
            observed: seen.unwrap_or(Observed::Missing),
        });
    }
    if wanted.peek().is_some() {
        return Err(ReconcileError::Invalid(
            "a desired path was not observed".into(),
        ));
    }

    // Dropped paths deepest first, so a directory's fate is decided after
    // its contents'.
    dropped.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.depth()));
    let mut gone: HashSet<TargetPath> = HashSet::new();
    for (path, held, seen) in dropped {
        let forced = dirs_replaced.iter().any(|d| path.starts_with(d));
        let action = if !owns(Some(held)) {
            Action::Forget
        } else if !(options.prune || forced) {
            Action::Retain {
                reason: "no longer in the snapshot; --prune deletes it".into(),
            }
        } else {
            match &seen {
                Err(reason) => Action::Conflict {
                    reason: reason.clone(),
                },
                Ok(Observed::Missing) => Action::Forget,
                Ok(Observed::Blocked { .. }) => Action::Forget,
                Ok(Observed::Dir { children }) if held.state == Applied::Dir => {
                    let others: Vec<String> = children
                        .iter()
                        .flatten()
                        .map(|n| TargetPath::join(Some(&path), n))
                        .filter(|c| !gone.contains(c))
                        .map(|c| c.to_string())
                        .collect();
                    if others.is_empty() {
                        Action::Delete
                    } else if forced {
                        Action::Conflict {
                            reason: format!(
                                "must become a file, but holds what plumb does not own: {}",
                                others.join(", ")
                            ),
                        }
                    } else {
                        Action::Retain {
                            reason: format!("still holds {}", others.join(", ")),
                        }
                    }
                }
                Ok(o) => {
                    let unchanged = match (&held.state, o) {
                        (Applied::Symlink { target }, Observed::Symlink { target: t }) => {
                            target == t
                        }
                        (
                            Applied::File {
                                blob, executable, ..
                            },
                            Observed::File { .. },
                        ) => {
                            let want = Desired::File {
                                blob: plumb_core::BlobId::new(plumb_core::ObjectId::from_bytes(
                                    *blob,
                                )),
                                executable: *executable,
                            };
                            held.pending || matches(&want, o, Some(held), digests)?
                        }
                        _ => false,
                    };
                    if unchanged || options.adopt {
                        Action::Delete
                    } else {
                        Action::Conflict {
                            reason: format!(
                                "a {} changed since plumb applied it; not deleted (--adopt deletes it anyway)",
                                kind_name(o)
                            ),
                        }
                    }
                }
            }
        };
        if matches!(action, Action::Delete | Action::Forget) {
            gone.insert(path.clone());
        }
        steps.push(Step {
            path,
            action,
            desired: None,
            observed: seen.unwrap_or(Observed::Missing),
        });
    }
    steps.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Plan { steps })
}
