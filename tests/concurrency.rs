//! Many processes, one store: ingests of different sources, applies of
//! different targets, `gc` and query loops run side by side for a bounded
//! time. Every query must answer, and answer what the writers committed
//! (the oracle: what each writer wrote before its ingest returned); no
//! query may fail because a writer runs. Then the store must pass `fsck`
//! with every log complete. The same with writers killed (`SIGKILL`) at
//! random moments: afterwards, running the writers again converges. A
//! backup runs beside them throughout (`backup.rs` checks each copy).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Env;

const SOURCES: usize = 3;
const TARGETS: usize = 2;
const RUN_FOR: Duration = Duration::from_secs(8);

/// A small xorshift generator: the tests need variety, not quality.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Self((t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The content of `v.txt` of source `i` at its `k`th version.
fn version(i: usize, k: u64) -> String {
    format!("source {i} version {k}\n")
}

/// The version a `v.txt` holds.
fn version_of(i: usize, text: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(text);
    text.strip_prefix(&format!("source {i} version "))
        .and_then(|t| t.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("source {i}: unexpected content {text:?}"))
}

fn setup() -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    for i in 0..SOURCES {
        env.write(&format!("src{i}/v.txt"), version(i, 0).as_bytes());
        env.write(&format!("src{i}/etc/static.conf"), b"static\n");
        env.add_dir_source(&format!("s{i}"), &format!("src{i}"));
    }
    for j in 0..TARGETS {
        let out = env.path(&format!("out{j}"));
        env.ok(&[
            "target",
            "add",
            &format!("t{j}"),
            &format!("dir:{}", out.display()),
            "--source",
            &format!("s{j}"),
            "--prune",
        ]);
    }
    env
}

/// What the writers committed, per source: the newest version whose
/// ingest returned success, and the newest written at all.
struct Oracle {
    committed: Vec<AtomicU64>,
    written: Vec<AtomicU64>,
}

/// Runs a query: it must succeed (`plan` finding changes exits 2), and
/// never mention a writer.
fn query(env: &Env, args: &[&str]) -> Output {
    let out = env.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code == Some(0) || (args[0] == "plan" && code == Some(2)),
        "query {args:?} failed beside the writers ({code:?}): {err}"
    );
    assert!(!err.contains("in use"), "{args:?}: {err}");
    out
}

/// One round of queries against the oracle.
fn check_queries(env: &Env, oracle: &Oracle, rng: &mut Rng) {
    let i = rng.below(SOURCES as u64) as usize;
    let name = format!("s{i}");
    let committed = oracle.committed[i].load(Ordering::SeqCst);
    let log = query(env, &["log", &name, "--json"]);
    let log: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let entries = log["snapshots"].as_array().unwrap();
    // Snapshot 1 is version 0; each later one a newer version.
    assert!(
        entries.len() as u64 > committed.min(1),
        "{name}: the log lost committed snapshots"
    );
    let latest = query(env, &["cat", &format!("{name}@latest:v.txt")]);
    let v = version_of(i, &latest.stdout);
    // Read after the query: a version is counted as written before its
    // ingest starts, so whatever the query saw is counted by now.
    let written = oracle.written[i].load(Ordering::SeqCst);
    assert!(
        v >= committed && v <= written,
        "{name}@latest holds version {v}, committed {committed}, written {written}"
    );
    // The two newest snapshots the log listed, by id: the newer holds the
    // newer version.
    if let [newer, older, ..] = entries.as_slice() {
        let at = |e: &serde_json::Value| {
            let id = e["id"].as_str().unwrap();
            version_of(i, &query(env, &["cat", &format!("{id}:v.txt")]).stdout)
        };
        assert!(at(older) < at(newer), "{name}: log out of order");
    }
    let j = rng.below(TARGETS as u64);
    query(env, &["runs", &format!("t{j}"), "--json"]);
    query(env, &["plan", &format!("t{j}"), "--json"]);
}

