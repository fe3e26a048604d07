//! The directory target against a hostile tree: symlinks planted where
//! plumb writes, pointing outside the root; files where directories go and
//! the reverse; read-only files and directories; odd but valid names; a
//! root that is not a directory. Everything runs the real binary on real
//! files.
#![allow(clippy::unwrap_used)]

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Env;
use plumb_testutils::fs::{chmod, exists, is_root, mode_of};
use plumb_testutils::tree::{assert_same_tree, is_temp_name, show, tree};

/// A store with a directory source `src` (at `src/`) holding `app.conf`,
/// `conf.d/a.conf` and `conf.d/b.conf`, a target `t` on `target/`, and an
/// empty directory `outside/` next to them.
struct Rig {
    env: Env,
}

impl Rig {
    fn new(prune: bool) -> Self {
        let rig = Self { env: Env::new() };
        rig.env.ok(&["init"]);
        rig.src("app.conf", b"port = 80\n");
        rig.src("conf.d/a.conf", b"a = 1\n");
        rig.src("conf.d/b.conf", b"b = 1\n");
        rig.env.add_dir_source("src", "src");
        rig.ingest();
        rig.add_target("t", &rig.target(""), prune);
        std::fs::create_dir(rig.outside()).unwrap();
        rig
    }

    fn add_target(&self, name: &str, root: &Path, prune: bool) {
        let backend = format!("dir:{}", root.display());
        let mut args = vec!["target", "add", name, &backend, "--source", "src"];
        if prune {
            args.push("--prune");
        }
        self.env.ok(&args);
    }

    fn src(&self, rel: &str, content: &[u8]) {
        self.env.write(&format!("src/{rel}"), content);
    }

    fn ingest(&self) {
        self.env.ok(&["ingest", "src"]);
    }

    fn target(&self, rel: &str) -> PathBuf {
        let root = self.env.path("target");
        if rel.is_empty() { root } else { root.join(rel) }
    }

    fn outside(&self) -> PathBuf {
        self.env.path("outside")
    }

    fn code(&self, args: &[&str]) -> (i32, String, String) {
        self.env.code(args)
    }

    fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        self.env.json(args)
    }

    fn apply_ok(&self) {
        self.env.ok(&["apply", "t"]);
    }

    /// The plan's non-kept steps as (path, action, detail), and its exit code.
    fn plan(&self) -> (i32, Vec<(String, String, String)>) {
        let (code, v) = self.json(&["plan", "t", "--json"]);
        let steps = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["path"].as_str().unwrap().to_string(),
                    s["action"].as_str().unwrap().to_string(),
                    s["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (code, steps)
    }

    fn drift(&self, full: bool) -> (i32, Vec<(String, String)>) {
        self.env.drift("t", full)
    }

    /// Drift, quick and full, finds nothing.
    fn in_sync(&self) {
        assert_eq!(self.drift(false), (0, vec![]));
        assert_eq!(self.drift(true), (0, vec![]));
    }

    /// Runs a refused apply: exit 1, every conflict listed (as
    /// `plumb: conflict: PATH: WHY` on stderr or `! conflict PATH  WHY` on
    /// stdout), and exactly one other line on stderr: the error. Returns
    /// the conflicts as (path, why) and the error line.
    fn refused(&self, args: &[&str]) -> (Vec<(String, String)>, String) {
        let (code, out, err) = self.code(args);
        assert_eq!(code, 1, "{args:?} must be refused: {out}{err}");
        let mut conflicts: Vec<(String, String)> = Vec::new();
        let mut errors = Vec::new();
        for line in err.lines() {
            match line.strip_prefix("plumb: conflict: ") {
                Some(rest) => {
                    let (p, why) = rest.split_once(": ").unwrap_or((rest, ""));
                    conflicts.push((p.to_string(), why.to_string()));
                }
                None => errors.push(line),
            }
        }
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("! conflict ") {
                let (p, why) = rest.split_once("  ").unwrap_or((rest, ""));
                conflicts.push((p.to_string(), why.to_string()));
            }
        }
        assert_eq!(errors.len(), 1, "one error line: {err}");
        let error = errors[0].to_string();
        assert!(
            error.starts_with("plumb: error: t: ") && error.contains("nothing applied"),
            "{error}"
        );
        conflicts.sort();
        conflicts.dedup();
        (conflicts, error)
    }
}

