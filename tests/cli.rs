//! End-to-end tests of the `plumb` binary on a directory source.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};

use crate::{Env, json_bytes};
use plumb::store::Store;
use plumb_testutils::fs::exists;
use std::os::unix::fs::FileExt;

fn setup() -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("cfg/app.conf", b"port = 8080\nhost = a\n");
    env.write("cfg/nested/deep/x.yaml", b"k: v\n");
    env.ok(&["source", "add", "app", "cfg"]);
    env
}

#[test]
fn ingest_query_round_trip() {
    let env = setup();
    env.write("cfg/run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        env.path("cfg/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    symlink("../../etc/passwd", env.path("cfg/link")).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9 name.txt");
    std::fs::write(env.path("cfg").join(odd), b"latin-1 name\n").unwrap();

    let out = env.ok_text(&["ingest"]);
    assert!(out.contains("app: 1 new snapshot"), "{out}");
    let listing = env.ok(&["ls", "-r", "-z", "app@latest"]);
    let mut paths: Vec<&[u8]> = listing
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .collect();
    paths.sort();
    let mut want: Vec<&[u8]> = vec![
        b"app.conf",
        b"caf\xe9 name.txt",
        b"link",
        b"nested/deep/x.yaml",
        b"run.sh",
    ];
    want.sort();
    assert_eq!(paths, want);
    // Bytes come back exactly; the symlink is a link, not its target's content.
    assert_eq!(
        env.ok(&["cat", "app@latest:app.conf"]),
        b"port = 8080\nhost = a\n"
    );
    assert_eq!(env.ok(&["cat", "app@latest:link"]), b"../../etc/passwd");
    let mut name = b"app@latest:".to_vec();
    name.extend_from_slice(b"caf\xe9 name.txt");
    let out = env
        .cmd(&["cat"])
        .arg(std::ffi::OsStr::from_bytes(&name))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"latin-1 name\n");
    let json: serde_json::Value =
        serde_json::from_slice(&env.ok(&["ls", "--json", "app@latest"])).unwrap();
    let kinds: Vec<(String, String)> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&json_bytes(&e["path"])).into_owned(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("run.sh".into(), "exec".into())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("link".into(), "link".into())), "{kinds:?}");
    assert!(
        kinds.contains(&("nested".into(), "tree".into())),
        "{kinds:?}"
    );
    assert_eq!(env.ok_text(&["ls", "app@latest:nested"]), "deep\n");

    // Nothing changed: no new snapshot.
    let out = env.ok_text(&["ingest", "app"]);
    assert!(out.contains("up to date"), "{out}");

    // A change: a second snapshot whose parent is the first.
    env.write("cfg/app.conf", b"port = 9090\nhost = a\n");
    env.ok(&["ingest"]);
    let log: serde_json::Value =
        serde_json::from_slice(&env.ok(&["log", "app", "--json"])).unwrap();
    let log = log["snapshots"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["revision"], "dir:2");
    assert_eq!(log[0]["parents"][0], log[1]["id"]);
    for key in ["id", "revision", "parents", "author", "time", "message"] {
        assert!(log[0].get(key).is_some(), "log --json lacks {key}");
    }
    assert_eq!(env.ok_text(&["log", "app", "-n", "1"]).lines().count(), 1);

    let diff = env.ok_text(&["diff", "app@~1", "app@latest"]);
    assert!(diff.contains("-port = 8080\n+port = 9090\n"), "{diff}");
    assert!(!diff.contains('\x1b'), "colour despite NO_COLOR");
    let stat = env.ok_text(&["diff", "--stat", "app@dir:1", "app@dir:2"]);
    assert!(
        stat.contains("app.conf") && stat.contains("1 file changed"),
        "{stat}"
    );
    // A native revision may be named with or without its scheme.
    let j: serde_json::Value =
        serde_json::from_slice(&env.ok(&["diff", "--json", "app@1", "app@dir:2"])).unwrap();
    assert_eq!(j["changes"][0]["path"], "app.conf");
    assert_eq!(j["changes"][0]["status"], "modified");
    let filtered = env.ok_text(&["diff", "app@~1", "app@latest", "--", "nested"]);
    assert!(filtered.is_empty(), "{filtered}");

    let show: serde_json::Value =
        serde_json::from_slice(&env.ok(&["show", "--json", "app@~1"])).unwrap();
    assert_eq!(show["revision"], "dir:1");
    let id = show["id"].as_str().unwrap().to_owned();
    let by_id = env.ok_text(&["show", &id["blake3:".len().."blake3:".len() + 8]]);
    assert!(by_id.contains("revision  dir:1"), "{by_id}");
    assert_eq!(
        env.ok(&["cat", &format!("{}:app.conf", &id[..20])]),
        b"port = 8080\nhost = a\n"
    );

    let fsck = env.ok_text(&["fsck"]);
    assert!(fsck.starts_with("ok:"), "{fsck}");
}

