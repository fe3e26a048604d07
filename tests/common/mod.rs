//! Helpers shared by the end-to-end tests: run the real `plumb` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
}

pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}
