//! Permission bits, owner and group end to end: recorded by the directory
//! source, declared in `.plumbattributes` (with a directory, a real Git
//! and a real Mercurial repository), applied by the directory target,
//! checked by drift and healed by apply. Owner changes need root; as
//! another user those checks become the plan-time refusal instead.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::Env;
use plumb_testutils::fs::{chmod, exists, is_root, mode_of};
use plumb_testutils::git::GitRepo;
use plumb_testutils::hg;

/// Mode, uid and gid of a path, not following a link.
fn stat(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// Adds target `t` on `target/` following `source`, and applies it.
fn apply_to_target(env: &Env, source: &str) {
    let location = format!("dir:{}", env.path("target").display());
    env.ok(&["target", "add", "t", &location, "--source", source]);
    env.ok(&["apply", "t"]);
}

const ATTRIBUTES: &[u8] = b"# modes for secrets\n\
*.key mode=0600\n\
bin/* mode=0750\n\
private/ mode=0700\n";

/// Writes the same small tree with an attributes file into `root`.
fn write_declared(root: &Path) {
    for (rel, content) in [
        (".plumbattributes", ATTRIBUTES),
        (".plumbignore", b"*.tmp\n"),
        ("site.key", b"secret\n"),
        ("bin/tool", b"#!/bin/sh\n"),
        ("private/notes", b"n\n"),
        ("readme", b"r\n"),
    ] {
        plumb_testutils::fs::write(root, rel, content);
    }
}

/// What the attributes file declares shows on the target, and neither it
/// nor `.plumbignore` is applied.
fn assert_declared(env: &Env) {
    let t = env.path("target");
    assert_eq!(mode_of(&t.join("site.key")), 0o600);
    assert_eq!(mode_of(&t.join("bin/tool")), 0o750);
    assert_eq!(mode_of(&t.join("private")), 0o700);
    assert!(!exists(&t.join(".plumbattributes")), "not applied");
    assert!(!exists(&t.join(".plumbignore")), "not applied");
}

#[test]
fn an_attributes_file_is_honoured_from_a_directory() {
    let env = Env::new();
    env.ok(&["init"]);
    write_declared(&env.path("src"));
    // Recorded modes say otherwise; the declaration wins.
    chmod(&env.path("src/site.key"), 0o644);
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    apply_to_target(&env, "src");
    assert_declared(&env);
    assert_eq!(mode_of(&env.path("target/readme")), 0o644);
}

#[test]
fn an_attributes_file_is_honoured_from_git() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = GitRepo::init(env.as_ref(), "repo", &[]);
    write_declared(&repo.dir);
    repo.commit("declared");
    env.ok(&["source", "add", "g", repo.dir.to_str().unwrap()]);
    env.ok(&["ingest"]);
    apply_to_target(&env, "g");
    assert_declared(&env);
    // Git records no modes: undeclared paths get the defaults.
    assert_eq!(mode_of(&env.path("target/readme")), 0o644);
}

#[test]
fn an_attributes_file_is_honoured_from_mercurial() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = env.path("hgrepo");
    hg::init(&repo, &[]);
    write_declared(&repo);
    hg::commit(&repo, "declared", "1700000000 0");
    env.ok(&["source", "add", "h", repo.to_str().unwrap()]);
    env.ok(&["ingest"]);
    apply_to_target(&env, "h");
    assert_declared(&env);
}

#[test]
fn a_directory_snapshot_reproduces_modes_and_owners_elsewhere() {
    let env = Env::new();
    env.ok(&["init"]);
    let src = env.path("src");
    for (rel, mode) in [
        ("etc/shadow", 0o640),
        ("etc/ssh/key", 0o600),
        ("bin/run", 0o751),
    ] {
        plumb_testutils::fs::write(&src, rel, b"x\n");
        chmod(&src.join(rel), mode);
    }
    chmod(&src.join("etc/ssh"), 0o700);
    chmod(&src.join("etc"), 0o750);
    if is_root() {
        chown(&src.join("etc/shadow"), 0, 42);
        chown(&src.join("etc/ssh/key"), 1234, 4321);
        chown(&src.join("etc/ssh"), 1234, 0);
    }
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    apply_to_target(&env, "src");
    for rel in [
        "etc",
        "etc/shadow",
        "etc/ssh",
        "etc/ssh/key",
        "bin",
        "bin/run",
    ] {
        assert_eq!(
            stat(&env.path("target").join(rel)),
            stat(&src.join(rel)),
            "{rel}: mode, uid, gid"
        );
    }
    let (code, _) = env.drift("t", true);
    assert_eq!(code, 0, "in sync after apply");
}

