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
