//! The loops: one per source (poll, ingest, then wake each target whose
//! scoped tree changed) and one per target (reconcile when woken, check
//! drift on its interval), each retrying failures after a growing delay.
//!
//! Each loop waits on its own timer and wake-up, so a slow or failing
//! one delays no other; at most `max_parallel` reconciles run at once.
//! The work itself runs on blocking threads through the same library
//! functions as `plumb ingest`, `plumb apply` and `plumb drift`, taking
//! the store's writer turn (and the target's lock) for each operation
//! only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::config::{Mode, SourceSpec, TargetSpec};
use super::metrics::{Labels, label};
use super::{Agent, backoff, in_ms, lock, now_ms};
use crate::reconcile::plan::Options;
use crate::reconcile::{self, RunKind, TargetStore};
use crate::store::{Store, Wait};

/// A reason to reconcile: the source brought a new tree.
pub const CHANGED: u8 = 1;
/// A reason to reconcile: asked through the API (check drift and apply).
pub const FORCE: u8 = 2;

/// How a loop is woken, and why.
#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    why: AtomicU8,
}

impl Wake {
    /// Wakes the loop for `why` (a set of reasons, ORed).
    pub fn wake(&self, why: u8) {
        self.why.fetch_or(why, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// A running loop.
pub struct Loop {
    task: JoinHandle<()>,
    wake: Arc<Wake>,
    spec: String,
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts, restarts and stops loops to match the configuration: a new
/// or changed source or target gets a fresh loop, one no longer declared
/// loses its own. Adjusts the number of reconciles at once.
pub fn sync_loops(agent: &Arc<Agent>) {
    let config = agent.config();
    let want = config.serve.max_parallel;
    let had = agent.parallel.swap(want, Ordering::SeqCst);
    if want > had {
        agent.permits.add_permits(want - had);
    } else if had > want {
        agent.permits.forget_permits(had - want);
    }
    let mut loops = lock(&agent.loops);
    let mut keep = std::collections::BTreeSet::new();
    for s in &config.sources {
        let key = format!("source:{}", s.name);
        let spec = format!("{s:?}");
        keep.insert(key.clone());
        if loops.get(&key).is_some_and(|l| l.spec == spec) {
            continue;
        }
        let wake = Arc::new(Wake::default());
        let task = tokio::spawn(source_loop(agent.clone(), s.name.clone(), wake.clone()));
        loops.insert(key, Loop { task, wake, spec });
    }
    for t in &config.targets {
        let key = format!("target:{}", t.name);
        let spec = format!("{t:?}");
        keep.insert(key.clone());
        let why = match loops.get(&key) {
            Some(l) if l.spec == spec => continue,
            // A changed definition (another path, say) may change what is
            // desired without a new snapshot: check and apply.
            Some(_) => FORCE,
            None => CHANGED,
        };
        let wake = Arc::new(Wake::default());
        wake.wake(why);
        let task = tokio::spawn(target_loop(agent.clone(), t.name.clone(), wake.clone()));
        loops.insert(key, Loop { task, wake, spec });
    }
    loops.retain(|k, _| keep.contains(k));
}

/// Wakes the loop of source or target `name` (`kind`: `source` or
/// `target`) for `why`; `false` when there is none.
pub fn wake(agent: &Agent, kind: &str, name: &str, why: u8) -> bool {
    match lock(&agent.loops).get(&format!("{kind}:{name}")) {
        Some(l) => {
            l.wake.wake(why);
            true
        }
        None => false,
    }
}

/// Whether every loop still runs.
pub fn alive(agent: &Agent) -> bool {
    lock(&agent.loops).values().all(|l| !l.task.is_finished())
}

/// Counts work in progress for as long as it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` on a blocking thread, counted as work in progress, unless the
/// agent is stopping.
async fn blocking<T: Send + 'static>(
    agent: &Arc<Agent>,
    f: impl FnOnce(&Agent) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        if agent.is_stopping() {
            return Err("stopping".to_owned());
        }
        let _busy = Busy::new(&agent.busy);
        f(&agent)
    })
    .await
    .unwrap_or_else(|e| Err(format!("internal failure: {e}")))
}

/// Waits for `delay` or a wake-up, whichever comes first.
async fn pause(wake: &Wake, delay: Duration) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = wake.notify.notified() => {}
    }
}