fn assert_empty(dir: &Path) {
    let found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        found.is_empty(),
        "{} must stay empty: {found:?}",
        dir.display()
    );
}

fn is_symlink(p: &Path) -> bool {
    p.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

fn is_real_dir(p: &Path) -> bool {
    p.symlink_metadata().is_ok_and(|m| m.is_dir())
}

fn is_real_file(p: &Path) -> bool {
    p.symlink_metadata().is_ok_and(|m| m.is_file())
}

/// No temporary file anywhere below `root`.
fn no_temp_files(root: &Path) {
    let temps: Vec<Vec<u8>> = tree(root)
        .into_keys()
        .filter(|p| is_temp_name(p.rsplit(|b| *b == b'/').next().unwrap()))
        .collect();
    assert!(
        temps.is_empty(),
        "leftover temporary files: {:?}",
        show(&temps)
    );
}

#[test]
fn symlinked_dir_to_outside_before_the_first_apply() {
    let rig = Rig::new(true);
    std::fs::create_dir(rig.target("")).unwrap();
    symlink(rig.outside(), rig.target("conf.d")).unwrap();

    let (code, steps) = rig.plan();
    assert_eq!(code, 2);
    let conflicts: Vec<&(String, String, String)> =
        steps.iter().filter(|s| s.1 == "conflict").collect();
    let paths: Vec<&str> = conflicts.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        paths,
        ["conf.d", "conf.d/a.conf", "conf.d/b.conf"],
        "{steps:?}"
    );
    assert!(conflicts[0].2.contains("symlink"), "{steps:?}");
    assert!(
        conflicts[1].2.contains("symlink at conf.d"),
        "a path below the link names it: {steps:?}"
    );

    let (lines, error) = rig.refused(&["apply", "t"]);
    let paths: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        paths,
        ["conf.d", "conf.d/a.conf", "conf.d/b.conf"],
        "{lines:?}"
    );
    assert!(lines[0].1.contains("symlink"), "{lines:?}");
    assert!(
        error.contains("3 conflicts") && error.contains("conf.d"),
        "{error}"
    );
    assert_empty(&rig.outside());
    assert!(is_symlink(&rig.target("conf.d")), "the link is left alone");
    assert!(!exists(&rig.target("app.conf")), "nothing applied");
    let runs = rig.json(&["runs", "t", "--json"]).1["runs"].clone();
    assert_eq!(runs[0]["outcome"], "refused", "{runs}");

    // --adopt replaces the link itself with a directory, still writing
    // nothing through it.
    rig.env.ok(&["apply", "t", "--adopt"]);
    assert_empty(&rig.outside());
    assert!(is_real_dir(&rig.target("conf.d")));
    assert_eq!(
        std::fs::read(rig.target("conf.d/a.conf")).unwrap(),
        b"a = 1\n"
    );
    rig.in_sync();
}

#[test]
fn symlinked_dir_to_outside_after_an_apply() {
    let rig = Rig::new(true);
    rig.apply_ok();
    std::fs::remove_dir_all(rig.target("conf.d")).unwrap();
    symlink(rig.outside(), rig.target("conf.d")).unwrap();

    let want = vec![
        ("conf.d".to_string(), "kind".to_string()),
        ("conf.d/a.conf".to_string(), "blocked".to_string()),
        ("conf.d/b.conf".to_string(), "blocked".to_string()),
    ];
    for full in [false, true] {
        assert_eq!(rig.drift(full), (2, want.clone()), "full={full}");
    }
    let (code, text, _) = rig.code(&["drift", "t"]);
    assert_eq!(code, 2);
    assert!(
        text.contains("a symlink at conf.d is in the way"),
        "drift names the link: {text}"
    );
    assert_empty(&rig.outside());

    // Plumb owns conf.d: the link is replaced by a directory; nothing is
    // written through it.
    let (code, steps) = rig.plan();
    assert_eq!(code, 2);
    assert!(
        steps
            .iter()
            .any(|s| s.0 == "conf.d" && s.1 == "update" && s.2.contains("symlink")),
        "{steps:?}"
    );
    assert!(steps.iter().all(|s| s.1 != "conflict"), "{steps:?}");
    rig.apply_ok();
    assert_empty(&rig.outside());
    assert!(exists(&rig.outside()), "the link's target is not removed");
    assert!(is_real_dir(&rig.target("conf.d")));
    assert_eq!(
        std::fs::read(rig.target("conf.d/b.conf")).unwrap(),
        b"b = 1\n"
    );
    rig.in_sync();
}

