//! `plumb backup`: a consistent, verified copy of a store, made while other
//! processes use it, incremental into an earlier backup, and never leaving
//! a half-written store behind. Each copy is checked against its source
//! by what it says it captured: every source's log up to the position the
//! backup reports, every target's runs up to the last one it holds.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::Env;

/// `plumb --store DIR ARGS`, outside the environment's store.
fn on(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plumb"))
        .arg("--store")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("PLUMB_STORE")
        .output()
        .unwrap()
}

fn on_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = on(dir, args);
    assert!(
        out.status.success(),
        "plumb --store {} {args:?}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Backs the store up into `dest`; returns the report.
pub(crate) fn backup(env: &Env, dest: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["backup", dest.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    env.ok_json(&args)
}

/// The entries of a JSON list whose `field` is at most `last`.
fn up_to(list: &serde_json::Value, field: &str, last: u64) -> Vec<serde_json::Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|e| e[field].as_u64().unwrap() <= last)
        .cloned()
        .collect()
}

/// Checks the copy in `dest` against the store it was made from, which
/// may have moved on since: `fsck` passes; each source's log is the
/// source's up to the position the report names; each target is defined
/// alike and its runs are the source's up to the last the copy holds.
pub(crate) fn check_copy(env: &Env, dest: &Path, report: &serde_json::Value) {
    let fsck = on(dest, &["fsck"]);
    assert!(
        fsck.status.success(),
        "the copy fails fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let sources = report["sources"].as_array().unwrap();
    let listed = on_json(dest, &["source", "list", "--json"]);
    assert_eq!(listed["sources"].as_array().unwrap().len(), sources.len());
    for s in sources {
        let (name, seq) = (s["name"].as_str().unwrap(), s["seq"].as_u64().unwrap());
        let copy = on_json(dest, &["log", name, "--json"])["snapshots"].clone();
        let copy = copy.as_array().unwrap();
        assert_eq!(copy.len() as u64, seq, "{name}: the copy's log");
        let source = env.ok_json(&["log", name, "--json"])["snapshots"].clone();
        let at_point = up_to(&source, "seq", seq);
        assert_eq!(
            *copy, at_point,
            "{name}: the copy's log differs from the source's at #{seq}"
        );
    }
    let targets = |v: serde_json::Value| {
        let mut v = v["targets"].as_array().unwrap().clone();
        for t in &mut v {
            // What a target holds moves with every apply; its runs say.
            t.as_object_mut().unwrap().remove("snapshot");
        }
        v
    };
    let copy_targets = targets(on_json(dest, &["target", "list", "--json"]));
    assert_eq!(
        copy_targets,
        targets(env.ok_json(&["target", "list", "--json"]))
    );
    for t in copy_targets {
        let name = t["name"].as_str().unwrap();
        let copy = on_json(dest, &["runs", name, "--json"])["runs"].clone();
        let copy = copy.as_array().unwrap();
        let last = copy
            .iter()
            .map(|r| r["run"].as_u64().unwrap())
            .max()
            .unwrap_or(0);
        let source = env.ok_json(&["runs", name, "--json"])["runs"].clone();
        let at_point = up_to(&source, "run", last);
        assert_eq!(
            *copy, at_point,
            "{name}: the copy's runs differ from the source's"
        );
    }
}

/// One backup beside the writers: to completion, then checked; or killed
/// at a random moment, after which `dest` is either a store that passes
/// `fsck` (the previous backup, or this one complete) or no store at all.
pub(crate) fn round(env: &Env, dest: &Path, kill_after: Option<Duration>) {
    let Some(delay) = kill_after else {
        let report = backup(env, dest, &[]);
        check_copy(env, dest, &report);
        return;
    };
    let mut child = env
        .cmd(&["backup", dest.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
    if dest.join("plumb-store").exists() {
        let fsck = on(dest, &["fsck"]);
        assert!(
            fsck.status.success(),
            "a killed backup left a store that fails fsck: {}",
            String::from_utf8_lossy(&fsck.stderr)
        );
    }
}

fn store_with_history(env: &Env, versions: usize) {
    env.ok(&["init"]);
    for k in 0..versions {
        env.write("src/v.txt", format!("version {k}\n").as_bytes());
        env.write(&format!("src/many/{k}.txt"), &vec![b'x'; 1000 + k]);
        if k == 0 {
            env.add_dir_source("s", "src");
        }
        env.ok(&["ingest", "s"]);
    }
}

#[test]
fn a_backup_opens_as_the_store_and_the_next_copies_only_what_is_new() {
    let env = Env::new();
    store_with_history(&env, 3);
    let out = env.path("out");
    env.ok(&[
        "target",
        "add",
        "t",
        &format!("dir:{}", out.display()),
        "--source",
        "s",
    ]);
    env.ok(&["apply", "t"]);
    let dest = env.path("backup");
    let first = backup(&env, &dest, &[]);
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["sources"][0]["seq"], 3);
    assert_eq!(first["packs"]["reused"], 0);
    assert!(first["packs"]["copied"].as_u64().unwrap() >= 1);
    check_copy(&env, &dest, &first);
    // Restoring is opening the copy: it answers as the store did.
    let want = env.ok(&["cat", "s@latest:v.txt"]);
    assert_eq!(on(&dest, &["cat", "s@latest:v.txt"]).stdout, want);

    env.write("src/v.txt", b"version 3\n");
    env.ok(&["ingest", "s"]);
    let second = backup(&env, &dest, &["--verify-all"]);
    let copied_before = first["packs"]["copied"].as_u64().unwrap();
    assert_eq!(second["packs"]["reused"].as_u64().unwrap(), copied_before);
    assert_eq!(second["packs"]["copied"], 1, "only the new pack: {second}");
    assert_eq!(second["bytes"]["reused"], first["bytes"]["copied"]);
    assert_eq!(second["verified"], "objects");
    assert_eq!(second["sources"][0]["seq"], 4);
    check_copy(&env, &dest, &second);

    // gc rewrites and drops packs: the next backup drops them too.
    env.ok(&["target", "remove", "t"]);
    env.ok(&["source", "remove", "s"]);
    env.ok(&["gc"]);
    let third = backup(&env, &dest, &[]);
    assert!(third["packs"]["removed"].as_u64().unwrap() >= 1, "{third}");
    check_copy(&env, &dest, &third);
}

#[test]
fn a_backup_refuses_what_is_not_one_and_tells_why() {
    let env = Env::new();
    store_with_history(&env, 1);
    // The store itself, a store that is no backup, a non-empty directory.
    let store = env.store();
    let line = env.fails(&["backup", store.to_str().unwrap()], 1);
    assert!(line.contains("is the store itself"), "{line}");
    let other = env.path("other");
    on(&other, &["init"]);
    let line = env.fails(&["backup", other.to_str().unwrap()], 1);
    assert!(line.contains("not a backup"), "{line}");
    let line = env.fails(&["backup", env.path("src").to_str().unwrap()], 1);
    assert!(line.contains("neither empty nor a backup"), "{line}");
    env.fails(&["backup"], 64);
}

#[test]
fn a_backup_whose_pack_was_damaged_is_found_out_and_recopied_when_it_changed() {
    let env = Env::new();
    store_with_history(&env, 2);
    let dest = env.path("backup");
    backup(&env, &dest, &[]);
    // Damage one byte of a packed object in the backup's pack: the next
    // backup reuses the pack, and --verify-all reads every object back.
    let blob = plumb_core::Blob::id_of(b"version 1\n").object_id();
    let (pack, offset, len) = plumb::store::Store::open_read_only(&dest)
        .unwrap()
        .location(&blob)
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let at = (offset + u64::from(len) - 1) as usize;
    bytes[at] ^= 0x40;
    std::fs::write(&pack, &bytes).unwrap();
    let line = env.fails(&["backup", dest.to_str().unwrap(), "--verify-all"], 1);
    assert!(line.contains("the copied index is inconsistent"), "{line}");
    assert!(line.contains("is corrupt"), "{line}");
    // The store it was a backup of is still whole; the damaged pack is
    // recopied once the backup's manifest no longer vouches for it.
    let manifest = dest.join("plumb-backup");
    std::fs::write(&manifest, "plumb backup v1\n").unwrap();
    let report = backup(&env, &dest, &["--verify-all"]);
    check_copy(&env, &dest, &report);
}
