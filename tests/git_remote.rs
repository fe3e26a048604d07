//! End-to-end tests of remote Git sources: origins built with the real
//! `git` program, reached through `file://` and a `git daemon` on loopback,
//! mirrored into the store's cache and checked against what `git` says.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Env;
use plumb_testutils::git::GitRepo as Repo;
use plumb_testutils::net::free_port;

/// A bare origin at `env/origin.git` and a work clone at `env/work` that
/// pushes to it: `main` with three commits (a file, an executable, a
/// symlink, a subdirectory), `feat` one commit ahead, `gone` and a tag.
fn origin(env: &Env) -> (Repo, Repo) {
    let origin = Repo::at(env, "origin.git");
    origin.git(&["-c", "init.defaultBranch=main", "init", "-q", "--bare"]);
    let work = Repo::at(env, "work");
    work.git(&["-c", "init.defaultBranch=main", "init", "-q"]);
    work.git(&["remote", "add", "origin", origin.dir.to_str().unwrap()]);
    work.write("app.conf", b"port = 8080\n");
    work.commit("one");
    work.write("etc/db.conf", b"db\n");
    work.write("run.sh", b"#!/bin/sh\n");
    work.git(&["update-index", "--add", "--chmod=+x", "run.sh"]);
    work.commit("two");
    std::os::unix::fs::symlink("app.conf", work.dir.join("link")).unwrap();
    work.commit("three");
    work.git(&["tag", "-a", "v1", "-m", "release"]);
    work.git(&["branch", "gone", "HEAD~1"]);
    work.git(&["checkout", "-q", "-b", "feat"]);
    work.write("feat.conf", b"feat\n");
    work.commit("feat");
    work.git(&["checkout", "-q", "main"]);
    work.git(&["push", "-q", "origin", "main", "feat", "gone", "v1"]);
    (origin, work)
}

fn revisions(env: &Env, name: &str) -> Vec<String> {
    env.ok_json(&["log", name, "--json"])["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["revision"].as_str().unwrap().to_owned())
        .collect()
}

/// Every commit in `commits` is a snapshot whose files and contents are
/// what `git ls-tree` and `git cat-file` say in the origin, and whose
/// parents are the commit's; the source has exactly these snapshots.
fn check_source(env: &Env, name: &str, origin: &Repo, commits: &[String]) {
    let log = env.ok_json(&["log", name, "--json"])["snapshots"].clone();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), commits.len(), "snapshot count of {name}");
    let rev_of = |id: &str| {
        log.iter()
            .find(|e| e["id"] == id)
            .map(|e| e["revision"].as_str().unwrap().to_owned())
            .unwrap()
    };
    for sha in commits {
        let rev = format!("git:sha1:{sha}");
        let entry = log
            .iter()
            .find(|e| e["revision"] == rev.as_str())
            .unwrap_or_else(|| panic!("{rev} not ingested"));
        let target = format!("{name}@{sha}");
        let listed = origin.git(&["ls-tree", "-r", "-z", sha]);
        let mut want = BTreeSet::new();
        for row in listed.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let row = std::str::from_utf8(row).unwrap();
            let (head, path) = row.split_once('\t').unwrap();
            let oid = head.split(' ').nth(2).unwrap();
            want.insert(path.to_owned());
            let content = env.ok(&["cat", &format!("{target}:{path}")]);
            assert_eq!(
                content,
                origin.git(&["cat-file", "blob", oid]),
                "{path} in {sha}"
            );
        }
        let got: BTreeSet<String> = String::from_utf8(env.ok(&["ls", "-r", "-z", &target]))
            .unwrap()
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        assert_eq!(got, want, "files of {sha}");
        let parents: Vec<String> = entry["parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| rev_of(p.as_str().unwrap()))
            .collect();
        let want: Vec<String> = origin
            .text(&["rev-list", "--parents", "-n1", sha])
            .split(' ')
            .skip(1)
            .map(|p| format!("git:sha1:{p}"))
            .collect();
        assert_eq!(parents, want, "parents of {sha}");
    }
}

