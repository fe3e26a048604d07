//! The command-line test environment: a scratch directory holding a store
//! and whatever a test needs, and a `plumb` binary run on it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A scratch directory holding a store (`store/`) and whatever a test
/// needs, and the `plumb` program run on it. Removed when dropped.
pub struct TestEnv {
    /// The scratch directory.
    pub dir: tempfile::TempDir,
    program: PathBuf,
}

impl TestEnv {
    /// A fresh environment running `program` (a package's tests pass
    /// `env!("CARGO_BIN_EXE_plumb")`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            program: program.into(),
        }
    }

    /// `rel` inside the scratch directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The store's directory.
    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// A `plumb` command on this environment's store, run in the scratch
    /// directory: no colour, no `RUST_LOG`, no `PLUMB_STORE` from outside.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("--store").arg(self.store()).args(args);
        c.env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("PLUMB_STORE");
        c.current_dir(self.dir.path());
        c
    }

    /// Runs `plumb ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run plumb")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "plumb {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs and requires success; returns stdout, which must be UTF-8.
    pub fn ok_text(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args)).expect("UTF-8 output")
    }

    /// Runs a command printing JSON and requires success; returns the value.
    pub fn ok_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("plumb {args:?}: {e}: {}", String::from_utf8_lossy(&out)))
    }

    /// The native revision of the snapshot `REV` names (`plumb show REV
    /// --json`).
    pub fn revision(&self, rev: &str) -> String {
        self.ok_json(&["show", rev, "--json"])["revision"]
            .as_str()
            .unwrap_or_else(|| panic!("no revision for {rev}"))
            .to_owned()
    }

    /// Runs and requires failure with `code` and exactly one line of error
    /// on stderr (fsck's own report aside), no panic; returns that line.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "plumb {args:?}: {err}");
        assert!(!err.contains("panicked"), "plumb {args:?} panicked: {err}");
        assert!(!err.contains("RUST_BACKTRACE"), "{err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("plumb: fsck:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line from {args:?}, got: {err}"
        );
        lines[0].to_owned()
    }

    /// Starts `plumb ARGS`, SIGKILLs it after `delay` if it is still
    /// running, then requires `plumb fsck` to pass. Returns whether the run
    /// was interrupted.
    pub fn killed_after(&self, args: &[&str], delay: Duration) -> bool {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn plumb");
        std::thread::sleep(delay);
        let killed = child.try_wait().expect("poll plumb").is_none();
        if killed {
            child.kill().expect("kill plumb");
        }
        child.wait().expect("reap plumb");
        let fsck = self.run(&["fsck"]);
        assert!(
            fsck.status.success(),
            "fsck failed after plumb {args:?} was killed at {delay:?}: {}",
            String::from_utf8_lossy(&fsck.stderr)
        );
        killed
    }

    /// Runs; returns the exit code, stdout and stderr, and requires that
    /// it did not panic.
    pub fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    }

    /// Runs a command printing JSON; returns the exit code and the value.
    pub fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let (code, out, err) = self.code(args);
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out} {err}"));
        (code, v)
    }

    /// `plumb drift TARGET --json [--full]`: the exit code and each drifted
    /// path with its kind of drift.
    pub fn drift(&self, target: &str, full: bool) -> (i32, Vec<(String, String)>) {
        let mut args = vec!["drift", target, "--json"];
        if full {
            args.push("--full");
        }
        let (code, v) = self.json(&args);
        let field = |d: &serde_json::Value, name: &str| {
            d[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {d}"))
                .to_string()
        };
        let list = v["drifted"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|d| (field(d, "path"), field(d, "drift")))
            .collect();
        (code, list)
    }

    /// Defines the directory `rel` of this environment as source `name`.
    pub fn add_dir_source(&self, name: &str, rel: &str) {
        let dir = self.path(rel);
        let dir = dir.to_str().expect("UTF-8 temp path");
        self.ok(&["source", "add", name, dir, "--vcs", "dir"]);
    }

    /// Writes `content` to `rel`, creating parent directories.
    pub fn write(&self, rel: &str, content: &[u8]) {
        crate::fs::write(self.dir.path(), rel, content);
    }
}

/// The entries of NUL-separated output (`plumb ls -z`, `hg files -0`), as
/// a set.
pub fn split_z(out: &[u8]) -> BTreeSet<Vec<u8>> {
    out.split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

impl AsRef<Path> for TestEnv {
    /// The scratch directory.
    fn as_ref(&self) -> &Path {
        self.dir.path()
    }
}
