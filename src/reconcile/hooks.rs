//! Commands a target runs around an apply (`check` on the staged tree
//! before anything changes, `after` once something changed, `health`
//! retried until it passes), and how each one is run: an argv, not a
//! shell; placeholders and environment naming the run; a timeout that
//! kills the whole process group; output captured, bounded.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a hook may run when its settings name no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The pause between two attempts of a `health` hook.
pub const HEALTH_RETRY: Duration = Duration::from_millis(250);

/// How much of each of a hook's stdout and stderr is kept.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// A target's hooks, as `target add`/`target set` record them (and the
/// agent's config file names them: `check`, `after`, `health`, each
/// `{argv, timeout_ms}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hooks {
    /// Run on the staged new tree before any live file changes; a failure
    /// refuses the apply.
    pub check: Option<Hook>,
    /// Run after an apply that changed something (a reload).
    pub after: Option<Hook>,
    /// Run after `after`, again and again until it exits 0 or its timeout
    /// passes (the service answers).
    pub health: Option<Hook>,
}

impl Hooks {
    /// Whether no hook is set.
    pub fn is_empty(&self) -> bool {
        self.check.is_none() && self.after.is_none() && self.health.is_none()
    }
}

/// One hook: a program and its arguments, and how long it may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// The program and its arguments, placeholders unexpanded.
    pub argv: Vec<String>,
    /// The timeout in milliseconds; `None` for [`DEFAULT_TIMEOUT`].
    pub timeout_ms: Option<u64>,
}

impl Hook {
    /// A hook from a command line as a user writes it, split as a POSIX
    /// shell splits words (quotes and backslashes), but run without one.
    pub fn parse(command: &str, timeout: Option<Duration>) -> Result<Hook, HookError> {
        let argv = shlex::split(command)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| HookError::Syntax {
                command: command.to_owned(),
            })?;
        Ok(Hook {
            argv,
            timeout_ms: timeout.map(Hook::millis),
        })
    }

    /// A timeout as [`timeout_ms`](Self::timeout_ms) holds it.
    pub fn millis(timeout: Duration) -> u64 {
        timeout.as_millis().min(u128::from(u64::MAX)) as u64
    }

    /// Its timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout_ms
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
    }

    /// The command as a shell would read it back.
    pub fn command(&self) -> String {
        shlex::try_join(self.argv.iter().map(String::as_str))
            .unwrap_or_else(|_| self.argv.join(" "))
    }
}

/// Why a hook could not be run or parsed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The command line does not split into words (an open quote), or is
    /// empty.
    #[error("hook command {command:?} is empty or has an unclosed quote")]
    Syntax {
        /// The command as given.
        command: String,
    },
    /// The program could not be started.
    #[error("{which} hook: cannot run {program:?}: {source}")]
    Spawn {
        /// Which hook.
        which: String,
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the program failed.
    #[error("{which} hook: {source}")]
    Wait {
        /// Which hook.
        which: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a hook is told about the run: each is a placeholder (`{target}`,
/// `{snapshot}`, `{revision}`, `{root}`, `{staged}`, `{changed}`) in its
/// arguments and a `PLUMB_…` variable in its environment.
#[derive(Debug, Clone, Default)]
pub struct HookContext {
    /// The target's name (`PLUMB_TARGET`).
    pub target: String,
    /// The snapshot applied, `blake3:…` (`PLUMB_SNAPSHOT`).
    pub snapshot: String,
    /// Its native revision, `git:sha1:…` (`PLUMB_REVISION`).
    pub revision: String,
    /// The target's root directory, empty for a plugin (`PLUMB_ROOT`).
    pub root: Option<PathBuf>,
    /// The staged new tree (`PLUMB_STAGED`).
    pub staged: Option<PathBuf>,
    /// A file listing the changed paths, each ended by a NUL byte
    /// (`PLUMB_CHANGED`).
    pub changed: Option<PathBuf>,
    /// The directory the hook runs in (the plugin's working directory,
    /// else the target's root, else the caller's).
    pub workdir: Option<PathBuf>,
}

impl HookContext {
    /// Each placeholder's name, environment variable and value.
    fn values(&self) -> [(&'static str, &'static str, String); 6] {
        let path = |p: &Option<PathBuf>| {
            p.as_deref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        [
            ("{target}", "PLUMB_TARGET", self.target.clone()),
            ("{snapshot}", "PLUMB_SNAPSHOT", self.snapshot.clone()),
            ("{revision}", "PLUMB_REVISION", self.revision.clone()),
            ("{root}", "PLUMB_ROOT", path(&self.root)),
            ("{staged}", "PLUMB_STAGED", path(&self.staged)),
            ("{changed}", "PLUMB_CHANGED", path(&self.changed)),
        ]
    }

    /// An argument with its placeholders replaced.
    fn expand(&self, arg: &str) -> String {
        let mut out = arg.to_owned();
        for (placeholder, _, value) in self.values() {
            if out.contains(placeholder) {
                out = out.replace(placeholder, &value);
            }
        }
        out
    }
}

/// How a hook's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ran past its timeout; its process group was killed.
    TimedOut,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => write!(f, "timed out"),
        }
    }
}

/// One hook run, as the run record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    /// Which hook: `check`, `after` or `health`.
    pub which: String,
    /// The argv run, placeholders expanded.
    pub argv: Vec<String>,
    /// How it ended.
    pub exit: Exit,
    /// How long it ran.
    pub duration_ms: u64,
    /// Its stdout, the first [`OUTPUT_LIMIT`] bytes.
    pub stdout: Vec<u8>,
    /// Its stderr, the first [`OUTPUT_LIMIT`] bytes.
    pub stderr: Vec<u8>,
    /// Bytes of stdout and stderr beyond the limit, dropped.
    pub dropped: u64,
}