fn url_of(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn cache(env: &Env, name: &str) -> PathBuf {
    env.store().join("cache/git").join(format!("{name}.git"))
}

#[test]
fn file_remote_is_mirrored_and_fetched_incrementally() {
    let env = Env::new();
    env.ok(&["init"]);
    let (origin, work) = origin(&env);
    let url = url_of(&origin.dir);

    // HEAD by default: main's history.
    let out = env.ok_text(&["source", "add", "app", &url]);
    assert!(out.contains("(git file://"), "{out}");
    let out = env.ok_text(&["ingest", "app"]);
    assert!(out.contains("app: 3 new snapshots"), "{out}");
    check_source(&env, "app", &origin, &origin.rev_list(&["main"]));
    assert!(cache(&env, "app").join("objects").is_dir());
    let out = env.ok_text(&["ingest", "app"]);
    assert!(out.starts_with("app: up to date"), "{out}");

    // Every branch.
    env.ok(&["source", "add", "all", &url, "--ref", "refs/heads/*"]);
    env.ok(&["ingest", "all"]);
    let everything = origin.rev_list(&["main", "feat", "gone"]);
    check_source(&env, "all", &origin, &everything);

    // A pushed commit: exactly one new snapshot.
    work.write("app.conf", b"port = 7070\n");
    let new = work.commit("four");
    work.git(&["push", "-q", "origin", "main"]);
    let out = env.ok_text(&["ingest", "app"]);
    assert!(
        out.contains(&format!("app: 1 new snapshot (latest git:sha1:{new}")),
        "{out}"
    );
    assert_eq!(env.ok(&["cat", "app@latest:app.conf"]), b"port = 7070\n");
    check_source(&env, "app", &origin, &origin.rev_list(&["main"]));

    // A force-pushed branch and a deleted one.
    let old_feat = origin.text(&["rev-parse", "feat"]);
    work.git(&["checkout", "-q", "-B", "feat", "main"]);
    work.write("feat.conf", b"rewritten\n");
    let feat = work.commit("feat again");
    work.git(&["checkout", "-q", "main"]);
    work.git(&["push", "-q", "-f", "origin", "feat"]);
    work.git(&["push", "-q", "origin", ":gone"]);
    let gone = origin.text(&["rev-parse", "main~2"]);
    assert_eq!(env.revision("all@gone"), format!("git:sha1:{gone}"));
    let out = env.ok_text(&["ingest", "all"]);
    assert!(out.contains("all: 2 new snapshots"), "{out}");
    assert_eq!(env.revision("all@feat"), format!("git:sha1:{feat}"));
    assert_eq!(env.revision("all@main"), format!("git:sha1:{new}"));
    let err = env.fails(&["show", "all@gone"], 1);
    assert!(err.contains("gone"), "{err}");
    // The old tip stays recorded; the cache mirrors the origin's refs.
    env.ok(&["show", &format!("all@{old_feat}")]);
    let refs = |dir: &Path| {
        let out = Command::new("git")
            .args(["for-each-ref", "--format=%(refname) %(objectname)"])
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(refs(&cache(&env, "all")), refs(&origin.dir));
    let mut commits = everything;
    commits.extend([new, feat]);
    assert_eq!(revisions(&env, "all").len(), commits.len());
    check_source(&env, "all", &origin, &commits);

    // Removing the source removes its mirror.
    env.ok(&["source", "remove", "all"]);
    assert!(!cache(&env, "all").exists());
    env.ok(&["fsck"]);
}

/// A `git daemon` serving `base` on a free loopback port, killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Self {
        let port = free_port();
        // The daemon program itself, not the `git` wrapper that would leave
        // it running when killed.
        let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
        let exec_path = String::from_utf8(exec_path.stdout).unwrap();
        let child = Command::new(Path::new(exec_path.trim_end()).join("git-daemon"))
            .args([
                "--reuseaddr",
                &format!("--base-path={}", base.display()),
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
            ])
            .arg(base)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run git daemon");
        let daemon = Self { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "git daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn git_daemon_remote_and_unreachable_remotes() {
    let env = Env::new();
    env.ok(&["init"]);
    let (origin, work) = origin(&env);
    let daemon = Daemon::start(&env.path(""));
    let url = format!("git://127.0.0.1:{}/origin.git", daemon.port);

    env.ok(&["source", "add", "app", &url, "--ref", "main", "--ref", "v1"]);
    let list = env.ok_text(&["source", "list"]);
    assert!(list.contains(&format!("app\tgit\t{url}")), "{list}");
    let out = env.ok_text(&["ingest", "app"]);
    assert!(out.contains("app: 3 new snapshots"), "{out}");
    check_source(&env, "app", &origin, &origin.rev_list(&["main"]));
    let v1 = origin.text(&["rev-parse", "v1^{commit}"]);
    assert_eq!(env.revision("app@v1"), format!("git:sha1:{v1}"));

    work.write("etc/db.conf", b"db2\n");
    let new = work.commit("four");
    work.git(&["push", "-q", "origin", "main"]);
    let out = env.ok_text(&["ingest", "app"]);
    assert!(
        out.contains(&format!("app: 1 new snapshot (latest git:sha1:{new}")),
        "{out}"
    );
    check_source(&env, "app", &origin, &origin.rev_list(&["main"]));

    // The daemon goes away: one error line naming the URL; the store and
    // the mirror are as they were.
    let log = env.ok(&["log", "app"]);
    let mirror = Repo::at(&env, "store/cache/git/app.git");
    let mirrored = mirror.text(&["for-each-ref"]);
    drop(daemon);
    work.write("app.conf", b"unseen\n");
    work.commit("five");
    work.git(&["push", "-q", "origin", "main"]);
    let err = env.fails(&["ingest", "app"], 1);
    assert!(err.contains(&url), "{err}");
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert_eq!(env.ok(&["log", "app"]), log);
    assert_eq!(mirror.text(&["for-each-ref"]), mirrored);
    assert_eq!(env.revision("app@main"), format!("git:sha1:{new}"));
    env.ok(&["fsck"]);

    // A remote never reached leaves no mirror behind.
    let nowhere = format!("git://127.0.0.1:{}/x.git", free_port());
    env.ok(&["source", "add", "nowhere", &nowhere]);
    let err = env.fails(&["ingest", "nowhere"], 1);
    assert!(err.contains(&nowhere), "{err}");
    assert!(!cache(&env, "nowhere").exists());
    assert!(
        !std::fs::read_dir(env.store().join("cache/git"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp-"))
    );

    // HTTPS: the transport is built in (no server here); a refused
    // connection is one line.
    let https = "https://127.0.0.1:1/x.git";
    env.ok(&["source", "add", "web", https]);
    let err = env.fails(&["ingest", "web"], 1);
    assert!(err.contains(https), "{err}");

    // A missing repository.
    let missing = url_of(&env.path("missing.git"));
    env.ok(&["source", "add", "missing", &missing]);
    let err = env.fails(&["ingest", "missing"], 1);
    assert!(err.contains(&missing), "{err}");
    assert!(!cache(&env, "missing").exists());
    assert_eq!(env.ok(&["log", "app"]), log);
    env.ok(&["fsck"]);
}

#[test]
fn remote_locations_are_detected() {
    let env = Env::new();
    env.ok(&["init"]);
    for (name, url) in [
        ("ssh", "ssh://git@example.invalid/srv/app"),
        ("scp", "git@example.invalid:srv/app"),
        ("dotgit", "https://example.invalid/app.git"),
        ("daemon", "git://example.invalid/app"),
        ("file", "file:///srv/app"),
    ] {
        let out = env.ok_text(&["source", "add", name, url]);
        assert!(out.contains(&format!("(git {url})")), "{out}");
    }
    let err = env.fails(&["source", "add", "web", "http://example.invalid/app"], 1);
    assert!(err.contains("--vcs git or --vcs hg"), "{err}");
    env.ok(&[
        "source",
        "add",
        "web",
        "http://example.invalid/app",
        "--vcs",
        "git",
    ]);
}

/// A loopback proxy to `port` that holds back what the server says, on
/// each connection, for `delay` before passing it on: a slow remote.
/// Returns its port and the number of connections it has taken.
fn slow_proxy(port: u16, delay: Duration) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let own = listener.local_addr().unwrap().port();
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = taken.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let pump = |mut from: TcpStream, mut to: TcpStream, wait: Option<Duration>| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    let mut wait = wait;
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if let Some(d) = wait.take() {
                            std::thread::sleep(d);
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                None,
            );
            pump(server, client, Some(delay));
        }
    });
    (own, taken)
}