#[test]
fn prune_never_deletes_through_a_symlinked_dir() {
    let rig = Rig::new(true);
    rig.apply_ok();
    // Outside holds files of the very names and content plumb applied, so
    // looking through the link would find them "unchanged".
    for name in ["a.conf", "b.conf"] {
        std::fs::copy(
            rig.target(&format!("conf.d/{name}")),
            rig.outside().join(name),
        )
        .unwrap();
    }
    std::fs::remove_dir_all(rig.target("conf.d")).unwrap();
    symlink(rig.outside(), rig.target("conf.d")).unwrap();
    std::fs::remove_dir_all(rig.env.path("src/conf.d")).unwrap();
    rig.ingest();

    let (lines, error) = rig.refused(&["apply", "t"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].0 == "conf.d" && lines[0].1.contains("symlink"),
        "{lines:?}"
    );
    assert!(error.contains("conf.d"), "{error}");
    let outside = tree(&rig.outside());
    assert_eq!(outside.len(), 2, "{:?}", show(outside.keys()));
    assert_eq!(
        std::fs::read(rig.outside().join("a.conf")).unwrap(),
        b"a = 1\n"
    );

    // Adopting deletes the link, never what it points to.
    rig.env.ok(&["apply", "t", "--adopt"]);
    assert!(!exists(&rig.target("conf.d")));
    assert_eq!(tree(&rig.outside()), outside);
    rig.in_sync();
}

#[test]
fn symlinked_file_to_outside_is_replaced_not_written_through() {
    let rig = Rig::new(true);
    let secret = rig.outside().join("secret");
    std::fs::write(&secret, b"secret\n").unwrap();

    // Not plumb's: a conflict, and the outside file is untouched.
    std::fs::create_dir(rig.target("")).unwrap();
    symlink(&secret, rig.target("app.conf")).unwrap();
    let (lines, error) = rig.refused(&["apply", "t"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].0 == "app.conf" && lines[0].1.contains("symlink"),
        "{lines:?}"
    );
    assert!(error.contains("app.conf"), "{error}");
    assert_eq!(std::fs::read(&secret).unwrap(), b"secret\n");
    std::fs::remove_file(rig.target("app.conf")).unwrap();
    rig.apply_ok();

    // Plumb's: replaced by a file, whether the content is the same or new.
    for (round, content) in [(0, &b"port = 80\n"[..]), (1, b"port = 81\n")] {
        if round > 0 {
            rig.src("app.conf", content);
            rig.ingest();
        }
        std::fs::remove_file(rig.target("app.conf")).unwrap();
        symlink(&secret, rig.target("app.conf")).unwrap();
        if round == 0 {
            assert_eq!(
                rig.drift(true),
                (2, vec![("app.conf".to_string(), "kind".to_string())])
            );
        }
        rig.apply_ok();
        assert_eq!(
            std::fs::read(&secret).unwrap(),
            b"secret\n",
            "round {round}"
        );
        assert!(is_real_file(&rig.target("app.conf")), "round {round}");
        assert_eq!(std::fs::read(rig.target("app.conf")).unwrap(), content);
        rig.in_sync();
    }
    assert_eq!(tree(&rig.outside()).len(), 1);
    no_temp_files(&rig.target(""));
}

