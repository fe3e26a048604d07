//! `plumb serve`: start, reload, stop.
//!
//! At start the configuration is read and checked, the store made when
//! there is none, the definitions brought to match the configuration,
//! and the listen address bound; then systemd hears `READY=1`. `SIGHUP`,
//! or a change of the file (checked every second), reloads: a new
//! configuration that does not check is refused, logged and counted, and
//! the old one keeps running. `SIGTERM` (or `SIGINT`) stops new work and
//! gives an apply in progress the grace period to finish, then exits 0
//! (1 when the grace period ran out); a second signal exits at once
//! (1), and the next start converges.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use super::config::Config;
use super::metrics::label;
use super::notify::{notify, watchdog_interval};
use super::{Agent, AgentError, declare, work};
use crate::store::{Store, StoreError, Wait};

/// How often the configuration file is looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The store directory: `flag` (`--store`, `$PLUMB_STORE`), else
/// `[serve] store`, else `./.plumb`.
pub fn store_dir(flag: Option<&Path>, config: &Config) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| config.serve.store.clone())
        .unwrap_or_else(|| PathBuf::from(".plumb"))
}

/// Reads the token file named in `config`, if any.
pub fn read_token(config: &Config) -> Result<Option<String>, AgentError> {
    let Some(path) = &config.serve.token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| AgentError::Token {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(AgentError::Token {
            path: path.clone(),
            reason: "the file is empty".into(),
        });
    }
    Ok(Some(token.to_owned()))
}

/// Checks `config` against the store at `dir` (read-only; a directory
/// with no store yet has no definitions), as `plumb config check` does.
pub fn check(config: &Config, dir: &Path) -> Result<(), AgentError> {
    let store = match Store::open_read_only(dir) {
        Ok(s) => Some(s),
        Err(StoreError::NotAStore { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    declare::check(config, store.as_ref(), dir)?;
    read_token(config)?;
    Ok(())
}

/// Brings the definitions in the store at `dir` to match `config`,
/// taking the writer turn for that alone.
fn declare(config: &Config, dir: &Path) -> Result<(), AgentError> {
    let store = Store::open_writer(dir, Wait::Forever, &|_| {})?;
    let plan = declare::check(config, Some(&store), dir)?;
    let changes = declare::apply(&store, dir, &plan)?;
    for what in &changes.added {
        tracing::info!("added {what}");
    }
    for what in &changes.changed {
        tracing::info!("changed {what}");
    }
    for what in &changes.removed {
        tracing::info!("removed {what}");
    }
    Ok(())
}

/// Runs the agent until it is stopped; gives the exit code.
pub fn run(file: &Path, store_flag: Option<&Path>) -> Result<u8, AgentError> {
    let config = Config::load(file)?;
    let dir = store_dir(store_flag, &config);
    match Store::open_read_only(&dir) {
        Err(StoreError::NotAStore { .. }) => {
            Store::init(&dir, &crate::store::engines::REDB)?;
            tracing::info!(store = %dir.display(), "initialized an empty store");
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let token = read_token(&config)?;
    declare(&config, &dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    let code = runtime.block_on(serve(file, &dir, config, token));
    // Work cut short by a second signal is not waited for.
    runtime.shutdown_background();
    code
}

async fn serve(
    file: &Path,
    dir: &Path,
    config: Config,
    token: Option<String>,
) -> Result<u8, AgentError> {
    let addr = config.serve.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AgentError::Listen { addr, source })?;
    let agent = Agent::new(dir, config, token);
    work::sync_loops(&agent);
    let app = super::http::router(agent.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(listen = %bound, store = %dir.display(), "serving");
    notify("READY=1");
    if let Some(every) = watchdog_interval() {
        let agent = agent.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if work::alive(&agent) && !agent.is_stopping() {
                    notify("WATCHDOG=1");
                }
            }
        });
    }
    let signals = |kind| signal(kind).map_err(AgentError::Runtime);
    let mut hup = signals(SignalKind::hangup())?;
    let mut term = signals(SignalKind::terminate())?;
    let mut int = signals(SignalKind::interrupt())?;
    let mut seen = std::fs::read(file).ok();
    let mut watch = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&agent, file, "SIGHUP").await,
            _ = watch.tick() => {
                let now = std::fs::read(file).ok();
                if now.is_some() && now != seen {
                    seen = now;
                    reload(&agent, file, "a change of the file").await;
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    agent
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    notify("STOPPING=1");
    let grace = agent.config().serve.grace;
    tracing::info!(grace = ?grace, "stopping: no new work; waiting for work in progress");
    super::lock(&agent.loops).clear();
    let idle = async {
        while agent.busy.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        () = idle => {
            tracing::info!("stopped");
            Ok(0)
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!("the grace period ran out with work in progress; the next start finishes it");
            Ok(1)
        }
        _ = term.recv() => Ok(stop_at_once()),
        _ = int.recv() => Ok(stop_at_once()),
    }
}

fn stop_at_once() -> u8 {
    tracing::warn!("second signal: stopping at once; the next start finishes what was cut");
    1
}

/// Reads the configuration again; runs it when it checks and its
/// definitions are made, else keeps the old one.
async fn reload(agent: &Arc<Agent>, file: &Path, why: &str) {
    let dir = agent.store_dir.clone();
    let path = file.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || -> Result<_, AgentError> {
        let config = Config::load(&path)?;
        let token = read_token(&config)?;
        declare(&config, &dir)?;
        Ok((config, token))
    })
    .await
    .unwrap_or_else(|e| Err(AgentError::Runtime(std::io::Error::other(e.to_string()))));
    match loaded {
        Ok((config, token)) => {
            if config.serve.listen != agent.config().serve.listen {
                tracing::warn!("listen changed; it takes effect at the next start");
            }
            agent.set_config(config, token);
            work::sync_loops(agent);
            agent
                .metrics
                .config_reloads
                .get_or_create(&label("result", "ok"))
                .inc();
            tracing::info!("configuration reloaded after {why}");
        }
        Err(e) => {
            agent
                .metrics
                .config_reloads
                .get_or_create(&label("result", "refused"))
                .inc();
            agent.metrics.error("config");
            tracing::error!(error = %e, "new configuration refused (after {why}); the old one keeps running");
        }
    }
}
