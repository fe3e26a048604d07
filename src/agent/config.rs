//! The agent's configuration file (TOML): what `plumb serve` reads and
//! `plumb config check` checks.
//!
//! Decoding ([`Config::parse`]) checks the form: known keys only, values
//! of the right type, durations, the listen address and the token rule.
//! Checking against a store ([`Config::target_defs`]) then validates every
//! source and target as `plumb source add` and `plumb target add` would,
//! and that each target's source is declared or exists. Every error is
//! one line, `FILE:LINE:COL: MESSAGE`, pointing at the value at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::reconcile::hooks::{Hook, Hooks};
use crate::reconcile::targets::Location;
use crate::reconcile::{TargetDef, define};
use crate::store::{SourceDef, check_source_name};

/// The poll interval of a source that names none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The drift interval of a target that names none.
pub const DEFAULT_DRIFT_INTERVAL: Duration = Duration::from_secs(300);
/// How long an apply in progress may finish after SIGTERM, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// The longest wait between retries of a failing source or target, by
/// default.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something in the file is wrong, at a place.
    #[error("{}:{line}:{column}: {message}", file.display())]
    At {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column (in characters), from 1.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// A decoded and checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// `[serve]`.
    pub serve: Serve,
    /// `[source.NAME]`, by name.
    pub sources: Vec<SourceSpec>,
    /// `[target.NAME]`, by name.
    pub targets: Vec<TargetSpec>,
    spans: Spans,
}

/// `[serve]`: how the agent runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Serve {
    /// Where the API, metrics and health listen.
    pub listen: SocketAddr,
    /// A file holding the bearer token every `/api` call must carry.
    pub token_file: Option<PathBuf>,
    /// Reconciles at once, at most.
    pub max_parallel: usize,
    /// How long an apply in progress may finish after SIGTERM.
    pub grace: Duration,
    /// The longest wait between retries of a failing source or target.
    pub backoff_max: Duration,
    /// The store directory, when the command line names none.
    pub store: Option<PathBuf>,
}

/// `[source.NAME]`: a source the agent defines and polls.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// The name.
    pub name: String,
    /// `location`, as given.
    pub location: String,
    /// `vcs`.
    pub vcs: Option<String>,
    /// `refs`.
    pub refs: Vec<String>,
    /// `path`.
    pub path: Option<String>,
    /// `interval`: how often it is polled (jittered).
    pub interval: Duration,
}

/// What a target does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply new snapshots and heal drift.
    Apply,
    /// Record pending changes and drift; never write to the target.
    Observe,
}

impl Mode {
    /// Its name in the configuration and the API.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Observe => "observe",
        }
    }
}

/// `[target.NAME]`: a target the agent defines and reconciles.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// The name.
    pub name: String,
    /// `backend`, as given (`dir:PATH`, `exec:PROGRAM ARGS…`).
    pub backend: String,
    /// `source`.
    pub source: String,
    /// `path`.
    pub path: Option<String>,
    /// `ref`: a selector to follow instead of the latest snapshot.
    pub sel: Option<String>,
    /// `prune`.
    pub prune: bool,
    /// `max_delete`, in percent.
    pub max_delete: Option<u8>,
    /// `mode`.
    pub mode: Mode,
    /// `drift_interval`: how often drift is checked (jittered).
    pub drift_interval: Duration,
    /// `check`, `after`, `health` and their `*_timeout`s, as
    /// `target add --check` and the rest take them.
    pub hooks: Hooks,
}

/// Where each value was written, for errors found after decoding.
#[derive(Debug, Clone, Default, PartialEq)]
struct Spans {
    text: String,
    at: BTreeMap<String, Range<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    serve: Option<RawServe>,
    #[serde(default)]
    source: BTreeMap<String, Spanned<RawSource>>,
    #[serde(default)]
    target: BTreeMap<String, Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    listen: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    max_parallel: Option<Spanned<i64>>,
    grace: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    location: Spanned<String>,
    vcs: Option<Spanned<String>>,
    #[serde(default)]
    refs: Vec<String>,
    path: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    backend: Spanned<String>,
    source: Spanned<String>,
    path: Option<Spanned<String>>,
    #[serde(rename = "ref")]
    sel: Option<Spanned<String>>,
    #[serde(default)]
    prune: bool,
    max_delete: Option<Spanned<i64>>,
    mode: Option<Spanned<String>>,
    drift_interval: Option<Spanned<String>>,
    check: Option<Spanned<String>>,
    check_timeout: Option<Spanned<String>>,
    after: Option<Spanned<String>>,
    after_timeout: Option<Spanned<String>>,
    health: Option<Spanned<String>>,
    health_timeout: Option<Spanned<String>>,
}

