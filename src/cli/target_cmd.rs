//! `plumb target add|set|list|remove`, and the reconcile commands: `plan`,
//! `apply`, `drift`, `rollback`, `unpin`, `runs`.

use super::output::{errln, outln};
use std::io::{self, Write};
use std::path::Path;

use clap::Subcommand;
use plumb_core::target::Observed;

use plumb::reconcile::define;
use plumb::reconcile::desired::{Desired, short};
use plumb::reconcile::drift::{DriftKind, Drifted};
use plumb::reconcile::guard::MassDelete;
use plumb::reconcile::hooks::{Hook, HookRun, Hooks};
use plumb::reconcile::plan::{Action, Conflict, Options, Plan, Step, Tally};
use plumb::reconcile::targets::Location;
use plumb::reconcile::{self, ReconcileError};
use plumb::reconcile::{Record, RunKind, TargetDef, TargetStore};
use plumb::store::{Store, StoreError, Wait};

use plumb::status::{counts_json, hook_json, run_json};

use super::files::write_text_diff;
use super::json::{self, Ended, Outcome, Refusal};
use super::output::{color_stdout, ignore_broken_pipe, label};
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
        /// The largest share of the paths plumb owns that one apply may delete without --allow-mass-delete, in percent [default: 50].
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
        max_delete: Option<u8>,
        #[command(flatten)]
        hooks: HookFlags,
    },
    /// Change a target in place, keeping what it applied: prune, path, ref, delete share, or a plugin's command.
    Set {
        /// The target.
        name: String,
        /// A new exec:PROGRAM [ARGS...] for a plugin target (a directory target's root cannot change: a new root is a new target).
        #[arg(long, value_name = "LOCATION")]
        location: Option<String>,
        /// Delete what plumb created and the snapshot dropped.
        #[arg(long, conflicts_with = "no_prune")]
        prune: bool,
        /// Leave what the snapshot dropped in place.
        #[arg(long)]
        no_prune: bool,
        /// Reconcile only this subdirectory of each snapshot.
        #[arg(long, value_name = "SUBDIR", conflicts_with = "no_path")]
        path: Option<String>,
        /// Reconcile the whole snapshot.
        #[arg(long)]
        no_path: bool,
        /// Follow this selector instead of the latest snapshot.
        #[arg(long = "ref", value_name = "SEL", conflicts_with = "no_ref")]
        sel: Option<String>,
        /// Follow the latest snapshot.
        #[arg(long)]
        no_ref: bool,
        /// The largest share of the paths plumb owns that one apply may delete without --allow-mass-delete, in percent.
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
        max_delete: Option<u8>,
        #[command(flatten)]
        hooks: HookFlags,
        /// Remove the check hook.
        #[arg(long, conflicts_with_all = ["check", "check_timeout"])]
        no_check: bool,
        /// Remove the after hook.
        #[arg(long, conflicts_with_all = ["after", "after_timeout"])]
        no_after: bool,
        /// Remove the health hook.
        #[arg(long, conflicts_with_all = ["health", "health_timeout"])]
        no_health: bool,
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

/// The hook flags of `target add` and `target set`.
#[derive(Debug, clap::Args)]
pub struct HookFlags {
    /// Run CMD (split into words, no shell: write `sh -c '…'` for one) on
    /// the staged new tree before anything changes; a non-zero exit refuses
    /// the apply. Placeholders: {staged} {root} {changed} {target}
    /// {snapshot} {revision}.
    #[arg(long, value_name = "CMD")]
    check: Option<String>,
    /// How long the check may run before its process group is killed [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    check_timeout: Option<std::time::Duration>,
    /// Run CMD after an apply that changed something (a reload, like
    /// `systemctl reload nginx`); a non-zero exit fails the run.
    /// Placeholders as for --check, {staged} empty.
    #[arg(long, value_name = "CMD")]
    after: Option<String>,
    /// How long the after hook may run before its process group is killed [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    after_timeout: Option<std::time::Duration>,
    /// Run CMD after the after hook, again until it exits 0 or
    /// --health-timeout passes (like `curl -fsS http://127.0.0.1/healthz`);
    /// when it never passes, the run fails. Placeholders as for --after.
    #[arg(long, value_name = "CMD")]
    health: Option<String>,
    /// How long the health hook is retried, all attempts together [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    health_timeout: Option<std::time::Duration>,
}

impl HookFlags {
    /// `old` with the hooks these flags set.
    fn to_hooks(&self, mut old: Hooks) -> anyhow::Result<Hooks> {
        set_hook(
            &mut old.check,
            "check",
            self.check.as_deref(),
            self.check_timeout,
        )?;
        set_hook(
            &mut old.after,
            "after",
            self.after.as_deref(),
            self.after_timeout,
        )?;
        set_hook(
            &mut old.health,
            "health",
            self.health.as_deref(),
            self.health_timeout,
        )?;
        Ok(old)
    }
}

/// Sets hook `which` from `--WHICH CMD` and `--WHICH-timeout DURATION`:
/// a new command replaces the hook, a timeout alone changes the one set.
fn set_hook(
    slot: &mut Option<Hook>,
    which: &str,
    command: Option<&str>,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    match (command, timeout, slot.as_mut()) {
        (Some(cmd), timeout, _) => {
            let hook = Hook::parse(cmd, timeout)
                .map_err(|e| super::UsageError(format!("--{which}: {e}")))?;
            *slot = Some(hook);
        }
        (None, Some(timeout), Some(hook)) => hook.timeout_ms = Some(Hook::millis(timeout)),
        (None, Some(_), None) => {
            return Err(super::UsageError(format!(
                "--{which}-timeout needs a hook to time (--{which} CMD)"
            ))
            .into());
        }
        (None, None, _) => {}
    }
    Ok(())
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
            max_delete,
            hooks,
        } => {
            store.source(source)?;
            let location = Location::normalize(location)?;
            let def = TargetDef {
                name: name.clone(),
                workdir: workdir_for(&location)?,
                location,
                source: source.clone(),
                path: path.clone(),
                sel: sel.clone(),
                prune: *prune,
                pin: None,
                max_delete: *max_delete,
                hooks: hooks.to_hooks(Hooks::default())?,
            };
            define::check(&def, &store.targets()?, store.path())?;
            store.add_target(&def)?;
            outln!("added target {name} ({}) following {source}", def.location);
            Ok(exit::OK)
        }
        TargetCommand::Set {
            name,
            location,
            prune,
            no_prune,
            path,
            no_path,
            sel,
            no_ref,
            max_delete,
            hooks,
            no_check,
            no_after,
            no_health,
        } => {
            let old = store.target(name)?;
            let mut def = old.clone();
            if let Some(text) = location {
                let location = Location::normalize(text)?;
                if location != old.location
                    && (old.location.root().is_some()
                        || location.kind().name != old.location.kind().name)
                {
                    anyhow::bail!(
                        "target {name} is at {}; a new root is a new target (`plumb target add` one, then `plumb target remove {name}`)",
                        old.location
                    );
                }
                def.workdir = workdir_for(&location)?;
                def.location = location;
            }
            if *prune || *no_prune {
                def.prune = *prune;
            }
            if path.is_some() || *no_path {
                def.path = path.clone();
            }
            if sel.is_some() || *no_ref {
                def.sel = sel.clone();
            }
            if max_delete.is_some() {
                def.max_delete = *max_delete;
            }
            def.hooks = hooks.to_hooks(def.hooks)?;
            if *no_check {
                def.hooks.check = None;
            }
            if *no_after {
                def.hooks.after = None;
            }
            if *no_health {
                def.hooks.health = None;
            }
            define::check(&def, &store.targets()?, store.path())?;
            if def == old {
                outln!("target {name} unchanged");
                return Ok(exit::OK);
            }
            store.record(Record {
                target: name,
                inventory: None,
                run: None,
                def: Some(&def),
            })?;
            outln!(
                "changed target {name} ({}) following {}",
                def.location,
                def.source
            );
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
                            "max_delete": t.max_delete(),
                            "hooks": &t.hooks,
                            "pinned": t.pinned().map(|p| p.to_string()),
                            "snapshot": store.applied_snapshot(&t.name)?.map(|s| s.to_string()),
                        }))
                    })
                    .collect::<Result<_, StoreError>>()?;
                json::print(Outcome::Ok, serde_json::json!({ "targets": list }))?;
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
                    let share = t
                        .max_delete
                        .map_or(String::new(), |m| format!(" (max-delete {m}%)"));
                    ignore_broken_pipe(writeln!(
                        out,
                        "{}\t{}\t{}{}{}{}{share}\t{applied}{pin}",
                        t.name,
                        t.location,
                        t.source,
                        t.sel.as_deref().map_or(String::new(), |s| format!("@{s}")),
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

/// The working directory a target at `location` records: the current
/// one, for a kind that runs somewhere (a plugin).
fn workdir_for(location: &Location) -> anyhow::Result<Option<String>> {
    if !location.kind().workdir {
        return Ok(None);
    }
    let dir = plumb::reconcile::targets::current_dir()?;
    match dir.to_str() {
        Some(d) => Ok(Some(d.to_owned())),
        None => anyhow::bail!("the current directory {dir:?} is not UTF-8"),
    }
}

fn options(def: &TargetDef, adopt: bool, allow_mass_delete: bool) -> Options {
    Options {
        prune: def.prune,
        adopt,
        allow_mass_delete,
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

/// A step in JSON; `diff` is the unified diff of an updated text file.
fn step_json(s: &Step, diff: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "path": json::bytes(s.path.as_bytes()),
        "action": s.action.name(),
        "kind": s.desired.as_ref().map(Desired::kind_name),
        "detail": step_detail(s),
        "diff": diff,
    })
}

/// A conflict in JSON.
fn conflict_json(c: &Conflict) -> serde_json::Value {
    serde_json::json!({
        "path": json::bytes(c.path.as_bytes()),
        "reason": c.reason.to_string(),
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

/// The diff `a` → `b` as text, for JSON.
fn diff_text(a: &str, b: &str, x: &[u8], y: &[u8]) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    write_text_diff(&mut buf, a, b, x, y, false)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// For a step updating a file's content: what the target holds and what
/// the snapshot wants, when they differ.
fn step_sides(
    target: &mut dyn plumb_core::target::Target,
    store: &Store,
    s: &Step,
) -> anyhow::Result<Option<Sides>> {
    let (Action::Update { .. }, Some(Desired::File { blob, .. }), Observed::File { .. }) =
        (&s.action, &s.desired, &s.observed)
    else {
        return Ok(None);
    };
    if !diffable(store, blob)? {
        return Ok(None);
    }
    let now = match reconcile::observed_bytes(target, &s.path) {
        Ok(now) => now,
        Err(reason) => return Ok(Some(Sides::Unreadable(reason))),
    };
    let want = store.blob(blob)?.into_data();
    Ok((now != want).then_some(Sides::Diff(now, want)))
}

/// Whether a file is small enough to show a diff of: not a blob kept in
/// chunks (over [`CHUNK_SIZE`](plumb_core::chunks::CHUNK_SIZE)), which
/// would be read whole, on both sides, for a diff nobody reads.
fn diffable(store: &Store, blob: &plumb_core::BlobId) -> anyhow::Result<bool> {
    Ok(store
        .blob_size(blob)?
        .is_none_or(|n| n <= plumb_core::chunks::CHUNK_SIZE))
}

/// What a plan or drift shows of one file: the two sides of its diff, or
/// why the target's side could not be read (never an empty file in its
/// place).
enum Sides {
    /// The left and right side.
    Diff(Vec<u8>, Vec<u8>),
    /// The target's file could not be read, and why.
    Unreadable(String),
}

impl Sides {
    /// Adds `diff` (the unified diff, sides labelled `left` and `right`)
    /// or `read_error` to a JSON entry.
    fn add_to(
        sides: Option<Self>,
        v: &mut serde_json::Value,
        (left, right): (&str, &str),
        path: &[u8],
    ) -> anyhow::Result<()> {
        match sides {
            Some(Sides::Diff(a, b)) => {
                v["diff"] = diff_text(&label(left, path), &label(right, path), &a, &b)?.into();
            }
            Some(Sides::Unreadable(reason)) => v["read_error"] = reason.into(),
            None => {}
        }
        Ok(())
    }

    /// Writes the diff, or a `could not read PATH: REASON` line.
    fn write(
        sides: Option<Self>,
        out: &mut impl Write,
        (left, right): (&str, &str),
        path: &plumb_core::target::TargetPath,
        color: bool,
    ) -> anyhow::Result<()> {
        let p = path.as_bytes();
        match sides {
            Some(Sides::Diff(a, b)) => {
                write_text_diff(out, &label(left, p), &label(right, p), &a, &b, color)?;
            }
            Some(Sides::Unreadable(reason)) => writeln!(out, "could not read {path}: {reason}")?,
            None => {}
        }
        Ok(())
    }
}

/// A step in JSON with its diff (or why the target's side is unreadable).
fn step_json_with_diff(
    target: &mut dyn plumb_core::target::Target,
    store: &Store,
    s: &Step,
) -> anyhow::Result<serde_json::Value> {
    let mut v = step_json(s, None);
    Sides::add_to(
        step_sides(target, store, s)?,
        &mut v,
        ("target", "snapshot"),
        s.path.as_bytes(),
    )?;
    Ok(v)
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
        let sides = step_sides(target, store, s)?;
        Sides::write(sides, out, ("target", "snapshot"), &s.path, color)?;
    }
    writeln!(out, "{}", counts_line(&plan.tally()))?;
    Ok(())
}

/// Writes with `write`, treating a closed pipe as the reader having seen
/// enough.
fn finish_output(r: anyhow::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) => match e.downcast::<io::Error>() {
            Ok(io) => ignore_broken_pipe(Err(io)),
            Err(other) => Err(other),
        },
        Ok(()) => Ok(()),
    }
}

/// `plumb plan`: exit 0 when there is nothing to do, 2 when there is.
pub fn plan(
    store: &Store,
    name: &str,
    rev: Option<&str>,
    adopt: bool,
    check: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let def = store.target(name)?;
    let snapshot = reconcile::choose(store, &def, rev)?;
    let mut target = reconcile::open_target(&def).within(|| name)?;
    let prepared = reconcile::prepare(
        store,
        &def,
        target.as_mut(),
        snapshot,
        options(&def, adopt, false),
    )
    .within(|| name)?;
    let plan = &prepared.plan;
    let tally = plan.tally();
    if check && def.hooks.check.is_none() {
        return Err(super::UsageError(format!(
            "target {name} has no check hook (`plumb target set {name} --check CMD`)"
        ))
        .into());
    }
    let checked = match check {
        true => reconcile::hooks::check(store, &def, plan, snapshot).within(|| name)?,
        false => None,
    };
    let check_failed = checked.as_ref().is_some_and(|c| !c.succeeded());
    let (code, outcome) = if check_failed {
        (exit::ERROR, Outcome::Refused)
    } else if tally.conflict > 0 {
        (exit::CHANGES, Outcome::Conflict)
    } else if plan.has_changes() {
        (exit::CHANGES, Outcome::Changes)
    } else {
        (exit::OK, Outcome::InSync)
    };
    if json {
        let mut steps = Vec::new();
        for s in plan.steps.iter().filter(|s| s.action != Action::Keep) {
            steps.push(step_json_with_diff(target.as_mut(), store, s)?);
        }
        json::print(
            outcome,
            serde_json::json!({
                "target": def.name,
                "snapshot": snapshot.to_string(),
                "pinned": def.pinned().map(|p| p.to_string()),
                "counts": counts_json(&reconcile::plan_counts(plan), Some(tally.retain)),
                "steps": steps,
                "warnings": prepared.desired.skipped,
                "guard": prepared.guard.as_ref().map(guard_json),
                "hooks": checked.iter().map(hook_json).collect::<Vec<_>>(),
            }),
        )?;
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
    finish_output(
        print_plan(&mut out, target.as_mut(), store, plan)
            .and_then(|()| print_guard(&mut out, prepared.guard.as_ref()))
            .and_then(|()| print_hooks(&mut out, checked.as_slice(), "  "))
            .and_then(|()| Ok(out.flush()?)),
    )?;
    if let Some(failed) = checked.filter(|_| check_failed) {
        errln!(
            "plumb: error: {name}: {}",
            ReconcileError::HookFailed(Box::new(failed))
        );
    }
    Ok(code)
}

/// Each hook run: a line saying how it ended, then its output, each line
/// indented by `indent` and quoted where it needs to be.
fn print_hooks(out: &mut impl Write, hooks: &[HookRun], indent: &str) -> anyhow::Result<()> {
    for h in hooks {
        let argv = plumb_core::quote::quote(h.argv.join(" ").as_bytes()).into_owned();
        writeln!(
            out,
            "{indent}{}: {argv}: {} ({}ms)",
            h.which, h.exit, h.duration_ms
        )?;
        for (stream, text) in [("stdout", &h.stdout), ("stderr", &h.stderr)] {
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                writeln!(
                    out,
                    "{indent}  {stream}: {}",
                    plumb_core::quote::quote(line)
                )?;
            }
        }
        if h.dropped > 0 {
            writeln!(
                out,
                "{indent}  ({} more bytes of output dropped)",
                h.dropped
            )?;
        }
    }
    Ok(())
}

/// The delete guard's refusal in JSON.
fn guard_json(g: &MassDelete) -> serde_json::Value {
    serde_json::json!({
        "trip": g.trip.name(),
        "delete": g.delete,
        "owned": g.owned,
        "max_delete": g.max_delete,
        "message": g.to_string(),
    })
}

/// Says, after a plan, that apply will refuse it without
/// `--allow-mass-delete`.
fn print_guard(out: &mut impl Write, guard: Option<&MassDelete>) -> anyhow::Result<()> {
    if let Some(g) = guard {
        writeln!(out, "! guard    {g}")?;
    }
    Ok(())
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
    /// Apply even when it deletes every path plumb owns on the target, or more than its --max-delete share, or the snapshot is empty.
    #[arg(long)]
    allow_mass_delete: bool,
}

impl ApplyFlags {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }
}

/// `plumb apply` and `plumb rollback`.
pub fn apply(
    store_dir: &Path,
    name: &str,
    rev: Option<&str>,
    flags: &ApplyFlags,
    kind: RunKind,
    wait: Wait,
) -> anyhow::Result<u8> {
    let &ApplyFlags {
        adopt,
        json,
        allow_mass_delete,
    } = flags;
    let _lock = super::lock_target(store_dir, name, wait)?;
    let store = super::open_recording(store_dir, wait)?;
    let def = store.target(name)?;
    if kind == RunKind::Apply
        && let (Some(pin), Some(r)) = (def.pinned(), rev)
    {
        let wanted = reconcile::choose(&store, &def, Some(r))?;
        if wanted != pin {
            return Err(Refusal(format!(
                "target {name} is pinned at {} by a rollback; `plumb rollback {name} {r}` moves the pin, `plumb unpin {name}` releases it",
                short(&pin)
            ))
            .into());
        }
    }
    let snapshot = reconcile::choose(&store, &def, rev)?;
    let mut target = reconcile::open_target(&def).within(|| name)?;
    let bar = super::progress::bar(name);
    bar.set_message("changes");
    let result = reconcile::apply(
        &store,
        &def,
        target.as_mut(),
        snapshot,
        options(&def, adopt, allow_mass_delete),
        kind,
        &|done, total| super::progress::update(&bar, done, total),
    );
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(ReconcileError::Conflicts { list }) => {
            if !json {
                // Every conflict on stdout, like plan shows them; one error line.
                let mut out = io::stdout().lock();
                for c in &list {
                    ignore_broken_pipe(writeln!(out, "! conflict {}  {}", c.path, c.reason))?;
                }
            }
            let fields = serde_json::json!({
                "target": def.name,
                "snapshot": snapshot.to_string(),
                "conflicts": list.iter().map(conflict_json).collect::<Vec<_>>(),
            });
            let e = super::named(name, ReconcileError::Conflicts { list });
            return Err(Ended::new(Outcome::Refused, e, fields).into());
        }
        Err(e) => return Err(e).within(|| name),
    };
    for w in &report.warnings {
        errln!("plumb: warning: {w}");
    }
    let tally = report.plan.tally();
    let unfinished = report.unfinished();
    let mut counts = reconcile::plan_counts(&report.plan);
    counts.failed = report.failed.len() as u64;
    let document = || {
        serde_json::json!({
            "target": def.name,
            "snapshot": report.snapshot.to_string(),
            "run": report.run,
            "counts": counts_json(&counts, Some(tally.retain)),
            "confirmed": report.confirmed,
            "total": report.total,
            "failed": report.failed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "broken": report.broken.as_ref().map(ToString::to_string),
            "steps": report.plan.steps.iter().filter(|s| s.action.changes()).map(|s| step_json(s, None)).collect::<Vec<_>>(),
            "warnings": report.warnings,
        })
    };
    let Some(unfinished) = unfinished else {
        if json {
            json::print(Outcome::Ok, document())?;
            return Ok(exit::OK);
        }
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
        return Ok(exit::OK);
    };
    if report.failed.len() > 1 && !json {
        let mut out = io::stdout().lock();
        for f in &report.failed {
            ignore_broken_pipe(writeln!(out, "! failed   {f}"))?;
        }
    }
    // Nothing above claims success: what was done and what was not is
    // this one line.
    let e = anyhow::anyhow!(
        "{name}: {} failed, {} of {} changes made: {unfinished}; the next {} retries the rest",
        kind.name(),
        report.confirmed,
        report.total,
        kind.name(),
    );
    Err(Ended::new(Outcome::Failed, e, document()).into())
}

