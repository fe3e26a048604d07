//! Helpers shared by the end-to-end tests: run the real `plumb` binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A scratch directory holding a store and whatever a test needs.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// A `plumb` command on this env's store, no colour, quiet logs.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plumb"));
        c.arg("--store").arg(self.store()).args(args);
        c.env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("PLUMB_STORE");
        c.current_dir(self.dir.path());
        c
    }

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

    pub fn ok_text(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args)).expect("UTF-8 output")
    }

    /// Runs and requires failure with `code` and exactly one line of error
    /// on stderr, no panic; returns that line.
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
        let list = v["drift"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|d| {
                (
                    d["path"].as_str().unwrap().to_string(),
                    d["drift"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (code, list)
    }

    /// Defines the directory `rel` of this env as source `name`.
    pub fn add_dir_source(&self, name: &str, rel: &str) {
        let dir = self.path(rel);
        let dir = dir.to_str().expect("UTF-8 temp path");
        self.ok(&["source", "add", name, dir, "--vcs", "dir"]);
    }

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
}

pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// What a path holds, looked at without following links.
#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    File { content: Vec<u8>, exec: bool },
    Symlink(Vec<u8>),
    Dir,
    Other,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::File { content, exec } => write!(
                f,
                "{} {:?}",
                if *exec { "executable" } else { "file" },
                String::from_utf8_lossy(content)
            ),
            Node::Symlink(t) => write!(f, "symlink to {:?}", String::from_utf8_lossy(t)),
            Node::Dir => f.write_str("directory"),
            Node::Other => f.write_str("special file"),
        }
    }
}

/// Requires the trees at `want` and `got` to be equal, naming the paths
/// that differ.
pub fn assert_same_tree(want: &Path, got: &Path, what: &str) {
    let diff = tree_diff(&tree(want), &tree(got));
    assert!(diff.is_empty(), "{what}: {diff:#?}");
}

/// Every path below `root` (relative, raw bytes, `/`-separated) and what it
/// holds; symlinks are never followed. Empty for a missing root.
pub fn tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    fn walk(dir: &Path, prefix: &[u8], out: &mut BTreeMap<Vec<u8>, Node>) {
        for entry in std::fs::read_dir(dir).expect("list a directory") {
            let entry = entry.expect("a directory entry");
            let mut rel = prefix.to_vec();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(entry.file_name().as_bytes());
            let path = entry.path();
            let meta = path.symlink_metadata().expect("lstat");
            let node = if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&path).expect("readlink");
                Node::Symlink(t.as_os_str().as_bytes().to_vec())
            } else if meta.is_dir() {
                walk(&path, &rel, out);
                Node::Dir
            } else if meta.is_file() {
                Node::File {
                    content: std::fs::read(&path).expect("read a file"),
                    exec: meta.permissions().mode() & 0o100 != 0,
                }
            } else {
                Node::Other
            };
            out.insert(rel, node);
        }
    }
    let mut out = BTreeMap::new();
    if root.is_dir() {
        walk(root, b"", &mut out);
    }
    out
}

/// Whether `name` looks like a directory target's temporary file.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.ends_with(b".plumb-tmp") || name.starts_with(b".plumb-tmp-")
}

/// Paths, lossily as text, for messages.
pub fn show<'a>(paths: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<String> {
    paths
        .into_iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// The paths where two trees differ, lossily as text, with how.
pub fn tree_diff(want: &BTreeMap<Vec<u8>, Node>, got: &BTreeMap<Vec<u8>, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, w) in want {
        let name = String::from_utf8_lossy(p);
        match got.get(p) {
            None => out.push(format!("missing: {name}")),
            Some(g) if g != w => out.push(format!("differs: {name}: want {w:?}, got {g:?}")),
            Some(_) => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("unexpected: {}", String::from_utf8_lossy(p)));
    }
    out
}

/// A `git` command in `dir`, isolated from the machine's configuration
/// (`home` as HOME, no system or global config), with fixed identities
/// and author time `time` (committer 30 s later), so fixtures are
/// reproducible.
pub fn git_command(dir: &Path, home: &Path, time: i64, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.args(args).current_dir(dir);
    c.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.org")
        .env("GIT_COMMITTER_NAME", "C O Mitter")
        .env("GIT_COMMITTER_EMAIL", "committer@example.org")
        .env("GIT_AUTHOR_DATE", format!("@{time} +0100"))
        .env("GIT_COMMITTER_DATE", format!("@{} -0530", time + 30))
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    c
}

/// A Git repository under construction, with a deterministic identity and
/// clock and no outside configuration.
pub struct GitRepo {
    pub dir: PathBuf,
    home: PathBuf,
    time: std::cell::Cell<i64>,
}

impl GitRepo {
    /// `git init` at `env.path(rel)` with extra `init` arguments.
    pub fn init(env: &Env, rel: &str, args: &[&str]) -> Self {
        let repo = Self::at(env, rel);
        std::fs::create_dir_all(&repo.dir).unwrap();
        let mut a = vec!["-c", "init.defaultBranch=main", "init", "-q"];
        a.extend_from_slice(args);
        repo.git(&a);
        repo
    }

    /// A handle on a repository at `env.path(rel)` (the directory is
    /// created if missing, for `git clone` to fill).
    pub fn at(env: &Env, rel: &str) -> Self {
        let home = env.path("git-home");
        std::fs::create_dir_all(&home).unwrap();
        let dir = env.path(rel);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            home,
            time: std::cell::Cell::new(1_700_000_000),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        git_command(&self.dir, &self.home, self.time.get(), args)
    }

    /// Runs git; requires success; returns stdout.
    pub fn git(&self, args: &[&str]) -> Vec<u8> {
        self.git_input(args, None)
    }

    pub fn git_input(&self, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
        use std::io::Write;
        let mut c = self.command(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("run git");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.unwrap_or_default()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Writes an object of `kind` (`commit`, `tag`, …) made by hand; returns
    /// its id.
    pub fn hash_object(&self, kind: &str, content: &str) -> String {
        let id = self.git_input(
            &["hash-object", "-t", kind, "-w", "--stdin"],
            Some(content.as_bytes()),
        );
        String::from_utf8(id).unwrap().trim().to_owned()
    }

    pub fn text(&self, args: &[&str]) -> String {
        String::from_utf8(self.git(args))
            .unwrap()
            .trim_end()
            .to_owned()
    }

    pub fn write(&self, rel: impl AsRef<OsStr>, content: &[u8]) {
        let p = self.dir.join(rel.as_ref());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Stages everything and commits; returns the new commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.time.set(self.time.get() + 60);
        self.text(&["rev-parse", "HEAD"])
    }

    /// The commits reachable from `refs`, in `git rev-list` order.
    pub fn rev_list(&self, refs: &[&str]) -> Vec<String> {
        let mut args = vec!["rev-list"];
        args.extend_from_slice(refs);
        self.text(&args).lines().map(str::to_owned).collect()
    }
}