async fn source_loop(agent: Arc<Agent>, name: String, wake: Arc<Wake>) {
    let mut delay = Duration::ZERO;
    let mut first = true;
    loop {
        agent.source_live(&name, |l| l.next_poll_ms = Some(in_ms(delay)));
        pause(&wake, delay).await;
        wake.why.store(0, Ordering::SeqCst);
        let Some(spec) = agent.config().source(&name).cloned() else {
            return;
        };
        if agent.is_stopping() {
            return;
        }
        let once = first;
        let result = blocking(&agent, move |a| ingest_once(a, &spec, once)).await;
        let cap = agent.config().serve.backoff_max;
        let interval = agent.config().source(&name).map_or(cap, |s| s.interval);
        let error = result.as_ref().err().cloned();
        let failures = {
            let mut n = 0;
            agent.source_live(&name, |l| {
                l.last_ingest_ms = Some(now_ms());
                l.failures = if error.is_some() { l.failures + 1 } else { 0 };
                l.last_error = error.clone();
                n = l.failures;
            });
            n
        };
        match result {
            Ok(woken) => {
                first = false;
                for t in woken {
                    wake_target(&agent, &t);
                }
                delay = backoff::jitter(interval);
            }
            Err(e) => {
                if agent.is_stopping() {
                    return;
                }
                tracing::warn!(source = %name, error = %e, "ingest failed");
                delay = backoff::delay(failures, cap);
            }
        }
    }
}

fn wake_target(agent: &Agent, name: &str) {
    wake(agent, "target", name, CHANGED);
}

/// Ingests source `spec` and gives the targets to wake: the declared ones
/// following it whose scoped tree changed (an `observe` target only when
/// new snapshots came, or on the first poll).
fn ingest_once(agent: &Agent, spec: &SourceSpec, first: bool) -> Result<Vec<String>, String> {
    let labels = label("source", &spec.name);
    let started = Instant::now();
    let report = (|| -> Result<_, String> {
        // A remote is fetched before the writer turn is taken, as the
        // command does, so a slow remote holds up no other writer.
        let def = Store::open_read_only(&agent.store_dir)
            .and_then(|s| s.source(&spec.name))
            .map_err(|e| e.to_string())?;
        let (source, _fetching) =
            crate::ingest::fetch(&agent.store_dir, &def, Wait::Forever, &|_| {})
                .map_err(|e| e.to_string())?;
        let store = Store::open_writer(&agent.store_dir, Wait::Forever, &|_| {})
            .map_err(|e| e.to_string())?;
        crate::ingest::ingest_source(
            &store,
            &spec.name,
            source.as_ref(),
            Box::new(|_: &str, _, _| {}),
        )
        .map_err(|e| e.to_string())
    })();
    agent
        .metrics
        .ingest_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let report = report.inspect_err(|_| agent.metrics.error("ingest"))?;
    let new = report.new_snapshots.len() as u64;
    agent
        .metrics
        .snapshots_ingested
        .get_or_create(&labels)
        .inc_by(new);
    agent.metrics.success("source", &spec.name);
    tracing::info!(source = %spec.name, new, "ingested");
    let config = agent.config();
    let store = Store::open_read_only(&agent.store_dir).map_err(|e| e.to_string())?;
    let mut woken = Vec::new();
    for t in config.targets.iter().filter(|t| t.source == spec.name) {
        if t.mode == Mode::Observe && new == 0 && !first {
            continue;
        }
        match target_changed(&store, &t.name) {
            Ok(true) => woken.push(t.name.clone()),
            Ok(false) => {}
            // The target's own loop meets it again and reports it.
            Err(e) => tracing::debug!(target = %t.name, error = %e, "not checked"),
        }
    }
    Ok(woken)
}

/// Whether target `name`'s desired scoped tree differs from its applied one.
fn target_changed(store: &Store, name: &str) -> Result<bool, String> {
    let def = store.target(name).map_err(|e| e.to_string())?;
    let desired = reconcile::choose(store, &def, None).map_err(|e| e.to_string())?;
    let applied = store.applied_snapshot(name).map_err(|e| e.to_string())?;
    reconcile::tree_changed(store, &def, desired, applied).map_err(|e| e.to_string())
}

async fn target_loop(agent: Arc<Agent>, name: String, wake: Arc<Wake>) {
    let interval = |a: &Agent| {
        a.config()
            .target(&name)
            .map_or(Duration::from_secs(300), |t| t.drift_interval)
    };
    let mut next_drift = Instant::now() + backoff::jitter(interval(&agent));
    let mut retry: Option<Instant> = None;
    loop {
        let due = retry.map_or(next_drift, |r| r.min(next_drift));
        agent.target_live(&name, |l| {
            l.next_check_ms = Some(in_ms(due.saturating_duration_since(Instant::now())));
        });
        pause(&wake, due.saturating_duration_since(Instant::now())).await;
        if agent.is_stopping() {
            return;
        }
        let Some(spec) = agent.config().target(&name).cloned() else {
            return;
        };
        let now = Instant::now();
        if retry.is_some_and(|r| now < r) {
            // Backing off: a wake-up waits for the retry.
            continue;
        }
        let why = wake.why.swap(0, Ordering::SeqCst);
        let drift = now >= next_drift || retry.is_some() || why & FORCE != 0;
        if why == 0 && !drift {
            continue;
        }
        let Ok(permit) = agent.permits.clone().acquire_owned().await else {
            return;
        };
        let result = blocking(&agent, move |a| {
            reconcile_once(a, &spec, drift, why & FORCE != 0)
        })
        .await;
        drop(permit);
        if drift {
            next_drift = Instant::now() + backoff::jitter(interval(&agent));
        }
        let error = result.err();
        let mut failures = 0;
        agent.target_live(&name, |l| {
            l.failures = if error.is_some() { l.failures + 1 } else { 0 };
            l.last_error = error.clone();
            failures = l.failures;
        });
        retry = match &error {
            None => None,
            Some(_) if agent.is_stopping() => return,
            Some(e) => {
                tracing::warn!(target = %name, error = %e, "reconcile failed");
                Some(Instant::now() + backoff::delay(failures, agent.config().serve.backoff_max))
            }
        };
    }
}