/// A duration: a number with a unit (`500ms`, `30s`, `5m`, `1h`,
/// `1h30m`), or bare seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 500ms, 30s, 5m, 1h)"))?;
    Duration::try_from(d).map_err(|_| format!("{text:?} is negative"))
}

/// Whether `addr` is a loopback address.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Errors of one file: each names a place in `text`.
struct At<'a> {
    file: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> ConfigError {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..self.text.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit_once('\n')
            .map_or(before, |(_, last)| last)
            .chars()
            .count()
            + 1;
        ConfigError::At {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.to_string(),
        }
    }

    /// The hook `command` (with its timeout `timeout`), as `target add
    /// --check` and the rest parse them.
    fn hook(
        &self,
        command: Option<&Spanned<String>>,
        timeout: Option<&Spanned<String>>,
        key: &str,
    ) -> Result<Option<Hook>, ConfigError> {
        let Some(command) = command else {
            if let Some(t) = timeout {
                return Err(self.error(Some(t.span()), format!("{key}_timeout without {key}")));
            }
            return Ok(None);
        };
        let timeout = match timeout {
            None => None,
            Some(t) => Some(self.duration(Some(t), Duration::ZERO, &format!("{key}_timeout"))?),
        };
        Hook::parse(command.get_ref(), timeout)
            .map(Some)
            .map_err(|e| self.error(Some(command.span()), format!("{key}: {e}")))
    }

    fn duration(
        &self,
        value: Option<&Spanned<String>>,
        default: Duration,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = value else {
            return Ok(default);
        };
        let d = parse_duration(v.get_ref()).map_err(|e| self.error(Some(v.span()), e))?;
        if d.is_zero() {
            return Err(self.error(Some(v.span()), format!("{key} must be longer than 0")));
        }
        Ok(d)
    }
}

