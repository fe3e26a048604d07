//! Declarative definitions: the sources and targets a configuration
//! declares are created, changed and removed in the store to match it;
//! those made with the command line are left alone.
//!
//! What the agent manages is a list of names kept beside the store
//! (`agent/managed.json` in its directory), not a mark in the
//! definitions. A name is added to the list before its definition is
//! made and dropped after it is removed, so a crash between the two
//! leaves a listed name with no definition (made again at the next
//! start), never a definition the agent would take for the command
//! line's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{Config, ConfigError};
use crate::reconcile::{Record, TargetDef, TargetStore};
use crate::store::{SourceDef, Store, StoreError};

/// Why the definitions could not be brought to match a configuration.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// The configuration is wrong for this store.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The list of managed names could not be read or written.
    #[error("{}: {source}", path.display())]
    Managed {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The names the agent manages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Managed {
    /// Source names.
    pub sources: BTreeSet<String>,
    /// Target names.
    pub targets: BTreeSet<String>,
}

impl Managed {
    /// The file holding the list, in the store directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("agent").join("managed.json")
    }

    /// Reads the list (empty when there is none).
    pub fn load(dir: &Path) -> Result<Managed, DeclareError> {
        let path = Self::path(dir);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Managed::default()),
            Err(source) => return Err(DeclareError::Managed { path, source }),
        };
        serde_json::from_slice(&text).map_err(|e| DeclareError::Managed {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Writes the list atomically (a temporary file renamed over it).
    fn save(&self, dir: &Path) -> Result<(), DeclareError> {
        let path = Self::path(dir);
        let io = |source| DeclareError::Managed {
            path: path.clone(),
            source,
        };
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(io)?;
        let tmp = parent.join(format!(".managed.json.plumb-tmp-{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// The definitions a configuration makes, checked against a store.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Sources, as `source add` would make them.
    pub sources: Vec<SourceDef>,
    /// Targets, as `target add` would make them.
    pub targets: Vec<TargetDef>,
    /// What the agent managed before.
    pub managed: Managed,
}

/// Checks `config` against the store (read-only, `None` when there is no
/// store yet) in directory `dir`: every definition valid, no declared name
/// taken by a definition made outside the configuration.
pub fn check(config: &Config, store: Option<&Store>, dir: &Path) -> Result<Plan, DeclareError> {
    let managed = Managed::load(dir)?;
    let (sources_now, targets_now) = match store {
        Some(s) => (s.sources()?, s.targets()?),
        None => (Vec::new(), Vec::new()),
    };
    for s in &config.sources {
        if sources_now.iter().any(|d| d.name == s.name) && !managed.sources.contains(&s.name) {
            return Err(config.not_managed("source", &s.name).into());
        }
    }
    for t in &config.targets {
        if targets_now.iter().any(|d| d.name == t.name) && !managed.targets.contains(&t.name) {
            return Err(config.not_managed("target", &t.name).into());
        }
    }
    let sources = config.source_defs()?;
    let names: Vec<String> = sources_now.iter().map(|s| s.name.clone()).collect();
    // Targets about to be removed (managed, no longer declared) do not count.
    let staying: Vec<_> = targets_now
        .into_iter()
        .filter(|t| !managed.targets.contains(&t.name) || config.target(&t.name).is_some())
        .collect();
    let targets = config.target_defs(&names, &staying, Some(dir))?;
    Ok(Plan {
        sources,
        targets,
        managed,
    })
}

/// What [`apply`] changed, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Definitions made.
    pub added: Vec<String>,
    /// Definitions changed (a source: removed with its history and made
    /// again).
    pub changed: Vec<String>,
    /// Definitions removed.
    pub removed: Vec<String>,
}

/// Brings the definitions in `store` (open for writing, in `dir`) to match
/// `plan`: removes the managed targets and sources it no longer declares,
/// makes the new ones and changes those that differ. A changed target
/// keeps its pin and what it applied; a changed source is made again
/// (its history is read anew at the next ingest).
pub fn apply(store: &Store, dir: &Path, plan: &Plan) -> Result<Changes, DeclareError> {
    let mut managed = plan.managed.clone();
    let mut changes = Changes::default();
    let declared_t: BTreeSet<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    let declared_s: BTreeSet<&str> = plan.sources.iter().map(|s| s.name.as_str()).collect();
    for name in plan
        .managed
        .targets
        .iter()
        .filter(|n| !declared_t.contains(n.as_str()))
    {
        if store.targets()?.iter().any(|t| t.name == *name) {
            store.remove_target(name)?;
        }
        managed.targets.remove(name);
        managed.save(dir)?;
        changes.removed.push(format!("target {name}"));
    }
    let followed: BTreeSet<String> = store.targets()?.into_iter().map(|t| t.source).collect();
    for name in plan
        .managed
        .sources
        .iter()
        .filter(|n| !declared_s.contains(n.as_str()))
    {
        if followed.contains(name) {
            // A target made with the command line still follows it.
            tracing::warn!(source = %name, "no longer declared, but a target follows it; kept");
            continue;
        }
        match store.remove_source(name) {
            Ok(()) | Err(StoreError::NoSuchSource { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        managed.sources.remove(name);
        managed.save(dir)?;
        changes.removed.push(format!("source {name}"));
    }
    for def in &plan.sources {
        if managed.sources.insert(def.name.clone()) {
            managed.save(dir)?;
        }
        match store.source(&def.name) {
            Ok(old) if old == *def => continue,
            Ok(_) => {
                store.remove_source(&def.name)?;
                store.add_source(def)?;
                changes.changed.push(format!("source {}", def.name));
            }
            Err(StoreError::NoSuchSource { .. }) => {
                store.add_source(def)?;
                changes.added.push(format!("source {}", def.name));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let existing = store.targets()?;
    for def in &plan.targets {
        if managed.targets.insert(def.name.clone()) {
            managed.save(dir)?;
        }
        match existing.iter().find(|t| t.name == def.name) {
            Some(old) => {
                let mut new = def.clone();
                new.pin = old.pin;
                if new == *old {
                    continue;
                }
                store.record(Record {
                    target: &def.name,
                    inventory: None,
                    run: None,
                    def: Some(&new),
                })?;
                changes.changed.push(format!("target {}", def.name));
            }
            None => {
                store.add_target(def)?;
                changes.added.push(format!("target {}", def.name));
            }
        }
    }
    Ok(changes)
}
