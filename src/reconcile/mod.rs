//! The reconciler: makes a target match a snapshot, reading only the store.
//!
//! A run has three inputs — the desired tree (a snapshot, scoped to a
//! directory), the inventory (what plumb last applied to the target) and
//! the observed state — and one plan ([`plan::plan`]). `apply` records its
//! intent before changing anything (every path it may touch is marked
//! pending and owned), makes the changes through the target, then records
//! the inventory that is now true together with a run in the target's
//! audit log. A kill at any point therefore leaves an inventory that owns
//! everything plumb may have written, and the next apply converges.
//!
//! What the reconciler knows of each target — its definition and
//! inventory ([`state`]) and its audit log ([`runs`]) — it keeps in the
//! store's reconciler keyspaces itself ([`records`], [`TargetStore`]).

pub mod apply;
pub mod define;
pub mod desired;
pub mod drift;
pub mod guard;
pub mod hooks;
pub mod join;
pub mod lock;
pub mod maintenance;
pub mod observe;
pub mod plan;
pub mod records;
pub mod runs;
pub mod staging;
pub mod state;
pub mod targets;

use std::fmt;
use std::time::Instant;

use plumb_core::SnapshotId;
use plumb_core::target::{Target, TargetError, TargetPath};

use crate::rev::{self, RevError};
use crate::store::{Store, StoreError};
use apply::ApplyFailure;
use desired::DesiredTree;
use drift::Drifted;
use guard::MassDelete;
use observe::Digests;
use plan::{Conflict, Options, Plan};
pub use records::{Record, TargetStore};
pub use runs::{Counts, Outcome, RunKind, RunRecord};
pub use state::{Applied, Held, Inventory, InventoryDelta, TargetDef};

/// How many written files make waiting for their tokens to settle worth
/// it (hashing fewer on the next check costs less than the wait).
const SETTLE_AFTER: usize = 256;

/// Why a reconcile could not run. Its text is one line and includes its
/// cause's (see `plumb_core`'s rule on errors).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A revision did not resolve.
    #[error(transparent)]
    Rev(#[from] RevError),
    /// The target failed as a whole.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Something given is unusable.
    #[error("{0}")]
    Invalid(String),
    /// The plan holds conflicts, so nothing was applied.
    #[error(
        "{} conflict{} (first: {}); nothing applied (--adopt takes over paths plumb does not own)",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        list.first().map(Conflict::to_string).unwrap_or_default()
    )]
    Conflicts {
        /// Each conflicting path and why, in path order.
        list: Vec<Conflict>,
    },
    /// A revision names a snapshot that is not in the target's source.
    #[error(transparent)]
    ForeignSnapshot(Box<ForeignSnapshot>),
    /// The plan deletes too much of what plumb owns; nothing was applied.
    #[error("{0}")]
    MassDelete(MassDelete),
    /// A hook could not be run.
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    /// A hook failed: `check` rejected the staged tree (nothing was
    /// applied), or `after` failed once the changes were made.
    #[error(
        "{} {} failed ({}){}; {}",
        .0.which,
        plumb_core::quote::quote(.0.argv.join(" ").as_bytes()),
        .0.exit,
        first_line(&.0.stderr, &.0.stdout),
        if .0.which == "check" { "nothing applied" } else { "the changes were applied" }
    )]
    HookFailed(Box<hooks::HookRun>),
    /// Another process is applying to the target.
    #[error("target {target:?} is being reconciled by {holder}")]
    Busy {
        /// The target.
        target: String,
        /// Who holds it (`pid 12 (plumb apply web)`).
        holder: String,
    },
}

/// `: LINE`, the first non-empty line of a hook's stderr, else of its
/// stdout, for an error message; empty when both are.
fn first_line(stderr: &[u8], stdout: &[u8]) -> String {
    [stderr, stdout]
        .iter()
        .flat_map(|out| out.split(|b| *b == b'\n'))
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())
        .map(|l| format!(": {}", plumb_core::quote::quote(l)))
        .unwrap_or_default()
}

