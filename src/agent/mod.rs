//! The agent, `plumb serve`: a tokio runtime that keeps the store's
//! sources ingested and its targets reconciled, as a configuration file
//! declares them, with an HTTP API, metrics and health checks.
//!
//! It calls the same library functions the command line calls, on
//! blocking threads, and never holds the store's writer turn between
//! operations: it reads through read-only handles and takes the turn for
//! each ingest, definition change or reconcile, as `plumb ingest` and
//! `plumb apply` do, so the command line keeps working beside it.
//!
//! - [`config`]: the file, decoded and checked;
//! - [`declare`]: the store's definitions brought to match it;
//! - [`work`]: one loop per source (poll, ingest, wake the targets whose
//!   tree changed) and per target (reconcile, drift checks), with backoff
//!   ([`backoff`]);
//! - [`http`]: the API, `/metrics` ([`metrics`]), `/healthz`, `/readyz`;
//! - [`serve`]: start, reloads, signals and stopping; [`notify`]: systemd.

pub mod backoff;
pub mod config;
pub mod declare;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod serve;
pub mod work;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde_json::{Value, json};

use config::Config;
use metrics::Metrics;

/// Why the agent could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The definitions could not be made to match it.
    #[error(transparent)]
    Declare(#[from] declare::DeclareError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The token file could not be read, or is empty.
    #[error("token_file {}: {reason}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("could not start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the agent knows of a source beyond the store.
#[derive(Debug, Clone, Default)]
pub struct SourceLive {
    /// When the last ingest ended (ms since the epoch).
    pub last_ingest_ms: Option<i64>,
    /// The last ingest's error, until one succeeds.
    pub last_error: Option<String>,
    /// When the next poll is due (ms since the epoch).
    pub next_poll_ms: Option<i64>,
    /// Failures in a row.
    pub failures: u32,
}

/// What the agent knows of a target beyond the store.
#[derive(Debug, Clone, Default)]
pub struct TargetLive {
    /// The last reconcile's error, until one succeeds.
    pub last_error: Option<String>,
    /// When the next drift check is due (ms since the epoch).
    pub next_check_ms: Option<i64>,
    /// For an `observe` target: the changes an apply would make now.
    pub pending_changes: Option<u64>,
    /// Failures in a row.
    pub failures: u32,
}

/// The state the loops, the API and reloads share.
pub struct Agent {
    /// The store directory.
    pub store_dir: PathBuf,
    config: RwLock<Arc<Config>>,
    sources: Mutex<BTreeMap<String, SourceLive>>,
    targets: Mutex<BTreeMap<String, TargetLive>>,
    /// The metrics.
    pub metrics: Metrics,
    token: RwLock<Option<String>>,
    /// Set once every source was attempted once after start.
    ready: std::sync::atomic::AtomicBool,
    /// Set when the agent stops: no new work starts.
    stopping: std::sync::atomic::AtomicBool,
    /// Ingests and reconciles running now.
    busy: std::sync::atomic::AtomicUsize,
    /// The loops running, by `source:NAME` and `target:NAME`.
    loops: Mutex<BTreeMap<String, work::Loop>>,
    /// Reconciles at once, at most.
    permits: Arc<tokio::sync::Semaphore>,
    /// How many permits there are.
    parallel: std::sync::atomic::AtomicUsize,
}

/// Locks a mutex, taking over one a panicking thread left.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Milliseconds since the epoch, `after` from now.
pub fn in_ms(after: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
}

impl Agent {
    /// A new agent for the store at `store_dir`, running `config`.
    pub fn new(store_dir: &Path, config: Config, token: Option<String>) -> Arc<Agent> {
        let parallel = config.serve.max_parallel;
        Arc::new(Agent {
            loops: Mutex::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(parallel)),
            parallel: parallel.into(),
            store_dir: store_dir.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
            sources: Mutex::default(),
            targets: Mutex::default(),
            metrics: Metrics::new(),
            token: RwLock::new(token),
            ready: Default::default(),
            stopping: Default::default(),
            busy: Default::default(),
        })
    }

    /// The configuration running now.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_config(&self, config: Config, token: Option<String>) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        *self
            .token
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
    }

    /// The bearer token every `/api` call needs, if one is configured.
    pub fn token(&self) -> Option<String> {
        self.token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Changes what the agent knows of source `name`.
    pub fn source_live(&self, name: &str, f: impl FnOnce(&mut SourceLive)) {
        f(lock(&self.sources).entry(name.to_owned()).or_default());
    }

    /// Changes what the agent knows of target `name`.
    pub fn target_live(&self, name: &str, f: impl FnOnce(&mut TargetLive)) {
        f(lock(&self.targets).entry(name.to_owned()).or_default());
    }

    /// Whether the configuration is loaded and every source was attempted.
    pub fn is_ready(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.ready.load(Ordering::Relaxed) {
            return true;
        }
        let config = self.config();
        let sources = lock(&self.sources);
        let all = config.sources.iter().all(|s| {
            sources
                .get(&s.name)
                .is_some_and(|l| l.last_ingest_ms.is_some())
        });
        if all {
            self.ready.store(true, Ordering::Relaxed);
        }
        all
    }

    /// Whether the agent is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The status of every source and target ([`crate::status::status`])
    /// with what the agent adds: for a source, `managed`, `interval_ms`,
    /// `last_ingest`, `last_error`, `next_poll`; for a target, `managed`,
    /// `mode`, `last_error`, `next_check`, `pending_changes`.
    pub fn status(&self, store: &crate::store::Store) -> Result<Value, crate::store::StoreError> {
        let mut doc = crate::status::status(store)?;
        let config = self.config();
        let time = |ms: Option<i64>| ms.map(crate::status::time_text);
        let sources = lock(&self.sources).clone();
        if let Some(list) = doc["sources"].as_array_mut() {
            for s in list {
                let name = s["name"].as_str().unwrap_or_default().to_owned();
                let spec = config.source(&name);
                let live = sources.get(&name).cloned().unwrap_or_default();
                s["managed"] = spec.is_some().into();
                s["interval_ms"] = json!(spec.map(|s| s.interval.as_millis() as u64));
                s["last_ingest"] = json!(time(live.last_ingest_ms));
                s["last_error"] = json!(live.last_error);
                s["next_poll"] = json!(time(live.next_poll_ms));
            }
        }
        let targets = lock(&self.targets).clone();
        if let Some(list) = doc["targets"].as_array_mut() {
            for t in list {
                let name = t["name"].as_str().unwrap_or_default().to_owned();
                let spec = config.target(&name);
                let live = targets.get(&name).cloned().unwrap_or_default();
                t["managed"] = spec.is_some().into();
                t["mode"] = json!(spec.map(|s| s.mode.name()));
                t["last_error"] = json!(live.last_error);
                t["next_check"] = json!(time(live.next_check_ms));
                t["pending_changes"] = json!(live.pending_changes);
            }
        }
        Ok(doc)
    }
}
