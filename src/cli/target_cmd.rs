//! `plumb target add|list|remove`, and the reconcile commands: `plan`,
//! `apply`, `drift`, `rollback`, `unpin`, `runs`.

use super::output::{errln, outln};
use std::io::{self, Write};
use std::path::Path;

use clap::Subcommand;
use plumb_core::target::Observed;

use plumb::reconcile::desired::{Desired, short};
use plumb::reconcile::drift::{DriftKind, Drifted};
use plumb::reconcile::lock::TargetLock;
use plumb::reconcile::plan::{Action, Options, Plan, Step, Tally};
use plumb::reconcile::targets::Location;
use plumb::reconcile::{self, ReconcileError};
use plumb::reconcile::{RunKind, RunRecord, TargetDef, TargetStore};
use plumb::store::{Store, StoreError};

use super::files::write_text_diff;
use super::output::{color_stdout, ignore_broken_pipe, print_json};
use super::{Within, exit};

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Define a target: where a source's snapshots are reconciled.
    Add {
        /// A name for it: letters, digits, '.', '_', '-'.
        name: String,
        /// dir:PATH (a directory tree) or exec:PROGRAM [ARGS...] (a plugin).
        location: String,
        /// The source whose snapshots it follows.
        #[arg(long)]
        source: String,
        /// Reconcile only this subdirectory of each snapshot.
        #[arg(long, value_name = "SUBDIR")]
        path: Option<String>,
        /// Follow this selector instead of the latest snapshot (a branch, tag or revision, as after NAME@).
        #[arg(long = "ref", value_name = "SEL")]
        sel: Option<String>,
        /// Delete what plumb created and the snapshot dropped.
        #[arg(long)]
        prune: bool,
    },
    /// List targets.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a target (what it applied stays where it is).
    Remove {
        /// The target.
        name: String,
    },
}

pub fn run(store: &Store, cmd: &TargetCommand) -> anyhow::Result<u8> {
    match cmd {
        TargetCommand::Add {
            name,
            location,
            source,
            path,
            sel,
            prune,
        } => {
            store.source(source)?;
            let def = TargetDef {
                name: name.clone(),
                location: Location::normalize(location)?,
                source: source.clone(),
                path: path.clone(),
                sel: sel.clone(),
                prune: *prune,
                pin: None,
            };
            store.add_target(&def)?;
            outln!("added target {name} ({}) following {source}", def.location);
            Ok(exit::OK)
        }
        TargetCommand::List { json } => {
            let targets = store.targets()?;
            if *json {
                let list: Vec<_> = targets
                    .iter()
                    .map(|t| {
                        Ok(serde_json::json!({
                            "name": t.name,
                            "location": t.location,
                            "source": t.source,
                            "path": t.path,
                            "ref": t.sel,
                            "prune": t.prune,
                            "pinned": t.pinned().map(|p| p.to_string()),
                            "applied": store.applied_snapshot(&t.name)?.map(|s| s.to_string()),
                        }))
                    })
                    .collect::<Result<_, StoreError>>()?;
                print_json(&serde_json::Value::Array(list))?;
            } else {
                let mut out = io::stdout().lock();
                for t in targets {
                    let applied = store
                        .applied_snapshot(&t.name)?
                        .map_or("never applied".to_string(), |s| {
                            format!("applied {}", short(&s))
                        });
                    let pin = t
                        .pinned()
                        .map_or(String::new(), |p| format!(", pinned at {}", short(&p)));
                    ignore_broken_pipe(writeln!(
                        out,
                        "{}\t{}\t{}{}{}\t{applied}{pin}",
                        t.name,
                        t.location,
                        t.source,
                        t.path.as_deref().map_or(String::new(), |p| format!(":{p}")),
                        if t.prune { " (prune)" } else { "" },
                    ))?;
                }
            }
            Ok(exit::OK)
        }
        TargetCommand::Remove { name } => {
            store.remove_target(name)?;
            outln!("removed target {name}");
            Ok(exit::OK)
        }
    }
}

