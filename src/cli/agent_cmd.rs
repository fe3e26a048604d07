//! `plumb serve`, `plumb config check` and `plumb status`.

use super::output::outln;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};

use plumb::agent::config::Config;
use plumb::agent::serve;
use plumb::store::Store;

use super::exit;
use super::json::{self, Outcome};
use super::output::ignore_broken_pipe;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check an agent configuration file (exit 0, or 1 with FILE:LINE:COL: MESSAGE).
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// How the agent writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event, for log shippers.
    Json,
}

/// `plumb config check FILE`: the file as `plumb serve` reads it, checked
/// against the store when there is one.
pub fn config(store: Option<&Path>, cmd: &ConfigCommand) -> anyhow::Result<u8> {
    let ConfigCommand::Check { file } = cmd;
    let config = Config::load(file)?;
    let dir = serve::store_dir(store, &config);
    serve::check(&config, &dir)?;
    outln!(
        "{}: ok ({} source{}, {} target{})",
        file.display(),
        config.sources.len(),
        if config.sources.len() == 1 { "" } else { "s" },
        config.targets.len(),
        if config.targets.len() == 1 { "" } else { "s" },
    );
    Ok(exit::OK)
}

/// `plumb serve --config FILE`.
pub fn serve(store: Option<&Path>, file: &Path) -> anyhow::Result<u8> {
    Ok(serve::run(file, store)?)
}

/// `plumb status`: every source and target at a glance.
pub fn status(store: &Store, json: bool) -> anyhow::Result<u8> {
    let doc = plumb::status::status(store)?;
    if json {
        json::print(Outcome::Ok, doc)?;
        return Ok(exit::OK);
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let short = |v: &serde_json::Value| {
        text(v).map_or("-".to_owned(), |s| {
            s.strip_prefix("blake3:")
                .unwrap_or(&s)
                .chars()
                .take(12)
                .collect()
        })
    };
    let mut out = io::stdout().lock();
    for s in doc["sources"].as_array().into_iter().flatten() {
        ignore_broken_pipe(writeln!(
            out,
            "source {}\t{} {}\t{} snapshots\tlatest {}",
            text(&s["name"]).unwrap_or_default(),
            text(&s["vcs"]).unwrap_or_default(),
            text(&s["location"]).unwrap_or_default(),
            s["snapshots"],
            short(&s["latest"]),
        ))?;
    }
    for t in doc["targets"].as_array().into_iter().flatten() {
        let pending = match t["pending"].as_bool() {
            Some(true) => "changes pending",
            Some(false) => "up to date",
            None => "desired unknown",
        };
        let last = &t["last_run"];
        let last = if last.is_null() {
            "no runs".to_owned()
        } else {
            format!(
                "last run {} {} {}",
                last["run"],
                text(&last["kind"]).unwrap_or_default(),
                text(&last["outcome"]).unwrap_or_default()
            )
        };
        ignore_broken_pipe(writeln!(
            out,
            "target {}\t{} <- {}\tapplied {}{}\t{pending}\tdrift {}\t{last}",
            text(&t["name"]).unwrap_or_default(),
            text(&t["location"]).unwrap_or_default(),
            text(&t["source"]).unwrap_or_default(),
            short(&t["applied"]),
            if t["pinned"].is_null() {
                ""
            } else {
                " (pinned)"
            },
            text(&t["drift"]).unwrap_or_default(),
        ))?;
    }
    Ok(exit::OK)
}
