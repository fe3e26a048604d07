//! The plan: from the desired tree, the inventory and what the target
//! holds, the action for every path.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use plumb_core::ResolvedAttrs;
use plumb_core::attrs::AttrChange;
use plumb_core::is_reserved_name;
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
        reason: ConflictReason,
    },
}

/// The kind of an [`Action`], without its details: what plans are counted
/// by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// [`Action::Create`].
    Create,
    /// [`Action::Update`].
    Update,
    /// [`Action::Delete`].
    Delete,
    /// [`Action::Keep`].
    Keep,
    /// [`Action::Retain`].
    Retain,
    /// [`Action::Forget`].
    Forget,
    /// [`Action::Conflict`].
    Conflict,
}

impl ActionKind {
    /// A word for listings and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Delete => "delete",
            ActionKind::Keep => "keep",
            ActionKind::Retain => "retain",
            ActionKind::Forget => "forget",
            ActionKind::Conflict => "conflict",
        }
    }
}

/// Why plumb must not touch a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// The target keeps names like it for its temporary files.
    Reserved,
    /// A component of the path is repository metadata or a plumb store
    /// (`.git`, `.hg`, `.plumb`, see [`plumb_core::is_reserved_name`]),
    /// which plumb never writes: a store made by an older plumb may hold
    /// such a tree.
    Metadata {
        /// The component, lossily as text.
        name: String,
    },
    /// The target could not look at the path; its error, as text.
    Unobservable {
        /// The target's error.
        error: String,
    },
    /// A symlink or non-directory above the path is in the way.
    Blocked {
        /// The component in the way.
        at: TargetPath,
        /// What it is.
        what: String,
    },
    /// Something plumb does not manage (a socket, a device) is there.
    Special {
        /// What it is.
        what: String,
    },
    /// An owned directory must become something else, and holds what
    /// plumb does not own.
    HoldsUnowned {
        /// What it must become.
        becomes: &'static str,
        /// The paths inside it plumb does not own.
        strangers: Vec<String>,
    },
    /// A directory plumb does not own is where something else must go.
    UnownedDir {
        /// What must go there.
        wanted: &'static str,
    },
    /// Something plumb does not own is there (`--adopt` takes it over).
    Unowned {
        /// What it is.
        what: String,
    },
    /// What plumb applied and the snapshot dropped was changed since, so
    /// it is not deleted (`--adopt` deletes it anyway).
    ChangedByHand {
        /// What it is.
        what: String,
    },
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::Reserved => {
                f.write_str("the target reserves this name for its temporary files")
            }
            ConflictReason::Metadata { name } => write!(
                f,
                "{name} is repository metadata or a plumb store; plumb never writes there"
            ),
            ConflictReason::Unobservable { error } => f.write_str(error),
            ConflictReason::Blocked { at, what } => write!(
                f,
                "a {what} at {at} is in the way; plumb never follows or replaces it"
            ),
            ConflictReason::Special { what } => write!(f, "a {what} is there"),
            ConflictReason::HoldsUnowned { becomes, strangers } => write!(
                f,
                "must become a {becomes}, but holds what plumb does not own: {}",
                strangers.join(", ")
            ),
            ConflictReason::UnownedDir { wanted } => write!(
                f,
                "a directory plumb does not own is where a {wanted} must go"
            ),
            ConflictReason::Unowned { what } => write!(
                f,
                "a {what} plumb does not own is there (--adopt takes it over)"
            ),
            ConflictReason::ChangedByHand { what } => write!(
                f,
                "a {what} changed since plumb applied it; not deleted (--adopt deletes it anyway)"
            ),
        }
    }
}

/// A path plumb must not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The path.
    pub path: TargetPath,
    /// Why.
    pub reason: ConflictReason,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl Action {
    /// Its kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Create => ActionKind::Create,
            Action::Update { .. } => ActionKind::Update,
            Action::Delete => ActionKind::Delete,
            Action::Keep => ActionKind::Keep,
            Action::Retain { .. } => ActionKind::Retain,
            Action::Forget => ActionKind::Forget,
            Action::Conflict { .. } => ActionKind::Conflict,
        }
    }

    /// A word for listings and JSON: its kind's name.
    pub fn name(&self) -> &'static str {
        self.kind().name()
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
    /// The attributes to give it (resolved; empty for none).
    pub attrs: ResolvedAttrs,
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
    /// Apply even what the delete guard refuses ([`guard`](super::guard)).
    pub allow_mass_delete: bool,
}