/// One reconcile of target `spec`: a drift check when `drift` (healed in
/// `apply` mode), then an apply when its tree changed, it drifted, or
/// `force`. An `observe` target is never written: it records drift checks
/// and keeps the changes an apply would make as pending.
fn reconcile_once(
    agent: &Agent,
    spec: &TargetSpec,
    drift: bool,
    force: bool,
) -> Result<(), String> {
    let name = spec.name.as_str();
    let err = |kind: &'static str| {
        move |e: &dyn std::fmt::Display| {
            agent.metrics.error(kind);
            format!("{e}")
        }
    };
    let (def, desired, changed) = {
        let store = Store::open_read_only(&agent.store_dir).map_err(|e| err("plan")(&e))?;
        let def = store.target(name).map_err(|e| err("plan")(&e))?;
        let desired = reconcile::choose(&store, &def, None).map_err(|e| err("plan")(&e))?;
        let applied = store.applied_snapshot(name).map_err(|e| err("plan")(&e))?;
        let changed =
            reconcile::tree_changed(&store, &def, desired, applied).map_err(|e| err("plan")(&e))?;
        if spec.mode == Mode::Observe && changed {
            let mut target = reconcile::open_target(&def).map_err(|e| err("plan")(&e))?;
            let prepared =
                reconcile::prepare(&store, &def, target.as_mut(), desired, options(&def))
                    .map_err(|e| err("plan")(&e))?;
            let t = prepared.plan.tally();
            let pending = t.create + t.update + t.delete;
            agent.target_live(name, |l| l.pending_changes = Some(pending));
            tracing::info!(target = name, pending, "observed pending changes");
        } else if !changed {
            agent.target_live(name, |l| l.pending_changes = Some(0));
        }
        (def, desired, changed)
    };
    let apply = spec.mode == Mode::Apply && (changed || force);
    if !drift && !apply {
        return Ok(());
    }
    let _lock =
        reconcile::lock::TargetLock::acquire(&agent.store_dir, name, Wait::Forever, &|_| {})
            .map_err(|e| err("apply")(&e))?;
    // The target is observed without the writer turn; each record takes
    // it, as `plumb apply` does, so a slow target holds up no other writer.
    let store = Store::open_recording(&agent.store_dir, Wait::Forever, Box::new(|_| {}))
        .map_err(|e| err("apply")(&e))?;
    let mut target = reconcile::open_target(&def).map_err(|e| err("apply")(&e))?;
    let mut heal = false;
    if drift {
        let started = Instant::now();
        let report = reconcile::drift(&store, &def, target.as_mut(), false);
        observe_duration(agent, name, "drift", started);
        let report = report.map_err(|e| err("drift")(&e))?;
        let n = report.drifted.len() as i64;
        agent
            .metrics
            .drifted_paths
            .get_or_create(&label("target", name))
            .set(n);
        if n > 0 {
            tracing::info!(target = name, drifted = n, "drift found");
            heal = spec.mode == Mode::Apply && report.applied.is_some();
        }
    }
    if apply || heal {
        let started = Instant::now();
        let report = reconcile::apply(
            &store,
            &def,
            target.as_mut(),
            desired,
            options(&def),
            RunKind::Apply,
            &|_, _| {},
        );
        observe_duration(agent, name, "apply", started);
        let report = report.map_err(|e| err("apply")(&e))?;
        agent
            .metrics
            .changes_applied
            .get_or_create(&label("target", name))
            .inc_by(report.confirmed);
        if let Some(unfinished) = report.unfinished() {
            agent.metrics.error("apply");
            return Err(format!(
                "apply failed, {} of {} changes made: {unfinished}",
                report.confirmed, report.total
            ));
        }
        if heal {
            agent
                .metrics
                .drifted_paths
                .get_or_create(&label("target", name))
                .set(0);
        }
        tracing::info!(
            target = name,
            run = report.run,
            changes = report.confirmed,
            "applied"
        );
    }
    agent.metrics.success("target", name);
    Ok(())
}

fn observe_duration(agent: &Agent, name: &str, kind: &str, started: Instant) {
    let labels: Labels = vec![
        ("target".to_owned(), name.to_owned()),
        ("kind".to_owned(), kind.to_owned()),
    ];
    agent
        .metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
}

fn options(def: &crate::reconcile::TargetDef) -> Options {
    Options {
        prune: def.prune,
        adopt: false,
        allow_mass_delete: false,
    }
}
