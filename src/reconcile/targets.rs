//! The kinds of target: one [`TargetKind`] entry each, listed in
//! [`TARGETS`], and the [`Location`] of a target, `KIND:ARGUMENT`.
//!
//! An entry holds everything plumb knows about a kind: the name its
//! locations start with, how its argument is checked and normalized, and
//! how it opens as a [`Target`]. Nothing else matches on the kind.
//!
//! ```
//! use plumb::reconcile::targets::Location;
//!
//! let at: Location = "dir:/srv/www".parse().unwrap();
//! assert_eq!((at.kind().name, at.argument()), ("dir", "/srv/www"));
//! assert_eq!(at.to_string(), "dir:/srv/www");
//! assert!("ftp:/srv/www".parse::<Location>().is_err());
//! ```
//!
//! To add a kind: write its entry here and put it in [`TARGETS`].

use std::fmt;
use std::path::Path;

use plumb_core::target::Target;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ReconcileError;

/// One kind of target.
///
/// # Contract
///
/// - `name` is stable: stored target definitions hold locations as
///   `NAME:ARGUMENT` text (`spec/store.md`).
/// - `normalize` returns an argument that `valid` accepts and that
///   `normalize` leaves as it is; it may depend on the process (the
///   current directory), `valid` may not.
/// - Opening a target may start it (a plugin program), but changes
///   nothing there.
#[derive(Debug)]
pub struct TargetKind {
    /// Its name: what its locations start with, before the `:`.
    pub name: &'static str,
    /// The form of its locations, for messages (`dir:PATH`).
    pub usage: &'static str,
    valid: fn(&str) -> bool,
    normalize: fn(&str) -> Result<String, ReconcileError>,
    open: fn(&str) -> Result<Box<dyn Target>, ReconcileError>,
}

/// A directory tree (`backends/targets/dir`); a relative path is made
/// absolute when the target is added. The directory need not exist yet.
pub static DIR: TargetKind = TargetKind {
    name: "dir",
    usage: "dir:PATH",
    valid: |path| !path.is_empty(),
    normalize: absolute,
    open: |path| {
        Ok(Box::new(plumb_target_dir::DirTarget::new(
            Path::new(path).to_path_buf(),
        )))
    },
};

/// A program speaking the plugin protocol (`backends/targets/exec`),
/// with its arguments, split as a shell would, and run in the current
/// directory.
pub static EXEC: TargetKind = TargetKind {
    name: "exec",
    usage: "exec:PROGRAM",
    valid: |command| !command.trim().is_empty(),
    normalize: |command| Ok(command.to_owned()),
    open: spawn,
};

/// Every kind.
pub static TARGETS: [&TargetKind; 2] = [&DIR, &EXEC];

impl TargetKind {
    /// The kind called `name`.
    pub fn named(name: &str) -> Option<&'static TargetKind> {
        TARGETS.iter().copied().find(|k| k.name == name)
    }
}

/// Where a target is: its kind, and the kind's argument (the directory of
/// `dir:PATH`, the command line of `exec:PROGRAM ARGS…`). Stored and shown
/// as its text, `KIND:ARGUMENT`.
#[derive(Clone)]
pub struct Location {
    kind: &'static TargetKind,
    argument: String,
}

impl Location {
    /// Checks a location given to `target add` and normalizes its
    /// argument (a directory becomes absolute).
    pub fn normalize(text: &str) -> Result<Location, ReconcileError> {
        let given: Location = text.parse()?;
        let argument = (given.kind.normalize)(&given.argument)?;
        Ok(Location {
            kind: given.kind,
            argument,
        })
    }

    /// Its kind.
    pub fn kind(&self) -> &'static TargetKind {
        self.kind
    }

    /// What follows `KIND:`.
    pub fn argument(&self) -> &str {
        &self.argument
    }

    /// Opens the target here.
    pub fn open(&self) -> Result<Box<dyn Target>, ReconcileError> {
        (self.kind.open)(&self.argument)
    }
}