/// A remote slow to answer holds up no other writer: the fetch runs
/// before the ingest takes the store's writer turn, so an ingest of
/// another source refusing to wait (`--no-wait`) completes meanwhile. Two
/// ingests of the slow source take turns on its copy (its own lock), and
/// together record each commit once.
#[test]
fn a_slow_remote_fetch_holds_up_no_other_writer() {
    let env = Env::new();
    env.ok(&["init"]);
    let (origin, _work) = origin(&env);
    let daemon = Daemon::start(&env.path(""));
    let (port, connections) = slow_proxy(daemon.port, Duration::from_secs(3));
    let url = format!("git://127.0.0.1:{port}/origin.git");
    env.ok(&["source", "add", "slow", &url, "--ref", "main"]);
    env.write("local/a.conf", b"a\n");
    env.add_dir_source("local", "local");

    let spawn = || {
        env.cmd(&["ingest", "slow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    let second = spawn();
    let started = Instant::now();
    while connections.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no fetch began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = env.ok_text(&["--no-wait", "ingest", "local"]);
    assert!(out.contains("local: 1 new snapshot"), "{out}");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the slow ingest ended before the other was done"
    );
    for child in [first, second] {
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    check_source(&env, "slow", &origin, &origin.rev_list(&["main"]));
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
}
