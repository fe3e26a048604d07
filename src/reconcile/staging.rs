//! The new tree of an apply, made in a private directory before any live
//! file changes, for a `check` hook to read.
//!
//! Only what changes is written from the store; a file the plan keeps is
//! hard-linked from the target's root when it is a directory on the same
//! file system (else copied, which reflinks where the file system can).
//! A hard link shares its inode with the live file: a check must read the
//! staged tree, never write to it.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ReconcileError;
use super::desired::Desired;
use super::plan::{Action, Plan};
use crate::store::Store;

/// A staged tree and the file listing the changed paths beside it; both
/// are removed when it is dropped.
#[derive(Debug)]
pub struct Staged {
    /// The tree.
    pub dir: PathBuf,
    /// The changed paths, each ended by a NUL byte.
    pub changed: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.changed);
    }
}

/// Stages what `plan` leaves at the target in a new directory under
/// `under` (made if missing), hard-linking kept files from `root`.
pub fn stage(
    store: &Store,
    plan: &Plan,
    root: Option<&Path>,
    under: &Path,
) -> Result<Staged, ReconcileError> {
    let staged = list_changes(plan, under)?;
    for step in &plan.steps {
        if matches!(step.action, Action::Delete | Action::Forget) {
            continue;
        }
        let Some(want) = &step.desired else {
            continue;
        };
        let rel = Path::new(OsStr::from_bytes(step.path.as_bytes()));
        let at = staged.dir.join(rel);
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        match want {
            Desired::Dir => fs::create_dir_all(&at).map_err(|e| io(&at, e))?,
            Desired::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &at)
                    .map_err(|e| io(&at, e))?;
            }
            Desired::File { blob, executable } => {
                let live = root
                    .filter(|_| matches!(step.action, Action::Keep))
                    .map(|r| r.join(rel));
                let linked = live.is_some_and(|live| {
                    fs::hard_link(&live, &at).is_ok() || fs::copy(&live, &at).is_ok()
                });
                if !linked {
                    let data = store.blob(blob)?.into_data();
                    fs::write(&at, data).map_err(|e| io(&at, e))?;
                    let mode = step
                        .attrs
                        .mode
                        .unwrap_or(if *executable { 0o755 } else { 0o644 });
                    fs::set_permissions(&at, fs::Permissions::from_mode(mode))
                        .map_err(|e| io(&at, e))?;
                }
            }
        }
    }
    Ok(staged)
}

/// An empty staging directory under `under` (made if missing) and, beside
/// it, the list of the paths `plan` changes, each ended by a NUL byte.
pub fn list_changes(plan: &Plan, under: &Path) -> Result<Staged, ReconcileError> {
    fs::create_dir_all(under).map_err(|e| io(under, e))?;
    let dir = fresh_dir(under).map_err(|e| io(under, e))?;
    let staged = Staged {
        changed: super::hooks::changed_file(&dir),
        dir,
    };
    let mut changed = Vec::new();
    for step in plan.steps.iter().filter(|s| s.action.changes()) {
        changed.extend_from_slice(step.path.as_bytes());
        changed.push(0);
    }
    let mut file = fs::File::create(&staged.changed).map_err(|e| io(&staged.changed, e))?;
    file.write_all(&changed)
        .map_err(|e| io(&staged.changed, e))?;
    Ok(staged)
}

/// A staging failure at `what`.
fn io(what: &Path, e: std::io::Error) -> ReconcileError {
    ReconcileError::Invalid(format!("staging at {}: {e}", what.display()))
}

/// A new directory `under/stage-PID-N`, N counting up until a name is free.
fn fresh_dir(under: &Path) -> std::io::Result<PathBuf> {
    let pid = std::process::id();
    let mut n = 0u32;
    loop {
        let dir = under.join(format!("stage-{pid}-{n}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(e),
        }
    }
}