/// How many steps of a plan take each kind of action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Paths to create.
    pub create: u64,
    /// Paths to update.
    pub update: u64,
    /// Paths to delete.
    pub delete: u64,
    /// Paths already right.
    pub keep: u64,
    /// Paths dropped by the snapshot but left in place.
    pub retain: u64,
    /// Paths forgotten.
    pub forget: u64,
    /// Conflicts.
    pub conflict: u64,
}

impl Tally {
    /// How many steps take actions of `kind`.
    pub fn get(&self, kind: ActionKind) -> u64 {
        match kind {
            ActionKind::Create => self.create,
            ActionKind::Update => self.update,
            ActionKind::Delete => self.delete,
            ActionKind::Keep => self.keep,
            ActionKind::Retain => self.retain,
            ActionKind::Forget => self.forget,
            ActionKind::Conflict => self.conflict,
        }
    }

    fn add(&mut self, kind: ActionKind) {
        let n = match kind {
            ActionKind::Create => &mut self.create,
            ActionKind::Update => &mut self.update,
            ActionKind::Delete => &mut self.delete,
            ActionKind::Keep => &mut self.keep,
            ActionKind::Retain => &mut self.retain,
            ActionKind::Forget => &mut self.forget,
            ActionKind::Conflict => &mut self.conflict,
        };
        *n += 1;
    }
}

/// A plan: every path's step, in path order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The steps, parents before children.
    pub steps: Vec<Step>,
}

impl Plan {
    /// How many steps take each kind of action.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for s in &self.steps {
            tally.add(s.action.kind());
        }
        tally
    }

    /// Whether applying changes anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action.changes())
    }

    /// The conflicts, in path order.
    pub fn conflicts(&self) -> impl Iterator<Item = Conflict> + '_ {
        self.steps.iter().filter_map(|s| match &s.action {
            Action::Conflict { reason } => Some(Conflict {
                path: s.path.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        })
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

/// The attributes `want` sets that what is observed does not have.
pub fn attr_changes(want: &ResolvedAttrs, observed: &Observed) -> Vec<AttrChange> {
    match observed {
        Observed::File { attrs, .. } | Observed::Dir { attrs, .. } => want.differences(attrs),
        _ => Vec::new(),
    }
}

/// What applying changes, found first: `mode 0644 -> 0600, owner 7 -> 0`.
fn describe_changes(changes: &[AttrChange]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {} -> {}", c.attribute, c.found, c.expected))
        .collect::<Vec<_>>()
        .join(", ")
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
        let attrs = desired.attrs_of(&path);
        let metadata = path.components().find(|c| is_reserved_name(c));
        let action = match &seen {
            _ if metadata.is_some() => Action::Conflict {
                reason: ConflictReason::Metadata {
                    name: String::from_utf8_lossy(metadata.unwrap_or_default()).into_owned(),
                },
            },
            _ if reserved(path.file_name()) => Action::Conflict {
                reason: ConflictReason::Reserved,
            },
            Err(error) => Action::Conflict {
                reason: ConflictReason::Unobservable {
                    error: error.clone(),
                },
            },
            Ok(Observed::Blocked { at, what }) => Action::Conflict {
                reason: ConflictReason::Blocked {
                    at: at.clone(),
                    what: what.clone(),
                },
            },
            Ok(Observed::Other { what }) => Action::Conflict {
                reason: ConflictReason::Special { what: what.clone() },
            },
            Ok(Observed::Missing) => Action::Create,
            Ok(o) if matches(want, o, held, digests)? => {
                let changed = attr_changes(&attrs, o);
                if changed.is_empty() {
                    Action::Keep
                } else if owns(held) || options.adopt {
                    Action::Update {
                        reason: describe_changes(&changed),
                        remove_first: false,
                    }
                } else {
                    Action::Conflict {
                        reason: ConflictReason::Unowned { what: kind_name(o) },
                    }
                }
            }
            Ok(o @ Observed::Dir { children, .. }) => {
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
                        reason: ConflictReason::HoldsUnowned {
                            becomes: want.kind_name(),
                            strangers,
                        },
                    }
                } else if owned_dir {
                    dirs_replaced.push(path.clone());
                    Action::Update {
                        reason: difference(want, o),
                        remove_first: true,
                    }
                } else {
                    Action::Conflict {
                        reason: ConflictReason::UnownedDir {
                            wanted: want.kind_name(),
                        },
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
                        reason: ConflictReason::Unowned { what: kind_name(o) },
                    }
                }
            }
        };
        steps.push(Step {
            path,
            action,
            desired: Some(want.clone()),
            observed: seen.unwrap_or(Observed::Missing),
            attrs,
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
                Err(error) => Action::Conflict {
                    reason: ConflictReason::Unobservable {
                        error: error.clone(),
                    },
                },
                Ok(Observed::Missing) => Action::Forget,
                Ok(Observed::Blocked { .. }) => Action::Forget,
                Ok(Observed::Dir { children, .. }) if held.state == Applied::Dir => {
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
                            reason: ConflictReason::HoldsUnowned {
                                becomes: "file",
                                strangers: others,
                            },
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
                            reason: ConflictReason::ChangedByHand { what: kind_name(o) },
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
            attrs: ResolvedAttrs::default(),
        });
    }
    steps.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Plan { steps })
}

