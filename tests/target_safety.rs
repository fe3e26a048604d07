//! What keeps a target's files safe from a wrong definition or a wrong
//! snapshot: another source's snapshot, an empty or shrunken tree, a root
//! that resolves elsewhere, a plugin run from another directory, a
//! definition that overlaps the store or another target. Everything runs
//! the real binary on real files.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::Env;
use plumb_testutils::tree::tree;

/// A store with directory sources `src` (at `src/`: `a.conf`, `b.conf`)
/// and `other` (at `other/`: `x.conf`), both ingested, and a pruning
/// target `t` on `tgt/` following `src`, applied.
fn rig() -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/a.conf", b"a = 1\n");
    env.write("src/b.conf", b"b = 1\n");
    env.write("other/x.conf", b"x = 1\n");
    env.add_dir_source("src", "src");
    env.add_dir_source("other", "other");
    env.ok(&["ingest"]);
    let root = format!("dir:{}", env.path("tgt").display());
    env.ok(&["target", "add", "t", &root, "--source", "src", "--prune"]);
    env.ok(&["apply", "t"]);
    env
}

/// The target's definition as `target list --json` shows it.
fn listed(env: &Env, name: &str) -> serde_json::Value {
    let list = env.ok_json(&["target", "list", "--json"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no target {name} in {list}"))
}

/// The names of the files under `root`, sorted.
fn files(root: &Path) -> Vec<String> {
    tree(root)
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[test]
fn a_snapshot_of_another_source_is_refused() {
    let env = rig();
    let before = tree(&env.path("tgt"));
    let def = listed(&env, "t");
    for args in [
        &["rollback", "t", "other@latest"][..],
        &["apply", "t", "--rev", "other@latest"],
        &["plan", "t", "--rev", "other@latest"],
    ] {
        let line = env.fails(args, 1);
        assert!(
            line.contains("source other") && line.contains("source src") && line.contains(" t "),
            "{args:?}: {line}"
        );
    }
    // By id prefix too: the snapshot id names no source, but it is not src's.
    let other = env.ok_json(&["show", "other@latest", "--json"]);
    let id = other["id"].as_str().unwrap().trim_start_matches("blake3:");
    let line = env.fails(&["rollback", "t", &id[..12]], 1);
    assert!(line.contains("source other"), "{line}");
    assert_eq!(tree(&env.path("tgt")), before, "the target changed");
    assert_eq!(listed(&env, "t"), def, "the definition or inventory changed");
    assert_eq!(env.drift("t", true), (0, vec![]));
    // Its own source's snapshots still go.
    env.ok(&["rollback", "t", "src@latest"]);
    assert_eq!(files(&env.path("tgt")), ["a.conf", "b.conf"]);
}

/// `apply t` refused by the delete guard: one error line naming the
/// counts and the flag, and a refused run in the audit log.
fn refused_by_guard(env: &Env, deleting: &str) {
    let line = env.fails(&["apply", "t"], 1);
    assert!(
        line.contains(deleting) && line.contains("--allow-mass-delete"),
        "{line}"
    );
    let runs = env.ok_json(&["runs", "t", "-n", "1", "--json"]);
    assert_eq!(runs[0]["outcome"], "refused", "{runs}");
}

#[test]
fn an_emptied_source_directory_is_announced_and_refused() {
    let env = rig();
    std::fs::remove_file(env.path("src/a.conf")).unwrap();
    std::fs::remove_file(env.path("src/b.conf")).unwrap();
    let (code, _, err) = env.code(&["ingest", "src"]);
    assert_eq!(code, 0, "{err}");
    let src = env.path("src");
    assert_eq!(
        err.trim_end(),
        format!(
            "plumb: warning: src: {} is empty now, and the previous snapshot was not",
            src.display()
        )
    );
    // Plan shows the guard; apply refuses; nothing is deleted.
    let (code, plan) = env.json(&["plan", "t", "--json"]);
    assert_eq!(code, 2);
    assert_eq!(plan["guard"]["trip"], "empty-tree", "{plan}");
    assert_eq!(
        (&plan["guard"]["delete"], &plan["guard"]["owned"]),
        (&2.into(), &2.into())
    );
    let (_, text, _) = env.code(&["plan", "t"]);
    assert!(text.contains("! guard    apply would delete 2 of the 2"), "{text}");
    refused_by_guard(&env, "delete 2 of the 2 paths");
    assert_eq!(files(&env.path("tgt")), ["a.conf", "b.conf"]);
    // Allowed explicitly, it goes.
    env.ok(&["apply", "t", "--allow-mass-delete"]);
    assert_eq!(files(&env.path("tgt")), Vec::<String>::new());
}

#[test]
fn deleting_more_than_the_share_is_refused() {
    let env = Env::new();
    env.ok(&["init"]);
    for i in 0..10 {
        env.write(&format!("src/f{i}"), b"x\n");
    }
    env.add_dir_source("src", "src");
    env.ok(&["ingest"]);
    let root = |rel: &str| format!("dir:{}", env.path(rel).display());
    env.ok(&["target", "add", "t", &root("tgt"), "--source", "src", "--prune"]);
    // A target's own share.
    let (t2, u) = (root("tgt2"), "u");
    env.ok(&["target", "add", u, &t2, "--source", "src", "--prune", "--max-delete", "80"]);
    assert_eq!(listed(&env, u)["max_delete"], 80);
    assert_eq!(listed(&env, "t")["max_delete"], 50);
    env.ok(&["apply", "t"]);
    env.ok(&["apply", u]);
    // Three of ten: under the default 50%.
    for i in 0..3 {
        std::fs::remove_file(env.path(&format!("src/f{i}"))).unwrap();
    }
    env.ok(&["ingest"]);
    env.ok(&["apply", "t"]);
    env.ok(&["apply", u]);
    // Five of seven: over it, not over 80%.
    for i in 3..8 {
        std::fs::remove_file(env.path(&format!("src/f{i}"))).unwrap();
    }
    env.ok(&["ingest"]);
    refused_by_guard(&env, "delete 5 of the 7 paths");
    assert_eq!(files(&env.path("tgt")).len(), 7);
    env.ok(&["apply", u]);
    assert_eq!(files(&env.path("tgt2")), ["f8", "f9"]);
    // The share is a percentage.
    let (code, _, err) = env.code(&["target", "add", "v", &root("v"), "--source", "src", "--max-delete", "101"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("101 is not in 0..=100"), "{err}");
}

#[test]
fn a_path_that_matches_nothing_warns_at_ingest_and_fails_at_plan() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = plumb_testutils::git::GitRepo::init(&env, "repo", &[]);
    repo.write("conf/app.conf", b"a\n");
    repo.write("other", b"o\n");
    repo.commit("one");
    let at = repo.dir.to_str().unwrap();
    env.ok(&["source", "add", "g", at, "--path", "conf"]);
    env.write("d/sub/x", b"x\n");
    env.add_dir_source("d", "d");
    env.ok(&["ingest"]);
    let root = |rel: &str| format!("dir:{}", env.path(rel).display());
    env.ok(&["target", "add", "tg", &root("tg"), "--source", "g", "--prune"]);
    env.ok(&["target", "add", "td", &root("td"), "--source", "d", "--path", "sub", "--prune"]);
    env.ok(&["apply", "tg"]);
    env.ok(&["apply", "td"]);

    repo.git(&["rm", "-q", "-r", "conf"]);
    repo.commit("conf moved away");
    std::fs::rename(env.path("d/sub"), env.path("d/renamed")).unwrap();
    let (code, _, err) = env.code(&["ingest"]);
    assert_eq!(code, 0, "{err}");
    let warned: Vec<&str> = err.lines().collect();
    assert_eq!(warned.len(), 2, "{err}");
    assert!(
        warned[0].starts_with("plumb: warning: d: target td: --path sub matches nothing in the latest snapshot"),
        "{err}"
    );
    assert!(
        warned[1].starts_with("plumb: warning: g: --path conf matches nothing in the latest snapshot"),
        "{err}"
    );
    for (target, words) in [("tg", "source g --path conf matches nothing in snapshot"), ("td", "has no directory \"sub\"")] {
        for cmd in ["plan", "apply"] {
            let line = env.fails(&[cmd, target], 1);
            assert!(line.contains(words), "{cmd} {target}: {line}");
        }
    }
    assert_eq!(files(&env.path("tg")), ["app.conf"]);
    assert_eq!(files(&env.path("td")), ["x"]);
}