/// Opens the store for writing; with `wait`, waits while another process
/// holds it.
pub fn open_store_waiting(dir: &Path, wait: bool) -> anyhow::Result<Store> {
    loop {
        match Store::open(dir) {
            Err(StoreError::Locked { .. }) if wait => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return Ok(other?),
        }
    }
}

fn options(def: &TargetDef, adopt: bool) -> Options {
    Options {
        prune: def.prune,
        adopt,
    }
}

fn mark(action: &Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update { .. } => "~",
        Action::Delete => "-",
        Action::Keep => "=",
        Action::Retain { .. } => "·",
        Action::Forget => "·",
        Action::Conflict { .. } => "!",
    }
}

fn step_detail(s: &Step) -> String {
    match (&s.action, &s.desired) {
        (Action::Create, Some(d)) => d.kind_name().to_string(),
        (Action::Update { reason, .. }, _) | (Action::Retain { reason }, _) => reason.clone(),
        (Action::Conflict { reason }, _) => reason.to_string(),
        (Action::Forget, _) => "no longer tracked (plumb did not create it, or it is gone)".into(),
        _ => String::new(),
    }
}

fn step_json(s: &Step) -> serde_json::Value {
    serde_json::json!({
        "path": s.path.to_string(),
        "action": s.action.name(),
        "kind": s.desired.as_ref().map(Desired::kind_name),
        "detail": step_detail(s),
    })
}

fn counts_line(tally: &Tally) -> String {
    format!(
        "{} to create, {} to update, {} to delete, {} unchanged, {} conflict{}",
        tally.create,
        tally.update,
        tally.delete,
        tally.keep,
        tally.conflict,
        if tally.conflict == 1 { "" } else { "s" }
    )
}

/// The counts of a plan in JSON, with `conflict` for a plan not applied.
fn counts_json(tally: &Tally, with_conflicts: bool) -> serde_json::Value {
    let mut counts = serde_json::json!({
        "create": tally.create,
        "update": tally.update,
        "delete": tally.delete,
        "keep": tally.keep,
        "retain": tally.retain,
    });
    if with_conflicts {
        counts["conflict"] = tally.conflict.into();
    }
    counts
}

/// Prints a plan: one line per path that is not simply kept, then a diff
/// of each updated file against what the target holds.
fn print_plan(
    out: &mut impl Write,
    target: &mut dyn plumb_core::target::Target,
    store: &Store,
    plan: &Plan,
) -> anyhow::Result<()> {
    let color = color_stdout();
    for s in plan.steps.iter().filter(|s| s.action != Action::Keep) {
        let detail = step_detail(s);
        let sep = if detail.is_empty() { "" } else { "  " };
        writeln!(
            out,
            "{} {:<8} {}{sep}{detail}",
            mark(&s.action),
            s.action.name(),
            s.path
        )?;
    }
    for s in &plan.steps {
        if let Some(blob) = diffed_blob(s) {
            let now = match reconcile::observed_bytes(target, &s.path) {
                Ok(now) => now,
                Err(reason) => {
                    writeln!(out, "could not read {}: {reason}", s.path)?;
                    continue;
                }
            };
            let want = store.blob(blob)?.into_data();
            if now != want {
                let name = s.path.to_string();
                write_text_diff(
                    out,
                    &format!("target/{name}"),
                    &format!("snapshot/{name}"),
                    &now,
                    &want,
                    color,
                )?;
            }
        }
    }
    writeln!(out, "{}", counts_line(&plan.tally()))?;
    Ok(())
}

/// The snapshot's blob of a step whose diff a plan shows: an update of a
/// file that is a file now.
fn diffed_blob(s: &Step) -> Option<&plumb_core::BlobId> {
    match (&s.action, &s.desired, &s.observed) {
        (Action::Update { .. }, Some(Desired::File { blob, .. }), Observed::File { .. }) => {
            Some(blob)
        }
        _ => None,
    }
}