#[test]
fn user_errors_are_one_line() {
    let env = Env::new();
    let e = env.fails(&["log", "app"], 1);
    assert!(
        e.contains("no plumb store") && e.contains("plumb init"),
        "{e}"
    );
    env.ok(&["init"]);
    let e = env.fails(&["init"], 1);
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(env.run(&["frobnicate"]).status.code(), Some(64));
    let out = env.run(&["log"]);
    assert_eq!(out.status.code(), Some(64));
    let e = env.fails(&["source", "add", "app", "does-not-exist"], 1);
    assert!(e.contains("does-not-exist"), "{e}");
    env.write("cfg/a", b"1");
    let e = env.fails(&["source", "add", "bad/name", "cfg"], 1);
    assert!(e.contains("bad source name"), "{e}");
    let e = env.fails(&["ingest"], 1);
    assert!(e.contains("no sources"), "{e}");
    env.ok(&["source", "add", "app", "cfg"]);
    let e = env.fails(&["source", "add", "app", "cfg"], 1);
    assert!(e.contains("already exists"), "{e}");
    let e = env.fails(&["log", "nope"], 1);
    assert!(e.contains("no source named \"nope\""), "{e}");
    let e = env.fails(&["show", "app@latest"], 1);
    assert!(e.contains("no snapshots yet"), "{e}");
    env.ok(&["ingest"]);
    let e = env.fails(&["show", "app@~5"], 1);
    assert!(e.contains("before the first snapshot"), "{e}");
    let e = env.fails(&["show", "app@{yesterday}"], 64);
    assert!(e.contains("RFC 3339"), "{e}");
    let e = env.fails(&["show", "app@{1999-01-01T00:00:00Z}"], 1);
    assert!(e.contains("no snapshot matches"), "{e}");
    let e = env.fails(&["cat", "app@latest:../../etc/passwd"], 1);
    assert!(e.contains(".."), "{e}");
    let e = env.fails(&["cat", "app@latest:missing"], 1);
    assert!(e.contains("no such path"), "{e}");
    let e = env.fails(&["cat", "app@latest"], 1);
    assert!(e.contains("REV:PATH"), "{e}");
    let e = env.fails(&["show", "zz"], 64);
    assert!(e.contains("bad revision"), "{e}");
    let e = env.fails(&["source", "add", "r", "https://example.invalid/x"], 1);
    assert!(e.contains("--vcs"), "{e}");
}

