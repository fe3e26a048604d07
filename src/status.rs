//! Every source and target at a glance, from the store: what
//! `plumb status` prints and the agent's API serves (with what the agent
//! adds of its own).
//!
//! The JSON forms here are shared: a run is the same document in
//! `plumb runs --json` and `GET /api/v1/targets/NAME/runs`.

use serde_json::{Value, json};

use crate::reconcile::hooks::{Exit, HookRun};
use crate::reconcile::{self, Counts, Outcome, RunKind, RunRecord, TargetStore};
use crate::store::{Store, StoreError};

/// A recorded run's outcome in the words its command's `--json` uses: a
/// drift check that found nothing is `in-sync`, or `never-applied`.
pub fn run_outcome(r: &RunRecord) -> &'static str {
    match (r.kind, r.outcome) {
        (RunKind::Drift, Outcome::Ok) if r.snapshot.is_none() => "never-applied",
        (RunKind::Drift, Outcome::Ok) => "in-sync",
        (_, Outcome::Ok) => "ok",
        (_, Outcome::Drifted) => "drifted",
        (_, Outcome::Refused) => "refused",
        (_, Outcome::Failed) => "failed",
    }
}

/// The counts of a run, planned or recorded, in JSON: the same names in
/// plan, apply and runs; `retain` where it is known (a plan).
pub fn counts_json(c: &Counts, retain: Option<u64>) -> Value {
    let mut counts = json!({
        "create": c.create,
        "update": c.update,
        "delete": c.delete,
        "keep": c.keep,
        "conflict": c.conflict,
        "drifted": c.drifted,
        "failed": c.failed,
    });
    if let Some(r) = retain {
        counts["retain"] = r.into();
    }
    counts
}

/// Milliseconds since the epoch as an RFC 3339 time (empty when out of
/// range).
pub fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A run in JSON.
pub fn run_json(r: &RunRecord) -> Value {
    json!({
        "run": r.seq,
        "kind": r.kind.name(),
        "time": time_text(r.started_ms),
        "duration_ms": r.duration_ms,
        "user": r.user,
        "host": r.host,
        "snapshot": r.snapshot_id().map(|s| s.to_string()),
        "outcome": run_outcome(r),
        "counts": counts_json(&r.counts, None),
        "error": r.error,
        "hooks": r.hooks.iter().map(hook_json).collect::<Vec<_>>(),
    })
}

/// A hook's run, as `plan --check`, `runs` and the API print it.
pub fn hook_json(h: &HookRun) -> Value {
    let (code, signal) = match h.exit {
        Exit::Code(c) => (Some(c), None),
        Exit::Signal(s) => (None, Some(s)),
        Exit::TimedOut => (None, None),
    };
    json!({
        "hook": h.which,
        "argv": h.argv,
        "ok": h.succeeded(),
        "exit_code": code,
        "signal": signal,
        "timed_out": h.exit == Exit::TimedOut,
        "duration_ms": h.duration_ms,
        "stdout": plumb_target_exec::protocol::bytes_value(&h.stdout),
        "stderr": plumb_target_exec::protocol::bytes_value(&h.stderr),
        "dropped_bytes": h.dropped,
    })
}

/// The newest `max` runs of target `name` (all when `None`), newest first.
pub fn runs(store: &Store, name: &str, max: Option<u64>) -> Result<Vec<RunRecord>, StoreError> {
    store.target(name)?;
    let mut list = Vec::new();
    store.runs(name, |r| {
        list.push(r);
        Ok(max.is_none_or(|m| (list.len() as u64) < m))
    })?;
    Ok(list)
}

/// Every source and target of the store, as JSON objects in name order:
/// `{"sources": [...], "targets": [...]}`.
///
/// A source: `name`, `vcs`, `location`, `snapshots`, `latest`. A target:
/// `name`, `location`, `source`, `path`, `ref`, `desired` (the snapshot
/// it would move to now, or `null` when that does not resolve, with
/// `desired_error`), `applied`, `pinned`, `pending` (whether desired and
/// applied trees differ), `drift` (`in-sync`, `drifted` or `unknown`, from
/// the last drift check since the last apply), `drifted` (paths) and
/// `last_run` (a run, or `null`).
pub fn status(store: &Store) -> Result<Value, StoreError> {
    let mut sources = Vec::new();
    for s in store.sources()? {
        let head = store.head(&s.name)?;
        sources.push(json!({
            "name": s.name,
            "vcs": s.vcs.kind().name,
            "location": s.location,
            "snapshots": head.as_ref().map_or(0, |h| h.seq),
            "latest": head.map(|h| h.id.to_string()),
        }));
    }
    let mut targets = Vec::new();
    for t in store.targets()? {
        let applied = store.applied_snapshot(&t.name)?;
        let desired = reconcile::choose(store, &t, None);
        let pending = match &desired {
            Ok(d) => Some(reconcile::tree_changed(store, &t, *d, applied)?),
            Err(_) => None,
        };
        let recent = runs(store, &t.name, Some(64))?;
        let last_run = recent.first();
        // The newest drift check after the newest apply tells the drift.
        let mut drift = "unknown";
        let mut drifted = 0u64;
        for r in &recent {
            match r.kind {
                RunKind::Drift => {
                    drifted = r.counts.drifted;
                    drift = if drifted == 0 { "in-sync" } else { "drifted" };
                    break;
                }
                RunKind::Apply | RunKind::Rollback => break,
                RunKind::Unpin => {}
            }
        }
        targets.push(json!({
            "name": t.name,
            "location": t.location,
            "source": t.source,
            "path": t.path,
            "ref": t.sel,
            "desired": desired.as_ref().ok().map(ToString::to_string),
            "desired_error": desired.as_ref().err().map(ToString::to_string),
            "applied": applied.map(|s| s.to_string()),
            "pinned": t.pinned().map(|p| p.to_string()),
            "pending": pending,
            "drift": drift,
            "drifted": drifted,
            "last_run": last_run.map(run_json),
        }));
    }
    Ok(json!({ "sources": sources, "targets": targets }))
}
