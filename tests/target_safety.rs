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
    list["targets"]
        .as_array()
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
    assert_eq!(
        listed(&env, "t"),
        def,
        "the definition or inventory changed"
    );
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
    assert_eq!(runs["runs"][0]["outcome"], "refused", "{runs}");
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
    assert!(
        text.contains("! guard    apply would delete 2 of the 2"),
        "{text}"
    );
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
    env.ok(&[
        "target",
        "add",
        "t",
        &root("tgt"),
        "--source",
        "src",
        "--prune",
    ]);
    // A target's own share.
    let (t2, u) = (root("tgt2"), "u");
    env.ok(&[
        "target",
        "add",
        u,
        &t2,
        "--source",
        "src",
        "--prune",
        "--max-delete",
        "80",
    ]);
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
    let (code, _, err) = env.code(&[
        "target",
        "add",
        "v",
        &root("v"),
        "--source",
        "src",
        "--max-delete",
        "101",
    ]);
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
    env.ok(&[
        "target",
        "add",
        "tg",
        &root("tg"),
        "--source",
        "g",
        "--prune",
    ]);
    env.ok(&[
        "target",
        "add",
        "td",
        &root("td"),
        "--source",
        "d",
        "--path",
        "sub",
        "--prune",
    ]);
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
        warned[0].starts_with(
            "plumb: warning: d: target td: --path sub matches nothing in the latest snapshot"
        ),
        "{err}"
    );
    assert!(
        warned[1]
            .starts_with("plumb: warning: g: --path conf matches nothing in the latest snapshot"),
        "{err}"
    );
    for (target, words) in [
        ("tg", "source g --path conf matches nothing in snapshot"),
        ("td", "has no directory \"sub\""),
    ] {
        for cmd in ["plan", "apply"] {
            let line = env.fails(&[cmd, target], 1);
            assert!(line.contains(words), "{cmd} {target}: {line}");
        }
    }
    assert_eq!(files(&env.path("tg")), ["app.conf"]);
    assert_eq!(files(&env.path("td")), ["x"]);
}

#[test]
fn a_root_is_stored_normalized_and_never_through_dot_dot() {
    let env = rig();
    env.write("live2/a", b"not plumb's\n");
    let dotdot = format!("dir:{}/live2/new/..", env.path("").display());
    let line = env.fails(&["target", "add", "u", &dotdot, "--source", "src"], 1);
    assert!(line.contains("'..'"), "{line}");
    assert!(!env.path("live2/new").exists());
    assert_eq!(
        std::fs::read(env.path("live2/a")).unwrap(),
        b"not plumb's\n"
    );
    // `.` and repeated slashes go; relative roots are made absolute here.
    env.ok(&[
        "target",
        "add",
        "u",
        "dir:./live2//./conf/",
        "--source",
        "src",
    ]);
    let want = format!("dir:{}", env.path("live2/conf").display());
    assert_eq!(listed(&env, "u")["location"], want.as_str());
}

/// The reference plugin, copied to `plugins/sqlite_target.py` in the
/// scratch directory, executable.
fn plugin(env: &Env) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("backends/targets/exec/tests/plugins/sqlite_target.py");
    let to = env.path("plugins/sqlite_target.py");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, &to).unwrap();
    plumb_testutils::fs::chmod(&to, 0o755);
}

/// Adds plugin target `name` following `src`, the reference plugin run
/// by a relative path from the scratch directory, keeping its files in
/// `db` (relative too).
fn add_plugin(env: &Env, name: &str, db: &str) {
    let location = format!("exec:python3 plugins/sqlite_target.py {db}");
    env.ok(&["target", "add", name, &location, "--source", "src"]);
}