#[test]
fn drift_reports_attribute_changes_and_apply_heals_them() {
    let env = Env::new();
    env.ok(&["init"]);
    write_declared(&env.path("src"));
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    apply_to_target(&env, "src");
    let key = env.path("target/site.key");
    chmod(&key, 0o644);
    chmod(&env.path("target/private"), 0o777);
    if is_root() {
        chown(&key, 1234, 4321);
    }
    for full in [false, true] {
        let mut args = vec!["drift", "t", "--json"];
        if full {
            args.push("--full");
        }
        let (code, v) = env.json(&args);
        assert_eq!(code, 2, "{v}");
        let found: Vec<(String, String, String, String)> = v["drifted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["drift"], "attribute", "{d}");
                let s = |k: &str| d[k].as_str().unwrap().to_string();
                (s("path"), s("attribute"), s("expected"), s("found"))
            })
            .collect();
        let me = (my_uid(), my_gid());
        let mut want = vec![
            (
                "private".into(),
                "mode".into(),
                "0700".into(),
                "0777".into(),
            ),
            (
                "site.key".into(),
                "mode".into(),
                "0600".into(),
                "0644".into(),
            ),
        ];
        if is_root() {
            want.push((
                "site.key".into(),
                "owner".into(),
                me.0.to_string(),
                "1234".into(),
            ));
            want.push((
                "site.key".into(),
                "group".into(),
                me.1.to_string(),
                "4321".into(),
            ));
        }
        let mut found = found;
        found.sort();
        want.sort();
        assert_eq!(found, want, "full: {full}");
    }
    let text = String::from_utf8(env.cmd(&["drift", "t"]).output().unwrap().stdout).unwrap();
    assert!(
        text.contains("attribute   site.key  mode 0600 -> 0644"),
        "{text}"
    );
    let (code, plan, _) = env.code(&["plan", "t"]);
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("mode 0644 -> 0600"), "{plan}");
    env.ok(&["apply", "t"]);
    assert_eq!(mode_of(&key), 0o600);
    assert_eq!(mode_of(&env.path("target/private")), 0o700);
    assert_eq!(stat(&key).1, my_uid());
    assert_eq!(env.drift("t", false).0, 0);
    assert_eq!(env.drift("t", true).0, 0);
}

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn my_gid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().gid()
}

#[test]
fn an_admins_chmod_survives_an_update_but_the_execute_bit() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = GitRepo::init(env.as_ref(), "repo", &[]);
    repo.write("app.conf", b"v1\n");
    repo.commit("v1");
    env.ok(&["source", "add", "g", repo.dir.to_str().unwrap()]);
    env.ok(&["ingest"]);
    apply_to_target(&env, "g");
    let conf = env.path("target/app.conf");
    assert_eq!(mode_of(&conf), 0o644);
    chmod(&conf, 0o640);
    assert_eq!(env.drift("t", true).0, 0, "an undeclared mode is not drift");
    repo.write("app.conf", b"v2\n");
    repo.commit("v2");
    env.ok(&["ingest"]);
    env.ok(&["apply", "t"]);
    assert_eq!(std::fs::read(&conf).unwrap(), b"v2\n");
    assert_eq!(mode_of(&conf), 0o640, "the admin's chmod survives");
    chmod(&repo.dir.join("app.conf"), 0o755);
    repo.commit("executable");
    env.ok(&["ingest"]);
    env.ok(&["apply", "t"]);
    assert_eq!(mode_of(&conf), 0o750, "only the execute bits change");
}

#[test]
fn an_unknown_owner_is_a_plan_time_error_and_nothing_is_applied() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/.plumbattributes", b"a.conf owner=plumb-no-such-user\n");
    env.write("src/a.conf", b"a\n");
    env.write("src/b.conf", b"b\n");
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    let location = format!("dir:{}", env.path("target").display());
    env.ok(&["target", "add", "t", &location, "--source", "src"]);
    for cmd in ["plan", "apply"] {
        let err = env.fails(&[cmd, "t"], 1);
        assert!(
            err.contains("a.conf") && err.contains("unknown user \"plumb-no-such-user\""),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!exists(&env.path("target/b.conf")), "nothing applied");
}

#[test]
fn a_bad_attributes_file_is_an_error_naming_its_line() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write(
        "src/conf/.plumbattributes",
        b"# ok\n*.key mode=0600\n*.pem mode=rw\n",
    );
    env.write("src/conf/a.key", b"a\n");
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    let location = format!("dir:{}", env.path("target").display());
    env.ok(&["target", "add", "t", &location, "--source", "src"]);
    let err = env.fails(&["plan", "t"], 1);
    assert!(
        err.contains("conf/.plumbattributes: line 3") && err.contains("mode \"rw\""),
        "{err}"
    );
}

#[test]
fn an_owner_the_running_user_may_not_give_is_a_plan_time_error() {
    if is_root() {
        return; // root may give files to anyone
    }
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/.plumbattributes", b"a.conf owner=0\n");
    env.write("src/a.conf", b"a\n");
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    let location = format!("dir:{}", env.path("target").display());
    env.ok(&["target", "add", "t", &location, "--source", "src"]);
    let err = env.fails(&["apply", "t"], 1);
    assert!(err.contains("cannot give files owner 0"), "{err}");
    assert!(!exists(&env.path("target/a.conf")));
}
