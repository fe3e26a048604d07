//! Argument parsing and the commands behind it. The library never talks to
//! the user; everything printed is printed here.

mod agent_cmd;
mod files;
mod history;
mod ingest_cmd;
mod json;
mod maintenance;
mod output;
mod packaging;
mod progress;
mod source_cmd;
mod target_cmd;

use output::{errln, outln};
use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use plumb::reconcile::RunKind;
use plumb::reconcile::lock::TargetLock;
use plumb::store::{EngineKind, Holder, Store, Wait};

/// Exit codes scripts can rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Something failed.
    pub const ERROR: u8 = 1;
    /// Success, and changes were found (plan, drift).
    pub const CHANGES: u8 = 2;
    /// The command line was wrong.
    pub const USAGE: u8 = 64;
}

/// plumb keeps the configuration history of any version-control system in
/// one content-addressed store, and answers questions about it.
#[derive(Debug, Parser)]
#[command(name = "plumb", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 changes found (plan, drift), 64 usage error.\n\
Logging: RUST_LOG=debug (or info, trace, …) writes diagnostics to stderr."
)]
pub struct Cli {
    /// The store directory [default: $PLUMB_STORE, else ./.plumb]
    #[arg(long, global = true, value_name = "DIR", env = "PLUMB_STORE")]
    store: Option<PathBuf>,

    /// Writers (ingest, apply, gc, edits) take turns: wait for another one
    /// holding the store or the target as long as it takes [the default].
    /// Queries never wait.
    #[arg(long, global = true, conflicts_with_all = ["timeout", "no_wait"])]
    wait: bool,