#[test]
fn a_file_where_a_dir_goes_and_the_reverse_are_conflicts() {
    let rig = Rig::new(true);
    rig.env.write("target/app.conf/hand.txt", b"hand\n");
    rig.env.write("target/conf.d", b"hand-made\n");
    let before = tree(&rig.target(""));

    let (code, steps) = rig.plan();
    assert_eq!(code, 2);
    let conflicts: Vec<&str> = steps
        .iter()
        .filter(|s| s.1 == "conflict")
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(
        conflicts,
        ["app.conf", "conf.d", "conf.d/a.conf", "conf.d/b.conf"],
        "{steps:?}"
    );
    let detail = |p: &str| steps.iter().find(|s| s.0 == p).unwrap().2.clone();
    assert!(detail("app.conf").contains("directory"), "{steps:?}");
    assert!(detail("conf.d").contains("file"), "{steps:?}");

    let (lines, error) = rig.refused(&["apply", "t"]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(error.contains("4 conflicts"), "{error}");
    assert_eq!(tree(&rig.target("")), before, "nothing changed");
}

#[test]
fn a_snapshot_turning_files_into_dirs_and_back_converges() {
    for prune in [false, true] {
        let rig = Rig::new(prune);
        rig.apply_ok();
        let src = rig.env.path("src");
        // app.conf becomes a directory, conf.d a file.
        std::fs::remove_file(src.join("app.conf")).unwrap();
        rig.src("app.conf/inner.conf", b"inner\n");
        std::fs::remove_dir_all(src.join("conf.d")).unwrap();
        rig.src("conf.d", b"now a file\n");
        rig.ingest();
        rig.apply_ok();
        assert_same_tree(&src, &rig.target(""), &format!("prune={prune}"));
        rig.in_sync();
        // And back.
        std::fs::remove_dir_all(src.join("app.conf")).unwrap();
        rig.src("app.conf", b"port = 80\n");
        std::fs::remove_file(src.join("conf.d")).unwrap();
        rig.src("conf.d/a.conf", b"a = 2\n");
        rig.ingest();
        rig.apply_ok();
        assert_same_tree(&src, &rig.target(""), &format!("prune={prune}"));
        rig.in_sync();
        no_temp_files(&rig.target(""));
    }
}

#[test]
fn read_only_files_plumb_owns_are_updated() {
    let rig = Rig::new(true);
    rig.apply_ok();
    for f in ["app.conf", "conf.d/a.conf"] {
        chmod(&rig.target(f), 0o444);
    }
    rig.src("app.conf", b"port = 81\n");
    rig.src("conf.d/a.conf", b"a = 2\n");
    rig.ingest();
    rig.apply_ok();
    assert_eq!(
        std::fs::read(rig.target("app.conf")).unwrap(),
        b"port = 81\n"
    );
    assert_eq!(
        std::fs::read(rig.target("conf.d/a.conf")).unwrap(),
        b"a = 2\n"
    );
    // Plumb sets the mode it writes exactly.
    assert_eq!(mode_of(&rig.target("app.conf")), 0o644);
    rig.in_sync();
}

/// Runs `plumb` as the unprivileged user `nobody` (from root, with
/// `setpriv`), so permissions apply.
struct Nobody<'a> {
    env: &'a Env,
}

impl Nobody<'_> {
    fn setpriv() -> Command {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c
    }

    fn can_write(&self, dir: &Path) -> bool {
        Self::setpriv()
            .arg("test")
            .arg("-w")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Self::setpriv()
            .arg(env!("CARGO_BIN_EXE_plumb"))
            .arg("--store")
            .arg(self.env.store())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("PLUMB_STORE")
            .current_dir(self.env.dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code().unwrap_or(-1), stdout, err)
    }
}

/// The read-only directory check, with `plumb` run by `run`.
/// Runs plumb: the exit code, stdout and stderr.
type Run<'a> = dyn Fn(&[&str]) -> (i32, String, String) + 'a;

