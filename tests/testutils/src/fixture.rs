//! Fixtures built once per test process: a repository that several tests
//! read is made once with the real `git` or `hg`, and each test that uses
//! it gets a copy of its own (so it may change it).
//!
//! ```ignore
//! // A Git repository, and its copy for this test at `tmp/repo`:
//! let (_, built) = fixture::cached("history", |dir| build_history(dir));
//! let repo = built.copy_to(tmp.path(), "repo");
//! // A tree made in place (a Mercurial repository), copied to `root`:
//! fixture::copy_of("hg-history", &root, build_hg_history);
//! ```
//!
//! A process keeps its fixtures in `plumb-test-fixtures/PID` under the
//! temporary directory; the first process to start after one has ended
//! removes what it left.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// One fixture: what its builder returned, once it has run.
type Slot = Arc<Mutex<Option<Box<dyn Any + Send>>>>;

/// The fixtures of this process, by name.
static FIXTURES: Mutex<BTreeMap<String, Slot>> = Mutex::new(BTreeMap::new());

/// The fixture `name`: on the first call in this process, runs `build` in
/// an empty directory of the fixture's own and keeps what it returns; on
/// every call, returns that directory and a clone of the value. Calls for
/// the same name wait for one build. The directory is shared: copy what a
/// test changes.
///
/// # Panics
///
/// When the build panics (here, and in later calls for the same name), or
/// when one name is used with two value types.
pub fn cached<T: Clone + Send + 'static>(
    name: &str,
    build: impl FnOnce(&Path) -> T,
) -> (PathBuf, T) {
    let slot = Arc::clone(
        FIXTURES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default(),
    );
    let mut value = slot
        .lock()
        .unwrap_or_else(|_| panic!("fixture {name} failed to build in another test"));
    let dir = process_dir().join(name);
    if value.is_none() {
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        *value = Some(Box::new(build(&dir)));
    }
    let value = value
        .as_ref()
        .and_then(|v| v.downcast_ref::<T>())
        .unwrap_or_else(|| panic!("fixture {name} is used with two value types"));
    (dir, value.clone())
}

/// The fixture `name`, a tree `build` makes in its directory (see
/// [`cached`]), copied to `to`.
pub fn copy_of(name: &str, to: &Path, build: impl FnOnce(&Path)) {
    let (dir, ()) = cached(name, build);
    crate::fs::copy_tree(&dir, to);
}

/// This process's fixture directory, made (and what ended processes left
/// removed) at the first use.
fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir().join("plumb-test-fixtures");
        remove_ended(&base);
        let dir = base.join(std::process::id().to_string());
        // Left by an ended process that had the same id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        dir
    })
}

/// Removes the fixture directories of processes that have ended.
fn remove_ended(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok());
        let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else {
            continue;
        };
        let running = match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            // It exists, and belongs to someone else.
            Err(e) => e == rustix::io::Errno::PERM,
        };
        if !running {
            // Best effort: another process may be removing it too.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