/// How a drift check ended.
fn drift_outcome(report: &reconcile::DriftReport) -> Outcome {
    match report.applied {
        _ if !report.drifted.is_empty() => Outcome::Drifted,
        None => Outcome::NeverApplied,
        Some(_) => Outcome::InSync,
    }
}

/// For a modified file: what plumb applied and what the target holds.
fn drift_sides(
    target: &mut dyn plumb_core::target::Target,
    store: &Store,
    d: &Drifted,
) -> anyhow::Result<Option<Sides>> {
    let (DriftKind::Modified, Some(blob)) = (&d.kind, &d.applied_blob) else {
        return Ok(None);
    };
    if !diffable(store, blob)? {
        return Ok(None);
    }
    let was = store.blob(blob)?.into_data();
    Ok(Some(match reconcile::observed_bytes(target, &d.path) {
        Ok(now) => Sides::Diff(was, now),
        Err(reason) => Sides::Unreadable(reason),
    }))
}

fn drift_json(
    target: &mut dyn plumb_core::target::Target,
    store: &Store,
    d: &Drifted,
) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::json!({
        "path": json::bytes(d.path.as_bytes()),
        "drift": d.kind.name(),
        "detail": d.detail,
        "diff": null,
    });
    let sides = drift_sides(target, store, d)?;
    Sides::add_to(sides, &mut v, ("applied", "target"), d.path.as_bytes())?;
    if let Some(a) = &d.attr {
        v["attribute"] = a.attribute.into();
        v["expected"] = a.expected.clone().into();
        v["found"] = a.found.clone().into();
    }
    Ok(v)
}

