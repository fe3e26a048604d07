//! Carrying out a plan: intent first, then the changes in an order that
//! keeps every step valid, then the inventory that is now true.

use std::collections::BTreeSet;

use plumb_core::BlobId;
use plumb_core::target::{Change, Content, Observed, Target, TargetError, TargetPath};

use super::ReconcileError;
use super::desired::Desired;
use super::observe::Digests;
use super::plan::{Action, Plan, Step};
use super::state::{Applied, Held, Inventory, InventoryDelta};
use crate::store::Store;

/// Blob content for a target, straight from the store (verified on read).
pub struct StoreContent<'a>(pub &'a Store);

impl Content for StoreContent<'_> {
    fn get(&self, blob: &BlobId) -> Result<Vec<u8>, TargetError> {
        self.0
            .blob(blob)
            .map(|b| b.into_data())
            .map_err(|e| TargetError::Content(Box::new(e)))
    }

    fn open(&self, blob: &BlobId) -> Result<Box<dyn std::io::Read + '_>, TargetError> {
        self.0
            .blob_reader(blob)
            .map(|r| Box::new(r) as Box<dyn std::io::Read + '_>)
            .map_err(|e| TargetError::Content(Box::new(e)))
    }
}

/// The inventory changes to record before changing anything: every path
/// about to change is marked pending (and owned, so a kill cannot orphan
/// it), every path to forget is dropped, every path kept is recorded (its
/// token refreshed). Only what differs from `before` is in the delta.
pub fn intent(
    before: &Inventory,
    plan: &Plan,
    adopt: bool,
    digests: &mut Digests<'_>,
    store: &Store,
) -> Result<InventoryDelta, ReconcileError> {
    let mut delta = InventoryDelta::default();
    // Steps and inventory are both in path order: walk them together.
    let mut recorded = before.entries.iter().peekable();
    for step in &plan.steps {
        let key = step.path.as_bytes();
        while recorded.next_if(|(k, _)| k.as_slice() < key).is_some() {}
        let held = recorded
            .next_if(|(k, _)| k.as_slice() == key)
            .map(|(_, h)| h);
        let new = match &step.action {
            Action::Create | Action::Update { .. } => {
                let want = step
                    .desired
                    .as_ref()
                    .expect("creates and updates have a desired state");
                Some(Held {
                    state: applied_state(want, None, digests, store)?,
                    owned: true,
                    pending: true,
                    attrs: step.attrs,
                })
            }
            Action::Delete => held.map(|h| Held {
                pending: true,
                ..h.clone()
            }),
            Action::Keep => {
                let want = step
                    .desired
                    .as_ref()
                    .expect("kept paths have a desired state");
                let token = match &step.observed {
                    Observed::File { token, .. } => token.as_ref(),
                    _ => None,
                };
                let owned = held.is_some_and(|h| h.owned || h.pending) || adopt;
                match held {
                    // What was recorded stays true; only the token may be new.
                    Some(h)
                        if !h.pending
                            && want.is(&h.state)
                            && h.owned == owned
                            && h.attrs == step.attrs =>
                    {
                        match &h.state {
                            Applied::File { token: t, .. } if t.as_ref() != token => {
                                let mut h = h.clone();
                                if let Applied::File { token: t, .. } = &mut h.state {
                                    *t = token.cloned();
                                }
                                Some(h)
                            }
                            _ => continue,
                        }
                    }
                    _ => Some(Held {
                        state: applied_state(want, token.cloned(), digests, store)?,
                        owned,
                        pending: false,
                        attrs: step.attrs,
                    }),
                }
            }
            Action::Forget if held.is_some() => None,
            Action::Forget | Action::Retain { .. } | Action::Conflict { .. } => continue,
        };
        delta.paths.insert(key.to_vec(), new);
    }
    Ok(delta)
}

fn applied_state(
    want: &Desired,
    token: Option<Vec<u8>>,
    digests: &mut Digests<'_>,
    store: &Store,
) -> Result<Applied, ReconcileError> {
    Ok(match want {
        Desired::File { blob, executable } => Applied::File {
            blob: *blob.as_bytes(),
            size: store.blob_size(blob)?.unwrap_or(0),
            executable: *executable,
            sha256: digests.sha256_for(blob)?,
            token,
        },
        Desired::Symlink { target } => Applied::Symlink {
            target: target.clone(),
        },
        Desired::Dir => Applied::Dir,
    })
}

