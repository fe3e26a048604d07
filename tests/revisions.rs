//! Revision syntax as a Git or Mercurial user types it: `~N` and `^N`
//! checked against `git rev-parse` and `hg log -r`, dates, and `diff`
//! given a path.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::Env;
use plumb_testutils::git::GitRepo as Repo;
use plumb_testutils::hg;

/// A history with merges: main and a side branch merged twice, the second
/// time in an octopus of three parents (`m2`: `d`, `s3`, `t1`, where `t1`
/// branched from `s1`).
///
/// ```text
/// a - b - c - m1 - d - m2
///      \        /      /  \
///       s1 - s2 ---- s3    t1 (from s1)
/// ```
fn merges(env: &Env) -> Repo {
    let repo = Repo::init(env, "repo", &[]);
    let mut n = 0;
    let mut commit = |repo: &Repo, what: &str| {
        n += 1;
        repo.write(format!("{what}.conf"), format!("{n}\n").as_bytes());
        repo.commit(what);
    };
    commit(&repo, "a");
    commit(&repo, "b");
    repo.git(&["checkout", "-q", "-b", "side"]);
    commit(&repo, "s1");
    commit(&repo, "s2");
    repo.git(&["checkout", "-q", "main"]);
    commit(&repo, "c");
    repo.git(&["merge", "-q", "--no-ff", "-m", "m1", "side"]);
    commit(&repo, "d");
    repo.git(&["checkout", "-q", "side"]);
    commit(&repo, "s3");
    repo.git(&["checkout", "-q", "-b", "third", "side~2"]);
    commit(&repo, "t1");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "--no-ff", "-m", "m2", "side", "third"]);
    repo
}

#[test]
fn parents_follow_git_rev_parse() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = merges(&env);
    let dir = repo.dir.to_str().unwrap();
    env.ok(&[
        "source", "add", "app", dir, "--ref", "main", "--ref", "side",
    ]);
    env.ok(&["ingest"]);
    for (git, plumb) in [
        ("main", "app@latest"),
        ("main~1", "app@~1"),
        ("main~1", "app@~"),
        ("main^", "app@latest^"),
        ("main^2", "app@latest^2"),
        ("main^3", "app@latest^3"),
        ("main^0", "app@main^0"),
        ("main~2", "app@main~2"),
        ("main~2^2", "app@main~2^2"),
        ("main~2^2~1", "app@main~2^2~1"),
        ("main^3~1^1", "app@~0^3~^"),
        ("main~4", "app@~4"),
        ("side~1", "app@side~1"),
    ] {
        let sha = repo.text(&["rev-parse", git]);
        assert_eq!(
            env.revision(plumb),
            format!("git:sha1:{sha}"),
            "{plumb} as {git}"
        );
    }
    // From a snapshot id, too.
    let id = env.ok_json(&["show", "app@latest", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sha = repo.text(&["rev-parse", "main^2~1"]);
    assert_eq!(
        env.revision(&format!("{}^2~1", &id[..20])),
        format!("git:sha1:{sha}")
    );
    // Past the root, or a parent that is not there: one line, exit 1.
    let e = env.fails(&["show", "app@~10"], 1);
    assert!(e.contains("before the first snapshot"), "{e}");
    let e = env.fails(&["show", "app@latest^4"], 1);
    assert!(e.contains("has 3 parents, so no parent 4"), "{e}");
}

#[test]
fn parents_follow_hg_log() {
    let env = Env::new();
    env.ok(&["init"]);
    let root = env.path("hg");
    hg::init(&root, &[]);
    let write = |name: &str, n: u32| std::fs::write(root.join(name), format!("{n}\n")).unwrap();
    write("a", 1);
    hg::commit(&root, "a", "1000 0");
    write("b", 2);
    hg::commit(&root, "b", "2000 0");
    hg::hg(&root, &["update", "-q", "-r", "0"]);
    write("s", 3);
    hg::commit(&root, "s", "3000 0");
    hg::hg(&root, &["update", "-q", "-r", "1"]);
    hg::hg(&root, &["merge", "-q", "-r", "2"]);
    hg::commit(&root, "merge", "4000 0");
    env.ok(&["source", "add", "app", root.to_str().unwrap()]);
    env.ok(&["ingest"]);
    for (revset, plumb) in [
        ("tip", "app@latest"),
        ("p1(tip)", "app@~1"),
        ("p2(tip)", "app@latest^2"),
        ("p1(p2(tip))", "app@^2~"),
    ] {
        let node = hg::node(&root, revset);
        assert_eq!(
            env.revision(plumb),
            format!("hg:{node}"),
            "{plumb} as {revset}"
        );
    }
}

#[test]
fn a_date_means_as_of_the_end_of_that_day() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = Repo::init(&env, "repo", &[]);
    let day = |date: &str| {
        repo.write("a.conf", date.as_bytes());
        repo.git(&["add", "-A"]);
        let mut c = repo.command(&["commit", "-q", "-m", date]);
        c.env("GIT_COMMITTER_DATE", date)
            .env("GIT_AUTHOR_DATE", date);
        assert!(c.status().unwrap().success());
        repo.text(&["rev-parse", "HEAD"])
    };
    let first = day("2026-06-01T08:00:00+0000");
    let late = day("2026-06-01T23:30:00+0000");
    day("2026-06-02T00:30:00+0000");
    env.ok(&["source", "add", "app", repo.dir.to_str().unwrap()]);
    env.ok(&["ingest"]);
    assert_eq!(env.revision("app@{2026-06-01}"), format!("git:sha1:{late}"));
    assert_eq!(
        env.revision("app@{2026-06-01}~1"),
        format!("git:sha1:{first}")
    );
    let e = env.fails(&["show", "app@{2026-05-31}"], 1);
    assert!(e.contains("no snapshot matches"), "{e}");
}

#[test]
fn usage_errors_are_one_line_with_a_hint() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/a.conf", b"1\n");
    env.add_dir_source("app", "src");
    env.ok(&["ingest"]);
    let e = env.fails(&["diff", "app@latest:a.conf", "app@latest"], 64);
    assert!(
        e.ends_with("use: plumb diff app@latest app@latest -- a.conf"),
        "{e}"
    );
    for args in [
        &["log"][..],
        &["log", "app", "--bogus"],
        &["frobnicate"],
        &["show", "app@~x"],
        &["ls", "app@{2026-13-40}"],
    ] {
        let e = env.fails(args, 64);
        assert!(e.starts_with("plumb: error: "), "{args:?}: {e}");
    }
    let e = env.fails(&["log", "app", "--bogus"], 64);
    assert!(e.contains("--help"), "a hint: {e}");
}