/// A revision that names a snapshot outside the log of the source a
/// target follows.
#[derive(Debug, thiserror::Error)]
#[error(
    "{given} is snapshot {} of {from}, not of source {follows} that target {target} follows; refusing to apply it there",
    desired::short(snapshot)
)]
pub struct ForeignSnapshot {
    /// The target.
    pub target: String,
    /// The source it follows.
    pub follows: String,
    /// The revision as given.
    pub given: String,
    /// The snapshot it names.
    pub snapshot: SnapshotId,
    /// Where the snapshot is from (`source NAME, …`).
    pub from: String,
}

impl ReconcileError {
    /// Whether the run was refused: it stopped before changing anything
    /// because going on would be unsafe (conflicts). A refusal is recorded
    /// as `refused` in the audit log, and `--json` says so as its
    /// `outcome`; a new reason to refuse belongs here too.
    pub fn is_refusal(&self) -> bool {
        match self {
            ReconcileError::Conflicts { .. }
            | ReconcileError::ForeignSnapshot(_)
            | ReconcileError::MassDelete(_) => true,
            ReconcileError::HookFailed(run) => run.which == "check",
            ReconcileError::Store(_)
            | ReconcileError::Rev(_)
            | ReconcileError::Target(_)
            | ReconcileError::Invalid(_)
            | ReconcileError::Hook(_)
            | ReconcileError::Busy { .. } => false,
        }
    }
}

/// Opens the target a definition's location names, as its kind's entry in
/// [`targets`] opens it.
pub fn open_target(def: &TargetDef) -> Result<Box<dyn Target>, ReconcileError> {
    def.location
        .open(def.workdir.as_deref().map(std::path::Path::new))
}

/// The snapshot a run works towards: `rev` when given, else the pin, else
/// the followed selector, else the source's latest.
pub fn choose(
    store: &Store,
    def: &TargetDef,
    rev: Option<&str>,
) -> Result<SnapshotId, ReconcileError> {
    if let Some(r) = rev {
        let id = rev::resolve(store, r)?.id;
        check_in_source(store, def, id, r)?;
        return Ok(id);
    }
    if let Some(pin) = def.pinned() {
        return Ok(pin);
    }
    let sel = def.sel.as_deref().unwrap_or("latest");
    Ok(rev::resolve(store, &format!("{}@{sel}", def.source))?.id)
}

/// Refuses a snapshot that is not in the log of the source the target
/// follows: another source's tree would replace the target's files (and,
/// with prune, delete them).
fn check_in_source(
    store: &Store,
    def: &TargetDef,
    id: SnapshotId,
    given: &str,
) -> Result<(), ReconcileError> {
    let holders = store.sources_of(&id)?;
    if holders.iter().any(|(name, _)| *name == def.source) {
        return Ok(());
    }
    let from = match holders.as_slice() {
        [] => "no source's log".to_string(),
        list => {
            let names: Vec<&str> = list.iter().map(|(name, _)| name.as_str()).collect();
            format!("source {}", names.join(", "))
        }
    };
    Err(ReconcileError::ForeignSnapshot(Box::new(ForeignSnapshot {
        target: def.name.clone(),
        follows: def.source.clone(),
        given: given.to_owned(),
        snapshot: id,
        from,
    })))
}

/// Whether target `def`'s scoped tree in `desired` differs from the one
/// in `applied` (its `--path` subtree of each snapshot; `true` when
/// nothing was applied): whether reconciling it could change anything
/// that a new snapshot brought.
pub fn tree_changed(
    store: &Store,
    def: &TargetDef,
    desired: SnapshotId,
    applied: Option<SnapshotId>,
) -> Result<bool, StoreError> {
    let Some(applied) = applied else {
        return Ok(true);
    };
    if applied == desired {
        return Ok(false);
    }
    let scoped = |id: SnapshotId| -> Result<Option<plumb_core::TreeId>, StoreError> {
        let tree = store.snapshot(&id)?.tree;
        match def.path.as_deref() {
            Some(path) => desired::subtree(store, tree, path),
            None => Ok(Some(tree)),
        }
    };
    Ok(scoped(desired)? != scoped(applied)?)
}

