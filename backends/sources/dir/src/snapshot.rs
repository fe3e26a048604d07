//! The snapshot record: revision numbering, identity, time and extras.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use plumb_core::source::SourceError;
use plumb_core::{Person, Snapshot, SnapshotId, TreeId};

use crate::REVISION_PREFIX;

/// The revision after `latest`'s: `dir:1` first, then `dir:<n+1>`.
pub(crate) fn next_revision(latest: Option<&Snapshot>, root: &Path) -> Result<String, SourceError> {
    let n = match latest {
        None => 0,
        Some(s) => s
            .revision
            .strip_prefix(REVISION_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| SourceError::Invalid {
                location: root.display().to_string(),
                reason: format!(
                    "the latest snapshot of this source has revision {:?}, not {REVISION_PREFIX}<n>",
                    s.revision
                ),
            })?,
    };
    let next = n.checked_add(1).ok_or_else(|| SourceError::Invalid {
        location: root.display().to_string(),
        reason: "snapshot numbering overflowed".to_owned(),
    })?;
    Ok(format!("{REVISION_PREFIX}{next}"))
}

/// The snapshot of `tree`, taken at `started`.
pub(crate) fn build(
    tree: TreeId,
    parent: Option<SnapshotId>,
    revision: String,
    root: &Path,
    subdir: Option<&Path>,
    started: SystemTime,
) -> Snapshot {
    let person = Person {
        name: user(),
        email: [user(), b"@".to_vec(), hostname()].concat(),
        time: started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        tz_minutes: 0,
    };
    let shown = match subdir {
        Some(sub) => root.join(sub),
        None => root.to_path_buf(),
    };
    let mut message = b"snapshot of ".to_vec();
    message.extend_from_slice(shown.as_os_str().as_bytes());
    let mut extra = vec![("dir.root".to_owned(), root.as_os_str().as_bytes().to_vec())];
    if let Some(sub) = subdir {
        extra.push(("dir.path".to_owned(), sub.as_os_str().as_bytes().to_vec()));
    }
    Snapshot {
        tree,
        parents: parent.into_iter().collect(),
        revision,
        author: person.clone(),
        committer: person,
        message,
        extra,
    }
}

/// The user's login name: `$USER`, else `$LOGNAME`, else `unknown`.
fn user() -> Vec<u8> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(std::env::var_os)
        .map(OsString::into_vec)
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| b"unknown".to_vec())
}

/// The host's name, from `/etc/hostname` or the kernel, else `localhost`.
fn hostname() -> Vec<u8> {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|v| v.trim_ascii().to_vec())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| b"localhost".to_vec())
}
