//! Turns between processes: an advisory lock (`flock`) on a file under the
//! store's `locks/` directory, which records who holds it (pid and command
//! line) for whoever waits. The lock ends with its holder, however it ends;
//! the file may stay.
//!
//! The store's writer turn is `locks/store`; a target's reconcile turn is
//! `locks/target-NAME` (`spec/store.md`).

use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::StoreError;

/// The directory of lock files inside a store directory.
pub const LOCKS_DIR: &str = "locks";

/// How long to wait for a turn another process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Wait as long as it takes (the default).
    #[default]
    Forever,
    /// Wait at most this long.
    At(Duration),
    /// Do not wait.
    No,
}

/// After this long waiting, the waiter is told who it waits for, once.
pub const NOTICE_AFTER: Duration = Duration::from_secs(1);

/// How often a waiter tries the lock again.
const POLL: Duration = Duration::from_millis(20);

/// Who holds a lock, as its file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id, when recorded.
    pub pid: Option<u32>,
    /// Its command line, when recorded.
    pub command: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) if self.command.is_empty() => write!(f, "pid {pid}"),
            Some(pid) => write!(f, "pid {pid} ({})", self.command),
            None => f.write_str("another plumb process"),
        }
    }
}

impl Holder {
    fn parse(text: &str) -> Self {
        let line = text.lines().next().unwrap_or_default();
        let (pid, command) = line.split_once(' ').unwrap_or((line, ""));
        match pid.parse() {
            Ok(pid) => Self {
                pid: Some(pid),
                command: command.to_owned(),
            },
            Err(_) => Self {
                pid: None,
                command: String::new(),
            },
        }
    }

    /// This process: its pid and command line (`plumb ingest app`).
    fn this_process() -> String {
        let mut args = std::env::args_os();
        let program = args
            .next()
            .map(|a| {
                Path::new(&a)
                    .file_name()
                    .map_or_else(|| a.clone(), |n| n.to_os_string())
            })
            .unwrap_or_default();
        let mut line = format!("{} {}", std::process::id(), program.to_string_lossy());
        for a in args {
            line.push(' ');
            line.push_str(&a.to_string_lossy().replace('\n', " "));
        }
        line
    }
}

/// A turn held; dropping it ends the turn.
#[derive(Debug)]
pub struct Turn {
    _file: File,
}

/// Why a turn was not taken.
#[derive(Debug)]
pub enum NotTaken {
    /// Another process holds it (and kept it for as long as `wait` allowed).
    Busy {
        /// Who, as its lock file says.
        holder: Holder,
        /// How long this process waited.
        waited: Duration,
    },
    /// The lock file could not be made or locked.
    Failed(StoreError),
}

impl From<StoreError> for NotTaken {
    fn from(e: StoreError) -> Self {
        NotTaken::Failed(e)
    }
}

/// The path of lock `name` in the store at `store_dir`.
pub fn path(store_dir: &Path, name: &str) -> PathBuf {
    store_dir.join(LOCKS_DIR).join(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path, source }
}

fn holder_of(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text));
    Holder::parse(&text)
}

/// Takes the turn at `path` (made if missing), waiting as `wait` allows;
/// `waiting` is called once, with the holder, when the wait passes
/// [`NOTICE_AFTER`]. The file then records this process as the holder.
pub fn take(path: &Path, wait: Wait, waiting: &dyn Fn(&Holder)) -> Result<Turn, NotTaken> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io(path)(e).into()),
        }
        let waited = start.elapsed();
        let out_of_time = match wait {
            Wait::No => true,
            Wait::At(limit) => waited >= limit,
            Wait::Forever => false,
        };
        if out_of_time {
            return Err(NotTaken::Busy {
                holder: holder_of(&mut file),
                waited,
            });
        }
        if !told && waited >= NOTICE_AFTER {
            told = true;
            waiting(&holder_of(&mut file));
        }
        std::thread::sleep(POLL);
    }
    // Who holds it is for messages only: a failure to say so is no failure.
    let line = Holder::this_process();
    let _ = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{line}"));
    Ok(Turn { _file: file })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_turn_excludes_a_second_and_names_its_holder() {
        let d = tempfile::tempdir().unwrap();
        let p = path(d.path(), "store");
        let first = take(&p, Wait::No, &|_| {}).unwrap();
        let told = Cell::new(0);
        let started = Instant::now();
        match take(&p, Wait::At(Duration::from_millis(1200)), &|h| {
            assert_eq!(h.pid, Some(std::process::id()));
            told.set(told.get() + 1);
        }) {
            Err(NotTaken::Busy { holder, waited }) => {
                assert_eq!(holder.pid, Some(std::process::id()));
                assert!(holder.to_string().starts_with("pid "), "{holder}");
                assert!(waited >= Duration::from_millis(1200));
            }
            other => panic!("expected busy, got {other:?}"),
        }
        assert_eq!(told.get(), 1, "the holder is named once");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            take(&p, Wait::No, &|_| {}),
            Err(NotTaken::Busy { .. })
        ));
        drop(first);
        take(&p, Wait::No, &|_| {}).unwrap();
    }

    #[test]
    fn holder_lines_parse() {
        assert_eq!(
            Holder::parse("12 plumb ingest app\n").to_string(),
            "pid 12 (plumb ingest app)"
        );
        assert_eq!(Holder::parse("").to_string(), "another plumb process");
        assert_eq!(Holder::parse("7").to_string(), "pid 7");
    }
}