#[cfg(test)]
mod tests {
    //! The plan as a table: a desired tree, an inventory and what the
    //! target holds, and the action planned for every path.

    use std::collections::BTreeMap;

    use plumb_core::target::{Digest, DigestKind};
    use plumb_core::{Blob, Name, ObjectId, SnapshotId};

    use super::*;
    use crate::store::Store;

    /// One row of the table.
    struct Case {
        name: &'static str,
        desired: Vec<(&'static str, Desired)>,
        inventory: Vec<(&'static str, Held)>,
        observed: Vec<(&'static str, Result<Observed, String>)>,
        options: Options,
        /// Every path's action, rendered by [`render`]: the rendering must
        /// start with this (a conflict's or retention's reason may go on).
        want: Vec<(&'static str, &'static str)>,
    }

    fn file(content: &str) -> Desired {
        Desired::File {
            blob: Blob::id_of(content.as_bytes()),
            executable: false,
        }
    }

    fn exec(content: &str) -> Desired {
        Desired::File {
            blob: Blob::id_of(content.as_bytes()),
            executable: true,
        }
    }

    fn link(target: &str) -> Desired {
        Desired::Symlink {
            target: target.as_bytes().to_vec(),
        }
    }

    /// A file as a directory target shows it when asked for its digest.
    fn seen_file(content: &str, executable: bool) -> Result<Observed, String> {
        Ok(Observed::File {
            size: content.len() as u64,
            executable,
            digest: Some(Digest::Blob(Blob::id_of(content.as_bytes()))),
            token: None,
            attrs: Default::default(),
        })
    }

    /// A file as a directory target shows it without its digest.
    fn seen_stat(content: &str, token: &str) -> Result<Observed, String> {
        Ok(Observed::File {
            size: content.len() as u64,
            executable: false,
            digest: None,
            token: Some(token.as_bytes().to_vec()),
            attrs: Default::default(),
        })
    }

    fn seen_link(target: &str) -> Result<Observed, String> {
        Ok(Observed::Symlink {
            target: target.as_bytes().to_vec(),
        })
    }

    fn seen_dir(children: &[&str]) -> Result<Observed, String> {
        Ok(Observed::Dir {
            children: Some(
                children
                    .iter()
                    .map(|c| Name::new(c.as_bytes().to_vec()).expect("a valid name"))
                    .collect(),
            ),
            attrs: Default::default(),
        })
    }

    fn blocked(at: &str, what: &str) -> Result<Observed, String> {
        Ok(Observed::Blocked {
            at: TargetPath::new(at.as_bytes().to_vec()).expect("a valid path"),
            what: what.into(),
        })
    }

    fn applied_file(content: &str, token: Option<&str>) -> Applied {
        Applied::File {
            blob: *Blob::id_of(content.as_bytes()).as_bytes(),
            size: content.len() as u64,
            executable: false,
            sha256: None,
            token: token.map(|t| t.as_bytes().to_vec()),
        }
    }

    fn applied_link(target: &str) -> Applied {
        Applied::Symlink {
            target: target.as_bytes().to_vec(),
        }
    }

    /// What plumb made (or adopted).
    fn owned(state: Applied) -> Held {
        Held {
            state,
            owned: true,
            pending: false,
            attrs: Default::default(),
        }
    }

    /// What was already right when plumb came.
    fn found(state: Applied) -> Held {
        Held {
            state,
            owned: false,
            pending: false,
            attrs: Default::default(),
        }
    }

    /// A change plumb began and never saw confirmed.
    fn pending(state: Applied) -> Held {
        Held {
            state,
            owned: true,
            pending: true,
            attrs: Default::default(),
        }
    }

    const DEFAULT: Options = Options {
        prune: false,
        adopt: false,
        allow_mass_delete: false,
    };
    const PRUNE: Options = Options {
        prune: true,
        adopt: false,
        allow_mass_delete: false,
    };
    const ADOPT: Options = Options {
        prune: false,
        adopt: true,
        allow_mass_delete: false,
    };
    const PRUNE_ADOPT: Options = Options {
        prune: true,
        adopt: true,
        allow_mass_delete: false,
    };

    /// An action as the table writes it.
    fn render(action: &Action) -> String {
        match action {
            Action::Update {
                reason,
                remove_first: true,
            } => format!("update, removing first: {reason}"),
            Action::Update { reason, .. } => format!("update: {reason}"),
            Action::Retain { reason } => format!("retain: {reason}"),
            Action::Conflict { reason } => format!("conflict: {reason}"),
            other => other.name().to_owned(),
        }
    }

    fn path(p: &str) -> TargetPath {
        TargetPath::new(p.as_bytes().to_vec()).expect("a valid path")
    }

    /// Plans a case against a directory target (digests are blob ids),
    /// whose reserved names are its temporary files'.
    fn plan_case(case: &Case) -> Result<Plan, ReconcileError> {
        plan_with_attrs(case, &[])
    }

    /// [`plan_case`] with resolved attributes wanted at some paths.
    fn plan_with_attrs(
        case: &Case,
        attrs: &[(&str, ResolvedAttrs)],
    ) -> Result<Plan, ReconcileError> {
        let desired = DesiredTree {
            snapshot: SnapshotId::new(ObjectId::from_bytes([7; 32])),
            entries: case
                .desired
                .iter()
                .map(|(p, d)| (path(p), d.clone()))
                .collect(),
            skipped: Vec::new(),
            attrs: Default::default(),
            resolved: attrs.iter().map(|(p, a)| (path(p), *a)).collect(),
        };
        let inventory = Inventory {
            snapshot: None,
            entries: case
                .inventory
                .iter()
                .map(|(p, h)| (p.as_bytes().to_vec(), h.clone()))
                .collect(),
        };
        let observed: Observations = case
            .observed
            .iter()
            .map(|(p, o)| (path(p), o.clone()))
            .collect();
        let store = Store::memory();
        let mut digests = Digests::new(DigestKind::Blob, &store, &inventory);
        let reserved = |name: &[u8]| name.ends_with(b".plumb-tmp");
        plan(
            &desired,
            &inventory,
            observed,
            case.options,
            &mut digests,
            &reserved,
        )
    }

    fn cases() -> Vec<Case> {
        vec![
            // Desired paths.
            Case {
                name: "nothing there: create",
                desired: vec![("a", file("x")), ("d", Desired::Dir), ("l", link("a"))],
                inventory: vec![],
                observed: vec![
                    ("a", Ok(Observed::Missing)),
                    ("d", Ok(Observed::Missing)),
                    ("l", Ok(Observed::Missing)),
                ],
                options: DEFAULT,
                want: vec![("a", "create"), ("d", "create"), ("l", "create")],
            },
            Case {
                name: "already right, owned or not: keep",
                desired: vec![
                    ("a", file("x")),
                    ("d", Desired::Dir),
                    ("e", exec("run")),
                    ("l", link("a")),
                ],
                inventory: vec![("a", found(applied_file("x", None)))],
                observed: vec![
                    ("a", seen_file("x", false)),
                    ("d", seen_dir(&["stranger"])),
                    ("e", seen_file("run", true)),
                    ("l", seen_link("a")),
                ],
                options: DEFAULT,
                want: vec![("a", "keep"), ("d", "keep"), ("e", "keep"), ("l", "keep")],
            },
            Case {
                name: "owned and different: update, saying how",
                desired: vec![("a", file("new")), ("e", exec("run")), ("l", link("b"))],
                inventory: vec![
                    ("a", owned(applied_file("old", None))),
                    ("e", owned(applied_file("run", None))),
                    ("l", owned(applied_link("a"))),
                ],
                observed: vec![
                    ("a", seen_file("old", false)),
                    ("e", seen_file("run", false)),
                    ("l", seen_link("a")),
                ],
                options: DEFAULT,
                want: vec![
                    ("a", "update: content"),
                    ("e", "update: mode"),
                    ("l", "update: link target"),
                ],
            },
            Case {
                name: "a file or symlink plumb does not own: conflict",
                desired: vec![("a", file("new")), ("l", link("b"))],
                inventory: vec![("a", found(applied_file("new", None)))],
                observed: vec![
                    ("a", seen_file("changed", false)),
                    ("l", seen_file("x", false)),
                ],
                options: DEFAULT,
                want: vec![
                    (
                        "a",
                        "conflict: a file plumb does not own is there (--adopt takes it over)",
                    ),
                    (
                        "l",
                        "conflict: a file plumb does not own is there (--adopt takes it over)",
                    ),
                ],
            },
            Case {
                name: "--adopt takes over what is in the way",
                desired: vec![("a", file("new")), ("l", link("b"))],
                inventory: vec![],
                observed: vec![("a", seen_file("old", false)), ("l", seen_file("x", false))],
                options: ADOPT,
                want: vec![("a", "update: content"), ("l", "update: file → symlink")],
            },
            Case {
                name: "a pending change counts as owned",
                desired: vec![("a", file("new"))],
                inventory: vec![("a", pending(applied_file("new", None)))],
                observed: vec![("a", seen_file("half", false))],
                options: DEFAULT,
                want: vec![("a", "update: content")],
            },
            Case {
                name: "a matching stat token spares the digest; another one does not",
                desired: vec![("a", file("x")), ("b", file("y"))],
                inventory: vec![
                    ("a", owned(applied_file("x", Some("t1")))),
                    ("b", owned(applied_file("y", Some("t2")))),
                ],
                observed: vec![("a", seen_stat("x", "t1")), ("b", seen_stat("y", "other"))],
                options: DEFAULT,
                want: vec![("a", "keep"), ("b", "update: content")],
            },
            Case {
                name: "a size other than recorded is a change, whatever the digest",
                desired: vec![("a", file("x"))],
                inventory: vec![(
                    "a",
                    owned(Applied::File {
                        blob: *Blob::id_of(b"x").as_bytes(),
                        size: 99,
                        executable: false,
                        sha256: None,
                        token: None,
                    }),
                )],
                observed: vec![("a", seen_file("x", false))],
                options: DEFAULT,
                want: vec![("a", "update: content")],
            },
            Case {
                name: "a file where a directory goes: removed first; below it is made",
                desired: vec![("d", Desired::Dir), ("d/f", file("x"))],
                inventory: vec![("d", owned(applied_file("old", None)))],
                observed: vec![
                    ("d", seen_file("old", false)),
                    ("d/f", blocked("d", "file")),
                ],
                options: DEFAULT,
                want: vec![
                    ("d", "update, removing first: file → directory"),
                    ("d/f", "create"),
                ],
            },
            Case {
                name: "an owned directory becomes a file: its owned contents go too",
                desired: vec![("d", file("x"))],
                inventory: vec![
                    ("d", owned(Applied::Dir)),
                    ("d/f", owned(applied_file("f", None))),
                ],
                observed: vec![("d", seen_dir(&["f"])), ("d/f", seen_file("f", false))],
                options: DEFAULT,
                want: vec![
                    ("d", "update, removing first: directory → file"),
                    ("d/f", "delete"),
                ],
            },
            Case {
                name: "an owned directory holding a stranger cannot become a file",
                desired: vec![("d", file("x"))],
                inventory: vec![("d", owned(Applied::Dir))],
                observed: vec![("d", seen_dir(&["stranger"]))],
                options: DEFAULT,
                want: vec![(
                    "d",
                    "conflict: must become a file, but holds what plumb does not own: d/stranger",
                )],
            },
            Case {
                name: "a directory plumb does not own where a file goes",
                desired: vec![("d", link("x"))],
                inventory: vec![],
                observed: vec![("d", seen_dir(&[]))],
                options: ADOPT,
                want: vec![(
                    "d",
                    "conflict: a directory plumb does not own is where a symlink must go",
                )],
            },
            Case {
                name: "blocked, special, unreadable or reserved: conflict",
                desired: vec![
                    (".a.plumb-tmp", file("x")),
                    ("d", Desired::Dir),
                    ("d/f", file("x")),
                    ("fifo", file("x")),
                    ("locked", file("x")),
                ],
                inventory: vec![],
                observed: vec![
                    (".a.plumb-tmp", Ok(Observed::Missing)),
                    ("d", seen_link("/etc")),
                    ("d/f", blocked("d", "symlink")),
                    (
                        "fifo",
                        Ok(Observed::Other {
                            what: "FIFO".into(),
                        }),
                    ),
                    ("locked", Err("permission denied".into())),
                ],
                options: ADOPT,
                want: vec![
                    (
                        ".a.plumb-tmp",
                        "conflict: the target reserves this name for its temporary files",
                    ),
                    ("d", "update, removing first: symlink → directory"),
                    ("d/f", "create"),
                    ("fifo", "conflict: a FIFO is there"),
                    ("locked", "conflict: permission denied"),
                ],
            },
            Case {
                name: "repository metadata or a store: conflict, even when owned",
                desired: vec![
                    (".git", Desired::Dir),
                    (".git/config", file("x")),
                    ("a", Desired::Dir),
                    ("a/.HG", Desired::Dir),
                    ("a/.HG/hgrc", file("x")),
                    (".plumb ", file("x")),
                    ("git", file("x")),
                ],
                inventory: vec![(".git/config", owned(applied_file("y", None)))],
                observed: vec![
                    (".git", Ok(Observed::Missing)),
                    (".git/config", Ok(Observed::Missing)),
                    ("a", Ok(Observed::Missing)),
                    ("a/.HG", Ok(Observed::Missing)),
                    ("a/.HG/hgrc", Ok(Observed::Missing)),
                    (".plumb ", Ok(Observed::Missing)),
                    ("git", Ok(Observed::Missing)),
                ],
                options: ADOPT,
                want: vec![
                    (
                        ".git",
                        "conflict: .git is repository metadata or a plumb store; plumb never writes there",
                    ),
                    (
                        ".git/config",
                        "conflict: .git is repository metadata or a plumb store; plumb never writes there",
                    ),
                    (
                        ".plumb ",
                        "conflict: .plumb  is repository metadata or a plumb store; plumb never writes there",
                    ),
                    ("a", "create"),
                    (
                        "a/.HG",
                        "conflict: .HG is repository metadata or a plumb store; plumb never writes there",
                    ),
                    (
                        "a/.HG/hgrc",
                        "conflict: .HG is repository metadata or a plumb store; plumb never writes there",
                    ),
                    ("git", "create"),
                ],
            },
            Case {
                name: "blocked by what plumb does not replace",
                desired: vec![("d", Desired::Dir), ("d/f", file("x"))],
                inventory: vec![],
                observed: vec![("d", seen_link("/etc")), ("d/f", blocked("d", "symlink"))],
                options: DEFAULT,
                want: vec![
                    (
                        "d",
                        "conflict: a symlink plumb does not own is there (--adopt takes it over)",
                    ),
                    (
                        "d/f",
                        "conflict: a symlink at d is in the way; plumb never follows or replaces it",
                    ),
                ],
            },
            // Dropped paths.
            Case {
                name: "dropped, prune off: owned ones retained, others forgotten",
                desired: vec![],
                inventory: vec![
                    ("a", owned(applied_file("x", None))),
                    ("b", found(applied_file("y", None))),
                ],
                observed: vec![("a", seen_file("x", false)), ("b", seen_file("y", false))],
                options: DEFAULT,
                want: vec![
                    ("a", "retain: no longer in the snapshot; --prune deletes it"),
                    ("b", "forget"),
                ],
            },
            Case {
                name: "dropped, prune on: unchanged or pending deleted, gone forgotten",
                desired: vec![],
                inventory: vec![
                    ("a", owned(applied_file("x", None))),
                    ("b", found(applied_file("y", None))),
                    ("gone", owned(applied_file("z", None))),
                    ("l", owned(applied_link("a"))),
                    ("p", pending(applied_file("new", None))),
                ],
                observed: vec![
                    ("a", seen_file("x", false)),
                    ("b", seen_file("y", false)),
                    ("gone", Ok(Observed::Missing)),
                    ("l", seen_link("a")),
                    ("p", seen_file("old", false)),
                ],
                options: PRUNE,
                want: vec![
                    ("a", "delete"),
                    ("b", "forget"),
                    ("gone", "forget"),
                    ("l", "delete"),
                    ("p", "delete"),
                ],
            },
            Case {
                name: "dropped and changed by hand: conflict, unless --adopt",
                desired: vec![("keep", file("k"))],
                inventory: vec![
                    ("a", owned(applied_file("x", None))),
                    ("keep", owned(applied_file("k", None))),
                    ("l", owned(applied_link("a"))),
                ],
                observed: vec![
                    ("a", seen_file("edited", false)),
                    ("keep", seen_file("k", false)),
                    ("l", seen_link("elsewhere")),
                ],
                options: PRUNE,
                want: vec![
                    (
                        "a",
                        "conflict: a file changed since plumb applied it; not deleted (--adopt deletes it anyway)",
                    ),
                    ("keep", "keep"),
                    (
                        "l",
                        "conflict: a symlink changed since plumb applied it; not deleted",
                    ),
                ],
            },
            Case {
                name: "dropped and changed by hand, --adopt: deleted",
                desired: vec![],
                inventory: vec![("a", owned(applied_file("x", None)))],
                observed: vec![("a", seen_file("edited", true))],
                options: PRUNE_ADOPT,
                want: vec![("a", "delete")],
            },
            Case {
                name: "a dropped directory goes after its contents, unless a stranger stays",
                desired: vec![],
                inventory: vec![
                    ("d", owned(Applied::Dir)),
                    ("d/f", owned(applied_file("f", None))),
                    ("e", owned(Applied::Dir)),
                    ("e/f", owned(applied_file("f", None))),
                ],
                observed: vec![
                    ("d", seen_dir(&["f"])),
                    ("d/f", seen_file("f", false)),
                    ("e", seen_dir(&["f", "stranger"])),
                    ("e/f", seen_file("f", false)),
                ],
                options: PRUNE,
                want: vec![
                    ("d", "delete"),
                    ("d/f", "delete"),
                    ("e", "retain: still holds e/stranger"),
                    ("e/f", "delete"),
                ],
            },
        ]
    }

    /// The row named `name`.
    fn case(name: &str) -> Case {
        cases()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case {name:?}"))
    }

    #[test]
    fn every_case_plans_as_the_table_says() {
        for case in cases() {
            let plan = plan_case(&case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let got: Vec<(String, String)> = plan
                .steps
                .iter()
                .map(|s| (s.path.to_string(), render(&s.action)))
                .collect();
            let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
            let want_paths: Vec<&str> = case.want.iter().map(|(p, _)| *p).collect();
            assert_eq!(paths, want_paths, "{}: paths, in order", case.name);
            for ((p, action), (_, want)) in got.iter().zip(&case.want) {
                assert!(
                    action.starts_with(want),
                    "{}: {p}: planned {action:?}, want {want:?}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn steps_carry_what_is_wanted_and_what_was_seen() {
        let plan = plan_case(&case("owned and different: update, saying how")).expect("a plan");
        let by_path: BTreeMap<String, &Step> =
            plan.steps.iter().map(|s| (s.path.to_string(), s)).collect();
        let a = by_path["a"];
        assert_eq!(a.desired, Some(file("new")));
        assert_eq!(Ok(a.observed.clone()), seen_file("old", false));
        assert!(plan.has_changes());
        assert_eq!(plan.tally().update, 3);
        assert_eq!(plan.conflicts().count(), 0);
        // A dropped path wants nothing.
        let dropped = case("dropped, prune on: unchanged or pending deleted, gone forgotten");
        let plan = plan_case(&dropped).expect("a plan");
        assert!(plan.steps.iter().all(|s| s.desired.is_none()));
        assert_eq!(plan.tally().delete, 3);
    }

    #[test]
    fn a_plan_of_keeps_changes_nothing() {
        let plan = plan_case(&case("already right, owned or not: keep")).expect("a plan");
        assert!(!plan.has_changes());
        assert_eq!(plan.tally().keep, 4);
    }

    #[test]
    fn attributes_that_differ_update_what_plumb_owns() {
        let want = ResolvedAttrs {
            mode: Some(0o600),
            uid: Some(0),
            gid: None,
        };
        let seen = |mode: u32, uid: u32| ResolvedAttrs {
            mode: Some(mode),
            uid: Some(uid),
            gid: Some(5),
        };
        let with = |o: Result<Observed, String>, a: ResolvedAttrs| match o {
            Ok(Observed::File {
                size,
                executable,
                digest,
                token,
                ..
            }) => Ok(Observed::File {
                size,
                executable,
                digest,
                token,
                attrs: a,
            }),
            Ok(Observed::Dir { children, .. }) => Ok(Observed::Dir { children, attrs: a }),
            other => other,
        };
        let case = |options: Options, owned_paths: bool| Case {
            name: "attributes",
            desired: vec![
                ("d", Desired::Dir),
                ("d/k", file("x")),
                ("same", file("y")),
                ("new", file("z")),
            ],
            inventory: if owned_paths {
                vec![
                    ("d", owned(Applied::Dir)),
                    ("d/k", owned(applied_file("x", None))),
                ]
            } else {
                vec![]
            },
            observed: vec![
                ("d", with(seen_dir(&["k"]), seen(0o755, 0))),
                ("d/k", with(seen_file("x", false), seen(0o644, 7))),
                ("new", Ok(Observed::Missing)),
                ("same", with(seen_file("y", false), seen(0o600, 0))),
            ],
            options,
            want: vec![],
        };
        let attrs = [("d", want), ("d/k", want), ("same", want), ("new", want)];
        let render_all = |plan: Plan| -> Vec<(String, String, ResolvedAttrs)> {
            plan.steps
                .iter()
                .map(|s| (s.path.to_string(), render(&s.action), s.attrs))
                .collect()
        };
        let owned_plan = render_all(plan_with_attrs(&case(DEFAULT, true), &attrs).expect("plan"));
        assert_eq!(
            owned_plan,
            vec![
                ("d".into(), "update: mode 0755 -> 0600".into(), want),
                (
                    "d/k".into(),
                    "update: mode 0644 -> 0600, owner 7 -> 0".into(),
                    want
                ),
                ("new".into(), "create".into(), want),
                ("same".into(), "keep".into(), want),
            ]
        );
        let strangers = render_all(plan_with_attrs(&case(DEFAULT, false), &attrs).expect("plan"));
        assert!(
            strangers[0]
                .1
                .starts_with("conflict: a directory plumb does not own"),
            "{strangers:?}"
        );
        assert!(
            strangers[1]
                .1
                .starts_with("conflict: a file plumb does not own"),
            "{strangers:?}"
        );
        let adopted = render_all(plan_with_attrs(&case(ADOPT, false), &attrs).expect("plan"));
        assert!(adopted[1].1.starts_with("update: mode"), "{adopted:?}");
    }

    #[test]
    fn a_desired_path_not_observed_is_an_error() {
        let case = Case {
            name: "unobserved",
            desired: vec![("a", file("x")), ("b", file("y"))],
            inventory: vec![],
            observed: vec![("a", Ok(Observed::Missing))],
            options: DEFAULT,
            want: vec![],
        };
        let err = plan_case(&case).expect_err("b was not observed");
        assert!(err.to_string().contains("not observed"), "{err}");
    }
}
