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
use std::path::{Component, Path, PathBuf};

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
///   nothing there. A kind with `workdir` runs in the working directory
///   recorded at `target add` (the caller's when none was recorded).
/// - `root` is the directory the target's files live in, for kinds that
///   have one: two targets' roots never overlap, and none holds the store.
#[derive(Debug)]
pub struct TargetKind {
    /// Its name: what its locations start with, before the `:`.
    pub name: &'static str,
    /// The form of its locations, for messages (`dir:PATH`).
    pub usage: &'static str,
    /// Whether its targets run in a working directory recorded at
    /// `target add`, so that relative names in the argument keep their
    /// meaning wherever plumb later runs from.
    pub workdir: bool,
    valid: fn(&str) -> bool,
    normalize: fn(&str) -> Result<String, ReconcileError>,
    open: OpenFn,
    root: fn(&str) -> Option<&Path>,
}

/// How a kind opens a target: its argument, and the working directory
/// recorded for it.
type OpenFn = fn(&str, Option<&Path>) -> Result<Box<dyn Target>, ReconcileError>;

/// A directory tree (`backends/targets/dir`). The path is stored
/// absolute and normalized: a relative path is resolved against the
/// current directory when the target is added, `.` components and
/// repeated slashes are dropped, and a `..` component is refused (it
/// would make "the root is missing" depend on directories plumb then
/// creates). The directory need not exist yet.
pub static DIR: TargetKind = TargetKind {
    name: "dir",
    usage: "dir:PATH",
    workdir: false,
    valid: |path| !path.is_empty(),
    normalize: normalize_root,
    open: |path, _| {
        // A root stored before roots were normalized opens normalized;
        // one with `..` does not open at all.
        let root = normalize_root(path).map_err(|e| {
            ReconcileError::Invalid(format!("{e} (remove the target and add it again)"))
        })?;
        Ok(Box::new(plumb_target_dir::DirTarget::new(PathBuf::from(
            root,
        ))))
    },
    root: |path| Some(Path::new(path)),
};

/// A program speaking the plugin protocol (`backends/targets/exec`),
/// with its arguments, split as a shell would. A program named by a path
/// is made absolute when the target is added; one named without a `/` is
/// looked up on `PATH` when it runs. It runs in the directory that was
/// current at `target add`.
pub static EXEC: TargetKind = TargetKind {
    name: "exec",
    usage: "exec:PROGRAM",
    workdir: true,
    valid: |command| !command.trim().is_empty(),
    normalize: normalize_command,
    open: spawn,
    root: |_| None,
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

    /// Opens the target here; a kind with a working directory runs in
    /// `workdir` (the current directory when `None`).
    pub fn open(&self, workdir: Option<&Path>) -> Result<Box<dyn Target>, ReconcileError> {
        (self.kind.open)(&self.argument, workdir)
    }

    /// The directory its files live in, for a kind that has one.
    pub fn root(&self) -> Option<&Path> {
        (self.kind.root)(&self.argument)
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

/// The current directory, or why it is unusable.
pub fn current_dir() -> Result<PathBuf, ReconcileError> {
    std::env::current_dir()
        .map_err(|e| ReconcileError::Invalid(format!("the current directory is unusable: {e}")))
}

/// A path made absolute against the current directory and normalized
/// without looking at the file system (it need not exist): `.` and
/// repeated slashes dropped, `..` refused.
fn normalize_root(path: &str) -> Result<String, ReconcileError> {
    let p = Path::new(path);
    let mut abs = if p.is_absolute() {
        PathBuf::from("/")
    } else {
        current_dir()?
    };
    for c in p.components() {
        match c {
            Component::Normal(name) => abs.push(name),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(ReconcileError::Invalid(format!(
                    "target path {path:?} has a '..' component; name the directory without it"
                )));
            }
        }
    }
    abs.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ReconcileError::Invalid(format!("target path {abs:?} is not UTF-8")))
}

/// A plugin command line with its program made absolute when it is named
/// by a path (`./plugin`, `bin/plugin`); a bare name stays, for `PATH`.
/// Refuses a line a shell could not split (unbalanced quotes).
fn normalize_command(command: &str) -> Result<String, ReconcileError> {
    let mut words = shlex::split(command).ok_or_else(|| {
        ReconcileError::Invalid(format!(
            "exec command {command:?} has unbalanced quotes or a trailing backslash"
        ))
    })?;
    let Some(program) = words.first_mut() else {
        return Err(ReconcileError::Invalid(format!(
            "exec command {command:?} names no program"
        )));
    };
    if !program.contains('/') {
        return Ok(command.to_owned());
    }
    let abs = std::path::absolute(Path::new(program.as_str()))
        .map_err(|e| ReconcileError::Invalid(format!("exec program {program:?}: {e}")))?;
    let meta = std::fs::metadata(&abs)
        .map_err(|e| ReconcileError::Invalid(format!("exec program {}: {e}", abs.display())))?;
    if !meta.is_file() {
        return Err(ReconcileError::Invalid(format!(
            "exec program {} is not a file",
            abs.display()
        )));
    }
    *program = abs
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| ReconcileError::Invalid(format!("exec program {abs:?} is not UTF-8")))?;
    shlex::try_join(words.iter().map(String::as_str))
        .map_err(|e| ReconcileError::Invalid(format!("exec command {command:?}: {e}")))
}

/// Starts a plugin in `workdir`, else the current directory.
fn spawn(command: &str, workdir: Option<&Path>) -> Result<Box<dyn Target>, ReconcileError> {
    let cwd = match workdir {
        Some(dir) => dir.to_path_buf(),
        None => current_dir()?,
    };
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
        // `.` and repeated slashes go; `..` is refused, not resolved.
        let dotted = Location::normalize("dir:./live//conf/.").unwrap();
        assert_eq!(
            dotted.to_string(),
            format!("dir:{}", cwd.join("live/conf").display())
        );
        assert_eq!(
            Location::normalize("dir:///srv//www/").unwrap().to_string(),
            "dir:/srv/www"
        );
        for bad in ["dir:/srv/www/new/..", "dir:../www", "dir:a/../b"] {
            let err = Location::normalize(bad).unwrap_err().to_string();
            assert!(err.contains("'..'"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_stored_root_with_dot_dot_does_not_open() {
        let at: Location = "dir:/srv/www/new/..".parse().unwrap();
        let err = at.open(None).err().unwrap().to_string();
        assert!(err.contains("add it again"), "{err}");
        let dotted: Location = "dir:/srv//www/./".parse().unwrap();
        assert!(dotted.open(None).is_ok());
    }

    #[test]
    fn normalizes_plugin_commands() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("my plugin");
        std::fs::write(&program, b"#!/bin/sh\n").unwrap();
        let given = format!("exec:'{}' --db 'a b'", program.display());
        let at = Location::normalize(&given).unwrap();
        assert_eq!(
            shlex::split(at.argument()).unwrap(),
            [program.to_str().unwrap(), "--db", "a b"]
        );
        assert_eq!(Location::normalize(&at.to_string()).unwrap(), at);
        for bad in ["exec:plugin 'a", "exec:plugin \"a", "exec:plugin a\\"] {
            let err = Location::normalize(bad).unwrap_err().to_string();
            assert!(err.contains("unbalanced quotes"), "{bad}: {err}");
        }
        let missing = format!("exec:{}/nothing", dir.path().display());
        assert!(Location::normalize(&missing).is_err());
        let not_file = format!("exec:{}", dir.path().display());
        let err = Location::normalize(&not_file).unwrap_err().to_string();
        assert!(err.contains("not a file"), "{err}");
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