/// Adds `read_error` to a JSON step or drift entry whose target side
/// cannot be read, as its text form says `could not read PATH: REASON` in
/// place of a diff.
fn with_read_error(
    mut v: serde_json::Value,
    target: &mut dyn plumb_core::target::Target,
    path: &plumb_core::target::TargetPath,
) -> serde_json::Value {
    if let Err(reason) = reconcile::observed_bytes(target, path) {
        v["read_error"] = reason.into();
    }
    v
}

/// `plumb plan`: exit 0 when there is nothing to do, 2 when there is.
pub fn plan(
    store: &Store,
    name: &str,
    rev: Option<&str>,
    adopt: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let def = store.target(name)?;
    let snapshot = reconcile::choose(store, &def, rev)?;
    let mut target = reconcile::open_target(&def).within(|| name)?;
    let prepared = reconcile::prepare(store, &def, target.as_mut(), snapshot, options(&def, adopt))
        .within(|| name)?;
    let plan = &prepared.plan;
    let tally = plan.tally();
    let code = if plan.has_changes() || tally.conflict > 0 {
        exit::CHANGES
    } else {
        exit::OK
    };
    if json {
        print_json(&serde_json::json!({
            "target": def.name,
            "snapshot": snapshot.to_string(),
            "pinned": def.pinned().is_some(),
            "counts": counts_json(&tally, true),
            "steps": plan.steps.iter().filter(|s| s.action != Action::Keep).map(|s| match diffed_blob(s) {
                Some(_) => with_read_error(step_json(s), target.as_mut(), &s.path),
                None => step_json(s),
            }).collect::<Vec<_>>(),
            "warnings": prepared.desired.skipped,
        }))?;
        return Ok(code);
    }
    for w in &prepared.desired.skipped {
        errln!("plumb: warning: {w}");
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    ignore_broken_pipe(writeln!(
        out,
        "plan for {} ({}) to snapshot {}{}",
        def.name,
        def.location,
        short(&snapshot),
        if def.pinned().is_some() {
            " (pinned)"
        } else {
            ""
        }
    ))?;
    match print_plan(&mut out, target.as_mut(), store, plan) {
        Err(e) => match e.downcast::<io::Error>() {
            Ok(io) => ignore_broken_pipe(Err(io))?,
            Err(other) => return Err(other),
        },
        Ok(()) => ignore_broken_pipe(out.flush())?,
    }
    Ok(code)
}

/// The flags `apply` and `rollback` share.
#[derive(Debug, clap::Args)]
pub struct ApplyFlags {
    /// Take over paths plumb does not own, and delete owned ones changed by hand.
    #[arg(long)]
    adopt: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Wait for another plumb process using the target or the store, instead of failing.
    #[arg(long)]
    wait: bool,
}

/// `plumb apply` and `plumb rollback`.
pub fn apply(
    store_dir: &Path,
    name: &str,
    rev: Option<&str>,
    flags: &ApplyFlags,
    kind: RunKind,
) -> anyhow::Result<u8> {
    let &ApplyFlags { adopt, json, wait } = flags;
    let _lock = TargetLock::acquire(store_dir, name, wait)?;
    let store = open_store_waiting(store_dir, wait)?;
    let def = store.target(name)?;
    if kind == RunKind::Apply
        && let (Some(pin), Some(r)) = (def.pinned(), rev)
    {
        let wanted = reconcile::choose(&store, &def, Some(r))?;
        if wanted != pin {
            anyhow::bail!(
                "target {name} is pinned at {} by a rollback; `plumb rollback {name} {r}` moves the pin, `plumb unpin {name}` releases it",
                short(&pin)
            );
        }
    }
    let snapshot = reconcile::choose(&store, &def, rev)?;
    let mut target = reconcile::open_target(&def).within(|| name)?;
    let bar = super::ingest_cmd::progress_bar(name);
    bar.set_message("changes");
    let result = reconcile::apply(
        &store,
        &def,
        target.as_mut(),
        snapshot,
        options(&def, adopt),
        kind,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if let ReconcileError::Conflicts { list } = &e {
                // Every conflict on stdout, like plan shows them; one error line.
                let mut out = io::stdout().lock();
                for c in list {
                    ignore_broken_pipe(writeln!(out, "! conflict {}  {}", c.path, c.reason))?;
                }
            }
            return Err(e).within(|| name);
        }
    };
    for w in &report.warnings {
        errln!("plumb: warning: {w}");
    }
    let tally = report.plan.tally();
    if json {
        print_json(&serde_json::json!({
            "target": def.name,
            "snapshot": report.snapshot.to_string(),
            "run": report.run,
            "counts": counts_json(&tally, false),
            "confirmed": report.confirmed,
            "failed": report.failed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "broken": report.broken.as_ref().map(ToString::to_string),
            "steps": report.plan.steps.iter().filter(|s| s.action.changes()).map(step_json).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut out = io::stdout().lock();
        for s in report.plan.steps.iter().filter(|s| s.action.changes()) {
            ignore_broken_pipe(writeln!(
                out,
                "{} {:<8} {}",
                mark(&s.action),
                s.action.name(),
                s.path
            ))?;
        }
        ignore_broken_pipe(writeln!(
            out,
            "{name}: {} snapshot {} (run {}): {} created, {} updated, {} deleted, {} unchanged",
            if kind == RunKind::Rollback {
                "rolled back to"
            } else {
                "applied"
            },
            short(&report.snapshot),
            report.run,
            tally.create,
            tally.update,
            tally.delete,
            tally.keep,
        ))?;
        if kind == RunKind::Rollback {
            ignore_broken_pipe(writeln!(
                out,
                "{name} is pinned there; `plumb unpin {name}` lets it follow {} again",
                def.source
            ))?;
        }
    }
    if report.failed.len() > 1 {
        let mut out = io::stdout().lock();
        for f in &report.failed {
            ignore_broken_pipe(writeln!(out, "! failed   {f}"))?;
        }
    }
    if let Some(unfinished) = report.unfinished() {
        anyhow::bail!("{name}: {unfinished}; the next apply retries them");
    }
    Ok(exit::OK)
}

fn drift_json(d: &Drifted) -> serde_json::Value {
    serde_json::json!({
        "path": d.path.to_string(),
        "drift": d.kind.name(),
        "detail": d.detail,
    })
}

/// `plumb drift`: exit 0 in sync, 2 drifted.
pub fn drift(
    store_dir: &Path,
    name: &str,
    full: bool,
    json: bool,
    wait: bool,
) -> anyhow::Result<u8> {
    let _lock = TargetLock::acquire(store_dir, name, wait)?;
    let store = open_store_waiting(store_dir, wait)?;
    let def = store.target(name)?;
    let mut target = reconcile::open_target(&def).within(|| name)?;
    let report = reconcile::drift(&store, &def, target.as_mut(), full).within(|| name)?;
    let code = if report.drifted.is_empty() {
        exit::OK
    } else {
        exit::CHANGES
    };
    if json {
        print_json(&serde_json::json!({
            "target": def.name,
            "applied": report.applied.map(|s| s.to_string()),
            "in_sync": report.drifted.is_empty(),
            "run": report.run,
            "drift": report.drifted.iter().map(|d| match (&d.kind, &d.applied_blob) {
                (DriftKind::Modified, Some(_)) => with_read_error(drift_json(d), target.as_mut(), &d.path),
                _ => drift_json(d),
            }).collect::<Vec<_>>(),
        }))?;
        return Ok(code);
    }
    let color = color_stdout();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let r: io::Result<()> = (|| {
        for d in &report.drifted {
            writeln!(out, "{:<11} {}  {}", d.kind.name(), d.path, d.detail)?;
        }
        for d in &report.drifted {
            if let (DriftKind::Modified, Some(blob)) = (&d.kind, &d.applied_blob) {
                let was = store
                    .blob(blob)
                    .map(|b| b.into_data())
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let now = match reconcile::observed_bytes(target.as_mut(), &d.path) {
                    Ok(now) => now,
                    Err(reason) => {
                        writeln!(out, "could not read {}: {reason}", d.path)?;
                        continue;
                    }
                };
                let name = d.path.to_string();
                write_text_diff(
                    &mut out,
                    &format!("applied/{name}"),
                    &format!("target/{name}"),
                    &was,
                    &now,
                    color,
                )?;
            }
        }
        match report.applied {
            None => writeln!(out, "{name}: never applied"),
            Some(s) if report.drifted.is_empty() => {
                writeln!(out, "{name}: in sync with snapshot {}", short(&s))
            }
            Some(s) => writeln!(
                out,
                "{name}: {} path{} drifted from snapshot {} (`plumb apply {name}` restores it)",
                report.drifted.len(),
                if report.drifted.len() == 1 { "" } else { "s" },
                short(&s)
            ),
        }?;
        out.flush()
    })();
    ignore_broken_pipe(r)?;
    Ok(code)
}

/// `plumb unpin`.
pub fn unpin(store_dir: &Path, name: &str, wait: bool) -> anyhow::Result<u8> {
    let _lock = TargetLock::acquire(store_dir, name, wait)?;
    let store = open_store_waiting(store_dir, wait)?;
    let def = store.target(name)?;
    match reconcile::unpin(&store, &def)? {
        Some(was) => outln!(
            "{name}: unpinned from {}; it follows {} again",
            short(&was),
            def.source
        ),
        None => outln!("{name}: was not pinned"),
    }
    Ok(exit::OK)
}

fn run_json(r: &RunRecord) -> serde_json::Value {
    serde_json::json!({
        "run": r.seq,
        "kind": r.kind.name(),
        "time": jiff::Timestamp::from_millisecond(r.started_ms).map(|t| t.to_string()).unwrap_or_default(),
        "duration_ms": r.duration_ms,
        "user": r.user,
        "host": r.host,
        "snapshot": r.snapshot_id().map(|s| s.to_string()),
        "outcome": r.outcome.name(),
        "counts": {
            "create": r.counts.create,
            "update": r.counts.update,
            "delete": r.counts.delete,
            "keep": r.counts.keep,
            "conflict": r.counts.conflict,
            "drifted": r.counts.drifted,
            "failed": r.counts.failed,
        },
        "error": r.error,
    })
}

/// `plumb runs`: the audit log, newest first.
pub fn runs(store: &Store, name: &str, max: Option<u64>, json: bool) -> anyhow::Result<u8> {
    store.target(name)?;
    let mut list = Vec::new();
    store.runs(name, |r| {
        list.push(r);
        Ok(max.is_none_or(|m| (list.len() as u64) < m))
    })?;
    if json {
        print_json(&serde_json::Value::Array(
            list.iter().map(run_json).collect(),
        ))?;
        return Ok(exit::OK);
    }
    let mut out = io::stdout().lock();
    for r in &list {
        let time = jiff::Timestamp::from_millisecond(r.started_ms)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let snap = r.snapshot_id().map_or("-".to_string(), |s| short(&s));
        let c = &r.counts;
        let what = match r.kind {
            RunKind::Drift => format!("{} drifted", c.drifted),
            RunKind::Unpin => String::new(),
            _ => format!("+{} ~{} -{} ={}", c.create, c.update, c.delete, c.keep),
        };
        let err = r
            .error
            .as_deref()
            .map_or(String::new(), |e| format!("  {e}"));
        ignore_broken_pipe(writeln!(
            out,
            "{:>4} {time} {:<8} {:<8} {snap} {what} {}ms {}@{}{err}",
            r.seq,
            r.kind.name(),
            r.outcome.name(),
            r.duration_ms,
            r.user,
            r.host
        ))?;
    }
    Ok(exit::OK)
}