impl HookRun {
    /// Whether it exited with 0.
    pub fn succeeded(&self) -> bool {
        self.exit == Exit::Code(0)
    }
}

/// Runs `hook` as `which`, told `ctx`: no shell, stdin empty, in a process
/// group of its own that is killed as a whole when the timeout passes.
pub fn run(which: &str, hook: &Hook, ctx: &HookContext) -> Result<HookRun, HookError> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let argv: Vec<String> = hook.argv.iter().map(|a| ctx.expand(a)).collect();
    let Some((program, args)) = argv.split_first() else {
        return Err(HookError::Syntax {
            command: String::new(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (_, var, value) in ctx.values() {
        cmd.env(var, value);
    }
    if let Some(dir) = ctx.workdir.as_deref().filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        which: which.to_owned(),
        program: program.clone(),
        source,
    })?;
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());
    let wait_err = |source| HookError::Wait {
        which: which.to_owned(),
        source,
    };
    let deadline = started + hook.timeout();
    let exit = loop {
        if let Some(status) = child.try_wait().map_err(wait_err)? {
            break match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(sig)) => Exit::Signal(sig),
                (None, None) => Exit::Signal(0),
            };
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            child.wait().map_err(wait_err)?;
            break Exit::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // What the group left running may hold the pipes open: kill it, and
    // wait for the readers only briefly.
    kill_group(child.id());
    let (stdout, out_dropped) = stdout.finish();
    let (stderr, err_dropped) = stderr.finish();
    Ok(HookRun {
        which: which.to_owned(),
        argv,
        exit,
        duration_ms: started.elapsed().as_millis() as u64,
        stdout,
        stderr,
        dropped: out_dropped + err_dropped,
    })
}

/// Kills process group `pgid` (the hook's, made with `process_group(0)`);
/// one already gone is no error.
fn kill_group(pgid: u32) {
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// A pipe read to its end on a thread of its own, keeping the first
/// [`OUTPUT_LIMIT`] bytes and counting the rest.
struct Capture {
    kept: Arc<Mutex<(Vec<u8>, u64)>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Capture {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Capture {
        let kept = Arc::new(Mutex::new((Vec::new(), 0u64)));
        let (tx, done) = std::sync::mpsc::channel();
        let shared = Arc::clone(&kept);
        std::thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut k) = shared.lock() {
                        let room = OUTPUT_LIMIT.saturating_sub(k.0.len()).min(n);
                        k.0.extend_from_slice(&buf[..room]);
                        k.1 += (n - room) as u64;
                    }
                }
            }
            let _ = tx.send(());
        });
        Capture { kept, done }
    }

    /// What was kept and how much was dropped, after the pipe closed or
    /// a second passed.
    fn finish(self) -> (Vec<u8>, u64) {
        let _ = self.done.recv_timeout(Duration::from_secs(1));
        self.kept
            .lock()
            .map(|k| (k.0.clone(), k.1))
            .unwrap_or_default()
    }
}

