//! A driver for the real `hg`, configured for reproducible tests.

use std::path::Path;
use std::process::Command;

/// The `hg` program in `dir`, configured for reproducible tests: plain
/// output, no user or system configuration, a fixed user, UTC.
pub fn hg_command(dir: &Path) -> Command {
    let mut c = Command::new("hg");
    c.current_dir(dir)
        .env("HGPLAIN", "1")
        .env("HGRCPATH", "/dev/null")
        .env("HGUSER", "Test User <test@example.com>")
        .env("HGENCODING", "utf-8")
        .env("TZ", "UTC");
    c
}

/// Runs `hg ARGS` in `dir`; panics with its stderr on failure, and with a
/// clear message if `hg` is not installed. Returns stdout.
pub fn hg(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = match hg_command(dir).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("these tests need Mercurial: install it (`apt-get install mercurial`)")
        }
        Err(e) => panic!("cannot run hg: {e}"),
    };
    assert!(
        out.status.success(),
        "hg {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `hg ARGS` in `dir` like [`hg`]; returns stdout as text.
pub fn hg_text(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(hg(dir, args)).expect("hg prints UTF-8 here")
}

/// Creates a repository at `dir` with extra `hg init` arguments.
pub fn init(dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let mut a = vec!["init"];
    a.extend_from_slice(args);
    hg(dir, &a);
}

/// Commits everything (adding and removing) with `message` at a fixed
/// date (`seconds offset`).
pub fn commit(root: &Path, message: &str, date: &str) {
    hg(root, &["commit", "-q", "-A", "-m", message, "-d", date]);
}

/// The node of revision `rev`.
pub fn node(root: &Path, rev: &str) -> String {
    hg_text(root, &["log", "-r", rev, "-T", "{node}"])
}

/// Every visible changeset's node, in revision order.
pub fn all_nodes(root: &Path) -> Vec<String> {
    hg_text(root, &["log", "-r", "all()", "-T", "{node}\n"])
        .lines()
        .map(str::to_owned)
        .collect()
}