fn read_only_dir_blocks_then_converges(rig: &Rig, run: &Run<'_>) {
    let ok = |args: &[&str]| {
        let (code, _, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
    };
    ok(&["apply", "t"]);
    rig.src("app.conf", b"port = 81\n");
    rig.src("conf.d/a.conf", b"a = 2\n");
    // The snapshot makes the directory read-only (its recorded mode), so
    // the file inside cannot be replaced by whoever is not root.
    chmod(&rig.env.path("src/conf.d"), 0o555);
    ok(&["ingest", "src"]);

    let (code, out, err) = run(&["apply", "t"]);
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    // One error line saying what was done, what was not and why (every
    // failed change is listed on stdout), and nothing claiming success.
    assert_eq!(
        lines,
        [
            "plumb: error: t: apply failed, 2 of 3 changes made: 1 change failed (first: conf.d/a.conf: permission denied); the next apply retries the rest"
        ],
        "{err}"
    );
    assert!(
        !out.contains("applied"),
        "a failed apply claims success: {out}"
    );
    // What could be done was done; the blocked file is untouched.
    assert_eq!(
        std::fs::read(rig.target("app.conf")).unwrap(),
        b"port = 81\n"
    );
    assert_eq!(
        std::fs::read(rig.target("conf.d/a.conf")).unwrap(),
        b"a = 1\n"
    );
    no_temp_files(&rig.target(""));
    let (code, _, _) = run(&["drift", "t"]);
    assert_eq!(code, 2, "the failed change is drift until applied");

    assert_eq!(mode_of(&rig.target("conf.d")), 0o555);
    chmod(&rig.env.path("src/conf.d"), 0o755);
    ok(&["ingest", "src"]);
    ok(&["apply", "t"]);
    assert_eq!(
        std::fs::read(rig.target("conf.d/a.conf")).unwrap(),
        b"a = 2\n"
    );
    assert_eq!(mode_of(&rig.target("conf.d")), 0o755);
    let (code, _, err) = run(&["drift", "t", "--full"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["plan", "t"]);
    assert_eq!(code, 0, "{err}");
    no_temp_files(&rig.target(""));
}

#[test]
fn a_read_only_dir_blocks_an_update_until_it_is_writable() {
    let rig = Rig::new(true);
    if !is_root() {
        read_only_dir_blocks_then_converges(&rig, &|args| rig.code(args));
        return;
    }
    // Root bypasses permissions: run plumb as nobody on a tree it owns.
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: running as root without setpriv");
        return;
    }
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(rig.env.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let nobody = Nobody { env: &rig.env };
    if !nobody.can_write(&rig.env.store()) {
        eprintln!("skipped: nobody cannot reach {}", rig.env.store().display());
        return;
    }
    // The snapshot records owners: take one of the tree nobody now owns,
    // which nobody may apply.
    let (code, _, err) = nobody.run(&["ingest", "src"]);
    assert_eq!(code, 0, "{err}");
    read_only_dir_blocks_then_converges(&rig, &|args| nobody.run(args));
}

#[test]
fn a_read_only_dir_as_root_is_written_and_gets_its_recorded_mode_back() {
    if !is_root() {
        eprintln!("skipped: not running as root");
        return;
    }
    let rig = Rig::new(true);
    rig.apply_ok();
    rig.src("conf.d/a.conf", b"a = 2\n");
    std::fs::remove_file(rig.env.path("src/conf.d/b.conf")).unwrap();
    rig.src("conf.d/c.conf", b"c = 1\n");
    rig.ingest();
    chmod(&rig.target("conf.d"), 0o555);
    chmod(&rig.target("conf.d/a.conf"), 0o444);
    rig.apply_ok();
    assert_same_tree(&rig.env.path("src"), &rig.target(""), "as root");
    assert_eq!(
        mode_of(&rig.target("conf.d")),
        mode_of(&rig.env.path("src/conf.d")),
        "the mode the directory source recorded is applied again"
    );
    assert_eq!(mode_of(&rig.target("conf.d/a.conf")), 0o644);
    rig.in_sync();
    no_temp_files(&rig.target(""));
}

/// Odd names: spaces, a newline, non-UTF-8 bytes, leading dashes, 255
/// bytes (a file, a directory, and a file inside a non-UTF-8 directory).
fn odd_names() -> Vec<(Vec<u8>, Vec<u8>)> {
    let long = |c: u8| vec![c; 255];
    let mut in_long_dir = long(b'z');
    in_long_dir.extend_from_slice(b"/inside");
    let mut in_odd_dir = b"d\xe9j\xe0 dir/".to_vec();
    in_odd_dir.extend_from_slice(&long(b'y'));
    vec![
        (b"with space.conf".to_vec(), b"space\n".to_vec()),
        (b" leading and trailing ".to_vec(), b"spaces\n".to_vec()),
        (b"new\nline".to_vec(), b"newline\n".to_vec()),
        (b"tab\there".to_vec(), b"tab\n".to_vec()),
        (b"bad\xff\xfeutf8".to_vec(), b"latin\n".to_vec()),
        (b"-leading-dash".to_vec(), b"dash\n".to_vec()),
        (b"--".to_vec(), b"double dash\n".to_vec()),
        (b"dir with space/-x".to_vec(), b"in a dir\n".to_vec()),
        (long(b'x'), b"long\n".to_vec()),
        (in_long_dir, b"in a long dir\n".to_vec()),
        (in_odd_dir, b"long in odd\n".to_vec()),
        ("ünïcødé ☃".as_bytes().to_vec(), b"unicode\n".to_vec()),
    ]
}

fn write_raw(root: &Path, rel: &[u8], content: &[u8]) {
    let p = root.join(std::ffi::OsStr::from_bytes(rel));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn odd_names_are_applied_byte_exact_and_pruned() {
    let rig = Rig::new(true);
    let src = rig.env.path("src");
    for (name, content) in odd_names() {
        write_raw(&src, &name, &content);
    }
    symlink(
        std::ffi::OsStr::from_bytes(b"new\nline"),
        src.join(std::ffi::OsStr::from_bytes(b"link \xff")),
    )
    .unwrap();
    rig.ingest();
    rig.apply_ok();
    assert_same_tree(&src, &rig.target(""), "odd names");
    rig.in_sync();
    assert_eq!(rig.plan().0, 0);

    // Updates go through temporary names, hashed for the long ones.
    for (name, content) in odd_names() {
        let mut changed = content.clone();
        changed.extend_from_slice(b"changed\n");
        write_raw(&src, &name, &changed);
    }
    rig.ingest();
    rig.apply_ok();
    assert_same_tree(&src, &rig.target(""), "odd names");
    rig.in_sync();
    no_temp_files(&rig.target(""));

    // Prune removes every one of them.
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() != "app.conf" {
            if is_real_dir(&p) {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    rig.ingest();
    // Nearly everything goes: past the delete guard, explicitly.
    rig.env.fails(&["apply", "t"], 1);
    rig.env.ok(&["apply", "t", "--allow-mass-delete"]);
    let left = tree(&rig.target(""));
    assert_eq!(
        left.keys().cloned().collect::<Vec<_>>(),
        [b"app.conf".to_vec()],
        "{:?}",
        show(left.keys())
    );
    rig.in_sync();
}

/// The directory target prepares `NAME` at `.NAME.plumb-tmp-<16 hex>`; a
/// snapshot holding a name of that shape would be taken for a leftover
/// temporary file, so those names are refused as conflicts, and nothing is
/// written.
#[test]
fn names_reserved_for_temporary_files_are_refused() {
    let rig = Rig::new(true);
    rig.src(".app.conf.plumb-tmp-0123456789abcdef", b"looks temporary\n");
    rig.src(
        "conf.d/.0123456789abcdef.plumb-tmp-0123456789abcdef",
        b"also\n",
    );
    rig.ingest();
    let (code, out, _) = rig.code(&["plan", "t"]);
    assert_eq!(code, 2, "{out}");
    for name in [
        ".app.conf.plumb-tmp-0123456789abcdef",
        "conf.d/.0123456789abcdef.plumb-tmp-0123456789abcdef",
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains("conflict") && l.contains(name) && l.contains("reserves")),
            "{name}: {out}"
        );
    }
    let (code, _, err) = rig.code(&["apply", "t"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 conflicts"), "{err}");
    assert!(tree(&rig.target("")).is_empty(), "nothing applied");
}

/// A user's files named like temporary files (`.NAME.plumb-tmp`, beside
/// `NAME` that plumb writes, at the root and in a managed directory) are
/// theirs: apply, prune and cleanup leave them alone, and drift shows the
/// one in a managed directory as added, as any other file.
#[test]
fn files_named_like_temporaries_survive_apply_prune_and_cleanup() {
    let rig = Rig::new(true);
    std::fs::create_dir_all(rig.target("conf.d")).unwrap();
    rig.env
        .write("target/.app.conf.plumb-tmp", b"the user's own\n");
    rig.env
        .write("target/conf.d/.a.conf.plumb-tmp", b"also the user's\n");
    rig.apply_ok();
    assert_eq!(
        std::fs::read(rig.env.path("target/app.conf")).unwrap(),
        b"port = 80\n"
    );
    let theirs = || {
        assert_eq!(
            std::fs::read(rig.env.path("target/.app.conf.plumb-tmp")).unwrap(),
            b"the user's own\n"
        );
        assert_eq!(
            std::fs::read(rig.env.path("target/conf.d/.a.conf.plumb-tmp")).unwrap(),
            b"also the user's\n"
        );
    };
    theirs();
    let (code, list) = rig.drift(true);
    assert_eq!(code, 2);
    assert_eq!(
        list,
        [("conf.d/.a.conf.plumb-tmp".to_string(), "added".to_string())]
    );
    // Changing and then pruning every file beside them.
    rig.src("app.conf", b"port = 81\n");
    rig.src("conf.d/a.conf", b"a = 2\n");
    rig.ingest();
    rig.apply_ok();
    theirs();
    std::fs::remove_file(rig.env.path("src/app.conf")).unwrap();
    std::fs::remove_dir_all(rig.env.path("src/conf.d")).unwrap();
    rig.src("other.conf", b"x\n");
    rig.ingest();
    // Every owned path goes: the delete guard wants it said.
    rig.env.ok(&["apply", "t", "--allow-mass-delete"]);
    theirs();
    assert!(!exists(&rig.target("app.conf")));
    assert!(!exists(&rig.target("conf.d/a.conf")));
}

/// Temporary files an interrupted apply left (made here by hand, in the
/// exact shape the target uses, beside paths plumb holds) are shown by
/// drift as such, and removed by the next apply; a file merely named alike
/// is not.
#[test]
fn leftover_temporaries_are_shown_by_drift_and_removed_by_apply() {
    let rig = Rig::new(true);
    rig.apply_ok();
    let left = [
        ".app.conf.plumb-tmp-0123456789abcdef",
        "conf.d/.b.conf.plumb-tmp-fedcba9876543210",
    ];
    for name in left {
        rig.env.write(&format!("target/{name}"), b"partial");
    }
    rig.env
        .write("target/.app.conf.plumb-tmp", b"the user's own\n");
    // Of a name plumb does not hold: not provably plumb's.
    rig.env
        .write("target/.other.plumb-tmp-0123456789abcdef", b"who knows\n");
    for full in [false, true] {
        let (code, list) = rig.drift(full);
        assert_eq!(code, 2);
        assert_eq!(
            list,
            left.map(|p| (p.to_string(), "temporary".to_string())),
            "full: {full}"
        );
    }
    let (_, out, _) = rig.code(&["drift", "t"]);
    assert!(
        out.lines().any(|l| l.starts_with("temporary")
            && l.contains(left[0])
            && l.contains("for app.conf")),
        "{out}"
    );
    rig.apply_ok();
    for name in left {
        assert!(!exists(&rig.target(name)), "{name} removed");
    }
    assert_eq!(
        std::fs::read(rig.env.path("target/.app.conf.plumb-tmp")).unwrap(),
        b"the user's own\n"
    );
    assert!(exists(&rig.target(".other.plumb-tmp-0123456789abcdef")));
    rig.in_sync();
}

#[test]
fn a_root_that_is_a_file_or_a_symlink_is_one_error_line() {
    let rig = Rig::new(true);
    let real = rig.env.path("realroot");
    std::fs::create_dir(&real).unwrap();
    let link = rig.env.path("rootlink");
    symlink(&real, &link).unwrap();
    // `target add` refuses a root that is a file; one can become a file later.
    let file = rig.env.path("rootfile");
    rig.add_target("f", &file, true);
    rig.env.write("rootfile", b"not a dir\n");
    let backend = format!("dir:{}", file.display());
    let refused = rig
        .env
        .fails(&["target", "add", "g", &backend, "--source", "src"], 1);
    assert!(refused.contains("is not a directory"), "{refused}");
    // A trailing slash must not make plumb follow the link either (it is
    // stored without it, and a root stored with it opens without it).
    let slash = PathBuf::from(format!("{}/", link.display()));

    for (name, root, what) in [
        ("f", None, "the root is a file, not a directory"),
        (
            "l",
            Some(&link),
            "the root is a symlink, which plumb never follows",
        ),
        (
            "s",
            Some(&slash),
            "the root is a symlink, which plumb never follows",
        ),
    ] {
        if let Some(root) = root {
            rig.add_target(name, root, true);
        }
        for cmd in ["plan", "apply", "drift"] {
            let line = rig.env.fails(&[cmd, name], 1);
            assert!(
                line.starts_with("plumb: error: ") && line.contains(what),
                "{cmd} {name}: {line}"
            );
            assert!(
                line.contains(&rig.env.dir.path().display().to_string()),
                "names the root: {line}"
            );
        }
        // Two targets never share a root.
        rig.env.ok(&["target", "remove", name]);
    }
    assert_eq!(
        std::fs::read(rig.env.path("rootfile")).unwrap(),
        b"not a dir\n"
    );
    assert_empty(&real);
}