/// A plan with everything it was made from.
pub struct Prepared<'a> {
    /// The desired tree.
    pub desired: DesiredTree,
    /// The inventory before.
    pub inventory: Inventory,
    /// The plan.
    pub plan: Plan,
    /// Content digests computed while planning (SHA-256 for plugins),
    /// for the apply to reuse.
    pub digests: Digests<'a>,
    /// Why the delete guard refuses the plan, if it does (whether or not
    /// the options allow it).
    pub guard: Option<MassDelete>,
}

/// Observes the target and plans the way to `snapshot`.
pub fn prepare<'a>(
    store: &'a Store,
    def: &TargetDef,
    target: &mut dyn Target,
    snapshot: SnapshotId,
    options: Options,
) -> Result<Prepared<'a>, ReconcileError> {
    let (inventory, desired) = load(store, def, snapshot)?;
    prepare_with(store, def, target, options, inventory, desired)
}

/// Reads the inventory and the desired tree, in parallel: they are
/// independent, and each costs milliseconds on a large target.
fn load(
    store: &Store,
    def: &TargetDef,
    snapshot: SnapshotId,
) -> Result<(Inventory, DesiredTree), ReconcileError> {
    let took = Instant::now();
    let (inventory, desired) = std::thread::scope(|scope| {
        let inventory = scope.spawn(|| store.inventory(&def.name));
        let desired = desired::desired(store, snapshot, def.path.as_deref());
        let inventory = inventory
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (inventory, desired)
    });
    tracing::debug!(
        ms = took.elapsed().as_millis() as u64,
        "inventory and desired tree loaded"
    );
    let desired = desired?;
    if desired.entries.is_empty()
        && let Some(path) = store.source(&def.source)?.path
    {
        return Err(ReconcileError::Invalid(format!(
            "source {} --path {path} matches nothing in snapshot {}; refusing to reconcile an empty tree in its place",
            def.source,
            desired::short(&snapshot)
        )));
    }
    Ok((inventory?, desired))
}

/// [`prepare`] with the inventory and desired tree already loaded.
fn prepare_with<'a>(
    store: &'a Store,
    def: &TargetDef,
    target: &mut dyn Target,
    options: Options,
    inventory: Inventory,
    mut desired: DesiredTree,
) -> Result<Prepared<'a>, ReconcileError> {
    let took = Instant::now();
    desired.resolve_attrs(target)?;
    // Directories are listed where plumb may remove them: owned ones the
    // snapshot dropped, or turned into something else (or pending).
    let mut paths: Vec<(TargetPath, bool)> = Vec::with_capacity(desired.entries.len());
    for j in join::join(&desired.entries, &inventory.entries) {
        let was_dir = j.held.is_some_and(|h| h.state == Applied::Dir || h.pending);
        match j.desired {
            Some((p, d)) => paths.push((p.clone(), *d != desired::Desired::Dir && was_dir)),
            None => {
                if let Ok(p) = TargetPath::new(j.path.to_vec()) {
                    paths.push((p, was_dir));
                }
            }
        }
    }
    let observed = observe::observe(target, paths, &inventory, false)?;
    tracing::debug!(ms = took.elapsed().as_millis() as u64, "observed");
    let mut digests = Digests::new(target.digest_kind(), store, &inventory);
    let reserved = |name: &[u8]| target.reserved(name);
    let plan = plan::plan(
        &desired,
        &inventory,
        observed,
        options,
        &mut digests,
        &reserved,
    )?;
    let guard = guard::check(&plan, &desired, &inventory, def.max_delete());
    Ok(Prepared {
        desired,
        inventory,
        plan,
        digests,
        guard,
    })
}