/// A change of an apply that was not made, or not known to be.
#[derive(Debug, thiserror::Error)]
pub enum ApplyFailure {
    /// The target failed to make the change at `path`.
    #[error("{error}")]
    Change {
        /// The path.
        path: TargetPath,
        /// The target's error.
        #[source]
        error: TargetError,
    },
    /// The target never confirmed the change at `path`.
    #[error("{path}: not confirmed")]
    Unconfirmed {
        /// The path.
        path: TargetPath,
    },
    /// Every change was made, but reading back the files written failed.
    #[error("{0}")]
    ReadBack(#[source] Box<ReconcileError>),
}

/// What happened to the changes of one apply.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Changes confirmed.
    pub confirmed: u64,
    /// Changes that failed.
    pub failed: Vec<ApplyFailure>,
    /// The target as a whole failed (a plugin died, hung or broke the
    /// protocol): why. No change was attempted after it.
    pub broken: Option<TargetError>,
}

/// Runs the plan's changes through `target`, updating `inv` (the intent)
/// and calling `progress` with the number of changes done so far,
/// as each is confirmed: confirmed paths lose their pending mark (deleted
/// ones their entry); unconfirmed ones stay pending.
pub fn execute(
    target: &mut dyn Target,
    store: &Store,
    plan: &Plan,
    inv: &mut Inventory,
    touched: &mut BTreeSet<Vec<u8>>,
    progress: &dyn Fn(u64),
) -> Result<Outcome, ReconcileError> {
    let mut books = Books {
        inv,
        touched,
        outcome: Outcome::default(),
        progress: Progress {
            done: 0,
            report: progress,
        },
    };
    let changing: Vec<&Step> = plan.steps.iter().filter(|s| s.action.changes()).collect();

    // 1. Files and symlinks going away, or making way for a directory.
    let removals: Vec<Change> = changing
        .iter()
        .filter(|s| {
            matches!(s.observed, Observed::File { .. } | Observed::Symlink { .. })
                && matches!(
                    s.action,
                    Action::Delete
                        | Action::Update {
                            remove_first: true,
                            ..
                        }
                )
        })
        .map(|s| Change::Remove {
            path: s.path.clone(),
        })
        .collect();
    run(target, store, &removals, plan, &mut books)?;
    if books.outcome.broken.is_some() {
        return Ok(books.outcome);
    }

    // 2. Directories going away (or making way for a file), deepest first.
    let dirs_out: Vec<&Step> = changing
        .iter()
        .copied()
        .filter(|s| {
            matches!(s.observed, Observed::Dir { .. })
                && matches!(
                    s.action,
                    Action::Delete
                        | Action::Update {
                            remove_first: true,
                            ..
                        }
                )
        })
        .collect();
    for depth in depths(&dirs_out).into_iter().rev() {
        let batch: Vec<Change> = dirs_out
            .iter()
            .filter(|s| s.path.depth() == depth)
            .map(|s| Change::RemoveDir {
                path: s.path.clone(),
            })
            .collect();
        run(target, store, &batch, plan, &mut books)?;
        if books.outcome.broken.is_some() {
            return Ok(books.outcome);
        }
    }

    // 3. Directories to make, shallowest first.
    let dirs_in: Vec<&Step> = changing
        .iter()
        .copied()
        .filter(|s| s.desired == Some(Desired::Dir))
        .collect();
    for depth in depths(&dirs_in) {
        let batch: Vec<Change> = dirs_in
            .iter()
            .filter(|s| s.path.depth() == depth)
            .map(|s| Change::MakeDir {
                path: s.path.clone(),
                attrs: s.attrs,
            })
            .collect();
        run(target, store, &batch, plan, &mut books)?;
        if books.outcome.broken.is_some() {
            return Ok(books.outcome);
        }
    }

    // 4. Files and symlinks, all at once.
    let mut writes = Vec::new();
    for s in &changing {
        match &s.desired {
            Some(Desired::File { blob, executable }) => {
                // The intent recorded the size; the store knows it too.
                let size = match books.inv.entries.get(s.path.as_bytes()) {
                    Some(Held {
                        state: Applied::File { blob: b, size, .. },
                        ..
                    }) if b == blob.as_bytes() => *size,
                    _ => store.blob_size(blob)?.unwrap_or(0),
                };
                writes.push(Change::WriteFile {
                    path: s.path.clone(),
                    blob: *blob,
                    size,
                    executable: *executable,
                    attrs: s.attrs,
                })
            }
            Some(Desired::Symlink { target }) => writes.push(Change::Symlink {
                path: s.path.clone(),
                target: target.clone(),
            }),
            _ => {}
        }
    }
    run(target, store, &writes, plan, &mut books)?;
    Ok(books.outcome)
}