impl Config {
    /// Reads and decodes the file at `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Decodes `text`, read from `file` (for messages): its form, not
    /// yet its sources and targets against a store ([`Config::target_defs`]).
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let at = At { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().replace('\n', " ");
            at.error(e.span(), message)
        })?;
        let mut spans = Spans {
            text: text.to_owned(),
            at: BTreeMap::new(),
        };
        let serve = match raw.serve {
            None => Serve {
                listen: default_listen(),
                token_file: None,
                max_parallel: 4,
                grace: DEFAULT_GRACE,
                backoff_max: DEFAULT_BACKOFF_MAX,
                store: None,
            },
            Some(s) => {
                let listen = match &s.listen {
                    None => default_listen(),
                    Some(l) => l.get_ref().parse().map_err(|_| {
                        at.error(
                            Some(l.span()),
                            format!(
                                "listen {:?} is not an address and port (like 127.0.0.1:9464)",
                                l.get_ref()
                            ),
                        )
                    })?,
                };
                let token_file = s.token_file.as_ref().map(|t| PathBuf::from(t.get_ref()));
                if !is_loopback(&listen) && token_file.is_none() {
                    return Err(at.error(
                        s.listen.as_ref().map(Spanned::span),
                        format!("listen {listen} is not a loopback address: set token_file, so that every /api call needs the token"),
                    ));
                }
                let max_parallel = match &s.max_parallel {
                    None => 4,
                    Some(n) => usize::try_from(*n.get_ref())
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or_else(|| {
                            at.error(Some(n.span()), "max_parallel must be from 1 to 1024")
                        })?,
                };
                Serve {
                    listen,
                    token_file,
                    max_parallel,
                    grace: at.duration(s.grace.as_ref(), DEFAULT_GRACE, "grace")?,
                    backoff_max: at.duration(
                        s.backoff_max.as_ref(),
                        DEFAULT_BACKOFF_MAX,
                        "backoff_max",
                    )?,
                    store: s.store.as_ref().map(|p| PathBuf::from(p.get_ref())),
                }
            }
        };
        let mut sources = Vec::new();
        for (name, body) in &raw.source {
            check_source_name(name).map_err(|e| at.error(Some(body.span()), e))?;
            let s = body.get_ref();
            spans.at.insert(format!("source.{name}"), s.location.span());
            sources.push(SourceSpec {
                name: name.clone(),
                location: s.location.get_ref().clone(),
                vcs: s.vcs.as_ref().map(|v| v.get_ref().clone()),
                refs: s.refs.clone(),
                path: s.path.as_ref().map(|p| p.get_ref().clone()),
                interval: at.duration(s.interval.as_ref(), DEFAULT_INTERVAL, "interval")?,
            });
        }
        let mut targets = Vec::new();
        for (name, body) in &raw.target {
            check_source_name(name).map_err(|e| at.error(Some(body.span()), e))?;
            let t = body.get_ref();
            spans.at.insert(format!("target.{name}"), t.backend.span());
            spans
                .at
                .insert(format!("target.{name}.source"), t.source.span());
            if let Some(p) = &t.path {
                spans.at.insert(format!("target.{name}.path"), p.span());
            }
            let mode = match &t.mode {
                None => Mode::Apply,
                Some(m) => match m.get_ref().as_str() {
                    "apply" => Mode::Apply,
                    "observe" => Mode::Observe,
                    other => {
                        return Err(at.error(
                            Some(m.span()),
                            format!("mode {other:?} is not \"apply\" or \"observe\""),
                        ));
                    }
                },
            };
            let max_delete = match &t.max_delete {
                None => None,
                Some(m) => Some(
                    u8::try_from(*m.get_ref())
                        .ok()
                        .filter(|p| *p <= 100)
                        .ok_or_else(|| {
                            at.error(Some(m.span()), "max_delete must be a percent, 0 to 100")
                        })?,
                ),
            };
            targets.push(TargetSpec {
                name: name.clone(),
                backend: t.backend.get_ref().clone(),
                source: t.source.get_ref().clone(),
                path: t.path.as_ref().map(|p| p.get_ref().clone()),
                sel: t.sel.as_ref().map(|s| s.get_ref().clone()),
                prune: t.prune,
                max_delete,
                mode,
                drift_interval: at.duration(
                    t.drift_interval.as_ref(),
                    DEFAULT_DRIFT_INTERVAL,
                    "drift_interval",
                )?,
                hooks: Hooks {
                    check: at.hook(t.check.as_ref(), t.check_timeout.as_ref(), "check")?,
                    after: at.hook(t.after.as_ref(), t.after_timeout.as_ref(), "after")?,
                    health: at.hook(t.health.as_ref(), t.health_timeout.as_ref(), "health")?,
                },
            });
        }
        Ok(Config {
            file: file.to_path_buf(),
            serve,
            sources,
            targets,
            spans,
        })
    }

    /// The error at the value `key` (`source.NAME`: its location;
    /// `target.NAME`: its backend; `target.NAME.source`, `….path`).
    fn error_at(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        let at = At {
            file: &self.file,
            text: &self.spans.text,
        };
        let span = self
            .spans
            .at
            .get(key)
            .or_else(|| {
                self.spans
                    .at
                    .get(key.rsplit_once('.').map_or(key, |(k, _)| k))
            })
            .cloned();
        at.error(span, message)
    }

    /// The source definitions, as `plumb source add` would make them.
    pub fn source_defs(&self) -> Result<Vec<SourceDef>, ConfigError> {
        self.sources
            .iter()
            .map(|s| {
                crate::sources::define(
                    &s.name,
                    &s.location,
                    s.vcs.as_deref(),
                    &s.refs,
                    s.path.as_deref(),
                )
                .map_err(|e| self.error_at(&format!("source.{}", s.name), e))
            })
            .collect()
    }

    /// The target definitions, as `plumb target add` would make them,
    /// checked against each other, the store's own targets (`existing`,
    /// those the configuration does not declare) and the store's
    /// directory. A target's source must be declared here or be one of
    /// `store_sources`. A plugin target runs in the configuration file's
    /// directory.
    pub fn target_defs(
        &self,
        store_sources: &[String],
        existing: &[TargetDef],
        store_dir: Option<&Path>,
    ) -> Result<Vec<TargetDef>, ConfigError> {
        let mut defs = Vec::new();
        for t in &self.targets {
            let key = format!("target.{}", t.name);
            if !self.sources.iter().any(|s| s.name == t.source)
                && !store_sources.contains(&t.source)
            {
                return Err(self.error_at(
                    &format!("{key}.source"),
                    format!(
                        "target {}: source {} is neither declared here nor defined in the store",
                        t.name,
                        plumb_core::quote::quote(t.source.as_bytes())
                    ),
                ));
            }
            let location = Location::normalize(&t.backend).map_err(|e| self.error_at(&key, e))?;
            let workdir = location
                .kind()
                .workdir
                .then(|| self.dir().to_string_lossy().into_owned());
            defs.push(TargetDef {
                name: t.name.clone(),
                location,
                source: t.source.clone(),
                path: t.path.clone(),
                sel: t.sel.clone(),
                prune: t.prune,
                pin: None,
                max_delete: t.max_delete,
                workdir,
                hooks: t.hooks.clone(),
            });
        }
        let mut others: Vec<TargetDef> = existing
            .iter()
            .filter(|e| !defs.iter().any(|d| d.name == e.name))
            .cloned()
            .collect();
        others.extend(defs.iter().cloned());
        for d in &defs {
            define::check(d, &others, store_dir).map_err(|e| {
                let key = if e.to_string().starts_with("--path") {
                    format!("target.{}.path", d.name)
                } else {
                    format!("target.{}", d.name)
                };
                self.error_at(&key, format!("target {}: {e}", d.name))
            })?;
        }
        Ok(defs)
    }

    /// The directory the file is in (absolute when it can be made so).
    pub fn dir(&self) -> PathBuf {
        let dir = self
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
    }

    /// The target declared as `name`.
    pub fn target(&self, name: &str) -> Option<&TargetSpec> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The source declared as `name`.
    pub fn source(&self, name: &str) -> Option<&SourceSpec> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// An error about a declared name that the store holds as its own
    /// (made outside the configuration).
    pub fn not_managed(&self, kind: &str, name: &str) -> ConfigError {
        let key = format!("{kind}.{name}");
        self.error_at(
            &key,
            format!(
                "{kind} {} exists in the store and was not made by this configuration; remove it (`plumb {kind} remove {name}`) or rename this one",
                plumb_core::quote::quote(name.as_bytes())
            ),
        )
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("plumb.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let cases = [
            (
                "[serve]\nlisten = \"0.0.0.0:9464\"\n",
                "plumb.toml:2:10: listen 0.0.0.0:9464 is not a loopback",
            ),
            (
                "[serve]\nbogus = 1\n",
                "plumb.toml:2:1: unknown field `bogus`",
            ),
            (
                "[source.a]\nlocation = \"/x\"\ninterval = \"soon\"\n",
                "plumb.toml:3:12: \"soon\" is not a duration",
            ),
            (
                "[target.t]\nbackend = \"dir:/x\"\nsource = \"a\"\nmode = \"yes\"\n",
                "plumb.toml:4:8: mode \"yes\"",
            ),
            (
                "[target.t]\nbackend = \"dir:/x\"\nsource = \"a\"\nmax_delete = 300\n",
                "plumb.toml:4:14: max_delete must be",
            ),
            (
                "[source.a]\nlocation = \"/x\"\nrefs = \"main\"\n",
                "plumb.toml:3:8: invalid type",
            ),
            (
                "[serve]\ngrace = \"0s\"\n",
                "plumb.toml:2:9: grace must be longer than 0",
            ),
            (
                "[target.t]\nbackend = \"dir:/y\"\nsource = \"a\"\ncheck_timeout = \"5s\"\n",
                "plumb.toml:4:17: check_timeout without check",
            ),
            (
                "[target.t]\nbackend = \"dir:/y\"\nsource = \"a\"\nafter = \"\"\n",
                "plumb.toml:4:9: after: ",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert!(got.starts_with(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn durations_and_defaults() {
        let c = parse(
            "[serve]\nlisten = \"0.0.0.0:1\"\ntoken_file = \"/t\"\n[source.a]\nlocation = \"/x\"\ninterval = \"200ms\"\n[target.t]\nbackend = \"dir:/y\"\nsource = \"a\"\ndrift_interval = \"1h30m\"\n",
        )
        .unwrap();
        assert_eq!(c.sources[0].interval, Duration::from_millis(200));
        assert_eq!(c.targets[0].drift_interval, Duration::from_secs(5400));
        assert_eq!(c.targets[0].mode, Mode::Apply);
        assert_eq!(c.serve.max_parallel, 4);
        assert!(c.targets[0].hooks.is_empty());
        let c = parse(
            "[target.t]\nbackend = \"dir:/y\"\nsource = \"a\"\ncheck = \"nginx -t -c '{staged}/n.conf'\"\ncheck_timeout = \"5s\"\nhealth = \"true\"\n",
        )
        .unwrap();
        let check = c.targets[0].hooks.check.as_ref().unwrap();
        assert_eq!(check.argv, ["nginx", "-t", "-c", "{staged}/n.conf"]);
        assert_eq!(check.timeout(), Duration::from_secs(5));
        assert_eq!(c.targets[0].hooks.health.as_ref().unwrap().argv, ["true"]);
        assert!(c.targets[0].hooks.after.is_none());
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }
}