/// Lets the target clear its leftovers (temporary files) at every path an
/// interrupted apply left pending, and beside every other path it holds
/// where the target finds some of its own (an apply raced out of reaching
/// them). Only apply does this: plan and drift change nothing.
fn recover(inventory: &Inventory, target: &mut dyn Target) -> Result<(), ReconcileError> {
    let mut paths: Vec<TargetPath> = Vec::new();
    let mut settled: Vec<TargetPath> = Vec::new();
    for (raw, held) in &inventory.entries {
        if let Ok(p) = TargetPath::new(raw.clone()) {
            if held.pending {
                &mut paths
            } else {
                &mut settled
            }
            .push(p);
        }
    }
    let mut found: Vec<TargetPath> = target
        .leftovers(&settled)?
        .into_iter()
        .map(|l| l.of)
        .collect();
    found.sort_unstable();
    found.dedup();
    paths.extend(found);
    target.recover(&paths)?;
    Ok(())
}

/// What an apply did.
#[derive(Debug)]
pub struct ApplyReport {
    /// The snapshot applied.
    pub snapshot: SnapshotId,
    /// The plan it carried out.
    pub plan: Plan,
    /// Its run number in the audit log.
    pub run: u64,
    /// Changes confirmed.
    pub confirmed: u64,
    /// Changes that failed.
    pub failed: Vec<ApplyFailure>,
    /// Changes the plan called for.
    pub total: u64,
    /// Why the target as a whole failed, if it did.
    pub broken: Option<ReconcileError>,
    /// Warnings (skipped submodules).
    pub warnings: Vec<String>,
}

impl ApplyReport {
    /// Why the apply did not finish, if it did not.
    pub fn unfinished(&self) -> Option<Unfinished<'_>> {
        Unfinished::of(
            self.broken.as_ref(),
            &self.failed,
            self.confirmed,
            self.total,
        )
    }
}

/// Why an apply did not finish: the target failed as a whole, or some
/// changes failed. Its text is what the audit log records.
#[derive(Debug)]
pub enum Unfinished<'a> {
    /// The target failed as a whole; the changes not confirmed by then
    /// were not made.
    Broken {
        /// Why.
        error: &'a ReconcileError,
        /// Changes not made.
        not_made: u64,
        /// Changes the plan called for.
        total: u64,
    },
    /// Some changes failed.
    Failed {
        /// Which, and why.
        failures: &'a [ApplyFailure],
    },
}

impl<'a> Unfinished<'a> {
    fn of(
        broken: Option<&'a ReconcileError>,
        failures: &'a [ApplyFailure],
        confirmed: u64,
        total: u64,
    ) -> Option<Self> {
        match broken {
            Some(error) => Some(Unfinished::Broken {
                error,
                not_made: total - confirmed.min(total),
                total,
            }),
            None if failures.is_empty() => None,
            None => Some(Unfinished::Failed { failures }),
        }
    }
}