/// The last line of a drift check: what was found, and what to do about
/// it that is true (apply never removes what plumb does not own).
fn drift_summary(name: &str, def: &TargetDef, report: &reconcile::DriftReport) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let Some(s) = report.applied else {
        if report.drifted.is_empty() {
            return format!(
                "{name}: never applied; nothing to compare (`plumb apply {name}` applies {}'s snapshot)",
                def.source
            );
        }
        return format!(
            "{name}: {} path{} not confirmed by an earlier apply (`plumb apply {name}` finishes it)",
            report.drifted.len(),
            plural(report.drifted.len())
        );
    };
    let n = report.drifted.len();
    if n == 0 {
        return format!("{name}: in sync with snapshot {}", short(&s));
    }
    let added = report
        .drifted
        .iter()
        .filter(|d| d.kind == DriftKind::Added)
        .count();
    let advice = match (n - added, added) {
        (_, 0) => format!("`plumb apply {name}` restores it"),
        (0, a) => format!(
            "{} not plumb's: apply leaves {}; remove {} by hand or add {} to the source",
            if a == 1 { "it is" } else { "they are" },
            if a == 1 { "it" } else { "them" },
            if a == 1 { "it" } else { "them" },
            if a == 1 { "it" } else { "them" },
        ),
        (fix, a) => format!(
            "`plumb apply {name}` restores {fix}; the {a} added path{} not plumb's and apply leaves {}",
            if a == 1 { " is" } else { "s are" },
            if a == 1 { "it" } else { "them" },
        ),
    };
    format!(
        "{name}: {n} path{} drifted from snapshot {} ({advice})",
        plural(n),
        short(&s)
    )
}