/// Runs plumb in `dir` instead of the scratch directory.
fn code_in(env: &Env, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = env.cmd(args).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_plugin_runs_where_it_was_added_whatever_the_callers_directory() {
    let env = rig();
    plugin(&env);
    // Relative program, relative arguments: resolved against the directory
    // current at `target add`.
    add_plugin(&env, "p", "state.sqlite");
    env.ok(&[
        "target",
        "add",
        "q",
        "exec:./plugins/sqlite_target.py other.sqlite",
        "--source",
        "src",
    ]);
    let program = env.path("plugins/sqlite_target.py");
    assert_eq!(
        listed(&env, "q")["location"],
        format!("exec:{} other.sqlite", program.display()).as_str()
    );
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    for t in ["p", "q"] {
        let (code, out, err) = code_in(&env, &elsewhere, &["apply", t]);
        assert_eq!(code, 0, "apply {t}: {out}{err}");
        let (code, out, err) = code_in(&env, &elsewhere, &["plan", t]);
        assert_eq!(code, 0, "plan {t}: {out}{err}");
        let (code, out, err) = code_in(&env, &elsewhere, &["drift", t, "--full"]);
        assert_eq!(code, 0, "drift {t}: {out}{err}");
        // The same from the directory it was added in.
        assert_eq!(env.code(&["plan", t]).0, 0);
    }
    assert!(env.path("state.sqlite").is_file());
    assert!(env.path("other.sqlite").is_file());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn target_add_refuses_what_can_only_go_wrong() {
    let env = rig();
    env.write("afile", b"x\n");
    let at = |rel: &str| format!("dir:{}", env.path(rel).display());
    for (location, extra, words) in [
        (at("afile"), None, "is not a directory"),
        (
            "exec:plugin 'unbalanced".to_string(),
            None,
            "unbalanced quotes",
        ),
        (at("fresh"), Some("../etc"), "may not contain '..'"),
        (at("tgt"), None, "is the root of target t"),
        (at("tgt/inner"), None, "lies inside the root of target t"),
        (at(""), None, "the store's directory"),
        (at("store/x"), None, "lies inside the store's directory"),
        ("dir:.".to_string(), None, "holds the store's directory"),
    ] {
        let mut args = vec!["target", "add", "u", &location, "--source", "src"];
        if let Some(p) = extra {
            args.extend(["--path", p]);
        }
        let line = env.fails(&args, 1);
        assert!(line.contains(words), "{location}: {line}");
    }
    let none = env.ok_json(&["target", "list", "--json"]);
    assert_eq!(none["targets"].as_array().unwrap().len(), 1, "{none}");
}

/// The scenario that replaced the store: a tree holding
/// `.plumb/store.redb`, applied with `--adopt` to the directory holding
/// the default store.
#[test]
fn a_target_on_the_directory_holding_the_default_store_is_refused() {
    let env = Env::new();
    let work = env.path("work");
    std::fs::create_dir(&work).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plumb"))
            .args(args)
            .current_dir(&work)
            .env("NO_COLOR", "1")
            .env_remove("PLUMB_STORE")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["init"]).0, 0);
    env.write("src/.plumb/store.redb", b"not a store\n");
    env.write("src/a", b"a\n");
    let src = env.path("src");
    assert_eq!(
        run(&["source", "add", "s", src.to_str().unwrap(), "--vcs", "dir"]).0,
        0
    );
    assert_eq!(run(&["ingest"]).0, 0);
    let (code, err) = run(&["target", "add", "t", "dir:.", "--source", "s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds the store's directory"), "{err}");
    assert_eq!(run(&["fsck"]).0, 0);
}

