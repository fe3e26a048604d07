//! A kill at any moment leaves a store that `fsck` passes, and running the
//! interrupted command again finishes the job.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use crate::Env;
use plumb_testutils::git::GitRepo;

/// Writes `files` files of varied, compressible content; `round` varies a
/// tenth of them so each round has new work.
fn populate(env: &Env, files: usize, round: usize) {
    for i in 0..files {
        if round > 0 && i % 10 != round % 10 {
            continue;
        }
        let mut body = String::with_capacity(8 << 10);
        let mut n = 0;
        while body.len() < 8 << 10 {
            body.push_str(&format!(
                "key_{i}_{n} = value {} round {round}\n",
                i * 31 + n
            ));
            n += 1;
        }
        env.write(
            &format!("cfg/d{}/e{}/f{i}.conf", i % 17, i % 5),
            body.as_bytes(),
        );
    }
}

fn listing(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .ok_text(&["ls", "-r", "app@latest"])
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn kill_during_ingest_at_many_points() {
    let env = Env::new();
    env.ok(&["init"]);
    populate(&env, 3000, 0);
    env.ok(&["source", "add", "app", "cfg"]);

    // How long does an uninterrupted ingest take here? Kill points spread
    // over that span.
    let probe = Env::new();
    probe.ok(&["init"]);
    let started = Instant::now();
    probe
        .cmd(&["source", "add", "app"])
        .arg(env.path("cfg"))
        .output()
        .unwrap();
    probe.ok(&["ingest"]);
    let full = started.elapsed().max(Duration::from_millis(50));

    let points = 16;
    let mut killed = 0;
    for k in 0..points {
        if k > 0 && k % 4 == 0 {
            populate(&env, 3000, k);
        }
        // Each run resumes what the last one left, so later runs have less
        // to do: kill points crowd towards the start (quadratic spacing)
        // to keep landing inside a run on a loaded machine too.
        let f = k as f64 / points as f64;
        let delay = full.mul_f64(f * f * 1.2);
        killed += usize::from(env.killed_after(&["ingest"], delay));
    }
    eprintln!("{killed} of {points} ingests were interrupted");
    assert!(
        killed >= points / 2,
        "only {killed} of {points} runs were interrupted"
    );

    // Running again completes the job, and the snapshot is whole.
    env.ok(&["ingest"]);
    let out = env.ok_text(&["ingest"]);
    assert!(out.contains("up to date"), "{out}");
    let files = listing(&env);
    assert_eq!(files.len(), 3000);
    for i in [0usize, 1, 999, 2999] {
        let path = format!("d{}/e{}/f{i}.conf", i % 17, i % 5);
        assert_eq!(
            env.ok(&["cat", &format!("app@latest:{path}")]),
            std::fs::read(env.path(&format!("cfg/{path}"))).unwrap()
        );
    }
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
}

/// A repository of `commits` commits, each changing a few of `files`
/// files, made with `git fast-import`.
fn git_history(env: &Env, commits: usize, files: usize) -> std::path::PathBuf {
    use std::io::Write;
    let repo = GitRepo::init(env, "repo", &[]);
    let mut stream = Vec::new();
    for c in 0..commits {
        writeln!(stream, "commit refs/heads/main").unwrap();
        writeln!(
            stream,
            "committer T <t@example.com> {} +0000",
            1_700_000_000 + c
        )
        .unwrap();
        let msg = format!("change {c}");
        writeln!(stream, "data {}\n{msg}", msg.len()).unwrap();
        for f in 0..if c == 0 { files } else { 3 } {
            let f = if c == 0 { f } else { (c * 7 + f * 13) % files };
            let body = format!("key_{f} = {c}\n").repeat(40);
            writeln!(
                stream,
                "M 100644 inline d{}/f{f}.conf\ndata {}\n{body}",
                f % 10,
                body.len()
            )
            .unwrap();
        }
    }
    repo.git_input(&["fast-import", "--quiet"], Some(&stream));
    repo.dir
}

#[test]
fn kill_during_a_long_history_ingest() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = git_history(&env, 600, 200);
    env.ok(&["source", "add", "app", repo.to_str().unwrap()]);

    let probe = Env::new();
    probe.ok(&["init"]);
    probe.ok(&["source", "add", "app", repo.to_str().unwrap()]);
    let started = Instant::now();
    probe.ok(&["ingest"]);
    let full = started.elapsed().max(Duration::from_millis(50));

    let points = 10;
    let mut killed = 0;
    let mut seen = Vec::new();
    for k in 0..points {
        let delay = full.mul_f64(k as f64 / points as f64);
        killed += usize::from(env.killed_after(&["ingest"], delay));
        // What a kill leaves is a prefix of the history, parents first.
        let n = env.ok_text(&["log", "app"]).lines().count();
        seen.push(n);
    }
    assert!(
        killed >= points / 2,
        "only {killed} of {points} runs were interrupted"
    );
    env.ok(&["ingest"]);
    assert_eq!(
        env.ok_text(&["log", "app"]).lines().count(),
        600,
        "kept: {seen:?}"
    );
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
    assert_eq!(
        env.ok(&["cat", "app@main:d3/f3.conf"]),
        probe.ok(&["cat", "app@main:d3/f3.conf"])
    );
}