/// `plumb drift`: exit 0 in sync, 2 drifted or never applied.
pub fn drift(
    store_dir: &Path,
    name: &str,
    full: bool,
    json: bool,
    wait: Wait,
) -> anyhow::Result<u8> {
    let _lock = super::lock_target(store_dir, name, wait)?;
    let store = super::open_recording(store_dir, wait)?;
    let def = store.target(name)?;
    let mut target = reconcile::open_target(&def).within(|| name)?;
    let report = reconcile::drift(&store, &def, target.as_mut(), full).within(|| name)?;
    let outcome = drift_outcome(&report);
    let code = if outcome == Outcome::InSync {
        exit::OK
    } else {
        exit::CHANGES
    };
    if json {
        let mut drifted = Vec::new();
        for d in &report.drifted {
            drifted.push(drift_json(target.as_mut(), &store, d)?);
        }
        json::print(
            outcome,
            serde_json::json!({
                "target": def.name,
                "snapshot": report.applied.map(|s| s.to_string()),
                "run": report.run,
                "drifted": drifted,
            }),
        )?;
        return Ok(code);
    }
    let color = color_stdout();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let r: anyhow::Result<()> = (|| {
        for d in &report.drifted {
            writeln!(out, "{:<11} {}  {}", d.kind.name(), d.path, d.detail)?;
        }
        for d in &report.drifted {
            let sides = drift_sides(target.as_mut(), &store, d)?;
            Sides::write(sides, &mut out, ("applied", "target"), &d.path, color)?;
        }
        writeln!(out, "{}", drift_summary(name, &def, &report))?;
        Ok(out.flush()?)
    })();
    finish_output(r)?;
    Ok(code)
}

/// `plumb unpin`.
pub fn unpin(store_dir: &Path, name: &str, wait: Wait) -> anyhow::Result<u8> {
    let _lock = super::lock_target(store_dir, name, wait)?;
    let store = super::open_writer(store_dir, wait)?;
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

/// `plumb runs`: the audit log, newest first.
pub fn runs(store: &Store, name: &str, max: Option<u64>, json: bool) -> anyhow::Result<u8> {
    let list = plumb::status::runs(store, name, max)?;
    if json {
        json::print(
            Outcome::Ok,
            serde_json::json!({
                "target": name,
                "runs": list.iter().map(run_json).collect::<Vec<_>>(),
            }),
        )?;
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
            "{:>4} {time} {:<8} {:<13} {snap} {what} {}ms {}@{}{err}",
            r.seq,
            r.kind.name(),
            plumb::status::run_outcome(r),
            r.duration_ms,
            r.user,
            r.host
        ))?;
        finish_output(print_hooks(&mut out, &r.hooks, "     "))?;
    }
    Ok(exit::OK)
}
