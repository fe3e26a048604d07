//! `plumb repair` rebuilds the index from the pack files and their
//! journal: after the database is deleted, damaged page by page, or the
//! repair itself is killed, every query answers as before (`--json`
//! compared); what the packs cannot give back is reported. And ingesting
//! content again replaces a corrupt stored copy.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::time::Duration;

use plumb::store::Store;
use plumb_core::{Blob, ObjectId};
use plumb_testutils::git::GitRepo;

use crate::Env;
use crate::damage::{PAGE, copy_dir, small_store};

/// The small store of the damage tests, plus a Git source with a branch
/// and an annotated tag (named refs and their annotations).
fn store_with_refs() -> Env {
    let env = small_store();
    let repo = GitRepo::init(env.path(""), "repo", &[]);
    repo.write("a.conf", b"a = 1\n");
    repo.commit("first");
    repo.git(&["tag", "-a", "v1", "-m", "release 1"]);
    repo.write("a.conf", b"a = 2\n");
    repo.commit("second");
    env.ok(&["source", "add", "git", repo.dir.to_str().unwrap()]);
    env.ok(&["ingest", "git"]);
    env
}

/// What the queries answer: logs, sources, targets, runs, a plan, and the
/// named refs at each Git snapshot, as their `--json` documents.
fn answers(env: &Env) -> Vec<(String, serde_json::Value)> {
    let queries: &[&[&str]] = &[
        &["log", "app", "--json"],
        &["log", "other", "--json"],
        &["log", "git", "--json"],
        &["show", "git@latest", "--json"],
        &["show", "git@~1", "--json"],
        &["show", "app@~1", "--json"],
        &["source", "list", "--json"],
        &["target", "list", "--json"],
        &["runs", "web", "--json"],
        &["plan", "web", "--json"],
    ];
    queries
        .iter()
        .map(|q| (q.join(" "), env.ok_json(q)))
        .collect()
}

fn assert_same(env: &Env, before: &[(String, serde_json::Value)], what: &str) {
    for ((query, want), (_, got)) in before.iter().zip(answers(env)) {
        assert_eq!(&got, want, "`plumb {query}` after {what}");
    }
}

fn kept_copies(store: &Path) -> usize {
    std::fs::read_dir(store)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("store.redb.damaged-")
        })
        .count()
}

