//! Git repositories built with the real `git`, isolated from the machine's
//! configuration, with fixed identities and a clock, so fixtures are
//! reproducible.

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The author time of a new repository's first commit.
const START_TIME: i64 = 1_700_000_000;

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
/// clock (each commit a minute after the last) and no outside
/// configuration.
#[derive(Debug, Clone)]
pub struct GitRepo {
    /// The repository's directory (its work tree, or the repository itself
    /// when bare).
    pub dir: PathBuf,
    home: PathBuf,
    time: Cell<i64>,
}

impl GitRepo {
    /// `git init` at `base/rel` (on branch `main`) with extra `init`
    /// arguments.
    pub fn init(base: impl AsRef<Path>, rel: &str, args: &[&str]) -> Self {
        let repo = Self::at(base, rel);
        let mut a = vec!["-c", "init.defaultBranch=main", "init", "-q"];
        a.extend_from_slice(args);
        repo.git(&a);
        repo
    }

    /// A handle on a repository at `base/rel` (the directory is created if
    /// missing, for `git clone` or `git init` to fill); `base/git-home` is
    /// its HOME.
    pub fn at(base: impl AsRef<Path>, rel: &str) -> Self {
        let base = base.as_ref();
        let home = base.join("git-home");
        let dir = base.join(rel);
        for d in [&home, &dir] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        Self {
            dir,
            home,
            time: Cell::new(START_TIME),
        }
    }

    /// A copy of this repository at `base/rel`, with the same clock: how a
    /// test gets its own copy of a [`fixture`](crate::fixture).
    pub fn copy_to(&self, base: impl AsRef<Path>, rel: &str) -> Self {
        let copy = Self::at(base, rel);
        crate::fs::copy_tree(&self.dir, &copy.dir);
        copy.time.set(self.time.get());
        copy
    }

    /// A `git ARGS` command in this repository.
    pub fn command(&self, args: &[&str]) -> Command {
        git_command(&self.dir, &self.home, self.time.get(), args)
    }

    /// Runs git; requires success; returns stdout.
    pub fn git(&self, args: &[&str]) -> Vec<u8> {
        self.git_input(args, None)
    }

    /// Runs git with `input` on stdin; requires success; returns stdout.
    pub fn git_input(&self, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run git");
        let mut stdin = child.stdin.take().expect("a piped stdin");
        stdin
            .write_all(input.unwrap_or_default())
            .expect("write to git");
        drop(stdin);
        let out = child.wait_with_output().expect("wait for git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs git with `input` on stdin; requires success; returns stdout as
    /// text, without the final newline.
    pub fn text_input(&self, args: &[&str], input: Option<&[u8]>) -> String {
        String::from_utf8(self.git_input(args, input))
            .expect("git prints UTF-8 here")
            .trim_end()
            .to_owned()
    }

    /// Runs git; requires success; returns stdout as text, without the
    /// final newline.
    pub fn text(&self, args: &[&str]) -> String {
        self.text_input(args, None)
    }

    /// Writes an object of `kind` (`commit`, `tag`, …) made by hand; returns
    /// its id.
    pub fn hash_object(&self, kind: &str, content: &str) -> String {
        self.text_input(
            &["hash-object", "-t", kind, "-w", "--stdin"],
            Some(content.as_bytes()),
        )
    }

    /// Writes `content` to `rel` in the work tree, creating parent
    /// directories.
    pub fn write(&self, rel: impl AsRef<OsStr>, content: &[u8]) {
        crate::fs::write_at(&self.dir.join(rel.as_ref()), content);
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