/// What an execution keeps track of: the inventory it updates, the paths
/// it changed, its outcome and its progress.
struct Books<'a> {
    inv: &'a mut Inventory,
    touched: &'a mut BTreeSet<Vec<u8>>,
    outcome: Outcome,
    progress: Progress<'a>,
}

/// Changes reported done so far, and whom to tell.
struct Progress<'a> {
    done: u64,
    report: &'a dyn Fn(u64),
}

fn depths(steps: &[&Step]) -> Vec<usize> {
    let mut d: Vec<usize> = steps.iter().map(|s| s.path.depth()).collect();
    d.sort_unstable();
    d.dedup();
    d
}

fn run(
    target: &mut dyn Target,
    store: &Store,
    changes: &[Change],
    plan: &Plan,
    books: &mut Books<'_>,
) -> Result<(), ReconcileError> {
    let Books {
        inv,
        touched,
        outcome,
        progress: at,
    } = books;
    if changes.is_empty() {
        return Ok(());
    }
    let mut results: Vec<Option<Result<(), TargetError>>> = Vec::new();
    results.resize_with(changes.len(), || None);
    let status = target.apply(changes, &StoreContent(store), &mut |i, r| {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(r);
        }
        at.done += 1;
        (at.report)(at.done);
    });
    for (change, result) in changes.iter().zip(results) {
        match result {
            Some(Ok(())) => {
                outcome.confirmed += 1;
                confirm(change, inv, plan);
                touched.insert(change.path().as_bytes().to_vec());
            }
            Some(Err(error)) => outcome.failed.push(ApplyFailure::Change {
                path: change.path().clone(),
                error,
            }),
            None => outcome.failed.push(ApplyFailure::Unconfirmed {
                path: change.path().clone(),
            }),
        }
    }
    if let Err(e) = status {
        outcome.broken = Some(e);
    }
    Ok(())
}

/// Records one confirmed change in the inventory.
fn confirm(change: &Change, inv: &mut Inventory, plan: &Plan) {
    let key = change.path().as_bytes();
    match change {
        Change::Remove { path } | Change::RemoveDir { path } => {
            // Removed to make way for something else: that stays pending
            // until made. Removed for good: forgotten.
            let replaced = plan
                .steps
                .binary_search_by(|s| s.path.cmp(path))
                .ok()
                .and_then(|i| plan.steps.get(i))
                .is_some_and(|s| s.desired.is_some());
            if !replaced {
                inv.entries.remove(key);
            }
        }
        Change::WriteFile { .. } | Change::Symlink { .. } | Change::MakeDir { .. } => {
            if let Some(h) = inv.entries.get_mut(key) {
                h.pending = false;
            }
        }
    }
}

/// Refreshes the change tokens of files just written, so the next drift
/// check can trust stat data instead of hashing. Returns the files whose
/// token the target withheld (changed too recently to be trusted yet).
pub fn refresh_tokens(
    target: &mut dyn Target,
    inv: &mut Inventory,
    touched: &mut BTreeSet<Vec<u8>>,
    written: &[TargetPath],
) -> Result<Vec<TargetPath>, ReconcileError> {
    if written.is_empty() {
        return Ok(Vec::new());
    }
    let requests: Vec<_> = written
        .iter()
        .map(|p| plumb_core::target::ObserveRequest {
            path: p.clone(),
            digest: false,
            list: false,
        })
        .collect();
    let mut withheld = Vec::new();
    for (path, seen) in written.iter().zip(target.observe(&requests)?) {
        if let (
            Ok(Observed::File { token, size, .. }),
            Some(Held {
                state:
                    Applied::File {
                        token: held,
                        size: s,
                        ..
                    },
                pending: false,
                ..
            }),
        ) = (seen, inv.entries.get_mut(path.as_bytes()))
            && size == *s
        {
            match token {
                Some(t) => {
                    *held = Some(t);
                    touched.insert(path.as_bytes().to_vec());
                }
                None => withheld.push(path.clone()),
            }
        }
    }
    Ok(withheld)
}
