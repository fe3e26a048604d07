//! End-to-end tests of Mercurial sources: repositories built with the real
//! `hg` program, ingested by the `plumb` binary, and checked changeset by
//! changeset against `hg files` and `hg cat`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;

use crate::Env;
use plumb_testutils::cli::split_z;
use plumb_testutils::fixture;
use plumb_testutils::fs::write;
use plumb_testutils::hg::{all_nodes, commit, hg, hg_command};
use plumb_testutils::net::free_port;

/// A repository with a named branch, a merge, a rename, an executable, a
/// symlink, a bookmark, a tag, odd and long paths, and an amended
/// (obsolete) changeset.
fn build(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    hg(root, &["init"]);
    write(root, "conf/app.conf", b"port = 1\n");
    write(root, "Odd Dir/.hidden", b"h\n");
    write(root, "aux.txt", b"reserved name\n");
    let long = format!("{}/{}.yaml", "LongDirectoryName".repeat(4), "x".repeat(90));
    write(root, &long, b"long: true\n");
    commit(root, "base", "1700000000 -3600");
    write(root, "run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        root.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("conf/app.conf", root.join("link")).unwrap();
    hg(root, &["rename", "-q", "aux.txt", "renamed.txt"]);
    commit(root, "exec, link, rename", "1700000100 0");
    hg(root, &["branch", "-q", "stable"]);
    write(root, "conf/app.conf", b"port = 2\n");
    commit(root, "stable change", "1700000200 0");
    hg(root, &["bookmark", "-q", "prod"]);
    hg(root, &["update", "-q", "default"]);
    write(root, "conf/other.conf", b"other\n");
    commit(root, "default change", "1700000300 0");
    hg(root, &["tag", "-q", "-d", "1700000400 0", "v1.0"]);
    hg(root, &["merge", "-q", "stable"]);
    commit(root, "merge", "1700000500 0");
    write(root, "conf/app.conf", b"port = 3\n");
    commit(root, "to amend", "1700000600 0");
    write(root, "conf/app.conf", b"port = 4\n");
    hg(
        root,
        &[
            "--config",
            "experimental.evolution=all",
            "commit",
            "-q",
            "--amend",
            "-m",
            "amended",
            "-d",
            "1700000700 0",
        ],
    );
}

/// For every visible changeset: `plumb ls -r` lists what `hg files` does
/// and `plumb cat` prints what `hg cat` does, file by file.
fn check_every_changeset(env: &Env, name: &str, root: &Path) {
    for node in all_nodes(root) {
        let rev = format!("{name}@{node}");
        let ls = env.ok(&["ls", "-r", "-z", &rev]);
        let files = hg(root, &["files", "-0", "-r", &node]);
        assert_eq!(split_z(&ls), split_z(&files), "files of {node}");
        for path in split_z(&files) {
            let path = String::from_utf8(path).unwrap();
            let got = env.ok(&["cat", &format!("{rev}:{path}")]);
            let want = hg(root, &["cat", "-r", &node, &path]);
            assert_eq!(got, want, "{path} in {node}");
        }
    }
}

#[test]
fn every_changeset_matches_hg() {
    let env = Env::new();
    let root = env.path("repo");
    fixture::copy_of("hg-rich", &root, build);
    env.ok(&["init"]);
    let added = env.ok_text(&["source", "add", "app", root.to_str().unwrap()]);
    assert!(added.contains("hg"), "{added}");
    let out = env.ok_text(&["ingest", "app"]);
    assert!(out.contains("7 new snapshots"), "{out}");
    check_every_changeset(&env, "app", &root);

    // Names: the bookmark and the followed branch resolve.
    let shown = env.ok_text(&["show", "app@default", "--json"]);
    let head = String::from_utf8(hg(&root, &["log", "-r", "default", "-T", "{node}"])).unwrap();
    assert!(shown.contains(&head), "{shown}");

    // Nothing new: nothing recorded.
    let again = env.ok_text(&["ingest", "app"]);
    assert!(again.contains("up to date"), "{again}");
    assert!(env.run(&["fsck"]).status.success());
}

#[test]
fn refs_and_paths() {
    let env = Env::new();
    let root = env.path("repo");
    fixture::copy_of("hg-rich", &root, build);
    env.ok(&["init"]);
    env.ok(&[
        "source",
        "add",
        "st",
        root.to_str().unwrap(),
        "--ref",
        "prod",
        "--ref",
        "v1.0",
    ]);
    env.ok(&["ingest", "st"]);
    let log = env.ok_text(&["log", "st"]);
    assert_eq!(log.lines().count(), 4, "{log}");
    env.ok(&[
        "source",
        "add",
        "conf",
        root.to_str().unwrap(),
        "--path",
        "conf",
    ]);
    env.ok(&["ingest", "conf"]);
    let ls = env.ok_text(&["ls", "-r", "conf@latest"]);
    assert_eq!(ls, "app.conf\nother.conf\n");
    assert_eq!(env.ok(&["cat", "conf@latest:app.conf"]), b"port = 4\n");
}

#[test]
fn bad_repositories_are_one_clear_error() {
    let env = Env::new();
    let root = env.path("repo");
    std::fs::create_dir_all(&root).unwrap();
    hg(&root, &["init"]);
    write(&root, "a", b"a\n");
    commit(&root, "a", "0 0");
    let req = root.join(".hg/requires");
    let mut bytes = std::fs::read(&req).unwrap();
    bytes.extend_from_slice(b"made-up-requirement\n");
    std::fs::write(&req, bytes).unwrap();
    env.ok(&["init"]);
    env.ok(&[
        "source",
        "add",
        "bad",
        root.to_str().unwrap(),
        "--vcs",
        "hg",
    ]);
    let err = env.fails(&["ingest", "bad"], 1);
    assert!(err.contains("\"made-up-requirement\""), "{err}");

    // A URL hg cannot fetch (a local path written as a URL): refused.
    let err = env.fails(
        &[
            "source",
            "add",
            "remote",
            "file:///nowhere/repo",
            "--vcs",
            "hg",
        ],
        1,
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("file:///nowhere/repo"), "{err}");
}

/// `hg serve` of a repository, stopped when dropped.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Served {
    fn start(root: &Path) -> Self {
        let port = free_port();
        let served = Self {
            child: hg_command(root)
                .args([
                    "serve",
                    "-p",
                    &port.to_string(),
                    "-a",
                    "127.0.0.1",
                    "--config",
                    "web.push_ssl=false",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            url: format!("http://127.0.0.1:{port}/"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return served;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("hg serve did not start on port {port}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn remote_over_http() {
    let env = Env::new();
    let root = env.path("origin");
    fixture::copy_of("hg-rich", &root, build);
    let served = Served::start(&root);
    env.ok(&["init"]);
    let added = env.ok_text(&["source", "add", "web", &served.url, "--vcs", "hg"]);
    assert!(added.contains("hg"), "{added}");
    let out = env.ok_text(&["ingest", "web"]);
    assert!(out.contains("7 new snapshots"), "{out}");
    assert!(env.store().join("cache/hg/web/.hg").is_dir());
    check_every_changeset(&env, "web", &root);

    // A new commit in the origin: the next ingest pulls it, and only it.
    hg(&root, &["update", "-q", "default"]);
    write(&root, "conf/new.conf", b"new\n");
    commit(&root, "new in origin", "1700000800 0");
    let out = env.ok_text(&["ingest", "web"]);
    assert!(out.contains("1 new snapshot"), "{out}");
    let log = env.ok_text(&["log", "web"]);
    assert_eq!(log.lines().count(), 8, "{log}");
    assert_eq!(env.ok(&["cat", "web@latest:conf/new.conf"]), b"new\n");
    assert!(env.run(&["fsck"]).status.success());

    // `hg::` names a Mercurial URL without --vcs.
    env.ok(&["source", "add", "web2", &format!("hg::{}", served.url)]);
    drop(served);

    // The origin is gone: one line naming the URL, the store unharmed.
    let err = env.fails(&["ingest", "web2"], 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("http://127.0.0.1:"), "{err}");
    assert!(!env.store().join("cache/hg/web2").exists());
    let err = env.fails(&["ingest", "web"], 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(env.ok_text(&["log", "web"]), log);
    let fsck = env.run(&["fsck"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );

    // Removing the source removes its clone.
    env.ok(&["source", "remove", "web"]);
    assert!(!env.store().join("cache/hg/web").exists());
}

#[test]
fn remote_needs_hg_on_path() {
    let env = Env::new();
    env.ok(&["init"]);
    let url = format!("http://127.0.0.1:{}/", free_port());
    env.ok(&["source", "add", "web", &url, "--vcs", "hg"]);
    let empty = env.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = env
        .cmd(&["ingest", "web"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("not on PATH") && err.contains(&url), "{err}");
    assert!(env.run(&["fsck"]).status.success());
}