/// The path of the file of changed paths beside a staged tree.
pub fn changed_file(staged: &Path) -> PathBuf {
    let mut name = staged.as_os_str().to_owned();
    name.push(".changed");
    PathBuf::from(name)
}

/// Where hooks' staged trees and lists of changed paths are made: the
/// store's `staging/` directory (the system's temporary one for a store
/// without a directory), so that kept files can be hard links on the same
/// file system as the target.
fn staging_dir(store: &crate::store::Store) -> PathBuf {
    store.path().map_or_else(
        || std::env::temp_dir().join("plumb-staging"),
        |p| p.join("staging"),
    )
}

/// What every hook of an apply of `snapshot` to `def` is told, before
/// staging.
fn context(
    store: &crate::store::Store,
    def: &super::TargetDef,
    snapshot: plumb_core::SnapshotId,
) -> Result<HookContext, super::ReconcileError> {
    let root = def.location.root().map(Path::to_path_buf);
    Ok(HookContext {
        target: def.name.clone(),
        snapshot: snapshot.to_string(),
        revision: store.snapshot(&snapshot)?.revision,
        workdir: root
            .clone()
            .or_else(|| def.workdir.as_ref().map(PathBuf::from)),
        root,
        staged: None,
        changed: None,
    })
}

/// Runs the target's `check` hook on the staged tree `plan` leads to, if
/// the target has one and the plan changes something; the staged tree is
/// gone when this returns.
pub fn check(
    store: &crate::store::Store,
    def: &super::TargetDef,
    plan: &super::plan::Plan,
    snapshot: plumb_core::SnapshotId,
) -> Result<Option<HookRun>, super::ReconcileError> {
    let Some(hook) = &def.hooks.check else {
        return Ok(None);
    };
    if !plan.has_changes() {
        return Ok(None);
    }
    let mut ctx = context(store, def, snapshot)?;
    let staged = super::staging::stage(store, plan, def.location.root(), &staging_dir(store))?;
    ctx.staged = Some(staged.dir.clone());
    ctx.changed = Some(staged.changed.clone());
    ctx.workdir = Some(staged.dir.clone());
    Ok(Some(run("check", hook, &ctx)?))
}

/// Runs the target's `health` hook, if it has one, once `plan` was
/// applied: again, [`HEALTH_RETRY`] after each failure, until it exits 0
/// or its timeout (all attempts together) passes. Returns the last
/// attempt.
pub fn health(
    store: &crate::store::Store,
    def: &super::TargetDef,
    _plan: &super::plan::Plan,
    snapshot: plumb_core::SnapshotId,
) -> Result<Option<HookRun>, super::ReconcileError> {
    let Some(hook) = &def.hooks.health else {
        return Ok(None);
    };
    let ctx = context(store, def, snapshot)?;
    let deadline = Instant::now() + hook.timeout();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = Hook {
            argv: hook.argv.clone(),
            timeout_ms: Some(Hook::millis(left).max(1)),
        };
        let ran = run("health", &attempt, &ctx)?;
        if ran.succeeded() || Instant::now() + HEALTH_RETRY >= deadline {
            return Ok(Some(ran));
        }
        std::thread::sleep(HEALTH_RETRY);
    }
}

/// Runs the target's `after` hook, if it has one, once `plan` was applied
/// (the caller knows something changed).
pub fn after(
    store: &crate::store::Store,
    def: &super::TargetDef,
    plan: &super::plan::Plan,
    snapshot: plumb_core::SnapshotId,
) -> Result<Option<HookRun>, super::ReconcileError> {
    let Some(hook) = &def.hooks.after else {
        return Ok(None);
    };
    let mut ctx = context(store, def, snapshot)?;
    let listed = super::staging::list_changes(plan, &staging_dir(store))?;
    ctx.changed = Some(listed.changed.clone());
    Ok(Some(run("after", hook, &ctx)?))
}