    /// Wait at most DURATION (500ms, 30s, 5m, 1h) for another writer.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Fail at once when another writer holds the store or the target.
    #[arg(long, global = true, conflicts_with = "timeout")]
    no_wait: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty store.
    Init {
        /// Storage engine: redb (the default), or sled when built with the `sled` feature.
        #[arg(long, default_value = "redb")]
        engine: String,
    },
    /// Define, list and remove sources.
    #[command(subcommand)]
    Source(source_cmd::SourceCommand),
    /// Read what is new in sources into the store.
    Ingest {
        /// Sources to ingest [default: all].
        names: Vec<String>,
    },
    /// List a source's snapshots, newest first.
    Log {
        /// The source.
        name: String,
        /// Show at most N snapshots.
        #[arg(short = 'n', long = "max-count", value_name = "N")]
        max_count: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a snapshot's metadata.
    Show {
        /// NAME@SELECTOR or a snapshot id prefix.
        rev: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the entries of a directory of a snapshot.
    Ls {
        /// REV or REV:DIR.
        target: OsString,
        /// List files below subdirectories too (directories themselves are not listed).
        #[arg(short, long)]
        recursive: bool,
        /// End each path with a NUL byte instead of a newline.
        #[arg(short = 'z', conflicts_with = "json")]
        nul: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a file's exact bytes to stdout.
    Cat {
        /// REV:PATH.
        target: OsString,
    },
    /// Compare two snapshots.
    Diff {
        /// The old revision.
        old: String,
        /// The new revision.
        new: String,
        /// Show a summary of changed lines per file instead of the patch.
        #[arg(long)]
        stat: bool,
        /// Print JSON.
        #[arg(long, conflicts_with = "stat")]
        json: bool,
        /// Limit to these paths (and what is below them).
        #[arg(last = true)]
        paths: Vec<OsString>,
    },
    /// Verify the database, every object and every index row (exit 1: damaged).
    Fsck {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove objects that no source or target reaches.
    Gc,
    /// Rebuild the index from the pack files (exit 1: something could not be recovered).
    Repair {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy the store to DEST, consistent and verified, while others use it
    /// (incremental when DEST holds a backup; restore by opening the copy).
    Backup {
        /// The backup's directory: absent, empty, or an earlier backup.
        dest: PathBuf,
        /// Also read back, unpack and hash every object of the copy.
        #[arg(long)]
        verify_all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Define, list and remove targets.
    #[command(subcommand)]
    Target(target_cmd::TargetCommand),
    /// Show what apply would do (exit 0: nothing to do, 2: changes or conflicts).
    Plan {
        /// The target.
        name: String,
        /// Plan towards this revision instead of the one the target follows.
        #[arg(long)]
        rev: Option<String>,
        /// Plan as if --adopt were given to apply.
        #[arg(long)]
        adopt: bool,
        /// Also run the target's check hook on the staged new tree (exit 1 when it fails).
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a target match its snapshot, and record the run.
    Apply {
        /// The target.
        name: String,
        /// Apply this revision instead of the one the target follows.
        #[arg(long)]
        rev: Option<String>,
        #[command(flatten)]
        flags: target_cmd::ApplyFlags,
    },
    /// Compare a target with what plumb last applied (exit 0: in sync, 2: drifted or never applied).
    Drift {
        /// The target.
        name: String,
        /// Hash every file instead of trusting unchanged stat data.
        #[arg(long)]
        full: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply an earlier revision and pin the target there until `plumb unpin`.
    Rollback {
        /// The target.
        name: String,
        /// The revision to roll back to (NAME@SEL or a snapshot id prefix).
        rev: String,
        #[command(flatten)]
        flags: target_cmd::ApplyFlags,
    },
    /// Let a rolled-back target follow its source again (the next apply moves it).
    Unpin {
        /// The target.
        name: String,
    },
    /// Run the agent: keep sources ingested and targets reconciled as a configuration file declares.
    Serve {
        /// The configuration file (TOML; see `plumb config check`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// How logs are written to stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: agent_cmd::LogFormat,
    },
    /// Check the agent's configuration file.
    #[command(subcommand)]
    Config(agent_cmd::ConfigCommand),
    /// Every source and target at a glance, with or without an agent running.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A target's audit log: every apply, drift check, rollback and unpin, newest first.
    Runs {
        /// The target.
        name: String,
        /// Show at most N runs.
        #[arg(short = 'n', long = "max-count", value_name = "N")]
        max_count: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages for every command into a directory (for packagers).
    #[command(hide = true)]
    Man {
        /// Where to write plumb.1, plumb-apply.1, …
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

impl Cli {
    /// Whether the command prints JSON (`--json`), errors included.
    pub fn json(&self) -> bool {
        match &self.command {
            Command::Log { json, .. }
            | Command::Show { json, .. }
            | Command::Ls { json, .. }
            | Command::Diff { json, .. }
            | Command::Plan { json, .. }
            | Command::Drift { json, .. }
            | Command::Runs { json, .. }
            | Command::Fsck { json }
            | Command::Repair { json }
            | Command::Backup { json, .. }
            | Command::Status { json } => *json,
            Command::Apply { flags, .. } | Command::Rollback { flags, .. } => flags.json(),
            Command::Source(source_cmd::SourceCommand::List { json })
            | Command::Target(target_cmd::TargetCommand::List { json }) => *json,
            Command::Init { .. }
            | Command::Source(_)
            | Command::Ingest { .. }
            | Command::Cat { .. }
            | Command::Gc
            | Command::Target(_)
            | Command::Unpin { .. }
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Serve { .. }
            | Command::Config(_) => false,
        }
    }

    /// Whether logs are JSON (`plumb serve --log-format json`), and the
    /// level logged when `RUST_LOG` says none: `info` for the agent,
    /// `warn` for every other command.
    pub fn logging(&self) -> (bool, &'static str) {
        match &self.command {
            Command::Serve { log_format, .. } => {
                (*log_format == agent_cmd::LogFormat::Json, "info")
            }
            _ => (false, "warn"),
        }
    }

    /// The store directory the command line names (for messages).
    pub fn store_dir(&self) -> PathBuf {
        store_dir(self)
    }
}

/// The store directory chosen by flag, environment or default.
fn store_dir(cli: &Cli) -> PathBuf {
    cli.store.clone().unwrap_or_else(|| PathBuf::from(".plumb"))
}

/// `--wait`, `--timeout DURATION` or `--no-wait`.
fn wait_policy(cli: &Cli) -> Wait {
    match (cli.no_wait, cli.timeout) {
        (true, _) => Wait::No,
        (false, Some(limit)) => Wait::At(limit),
        (false, None) => Wait::Forever,
    }
}

/// A duration: a number with a unit, or bare seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    plumb::agent::config::parse_duration(text)
}

/// Tells, once, who a waiting writer waits for.
fn waiting_for(what: &str) -> impl Fn(&Holder) + '_ {
    move |holder| errln!("plumb: waiting for {holder} to finish with {what}")
}

/// Opens the store for writing, taking turns with other writers as the
/// wait policy says.
fn open_writer(dir: &Path, wait: Wait) -> anyhow::Result<Store> {
    let what = format!("the store at {}", dir.display());
    Ok(Store::open_writer(dir, wait, &waiting_for(&what))?)
}

/// Opens the store to reconcile a target: read-only, taking the writer
/// turn only for each record, as the wait policy says, so a target slow
/// to answer holds up no other writer.
fn open_recording(dir: &Path, wait: Wait) -> anyhow::Result<Store> {
    let what = format!("the store at {}", dir.display());
    Ok(Store::open_recording(
        dir,
        wait,
        Box::new(move |holder| waiting_for(&what)(holder)),
    )?)
}

/// Takes target `name`'s turn, as the wait policy says.
fn lock_target(dir: &Path, name: &str, wait: Wait) -> anyhow::Result<TargetLock> {
    let what = format!("target {name}");
    Ok(TargetLock::acquire(dir, name, wait, &waiting_for(&what))?)
}

fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    open_writer(&store_dir(cli), wait_policy(cli))
}

/// Queries share the store with each other and with a writer, never wait
/// for one, and never write to it.
fn open_store_read_only(cli: &Cli) -> anyhow::Result<Store> {
    Ok(Store::open_read_only(&store_dir(cli))?)
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Init { engine } => {
            let engine = EngineKind::named(engine)?;
            let dir = store_dir(&cli);
            Store::init(&dir, engine)?;
            outln!("initialized an empty plumb store in {}", dir.display());
            Ok(exit::OK)
        }
        // Listing is a query: it never waits for a writer.
        Command::Source(cmd @ source_cmd::SourceCommand::List { .. }) => {
            source_cmd::run(&open_store_read_only(&cli)?, cmd)
        }
        Command::Source(cmd) => source_cmd::run(&open_store(&cli)?, cmd),
        Command::Ingest { names } => ingest_cmd::run(&store_dir(&cli), names, wait_policy(&cli)),
        Command::Log {
            name,
            max_count,
            json,
        } => history::log(&open_store_read_only(&cli)?, name, *max_count, *json),
        Command::Show { rev, json } => history::show(&open_store_read_only(&cli)?, rev, *json),
        Command::Ls {
            target,
            recursive,
            nul,
            json,
        } => files::ls(
            &open_store_read_only(&cli)?,
            target,
            *recursive,
            *nul,
            *json,
        ),
        Command::Cat { target } => files::cat(&open_store_read_only(&cli)?, target),
        Command::Diff {
            old,
            new,
            stat,
            json,
            paths,
        } => files::diff(&open_store_read_only(&cli)?, old, new, *stat, *json, paths),
        Command::Fsck { json } => maintenance::fsck(&store_dir(&cli), *json),
        Command::Gc => maintenance::gc(open_store(&cli)?),
        Command::Repair { json } => maintenance::repair(&store_dir(&cli), wait_policy(&cli), *json),
        Command::Backup {
            dest,
            verify_all,
            json,
        } => maintenance::backup(
            &store_dir(&cli),
            dest,
            *verify_all,
            *json,
            wait_policy(&cli),
        ),
        Command::Target(cmd @ target_cmd::TargetCommand::List { .. }) => {
            target_cmd::run(&open_store_read_only(&cli)?, cmd)
        }
        Command::Target(cmd) => target_cmd::run(&open_store(&cli)?, cmd),
        Command::Plan {
            name,
            rev,
            adopt,
            check,
            json,
        } => target_cmd::plan(
            &open_store_read_only(&cli)?,
            name,
            rev.as_deref(),
            *adopt,
            *check,
            *json,
        ),
        Command::Apply { name, rev, flags } => target_cmd::apply(
            &store_dir(&cli),
            name,
            rev.as_deref(),
            flags,
            RunKind::Apply,
            wait_policy(&cli),
        ),
        Command::Drift { name, full, json } => {
            target_cmd::drift(&store_dir(&cli), name, *full, *json, wait_policy(&cli))
        }
        Command::Rollback { name, rev, flags } => target_cmd::apply(
            &store_dir(&cli),
            name,
            Some(rev),
            flags,
            RunKind::Rollback,
            wait_policy(&cli),
        ),
        Command::Unpin { name } => target_cmd::unpin(&store_dir(&cli), name, wait_policy(&cli)),
        Command::Serve { config, .. } => agent_cmd::serve(cli.store.as_deref(), config),
        Command::Config(cmd) => agent_cmd::config(cli.store.as_deref(), cmd),
        Command::Status { json } => agent_cmd::status(&open_store_read_only(&cli)?, *json),
        Command::Runs {
            name,
            max_count,
            json,
        } => target_cmd::runs(&open_store_read_only(&cli)?, name, *max_count, *json),
        Command::Completions { shell } => packaging::completions(*shell),
        Command::Man { dir } => packaging::man_pages(dir),
    }
}

/// Prints an error as one line and gives the exit code: 64 for an error
/// in how the command was written, else 1. Every error's text includes
/// its cause's (`plumb_core`'s rule on errors, which [`Within`] keeps
/// too), so the outermost error's text is the whole message. Under
/// `--json`, stdout carries the error's document too
/// ([`json::error_document`]). Nothing is written with a panic, even
/// when stderr is closed.
pub fn report_error(e: &anyhow::Error, json: bool) -> u8 {
    errln!("plumb: error: {e}");
    if json {
        let _ = output::print_json(&json::error_document(e));
    }
    if is_usage(e) {
        exit::USAGE
    } else {
        exit::ERROR
    }
}

/// Reports a command line clap could not parse as one error line with a
/// hint, and gives the exit code (64; 0 for `--help` and `--version`,
/// which clap prints to stdout). `json` is whether `--json` was among the
/// arguments.
pub fn report_parse_error(e: &clap::Error, json: bool) -> u8 {
    if !e.use_stderr() {
        let _ = e.print();
        return exit::OK;
    }
    // clap writes paragraphs: the error, then tips, usage, and where to
    // read more; one line keeps the error and the hints.
    let text = e.render().to_string();
    let mut error = String::new();
    let mut hints: Vec<String> = Vec::new();
    for paragraph in text.split("\n\n") {
        let joined = paragraph
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(tip) = joined.strip_prefix("tip: ") {
            hints.push(tip.to_owned());
        } else if let Some(more) = joined.strip_prefix("For more information, ") {
            hints.push(more.trim_end_matches('.').to_owned());
        } else if error.is_empty() && !joined.starts_with("Usage:") {
            error = joined.strip_prefix("error: ").unwrap_or(&joined).to_owned();
        }
    }
    let line = if hints.is_empty() {
        error
    } else {
        format!("{error} ({})", hints.join("; "))
    };
    errln!("plumb: error: {line}");
    if json {
        let _ = output::print_json(&serde_json::json!({"outcome": "error", "error": line}));
    }
    exit::USAGE
}

/// An error in how the command was written (exit 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Whether an error is in how the command was written: [`UsageError`] or
/// bad revision syntax, anywhere in its chain.
fn is_usage(e: &anyhow::Error) -> bool {
    use plumb::reconcile::ReconcileError;
    use plumb::rev::RevError;
    e.chain().any(|c| {
        c.is::<UsageError>()
            || matches!(c.downcast_ref::<RevError>(), Some(RevError::Syntax { .. }))
            || matches!(
                c.downcast_ref::<ReconcileError>(),
                Some(ReconcileError::Rev(RevError::Syntax { .. }))
            )
    })
}

/// An error in something the user named: `WHAT: CAUSE`, the cause kept as
/// its source.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
struct InWhat {
    what: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Names what an error is about, like anyhow's `with_context`, but with
/// the cause's text in the error's own, as every plumb error has it.
pub(crate) trait Within<T> {
    /// Prefixes the error with `what()` and `: `.
    fn within<W: Display>(self, what: impl FnOnce() -> W) -> anyhow::Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Within<T> for Result<T, E> {
    fn within<W: Display>(self, what: impl FnOnce() -> W) -> anyhow::Result<T> {
        self.map_err(|e| named(what(), e))
    }
}

/// `WHAT: CAUSE`, the error [`Within::within`] makes.
pub(crate) fn named(
    what: impl Display,
    e: impl std::error::Error + Send + Sync + 'static,
) -> anyhow::Error {
    anyhow::Error::new(InWhat {
        what: what.to_string(),
        source: Box::new(e),
    })
}