#[test]
fn repair_recovers_everything_after_the_database_is_deleted() {
    let env = store_with_refs();
    let before = answers(&env);
    std::fs::remove_file(env.store().join("store.redb")).unwrap();
    // Until then, every command says what is lost and the way out.
    for args in [&["log", "app"][..], &["ingest"], &["target", "list"]] {
        let line = env.fails(args, 1);
        assert!(
            line.contains("store.redb is damaged: the file is missing")
                && line.contains("`plumb repair`"),
            "{args:?}: {line}"
        );
    }
    let (code, report) = env.json(&["repair", "--json"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["kept"], serde_json::Value::Null);
    assert_same(&env, &before, "deleting the database");
    env.ok(&["fsck"]);
    // The store goes on: a new ingest and apply, then gc (which compacts
    // the journal into a checkpoint) and a second loss.
    env.write("cfg/app.conf", b"port = 7070\n");
    env.ok(&["ingest"]);
    env.ok(&["apply", "web"]);
    env.ok(&["gc"]);
    let before = answers(&env);
    std::fs::remove_file(env.store().join("store.redb")).unwrap();
    env.ok(&["repair"]);
    assert_same(&env, &before, "gc, then deleting the database");
    env.ok(&["fsck"]);
}

#[test]
fn repair_restores_a_damaged_database_page_by_page() {
    let env = store_with_refs();
    let before = answers(&env);
    let saved = env.path("pristine");
    copy_dir(&env.store(), &saved);
    let pristine = std::fs::read(env.store().join("store.redb")).unwrap();
    let pages = pristine.len().div_ceil(PAGE);
    // A handful of pages spread over the file, each zeroed and with one
    // bit flipped (every page is the damage test's, for "never 101").
    for page in (0..pages).step_by(pages.div_ceil(5)) {
        for zeroed in [true, false] {
            let mut bytes = pristine.clone();
            let start = page * PAGE;
            let end = (start + PAGE).min(bytes.len());
            if zeroed {
                bytes[start..end].fill(0);
            } else {
                bytes[start + (page * 131) % (end - start)] ^= 0x04;
            }
            std::fs::remove_dir_all(env.store()).unwrap();
            copy_dir(&saved, &env.store());
            std::fs::write(env.store().join("store.redb"), &bytes).unwrap();
            let what = format!("page {page} damaged (zeroed: {zeroed})");
            let out = env.run(&["repair"]);
            assert!(
                out.status.success(),
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(kept_copies(&env.store()), 1, "{what}");
            assert_same(&env, &before, &what);
        }
    }
}

#[test]
fn a_repair_killed_midway_converges_when_run_again() {
    let env = store_with_refs();
    let before = answers(&env);
    std::fs::remove_file(env.store().join("store.redb")).unwrap();
    let mut killed = 0;
    for delay_ms in [0u64, 2, 5, 10, 20, 40] {
        let mut child = env
            .cmd(&["repair"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        env.ok(&["repair"]);
        assert_same(&env, &before, &format!("a repair killed at {delay_ms} ms"));
    }
    assert!(killed > 0, "no repair was still running when killed");
}

#[test]
fn repair_names_what_it_could_not_recover_and_the_snapshots_it_costs() {
    let env = small_store();
    // The only copy of the first version of app.conf is damaged.
    let blob = Blob::id_of(b"port = 8080\n").object_id();
    let (pack, offset, _) = {
        let store = Store::open_read_only(&env.store()).unwrap();
        store.location(&blob).unwrap().unwrap()
    };
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[offset as usize + 2] ^= 0x01;
    std::fs::write(&pack, &bytes).unwrap();
    std::fs::remove_file(env.store().join("store.redb")).unwrap();
    let (code, report) = env.json(&["repair", "--json"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["outcome"], "damaged");
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "missing" && p["object"] == blob.to_string()),
        "{report}"
    );
    let affected = report["affected"].as_array().unwrap();
    assert_eq!(affected.len(), 1, "{report}");
    assert_eq!(
        (&affected[0]["source"], &affected[0]["seq"]),
        (&"app".into(), &1.into())
    );
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("1 corrupt record"),
        "{report}"
    );
    // Without --json: one error line, the losses on lines of their own.
    let out = env.run(&["repair"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines()
            .filter(|l| !l.starts_with("plumb: repair:"))
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("plumb: repair: affected: app #1"), "{err}");

    // A pack lost whole takes its journal entries with it: the gap in
    // the journal's generations is said.
    std::fs::remove_file(&pack).unwrap();
    let (code, report) = env.json(&["repair", "--json"]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["lost"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("not in the packs")),
        "{report}"
    );
}

#[test]
fn a_store_written_without_a_journal_is_repaired_as_far_as_objects_go() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("cfg/a.conf", b"a\n");
    let run = |args: &[&str]| {
        let out = env.cmd(args).env("PLUMB_JOURNAL", "off").output().unwrap();
        assert!(out.status.success(), "{args:?}");
    };
    run(&["source", "add", "app", "cfg"]);
    run(&["ingest"]);
    std::fs::remove_file(env.store().join("store.redb")).unwrap();
    let (code, report) = env.json(&["repair", "--json"]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["lost"][0]
            .as_str()
            .unwrap()
            .contains("the packs hold no journal"),
        "{report}"
    );
    assert_eq!(report["objects"], 3, "{report}");
}

#[test]
fn ingesting_again_replaces_a_corrupt_object() {
    let env = Env::new();
    env.ok(&["init"]);
    let content = b"listen = 0.0.0.0:8080\nworkers = 4\n".repeat(4);
    env.write("cfg/app.conf", &content);
    env.ok(&["source", "add", "app", "cfg"]);
    env.ok(&["ingest"]);
    let blob: ObjectId = Blob::id_of(&content).object_id();
    let (pack, offset, len) = {
        let store = Store::open_read_only(&env.store()).unwrap();
        store.location(&blob).unwrap().unwrap()
    };
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(offset + u64::from(len) / 2) as usize] ^= 0x01;
    std::fs::write(&pack, &bytes).unwrap();
    env.fails(&["cat", "app@latest:app.conf"], 1);
    env.fails(&["fsck"], 1);
    // The same content again (a new mtime, so the directory source reads
    // it): the sink finds the stored copy corrupt and writes a new one.
    std::thread::sleep(Duration::from_millis(20));
    env.write("cfg/app.conf", &content);
    env.ok(&["ingest"]);
    env.ok(&["fsck"]);
    assert_eq!(env.ok(&["cat", "app@latest:app.conf"]), content);
}

#[test]
fn a_store_from_before_the_journal_is_checkpointed_by_its_next_writer() {
    use plumb_core::engine::{Batch, Engine, Table};
    let env = Env::new();
    env.ok(&["init"]);
    env.write("cfg/a.conf", b"a\n");
    for args in [&["source", "add", "app", "cfg"][..], &["ingest"]] {
        let out = env.cmd(args).env("PLUMB_JOURNAL", "off").output().unwrap();
        assert!(out.status.success(), "{args:?}");
    }
    {
        // As a store written before the journal: no generation row.
        let engine = plumb_engine_redb::RedbEngine::open(&env.store().join("store.redb")).unwrap();
        let mut batch = Batch::new();
        batch.delete(Table::Meta, b"journal".to_vec());
        engine.commit(batch).unwrap();
    }
    env.write("other/b.conf", b"b\n");
    env.ok(&["source", "add", "other", "other"]);
    let before = (
        env.ok_json(&["log", "app", "--json"]),
        env.ok_json(&["source", "list", "--json"]),
    );
    std::fs::remove_file(env.store().join("store.redb")).unwrap();
    env.ok(&["repair"]);
    let after = (
        env.ok_json(&["log", "app", "--json"]),
        env.ok_json(&["source", "list", "--json"]),
    );
    assert_eq!(after, before);
}