#[test]
fn target_set_changes_a_target_in_place() {
    let env = rig();
    let help = env.ok_text(&["target", "set", "--help"]);
    assert!(
        help.contains("--max-delete") && help.contains("--no-prune"),
        "{help}"
    );
    let applied = listed(&env, "t")["applied"].clone();
    env.ok(&[
        "target",
        "set",
        "t",
        "--no-prune",
        "--ref",
        "latest",
        "--max-delete",
        "20",
    ]);
    let t = listed(&env, "t");
    assert_eq!(
        (&t["prune"], &t["ref"], &t["max_delete"]),
        (&false.into(), &"latest".into(), &20.into())
    );
    // What it applied is still known: in sync, nothing to do.
    assert_eq!(t["applied"], applied);
    assert_eq!(env.drift("t", true), (0, vec![]));
    assert_eq!(env.code(&["plan", "t"]).0, 0);
    // Without prune, a dropped file stays.
    std::fs::remove_file(env.path("src/b.conf")).unwrap();
    env.ok(&["ingest"]);
    env.ok(&["apply", "t"]);
    assert_eq!(files(&env.path("tgt")), ["a.conf", "b.conf"]);
    env.ok(&[
        "target",
        "set",
        "t",
        "--prune",
        "--no-ref",
        "--max-delete",
        "50",
    ]);
    env.ok(&["apply", "t"]);
    assert_eq!(files(&env.path("tgt")), ["a.conf"]);
    let text = env.ok_text(&["target", "list"]);
    assert!(text.contains("src (prune) (max-delete 50%)"), "{text}");
    // Validated like `target add`; a directory target keeps its root.
    for (args, words) in [
        (
            &["target", "set", "t", "--path", "../x"][..],
            "may not contain '..'",
        ),
        (
            &["target", "set", "t", "--location", "dir:/elsewhere"],
            "a new root is a new target",
        ),
        (
            &["target", "set", "t", "--location", "exec:plugin"],
            "a new root is a new target",
        ),
        (&["target", "set", "nobody", "--prune"], "no target named"),
    ] {
        let line = env.fails(args, 1);
        assert!(line.contains(words), "{args:?}: {line}");
    }
    // The same root, spelled differently, is no change.
    let same = format!("dir:{}/./tgt/", env.path("").display());
    assert!(
        env.ok_text(&["target", "set", "t", "--location", &same])
            .contains("unchanged")
    );
}

#[test]
fn target_set_moves_a_plugin() {
    let env = rig();
    plugin(&env);
    add_plugin(&env, "p", "one.sqlite");
    env.ok(&["apply", "p"]);
    // From another directory, with a path relative to it.
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let (code, _, err) = code_in(
        &env,
        &elsewhere,
        &[
            "target",
            "set",
            "p",
            "--location",
            "exec:python3 ../plugins/sqlite_target.py two.sqlite",
        ],
    );
    assert_eq!(code, 0, "{err}");
    env.ok(&["apply", "p"]);
    assert!(elsewhere.join("two.sqlite").is_file());
    assert_eq!(env.code(&["plan", "p"]).0, 0);
}

#[test]
fn removing_a_followed_source_names_its_targets() {
    let env = rig();
    let line = env.fails(&["source", "remove", "src"], 1);
    assert!(
        line.contains("target t") && line.contains("--with-targets"),
        "{line}"
    );
    assert_eq!(listed(&env, "t")["source"], "src");
    env.ok(&["log", "src"]);
    // Another source goes as before.
    env.ok(&["source", "remove", "other"]);
    let out = env.ok_text(&["source", "remove", "src", "--with-targets"]);
    assert!(out.contains("removed target t"), "{out}");
    assert_eq!(
        env.ok_json(&["target", "list", "--json"]),
        serde_json::json!({"outcome": "ok", "targets": []})
    );
    // What it applied stays where it is.
    assert_eq!(files(&env.path("tgt")), ["a.conf", "b.conf"]);
}

#[test]
fn one_failing_source_does_not_stop_the_others() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("a/x", b"x\n");
    env.write("c/z", b"z\n");
    env.add_dir_source("a-gone", "a");
    env.add_dir_source("c-fine", "c");
    std::fs::remove_dir_all(env.path("a")).unwrap();
    let (code, out, err) = env.code(&["ingest"]);
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("plumb: error: ") && lines[0].contains("a-gone"),
        "{err}"
    );
    assert!(out.contains("c-fine: 1 new snapshot"), "{out}");
    env.ok(&["log", "c-fine"]);
}
