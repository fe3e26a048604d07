//! A kill at any moment of `plumb apply` leaves a store that `fsck` passes
//! and a target the next apply brings exactly to the snapshot: no orphaned
//! files, no temporary files, nothing of the test's own touched.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Env;
use plumb_testutils::tree::{Node, is_temp_name, tree, tree_diff};

/// How many files the first snapshot holds.
const FILES: usize = 3000;

/// Files the test puts into the target itself; plumb must leave them be.
const MINE: [(&str, &[u8]); 2] = [
    ("local.override", b"mine\n"),
    ("local/keep.txt", b"also mine\n"),
];

fn rel(i: usize) -> String {
    if i.is_multiple_of(50) {
        format!("top{i}.conf")
    } else {
        format!("d{}/e{}/f{i}.conf", i % 12, i % 5)
    }
}

fn body(i: usize, round: usize) -> Vec<u8> {
    let mut b = String::with_capacity(1200);
    let mut n = 0;
    while b.len() < 1000 + i % 400 {
        b.push_str(&format!("key_{i}_{n} = {} # round {round}\n", i * 7 + n));
        n += 1;
    }
    b.into_bytes()
}

fn set_exec(p: &Path, exec: bool) {
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn remove(p: &Path) {
    let meta = p.symlink_metadata().unwrap();
    if meta.is_dir() {
        std::fs::remove_dir_all(p).unwrap();
    } else {
        std::fs::remove_file(p).unwrap();
    }
}

/// The first tree: `FILES` files in nested directories, a ninth of them
/// executable, and a few symlinks (relative, absolute, dangling).
fn first_tree(env: &Env) {
    for i in 0..FILES {
        let path = format!("src/{}", rel(i));
        env.write(&path, &body(i, 0));
        if i.is_multiple_of(9) {
            set_exec(&env.path(&path), true);
        }
    }
    std::fs::create_dir(env.path("src/links")).unwrap();
    for k in 0..8 {
        let to = format!("../{}", rel(k * 13 + 1));
        symlink(to, env.path(&format!("src/links/l{k}"))).unwrap();
    }
    symlink("/nonexistent/outside", env.path("src/links/absolute")).unwrap();
    symlink("no/such/file", env.path("src/links/dangling")).unwrap();
}

/// The second: a third changed, some executable bits flipped, some files
/// and whole directories deleted, new ones added, a file turned into a
/// directory (and, with `dir_to_file`, a directory into a file), symlinks
/// retargeted, replaced and deleted.
fn second_tree(env: &Env, dir_to_file: bool) {
    for i in 0..FILES {
        let path = env.path(&format!("src/{}", rel(i)));
        if !path.exists() {
            continue;
        }
        if i % 10 == 3 {
            std::fs::remove_file(&path).unwrap();
        } else if i % 3 == 1 {
            let exec = path.metadata().unwrap().permissions().mode() & 0o100 != 0;
            std::fs::write(&path, body(i, 1)).unwrap();
            set_exec(&path, exec);
        }
        if i % 31 == 5 && path.exists() {
            let exec = path.metadata().unwrap().permissions().mode() & 0o100 != 0;
            set_exec(&path, !exec);
        }
    }
    remove(&env.path("src/d11"));
    for k in 0..300 {
        let path = format!("src/new/n{}/g{k}.conf", k % 6);
        env.write(&path, &body(FILES + k, 1));
        if k.is_multiple_of(7) {
            set_exec(&env.path(&path), true);
        }
    }
    // A file becomes a directory, a directory a file.
    remove(&env.path("src/top100.conf"));
    env.write("src/top100.conf/inner.conf", b"inner\n");
    if dir_to_file {
        remove(&env.path("src/d10/e4"));
        env.write("src/d10/e4", b"no longer a directory\n");
    }
    // Symlinks: retargeted, replaced by a file, deleted.
    remove(&env.path("src/links/l0"));
    symlink("../top50.conf", env.path("src/links/l0")).unwrap();
    remove(&env.path("src/links/l1"));
    env.write("src/links/l1", b"a file now\n");
    remove(&env.path("src/links/l2"));
}

/// The third: more files and directories gone.
fn third_tree(env: &Env) {
    for i in 0..FILES {
        let path = env.path(&format!("src/{}", rel(i)));
        if i % 10 == 6 && path.symlink_metadata().is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    remove(&env.path("src/d9"));
    remove(&env.path("src/new/n0"));
    remove(&env.path("src/links"));
}

/// The target holds exactly the source tree plus the test's own files, no
/// temporary file, and `drift --full` agrees.
fn assert_converged(env: &Env, what: &str) {
    let mut got = tree(&env.path("target"));
    for (rel, content) in MINE {
        assert_eq!(
            got.remove(rel.as_bytes()),
            Some(Node::File {
                content: content.to_vec(),
                exec: false
            }),
            "{what}: the test's own {rel} is untouched"
        );
    }
    assert_eq!(got.remove(&b"local"[..]), Some(Node::Dir), "{what}");
    let temps: Vec<String> = got
        .keys()
        .filter(|p| is_temp_name(p.rsplit(|b| *b == b'/').next().unwrap()))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert!(temps.is_empty(), "{what}: temporary files left: {temps:?}");
    let want = tree(&env.path("src"));
    let diff = tree_diff(&want, &got);
    assert!(diff.is_empty(), "{what}: target differs: {diff:#?}");
    let out = env.run(&["drift", "t", "--full"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: drift --full: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a kill leaves must be readable: plan and drift answer (0 or 2),
/// never fail.
fn assert_inspectable(env: &Env, what: &str) {
    for args in [&["plan", "t"][..], &["drift", "t"]] {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "{what}: {args:?} after a kill: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

/// The next apply after a kill succeeds.
fn apply_ok(env: &Env, what: &str) {
    let out = env.run(&["apply", "t"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: the apply after a kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn snapshot_of_apply(env: &Env) -> String {
    let v: serde_json::Value = serde_json::from_slice(&env.ok(&["apply", "t", "--json"])).unwrap();
    v["snapshot"].as_str().unwrap().to_string()
}

#[test]
fn kill_during_apply_at_many_points() {
    kill_during_apply(false);
}

#[test]
fn kill_during_apply_while_a_directory_becomes_a_file() {
    kill_during_apply(true);
}

fn kill_during_apply(dir_to_file: bool) {
    let env = Env::new();
    env.ok(&["init"]);
    first_tree(&env);
    let src = env.path("src");
    env.add_dir_source("src", "src");
    env.ok(&["ingest", "src"]);
    let target = env.path("target");
    env.ok(&[
        "target",
        "add",
        "t",
        &format!("dir:{}", target.display()),
        "--source",
        "src",
        "--prune",
    ]);
    for (rel, content) in MINE {
        env.write(&format!("target/{rel}"), content);
    }
    let first = snapshot_of_apply(&env);
    let first_tree = tree(&src);
    assert_converged(&env, "first apply");

    second_tree(&env, dir_to_file);
    let second = tree(&src);
    env.ok(&["ingest", "src"]);

    // How long does the whole apply take here? Kill points spread over it.
    let started = Instant::now();
    env.ok(&["apply", "t"]);
    let full = started.elapsed().max(Duration::from_millis(50));
    assert_converged(&env, "uninterrupted apply");

    let points = 12;
    let mut killed = 0;
    let mut halfway = 0;
    for k in 0..points {
        // Back to the first snapshot (a rollback pins; unpin follows the
        // source again), then kill the apply to the second.
        env.ok(&["rollback", "t", &first]);
        env.ok(&["unpin", "t"]);
        let delay = full.mul_f64(k as f64 / points as f64);
        let what = format!("kill {k} at {delay:?} of {full:?}");
        let was_killed = env.killed_after(&["apply", "t"], delay);
        killed += usize::from(was_killed);
        // Did the kill land while changes were being made?
        let now = tree(&target);
        let (to_first, to_second) = (
            tree_diff(&first_tree, &now).len(),
            tree_diff(&second, &now).len(),
        );
        // The test's own 3 paths always differ from a source tree.
        if to_first > MINE.len() + 1 && to_second > MINE.len() + 1 {
            halfway += 1;
        }
        eprintln!(
            "{what}: killed {was_killed}, {to_first} paths from the first tree, {to_second} from the second"
        );
        assert_inspectable(&env, &what);
        apply_ok(&env, &what);
        assert_converged(&env, &what);
    }
    assert!(
        killed >= points / 2,
        "only {killed} of {points} applies were interrupted (full apply: {full:?})"
    );
    assert!(
        halfway >= 1,
        "no kill landed while the target was half changed (full apply: {full:?})"
    );

    // More deletions, then kills one after another with no clean apply in
    // between, each one later than the last, until an apply finishes.
    third_tree(&env);
    env.ok(&["ingest", "src"]);
    let mut kills = 0;
    for k in 1..=40 {
        let delay = full.mul_f64(f64::from(k) * 0.03);
        if !env.killed_after(&["apply", "t"], delay) {
            break;
        }
        kills += 1;
        assert_inspectable(&env, &format!("repeated kill {k}"));
    }
    assert!(kills >= 1, "no apply to the third snapshot was interrupted");
    apply_ok(&env, "after repeated kills");
    assert_converged(&env, "after repeated kills: everything dropped is pruned");
    assert!(!env.path("target/d9").exists());
    assert!(!env.path("target/links").exists());
    let out = env.run(&["drift", "t"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
}

/// What a kill between removing an owned directory's contents and
/// replacing the directory with a file leaves, made deterministic: the
/// directory cannot be removed (a stray file named like a temporary file,
/// which listings leave out, keeps it non-empty), so the apply stops there.
#[test]
fn a_directory_half_turned_into_a_file_converges() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/app.conf", b"port = 80\n");
    env.write("src/conf.d/a.conf", b"a = 1\n");
    let src = env.path("src");
    env.add_dir_source("src", "src");
    env.ok(&["ingest", "src"]);
    let target = env.path("target");
    for prune in [false, true] {
        let name = if prune { "p" } else { "t" };
        let root = target.join(name);
        let mut add = vec![
            "target".to_string(),
            "add".into(),
            name.into(),
            format!("dir:{}", root.display()),
            "--source".into(),
            "src".into(),
        ];
        if prune {
            add.push("--prune".into());
        }
        env.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
        env.ok(&["apply", name]);
    }
    remove(&env.path("src/conf.d"));
    env.write("src/conf.d", b"a file now\n");
    env.ok(&["ingest", "src"]);
    for name in ["t", "p"] {
        let root = target.join(name);
        let stray = root.join("conf.d/.stray.plumb-tmp");
        std::fs::write(&stray, b"stray\n").unwrap();
        let out = env.run(&["apply", name]);
        assert_eq!(out.status.code(), Some(1), "{name}: the directory stays");
        std::fs::remove_file(&stray).unwrap();
        // Everything in the way is gone now: the next apply must finish.
        let out = env.run(&["apply", name]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let diff = tree_diff(&tree(&src), &tree(&root));
        assert!(diff.is_empty(), "{name}: {diff:#?}");
        let out = env.run(&["drift", name, "--full"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
    }
}