impl std::str::FromStr for Location {
    type Err = ReconcileError;

    /// Reads `KIND:ARGUMENT`, as stored: checked, not normalized.
    fn from_str(text: &str) -> Result<Location, ReconcileError> {
        text.split_once(':')
            .and_then(|(name, argument)| {
                let kind = TargetKind::named(name)?;
                (kind.valid)(argument).then(|| Location {
                    kind,
                    argument: argument.to_owned(),
                })
            })
            .ok_or_else(|| {
                let usage: Vec<_> = TARGETS.iter().map(|k| k.usage).collect();
                ReconcileError::Invalid(format!(
                    "bad target location {text:?}: use {}",
                    usage.join(" or ")
                ))
            })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name, self.argument)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Location) -> bool {
        self.kind.name == other.kind.name && self.argument == other.argument
    }
}

impl Eq for Location {}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Location, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A path made absolute against the current directory (not resolved: it
/// need not exist).
fn absolute(path: &str) -> Result<String, ReconcileError> {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| ReconcileError::Invalid(format!("the current directory: {e}")))?
            .join(p)
    };
    abs.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ReconcileError::Invalid(format!("target path {abs:?} is not UTF-8")))
}

/// Starts a plugin in the current directory.
fn spawn(command: &str) -> Result<Box<dyn Target>, ReconcileError> {
    let cwd = std::env::current_dir()
        .map_err(|e| ReconcileError::Invalid(format!("the current directory is unusable: {e}")))?;
    Ok(Box::new(plumb_target_exec::ExecTarget::spawn(
        command, &cwd,
    )?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name() {
        for kind in TARGETS {
            assert!(std::ptr::eq(TargetKind::named(kind.name).unwrap(), kind));
            assert!(kind.usage.starts_with(&format!("{}:", kind.name)));
        }
        assert!(TargetKind::named("etcd").is_none());
    }

    #[test]
    fn parses_locations() {
        let dir: Location = "dir:/srv/www".parse().unwrap();
        assert!(std::ptr::eq(dir.kind(), &DIR));
        assert_eq!(dir.argument(), "/srv/www");
        let exec: Location = "exec:plugin --db a:b".parse().unwrap();
        assert!(std::ptr::eq(exec.kind(), &EXEC));
        assert_eq!(exec.argument(), "plugin --db a:b");
        assert_eq!(exec.to_string(), "exec:plugin --db a:b");
        for bad in [
            "", "dir", "dir:", "exec:", "exec:  ", "/srv/www", "ftp:/x", "DIR:/x",
        ] {
            let err = bad.parse::<Location>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("bad target location {bad:?}: use dir:PATH or exec:PROGRAM")
            );
        }
    }

    #[test]
    fn normalizes_locations() {
        let cwd = std::env::current_dir().unwrap();
        let rel = Location::normalize("dir:out/www").unwrap();
        assert_eq!(
            rel.to_string(),
            format!("dir:{}", cwd.join("out/www").display())
        );
        let abs = Location::normalize("dir:/srv/www").unwrap();
        assert_eq!(abs, "dir:/srv/www".parse().unwrap());
        assert_eq!(Location::normalize(&abs.to_string()).unwrap(), abs);
        let exec = Location::normalize("exec:plugin a").unwrap();
        assert_eq!(exec.to_string(), "exec:plugin a");
        assert!(Location::normalize("dir:").is_err());
    }

    #[test]
    fn stores_as_its_text() {
        let at: Location = "exec:plugin a".parse().unwrap();
        let bytes = postcard::to_stdvec(&at).unwrap();
        assert_eq!(bytes, postcard::to_stdvec("exec:plugin a").unwrap());
        assert_eq!(postcard::from_bytes::<Location>(&bytes).unwrap(), at);
        let bad = postcard::to_stdvec("ftp:/x").unwrap();
        assert!(postcard::from_bytes::<Location>(&bad).is_err());
        assert_eq!(
            serde_json::to_value(&at).unwrap(),
            serde_json::json!("exec:plugin a")
        );
    }
}