#[test]
fn queries_never_wait_and_writers_take_turns() {
    let env = setup();
    env.ok(&["ingest"]);
    // This process holds the writer turn, as an ingest would.
    let held = Store::open(&env.store()).unwrap();
    let me = format!("pid {}", std::process::id());
    let started = std::time::Instant::now();
    assert_eq!(
        env.ok(&["cat", "app@latest:app.conf"]),
        b"port = 8080\nhost = a\n"
    );
    env.ok(&["log", "app"]);
    env.ok(&["ls", "-r", "app@latest"]);
    env.ok(&["source", "list"]);
    env.ok(&["target", "list"]);
    let out = env.run(&["fsck"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not checked") && err.contains(&me), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A second writer: at once with --no-wait, naming the holder.
    let e = env.fails(&["ingest", "--no-wait"], 1);
    assert!(e.contains(&format!("in use by {me}")), "{e}");
    // With --timeout, after that long, having said once whom it waits for.
    let started = std::time::Instant::now();
    let out = env.run(&["source", "add", "two", "cfg", "--timeout", "1500ms"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with(&format!("plumb: waiting for {me}")),
        "{err}"
    );
    assert!(lines[1].contains("still, after waiting 1.5s"), "{err}");
    // By default it waits, and completes once the holder is done.
    let child = env
        .cmd(&["source", "add", "two", "cfg"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(held);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("plumb: waiting for").count(), 1, "{err}");
    env.ok(&["ingest", "two"]);
    // The three options exclude each other; bad durations are usage errors.
    for bad in [
        &["ingest", "--wait", "--no-wait"][..],
        &["ingest", "--timeout", "soon"],
    ] {
        assert_eq!(env.run(bad).status.code(), Some(64), "{bad:?}");
    }
}

#[test]
fn corruption_is_named_and_reported() {
    let env = setup();
    env.ok(&["ingest"]);
    let blob = {
        let store = Store::open(&env.store()).unwrap();
        let snap = plumb::rev::resolve(&store, "app@latest").unwrap().id;
        let tree = store.tree(&store.snapshot(&snap).unwrap().tree).unwrap();
        let id = tree.get(b"app.conf").unwrap().value.blob().unwrap();
        let (pack, offset, len) = store.location(&id.object_id()).unwrap().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pack)
            .unwrap();
        let at = offset + u64::from(len) - 2;
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x01], at).unwrap();
        id
    };
    let e = env.fails(&["cat", "app@latest:app.conf"], 1);
    assert!(e.contains(&blob.to_hex()) && e.contains("corrupt"), "{e}");
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // One line for the damaged object, which is corrupt, not missing;
    // the snapshot it breaks, once; one summary.
    let about: Vec<&str> = err.lines().filter(|l| l.contains(&blob.to_hex())).collect();
    assert_eq!(about.len(), 1, "{err}");
    assert!(about[0].contains("is corrupt"), "{err}");
    assert!(
        !err.contains("missing:") && !err.contains("is missing"),
        "{err}"
    );
    assert_eq!(
        err.matches("plumb: fsck: affected: app #1 ").count(),
        1,
        "{err}"
    );
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("plumb: error: store is damaged: 1 corrupt object, 0 missing"),
        "{err}"
    );
    let (code, v) = env.json(&["fsck", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(v["outcome"], "damaged");
    assert_eq!(v["problems"][0]["kind"], "corrupt");
    assert_eq!(v["problems"][0]["object"], blob.to_string());
    assert_eq!(v["affected"][0]["source"], "app");
    assert_eq!(v["affected"].as_array().unwrap().len(), 1);
    // Other files are still served.
    assert_eq!(env.ok(&["cat", "app@latest:nested/deep/x.yaml"]), b"k: v\n");
}

#[test]
fn gc_and_source_removal() {
    let env = setup();
    env.ok(&["ingest"]);
    let out = env.ok_text(&["gc"]);
    assert!(out.starts_with("removed 0 "), "{out}");
    let packs = || {
        std::fs::read_dir(env.store().join("packs"))
            .unwrap()
            .count()
    };
    assert!(packs() >= 1);
    env.ok(&["source", "remove", "app"]);
    let out = env.ok_text(&["gc"]);
    assert!(out.contains("kept 0"), "{out}");
    assert!(out.contains("rewrote "), "{out}");
    // Only the pack of gc's journal checkpoint is left.
    assert_eq!(packs(), 1, "gc left a pack no object needs");
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
    env.fails(&["log", "app"], 1);
}

#[test]
fn path_scoped_source() {
    let env = setup();
    env.ok(&["source", "add", "deep", "cfg", "--path", "nested/deep"]);
    env.ok(&["ingest", "deep"]);
    assert_eq!(env.ok_text(&["ls", "-r", "deep@latest"]), "x.yaml\n");
    let e = env.fails(&["source", "add", "bad", "cfg", "--path", "../x"], 1);
    assert!(e.contains(".."), "{e}");
}

#[test]
fn store_from_environment() {
    let env = Env::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumb"))
        .arg("init")
        .env("PLUMB_STORE", env.path("from-env"))
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(exists(&env.path("from-env/plumb-store")));
    // Default: ./.plumb
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumb"))
        .arg("init")
        .env_remove("PLUMB_STORE")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(exists(&env.path(".plumb/plumb-store")));
}

#[test]
fn touched_files_are_read_once_more_then_cached() {
    let env = setup();
    env.ok(&["ingest"]);
    // Touch every file without changing content, and let the racy window pass.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let now = std::time::SystemTime::now();
    for f in ["cfg/app.conf", "cfg/nested/deep/x.yaml"] {
        std::fs::File::options()
            .write(true)
            .open(env.path(f))
            .unwrap()
            .set_modified(now)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let first = env.ok_text(&["ingest"]);
    assert!(first.contains("up to date (2 files read"), "{first}");
    // The refreshed stat cache was kept although nothing was committed.
    let second = env.ok_text(&["ingest"]);
    assert!(second.contains("up to date (0 files read"), "{second}");
}

#[test]
fn gc_rewrites_a_half_dead_pack_and_keeps_the_live_half() {
    let env = setup();
    for i in 0..50 {
        env.write(
            &format!("other/f{i}.conf"),
            format!("other {i}\n").repeat(400).as_bytes(),
        );
    }
    env.ok(&["source", "add", "other", "other"]);
    env.ok(&["ingest"]);
    env.ok(&["source", "remove", "other"]);
    // Each writing command made a pack (of journal entries, and objects
    // for the ingest): the one of the removed source's objects and the
    // small ones of journal entries alone are rewritten.
    let out = env.ok_text(&["gc"]);
    assert!(out.contains("rewrote "), "{out}");
    assert_eq!(
        env.ok(&["cat", "app@latest:app.conf"]),
        b"port = 8080\nhost = a\n"
    );
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
    // Nothing left to rewrite the second time.
    let out = env.ok_text(&["gc"]);
    assert!(!out.contains("rewrote"), "{out}");
}

/// Runs plumb with stdout and stderr both on a pipe nobody reads any more
/// (`plumb fsck 2>&1 | head -0`): every write fails with a closed pipe.
fn run_into_closed_pipe(env: &Env, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let err = writer.try_clone().unwrap();
    env.cmd(args).stdout(writer).stderr(err).output().unwrap()
}

#[test]
fn a_closed_pipe_ends_output_quietly_and_the_work_still_happens() {
    let env = setup();
    // An ingest whose report cannot be written still stores its snapshot.
    let out = run_into_closed_pipe(&env, &["ingest"]);
    assert_eq!(out.status.code(), Some(0), "ingest: {out:?}");
    assert_eq!(env.ok_text(&["log", "app"]).lines().count(), 1);
    for args in [
        &["fsck"][..],
        &["log", "app"],
        &["log", "app", "--json"],
        &["ls", "-r", "app@latest"],
        &["show", "app@latest"],
        &["source", "list"],
        &["gc"],
    ] {
        let out = run_into_closed_pipe(&env, args);
        assert_eq!(out.status.code(), Some(0), "plumb {args:?}: {out:?}");
    }
    // An error whose line cannot be written is still an error, not a panic.
    let out = run_into_closed_pipe(&env, &["cat", "app@latest:missing"]);
    assert_eq!(out.status.code(), Some(1), "cat: {out:?}");
}