impl fmt::Display for Unfinished<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfinished::Broken {
                error,
                not_made,
                total,
            } => write!(f, "{error}; {not_made} of {total} changes not made"),
            Unfinished::Failed { failures } => {
                write!(
                    f,
                    "{} change{} failed",
                    failures.len(),
                    if failures.len() == 1 { "" } else { "s" }
                )?;
                match failures.first() {
                    Some(first) => write!(f, " (first: {first})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Who and where, for the audit log.
fn identity() -> (String, String) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(login_of_uid);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    (user, host)
}

/// The login name of this process's real uid from `/etc/passwd`, else
/// `uid N`.
fn login_of_uid() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_else(|| "?".into());
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The start of a run record.
fn run_record(
    kind: RunKind,
    snapshot: Option<SnapshotId>,
    started_ms: i64,
    took: Instant,
) -> RunRecord {
    let (user, host) = identity();
    RunRecord {
        seq: 0,
        kind,
        started_ms,
        duration_ms: took.elapsed().as_millis() as u64,
        user,
        host,
        snapshot: snapshot.map(|s| *s.as_bytes()),
        counts: Counts::default(),
        outcome: Outcome::Ok,
        error: None,
        hooks: Vec::new(),
    }
}

/// Records `run` as failed with `error` in the audit log; returns the
/// error (the cause matters more than a failure to log it, which is
/// logged as a warning).
fn record_failure(
    store: &Store,
    def: &TargetDef,
    mut run: RunRecord,
    error: ReconcileError,
) -> ReconcileError {
    run.outcome = Outcome::Failed;
    run.error = Some(error.to_string());
    if let Err(e) = store.record(Record {
        target: &def.name,
        inventory: None,
        run: Some(run),
        def: None,
    }) {
        // A damaged database is what the error itself reports already.
        if matches!(
            e,
            StoreError::Engine(crate::store::EngineError::Damaged { .. })
        ) {
            tracing::debug!(target = %def.name, "could not record the failed run: {e}");
        } else {
            tracing::warn!(target = %def.name, "could not record the failed run: {e}");
        }
    }
    error
}

/// The counts a plan's run records: its tally (nothing drifted or failed
/// yet).
pub fn plan_counts(plan: &Plan) -> Counts {
    let tally = plan.tally();
    Counts {
        create: tally.create,
        update: tally.update,
        delete: tally.delete,
        keep: tally.keep,
        conflict: tally.conflict,
        drifted: 0,
        failed: 0,
    }
}

/// Applies `snapshot` to the target and records the run, calling
/// `progress(done, total)` as changes are made. With `pin`, the
/// target is pinned there in the same record (a rollback). Conflicts
/// refuse the whole apply before anything changes; the refusal is a run.
pub fn apply(
    store: &Store,
    def: &TargetDef,
    target: &mut dyn Target,
    snapshot: SnapshotId,
    options: Options,
    kind: RunKind,
    progress: &dyn Fn(u64, u64),
) -> Result<ApplyReport, ReconcileError> {
    let started_ms = now_ms();
    let took = Instant::now();
    let mut new_def = def.clone();
    if kind == RunKind::Rollback {
        new_def.pin = Some(*snapshot.as_bytes());
    }
    let def_change = (new_def != *def).then_some(&new_def);
    let prepared = match load(store, def, snapshot).and_then(|(inventory, desired)| {
        recover(&inventory, target)?;
        prepare_with(store, def, target, options, inventory, desired)
    }) {
        Ok(p) => p,
        Err(e) => {
            let run = run_record(kind, Some(snapshot), started_ms, took);
            return Err(record_failure(store, def, run, e));
        }
    };
    let Prepared {
        desired,
        inventory,
        plan,
        mut digests,
        guard,
    } = prepared;
    let mut report = ApplyReport {
        snapshot,
        plan,
        run: 0,
        confirmed: 0,
        failed: Vec::new(),
        total: 0,
        broken: None,
        warnings: desired.skipped.clone(),
    };
    let list: Vec<Conflict> = report.plan.conflicts().collect();
    let refusal = if !list.is_empty() {
        Some(ReconcileError::Conflicts { list })
    } else {
        guard
            .filter(|_| !options.allow_mass_delete)
            .map(ReconcileError::MassDelete)
    };
    // The check reads the staged new tree: when it fails, nothing live
    // has changed.
    let mut hook_runs = Vec::new();
    let refusal = match refusal {
        Some(r) => Some(r),
        None => match hooks::check(store, def, &report.plan, snapshot) {
            Ok(Some(check)) if !check.succeeded() => {
                hook_runs.push(check.clone());
                Some(ReconcileError::HookFailed(Box::new(check)))
            }
            Ok(check) => {
                hook_runs.extend(check);
                None
            }
            Err(e) => {
                let run = run_record(kind, Some(snapshot), started_ms, took);
                return Err(record_failure(store, def, run, e));
            }
        },
    };
    if let Some(refusal) = refusal {
        let mut run = run_record(kind, Some(snapshot), started_ms, took);
        run.counts = plan_counts(&report.plan);
        run.outcome = Outcome::Refused;
        run.error = Some(refusal.to_string());
        run.hooks = hook_runs;
        store.record(Record {
            target: &def.name,
            inventory: None,
            run: Some(run),
            def: None,
        })?;
        return Err(refusal);
    }

    // Intent first: after this, a kill orphans nothing.
    tracing::debug!(ms = took.elapsed().as_millis() as u64, "planned");
    let intent = apply::intent(&inventory, &report.plan, options.adopt, &mut digests, store)?;
    let mut inv = inventory;
    inv.apply(&intent);
    store.record(Record {
        target: &def.name,
        inventory: Some((&intent, &inv)),
        run: None,
        def: def_change,
    })?;
    let mut touched = std::collections::BTreeSet::new();

    tracing::debug!(ms = took.elapsed().as_millis() as u64, "intent recorded");
    let total = report
        .plan
        .steps
        .iter()
        .filter(|s| s.action.changes())
        .count() as u64;
    let result = apply::execute(
        target,
        store,
        &report.plan,
        &mut inv,
        &mut touched,
        &|done| progress(done, total),
    );
    tracing::debug!(ms = took.elapsed().as_millis() as u64, "changes made");
    let (confirmed, mut failed, broken) = match result {
        Ok(o) => (o.confirmed, o.failed, o.broken.map(ReconcileError::from)),
        Err(e) => (0, Vec::new(), Some(e)),
    };
    let written: Vec<TargetPath> = report
        .plan
        .steps
        .iter()
        .filter(|s| s.action.changes() && matches!(s.desired, Some(desired::Desired::File { .. })))
        .map(|s| s.path.clone())
        .collect();
    if failed.is_empty()
        && broken.is_none()
        && let Err(e) = settle_tokens(target, &mut inv, &mut touched, &written)
    {
        failed.push(ApplyFailure::ReadBack(Box::new(e)));
    }
    let mut done = InventoryDelta::of_keys(&inv, &touched);
    if failed.is_empty() && broken.is_none() && inv.snapshot != Some(*snapshot.as_bytes()) {
        done.snapshot = Some(Some(*snapshot.as_bytes()));
    }
    let mut run = run_record(kind, Some(snapshot), started_ms, took);
    run.counts = plan_counts(&report.plan);
    run.counts.failed = failed.len() as u64;
    run.hooks = hook_runs;
    if let Some(unfinished) = Unfinished::of(broken.as_ref(), &failed, confirmed, total) {
        run.outcome = Outcome::Failed;
        run.error = Some(unfinished.to_string());
    }
    tracing::debug!(ms = took.elapsed().as_millis() as u64, "tokens read");
    // `after` (a reload), then `health`, once something changed and all
    // of it landed; the first to fail stops the rest.
    let mut after_failed = None;
    if run.outcome == Outcome::Ok && confirmed > 0 {
        let after = [hooks::after, hooks::health]
            .into_iter()
            .try_for_each(|hook| match hook(store, def, &report.plan, snapshot)? {
                Some(h) if !h.succeeded() => {
                    run.hooks.push(h.clone());
                    Err(ReconcileError::HookFailed(Box::new(h)))
                }
                h => {
                    run.hooks.extend(h);
                    Ok(())
                }
            });
        if let Err(e) = after {
            run.outcome = Outcome::Failed;
            run.error = Some(e.to_string());
            after_failed = Some(e);
        }
    }
    let seq = store.record(Record {
        target: &def.name,
        inventory: Some((&done, &inv)),
        run: Some(run),
        def: None,
    })?;
    if let Some(e) = after_failed {
        return Err(e);
    }
    report.run = seq.unwrap_or(0);
    report.confirmed = confirmed;
    report.failed = failed;
    report.total = total;
    report.broken = broken;
    Ok(report)
}

/// Reads the change tokens of the files just written. Many withheld (too
/// recently changed): waits for them to settle and reads theirs again, so
/// the next check trusts them instead of hashing them all.
fn settle_tokens(
    target: &mut dyn Target,
    inv: &mut Inventory,
    touched: &mut std::collections::BTreeSet<Vec<u8>>,
    written: &[TargetPath],
) -> Result<(), ReconcileError> {
    let first = Instant::now();
    let withheld = apply::refresh_tokens(target, inv, touched, written)?;
    if withheld.len() >= SETTLE_AFTER {
        // Every change was made before the first pass began, so all have
        // settled `settle_time` after it.
        std::thread::sleep(target.settle_time().saturating_sub(first.elapsed()));
        apply::refresh_tokens(target, inv, touched, &withheld)?;
    }
    Ok(())
}

/// What a drift check found.
#[derive(Debug)]
pub struct DriftReport {
    /// The snapshot last applied, if any.
    pub applied: Option<SnapshotId>,
    /// Drifted paths, in path order.
    pub drifted: Vec<Drifted>,
    /// Its run number in the audit log.
    pub run: u64,
}

/// Compares the target with what plumb last applied, records the check.
pub fn drift(
    store: &Store,
    def: &TargetDef,
    target: &mut dyn Target,
    full: bool,
) -> Result<DriftReport, ReconcileError> {
    let started_ms = now_ms();
    let took = Instant::now();
    let mut inventory = store.inventory(&def.name)?;
    let requests = drift::requests(&inventory);
    let found = observe::observe(target, requests.clone(), &inventory, full).and_then(|observed| {
        let paths: Vec<TargetPath> = requests.into_iter().map(|(p, _)| p).collect();
        let leftovers = target.leftovers(&paths)?;
        let mut drifted = drift::drift(&inventory, &observed, target.digest_kind());
        drifted.extend(drift::leftovers(leftovers));
        drifted.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((observed, drifted))
    });
    let mut run = run_record(RunKind::Drift, inventory.applied(), started_ms, took);
    let (observed, drifted) = match found {
        Ok(x) => x,
        Err(e) => return Err(record_failure(store, def, run, e)),
    };
    let refreshed = drift::refresh(&inventory, &observed, &drifted);
    inventory.apply(&refreshed);
    run.counts.drifted = drifted.len() as u64;
    run.counts.keep =
        inventory.entries.len() as u64 - drifted.len().min(inventory.entries.len()) as u64;
    if !drifted.is_empty() {
        run.outcome = Outcome::Drifted;
    }
    let seq = store.record(Record {
        target: &def.name,
        inventory: (!refreshed.is_empty()).then_some((&refreshed, &inventory)),
        run: Some(run),
        def: None,
    })?;
    Ok(DriftReport {
        applied: inventory.applied(),
        drifted,
        run: seq.unwrap_or(0),
    })
}

/// Unpins a target so it follows its source again; a run in the log.
pub fn unpin(store: &Store, def: &TargetDef) -> Result<Option<SnapshotId>, ReconcileError> {
    let took = Instant::now();
    let was = def.pinned();
    let mut new_def = def.clone();
    new_def.pin = None;
    let run = run_record(RunKind::Unpin, was, now_ms(), took);
    store.record(Record {
        target: &def.name,
        inventory: None,
        run: Some(run),
        def: Some(&new_def),
    })?;
    Ok(was)
}

/// The bytes the target holds at `path`, for a diff; when they cannot be
/// read, the target's reason (without the path), so that an unreadable
/// side is shown as such and never as an empty file.
pub fn observed_bytes(target: &mut dyn Target, path: &TargetPath) -> Result<Vec<u8>, String> {
    target.read(path).map_err(|e| match e {
        TargetError::Path { source, .. } => source.to_string(),
        e => e.to_string(),
    })
}