/// Runs `plumb ARGS` as a writer; with `kill`, SIGKILLs it after a random
/// moment. Returns whether it ran to success.
fn write(env: &Env, args: &[&str], kill: Option<&mut Rng>) -> bool {
    let mut child = env
        .cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(rng) = kill {
        thread::sleep(Duration::from_millis(rng.below(150)));
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    if out.status.code().is_none() {
        return false; // killed
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "{args:?}: {err}"
    );
    // Drift exits 2 when a killed apply left the target behind.
    let ok = out.status.success() || (args[0] == "drift" && out.status.code() == Some(2));
    assert!(ok, "writer {args:?} failed: {err}");
    out.status.success()
}

fn stress(kills: bool) {
    let env = Arc::new(setup());
    let oracle = Arc::new(Oracle {
        committed: (0..SOURCES).map(|_| AtomicU64::new(0)).collect(),
        written: (0..SOURCES).map(|_| AtomicU64::new(0)).collect(),
    });
    for i in 0..SOURCES {
        env.ok(&["ingest", &format!("s{i}")]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicU64::new(0));
    let backups = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut threads = Vec::new();
    let mut spawn = |salt: u64, body: Box<dyn Fn(&mut Rng) + Send>| {
        let stop = stop.clone();
        let failures = failures.clone();
        threads.push(thread::spawn(move || {
            let mut rng = Rng::new(salt);
            while !stop.load(Ordering::SeqCst) {
                if let Err(e) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut rng)))
                {
                    let text = e
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "panic".into());
                    failures.lock().unwrap().push(text);
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }));
    };
    for i in 0..SOURCES {
        let (env, oracle) = (env.clone(), oracle.clone());
        spawn(
            i as u64,
            Box::new(move |rng| {
                let k = oracle.written[i].load(Ordering::SeqCst) + 1;
                env.write(&format!("src{i}/v.txt"), version(i, k).as_bytes());
                env.write(&format!("src{i}/n/{}.txt", k % 7), version(i, k).as_bytes());
                oracle.written[i].store(k, Ordering::SeqCst);
                let kill = (kills && rng.below(3) == 0).then_some(rng);
                if write(&env, &["ingest", &format!("s{i}")], kill) {
                    oracle.committed[i].fetch_max(k, Ordering::SeqCst);
                }
            }),
        );
    }
    for j in 0..TARGETS {
        let env = env.clone();
        spawn(
            10 + j as u64,
            Box::new(move |rng| {
                let kill = (kills && rng.below(3) == 0).then_some(&mut *rng);
                write(&env, &["apply", &format!("t{j}")], kill);
                write(&env, &["drift", &format!("t{j}")], None);
            }),
        );
    }
    {
        let env = env.clone();
        spawn(
            20,
            Box::new(move |rng| {
                let kill = (kills && rng.below(3) == 0).then_some(&mut *rng);
                write(&env, &["gc"], kill);
                thread::sleep(Duration::from_millis(300));
            }),
        );
    }
    {
        // Backups beside the writers, into one directory: each checked
        // against the store at the point it reports (or, killed, leaving
        // the previous backup or no store).
        let (env, backups) = (env.clone(), backups.clone());
        spawn(
            40,
            Box::new(move |rng| {
                let kill =
                    (kills && rng.below(3) == 0).then(|| Duration::from_millis(rng.below(200)));
                crate::backup::round(&env, &env.path("backup"), kill);
                backups.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
            }),
        );
    }
    for q in 0..2 {
        let (env, oracle, queries) = (env.clone(), oracle.clone(), queries.clone());
        spawn(
            30 + q,
            Box::new(move |rng| {
                check_queries(&env, &oracle, rng);
                queries.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    let started = Instant::now();
    while started.elapsed() < RUN_FOR && !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(queries.load(Ordering::SeqCst) >= 4, "too few queries ran");
    assert!(backups.load(Ordering::SeqCst) >= 1, "no backup ran");

    // Afterwards: re-running the writers converges, and the store is whole.
    env.ok(&["ingest"]);
    for j in 0..TARGETS {
        env.ok(&["apply", &format!("t{j}")]);
        env.ok(&["drift", &format!("t{j}")]);
        let written = oracle.written[j].load(Ordering::SeqCst);
        assert_eq!(
            std::fs::read_to_string(env.path(&format!("out{j}/v.txt"))).unwrap(),
            version(j, written)
        );
    }
    let fsck = env.ok_text(&["fsck"]);
    assert!(fsck.starts_with("ok:"), "{fsck}");
    for i in 0..SOURCES {
        let name = format!("s{i}");
        let log: serde_json::Value =
            serde_json::from_slice(&env.ok(&["log", &name, "--json"])).unwrap();
        let n = log["snapshots"].as_array().unwrap().len() as u64;
        let written = oracle.written[i].load(Ordering::SeqCst);
        if !kills {
            // Every ingest added exactly one snapshot: the log is complete.
            assert_eq!(n, written + 1, "{name}: log incomplete");
        }
        // Versions rise along the log, and the newest is the last written.
        let mut last = None;
        for seq in 1..=n {
            let out = env.ok(&["cat", &format!("{name}@dir:{seq}:v.txt")]);
            let v = version_of(i, &out);
            assert!(last.is_none_or(|l| v > l), "{name}: versions out of order");
            last = Some(v);
        }
        assert_eq!(last, Some(written), "{name}: the newest version is missing");
    }
}

#[test]
fn writers_and_queries_share_the_store() {
    stress(false);
}

#[test]
fn writers_killed_at_random_leave_a_store_that_converges() {
    stress(true);
}

/// A plugin target slow to answer `observe` holds up no other writer:
/// apply and drift observe on a read-only handle and take the writer turn
/// only to record. While it observes, an ingest of another source and an
/// apply of another target, each refusing to wait (`--no-wait`), complete.
/// A store with sources `a` and `b` ingested, and target `slow` on `a`: a
/// plugin that creates `slow.sqlite.observing` and then waits `secs` at
/// each observe.
fn slow_plugin_target(secs: u32) -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    for s in ["a", "b"] {
        env.write(&format!("{s}/f.txt"), s.as_bytes());
        env.add_dir_source(s, s);
    }
    env.ok(&["ingest"]);
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("backends/targets/exec/tests/plugins/sqlite_target.py");
    let db = env.path("slow.sqlite");
    let slow = format!(
        "exec:python3 {} {} --misbehave slow-observe:{secs}",
        plugin.display(),
        db.display()
    );
    env.ok(&["target", "add", "slow", &slow, "--source", "a"]);
    env
}

/// Waits until the slow plugin observes.
fn wait_for_observe(env: &Env) {
    let observing = env.path("slow.sqlite.observing");
    let started = Instant::now();
    while !observing.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the plugin never observed"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_target_slow_to_observe_holds_up_no_other_writer() {
    let env = slow_plugin_target(4);
    let out = env.path("out");
    env.ok(&[
        "target",
        "add",
        "fast",
        &format!("dir:{}", out.display()),
        "--source",
        "b",
    ]);
    let observing = env.path("slow.sqlite.observing");
    for command in ["apply", "drift"] {
        let _ = std::fs::remove_file(&observing);
        let mut child = env
            .cmd(&[command, "slow"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_observe(&env);
        env.write("b/f.txt", format!("{command}\n").as_bytes());
        env.ok(&["--no-wait", "ingest", "b"]);
        env.ok(&["--no-wait", "apply", "fast"]);
        assert_eq!(
            std::fs::read(out.join("f.txt")).unwrap(),
            format!("{command}\n").as_bytes()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{command} slow ended before the other writers were done"
        );
        let done = child.wait_with_output().unwrap();
        let code = done.status.code();
        assert!(
            code == Some(0),
            "{command} slow: {code:?} {}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    let runs = env.ok_json(&["runs", "slow", "--json"]);
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
}

/// A target removed while it is being applied (the apply holds no writer
/// turn while the plugin observes): the apply records nothing more, says
/// so in one line, and leaves no row of the removed target behind.
#[test]
fn a_target_removed_while_applied_is_not_brought_back() {
    let env = slow_plugin_target(2);
    let child = env
        .cmd(&["apply", "slow"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_observe(&env);
    env.ok(&["--no-wait", "target", "remove", "slow"]);
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{err}");
    assert!(
        err.contains("was removed while it was being reconciled"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(env.ok_text(&["fsck"]).starts_with("ok:"));
    let targets = env.ok_json(&["target", "list", "--json"]);
    assert_eq!(targets["targets"].as_array().unwrap().len(), 0);
}
