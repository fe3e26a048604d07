//! `plumb serve`, `plumb config check` and `plumb status`: the real binary
//! on an ephemeral loopback port, against Git repositories the tests make.
//! Every wait is bounded.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use plumb_testutils::git::GitRepo;
use plumb_testutils::net::free_port;

use crate::Env;

/// How long any wait lasts at most.
const BOUND: Duration = Duration::from_secs(20);

/// A running agent, killed when dropped.
struct Agent {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Writes `config` (with a `[serve]` listening on a free port put
    /// first, unless `config` has its own) to `plumb.toml` and starts
    /// `plumb serve` on it; returns once `/healthz` answers.
    fn start(env: &Env, config: &str) -> Agent {
        let port = free_port();
        let text = if config.contains("[serve]") {
            config.replace("PORT", &port.to_string())
        } else {
            format!("[serve]\nlisten = \"127.0.0.1:{port}\"\n{config}")
        };
        std::fs::write(env.path("plumb.toml"), text).unwrap();
        let log = env.path(&format!("agent-{port}.log"));
        let child = env
            .cmd(&["serve", "--config", "plumb.toml"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut agent = Agent { child, port, log };
        agent.wait_for("/healthz answers", |a| a.get("/healthz").0 == 200);
        agent
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ok` every 50 ms until it holds; panics after [`BOUND`].
    fn wait_for(&mut self, what: &str, mut ok: impl FnMut(&mut Self) -> bool) {
        let start = Instant::now();
        while start.elapsed() < BOUND {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the agent exited ({status}) before {what}:\n{}", self.log());
            }
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting until {what}:\n{}", self.log());
    }

    /// An HTTP request; the status and the body.
    fn request(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        s.set_read_timeout(Some(BOUND)).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_owned())
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None)
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Sends `signal` (`-TERM`, `-HUP`) with kill(1).
    fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal}");
    }

    /// Waits for the agent to exit; its exit code.
    fn exit_code(&mut self) -> i32 {
        let start = Instant::now();
        while start.elapsed() < BOUND {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the agent did not exit:\n{}", self.log());
    }
}

/// The runs of `target` as `plumb runs --json` lists them: (kind, outcome).
fn runs(env: &Env, target: &str) -> Vec<(String, String)> {
    let doc = env.ok_json(&["runs", target, "--json"]);
    doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A Git repository with two apps, `apps/a/conf` and `apps/b/conf`.
fn monorepo(env: &Env) -> GitRepo {
    let repo = GitRepo::init(env, "repo", &[]);
    repo.write("apps/a/conf", b"a1\n");
    repo.write("apps/b/conf", b"b1\n");
    repo.commit("first");
    repo
}

/// A source `infra` on `repo` polled every 200 ms, and targets `a` and `b`
/// (one per app) in `out/a` and `out/b`; `extra` is added to target `a`.
fn two_apps(env: &Env, repo: &GitRepo, extra: &str) -> String {
    format!(
        "[source.infra]\nlocation = \"{}\"\ninterval = \"200ms\"\n\
         [target.a]\nbackend = \"dir:{}\"\nsource = \"infra\"\npath = \"apps/a\"\nprune = true\ndrift_interval = \"300ms\"\n{extra}\n\
         [target.b]\nbackend = \"dir:{}\"\nsource = \"infra\"\npath = \"apps/b\"\nprune = true\ndrift_interval = \"1h\"\n",
        repo.dir.display(),
        env.path("out/a").display(),
        env.path("out/b").display(),
    )
}

fn read(env: &Env, rel: &str) -> String {
    std::fs::read_to_string(env.path(rel)).unwrap_or_default()
}

#[test]
fn config_check_names_the_line_and_column() {
    let env = Env::new();
    let repo = monorepo(&env);
    std::fs::write(env.path("good.toml"), two_apps(&env, &repo, "")).unwrap();
    let out = env.ok_text(&["config", "check", "good.toml"]);
    assert!(out.contains("ok (1 source, 2 targets)"), "{out}");
    let cases = [
        (
            "[serve]\nlisten = \"0.0.0.0:9464\"\n",
            "bad.toml:2:10: listen 0.0.0.0:9464 is not a loopback address",
        ),
        (
            "[source.a]\nlocation = \"/nonexistent/x\"\n",
            "bad.toml:2:12: source location /nonexistent/x",
        ),
        (
            "[target.t]\nbackend = \"dir:/tmp/x\"\nsource = \"nope\"\n",
            "bad.toml:3:10: target t: source nope is neither declared",
        ),
        (
            "[target.t]\nbackend = \"ftp:/x\"\nsource = \"s\"\n[source.s]\nlocation = \".\"\n",
            "bad.toml:2:11:",
        ),
        ("[target]\nt = 3\n", "bad.toml:2:5:"),
        ("[srve]\n", "bad.toml:1:2: unknown field `srve`"),
    ];
    for (text, want) in cases {
        std::fs::write(env.path("bad.toml"), text).unwrap();
        let err = env.fails(&["config", "check", "bad.toml"], 1);
        assert!(err.contains(want), "{text:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    env.fails(&["config", "check"], 64);
}

#[test]
fn commits_are_applied_and_only_the_changed_target_runs() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, ""));
    agent.wait_for("both apps are applied", |_| {
        read(&env, "out/a/conf") == "a1\n" && read(&env, "out/b/conf") == "b1\n"
    });
    agent.wait_for("readyz", |a| a.get("/readyz").0 == 200);
    let b_runs = runs(&env, "b").len();
    repo.write("apps/a/conf", b"a2\n");
    repo.commit("touch a");
    agent.wait_for("the commit is applied", |_| {
        read(&env, "out/a/conf") == "a2\n"
    });
    // Let another poll or two pass: b's tree did not change, so no run.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(runs(&env, "b").len(), b_runs, "{:?}", runs(&env, "b"));
    // The CLI works beside the agent: queries, plan, status, and an apply
    // of a target made with the CLI.
    env.ok(&["log", "infra"]);
    env.ok(&["plan", "b"]);
    let status = env.ok_json(&["status", "--json"]);
    assert_eq!(status["targets"][0]["name"], "a");
    env.ok(&[
        "target",
        "add",
        "cli",
        &format!("dir:{}", env.path("out/cli").display()),
        "--source",
        "infra",
        "--path",
        "apps/b",
    ]);
    env.ok(&["apply", "cli"]);
    assert_eq!(read(&env, "out/cli/conf"), "b1\n");
    let api = agent.json("/api/v1/status");
    assert_eq!(api["outcome"], "ok");
    let cli = api["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "cli")
        .unwrap();
    assert_eq!(cli["managed"], false);
    assert_eq!(api["targets"][0]["mode"], "apply");
}

#[test]
fn a_post_ingests_and_applies_at_once() {
    let env = Env::new();
    let repo = monorepo(&env);
    let config = two_apps(&env, &repo, "").replace("interval = \"200ms\"", "interval = \"1h\"");
    let mut agent = Agent::start(&env, &config);
    agent.wait_for("the first apply", |_| read(&env, "out/b/conf") == "b1\n");
    repo.write("apps/b/conf", b"b2\n");
    repo.commit("touch b");
    let (code, body) = agent.request("POST", "/api/v1/sources/infra/ingest", None);
    assert_eq!(code, 202, "{body}");
    agent.wait_for("the POST's commit is applied", |_| {
        read(&env, "out/b/conf") == "b2\n"
    });
    assert_eq!(
        agent.request("POST", "/api/v1/sources/nope/ingest", None).0,
        404
    );
    let (code, _) = agent.request("POST", "/api/v1/targets/b/reconcile", None);
    assert_eq!(code, 202);
    let doc = agent.json("/api/v1/targets/b/runs");
    assert_eq!(doc["runs"][0]["kind"], "apply");
}

#[test]
fn drift_is_healed_and_both_runs_recorded() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, ""));
    agent.wait_for("the first apply", |_| read(&env, "out/a/conf") == "a1\n");
    std::fs::write(env.path("out/a/conf"), "changed by hand\n").unwrap();
    agent.wait_for("the drift is healed", |_| {
        read(&env, "out/a/conf") == "a1\n"
    });
    agent.wait_for("a drifted run then an apply", |_| {
        let list = runs(&env, "a");
        list.windows(2).any(|w| {
            w[0] == ("apply".into(), "ok".into()) && w[1] == ("drift".into(), "drifted".into())
        })
    });
    let metrics = agent.get("/metrics").1;
    assert!(
        metrics.contains("plumb_changes_applied_total{target=\"a\"}"),
        "{metrics}"
    );
}

#[test]
fn an_observe_target_is_never_written() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, "mode = \"observe\""));
    agent.wait_for("b is applied", |_| read(&env, "out/b/conf") == "b1\n");
    agent.wait_for("a's pending change is recorded", |a| {
        let doc = a.json("/api/v1/targets");
        doc["targets"][0]["pending_changes"] == 1
    });
    agent.wait_for("a drift check is recorded", |_| {
        runs(&env, "a").iter().any(|(kind, _)| kind == "drift")
    });
    assert!(!env.path("out/a").exists());
    assert!(runs(&env, "a").iter().all(|(kind, _)| kind == "drift"));
}

#[test]
fn a_pinned_target_stays() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, ""));
    agent.wait_for("the first apply", |_| read(&env, "out/a/conf") == "a1\n");
    let first = format!("infra@{}", repo.text(&["rev-parse", "HEAD"]));
    repo.write("apps/a/conf", b"a2\n");
    repo.commit("a2");
    agent.wait_for("a2 is applied", |_| read(&env, "out/a/conf") == "a2\n");
    env.ok(&["rollback", "a", &first]);
    assert_eq!(read(&env, "out/a/conf"), "a1\n");
    repo.write("apps/a/conf", b"a3\n");
    repo.commit("a3");
    agent.wait_for("a3 is ingested", |_| {
        env.ok_json(&["log", "infra", "--json"])["snapshots"]
            .as_array()
            .unwrap()
            .len()
            == 3
    });
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(read(&env, "out/a/conf"), "a1\n");
}

#[test]
fn reloads_add_change_and_remove_and_a_bad_one_keeps_the_old() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, ""));
    agent.wait_for("the first apply", |_| read(&env, "out/b/conf") == "b1\n");
    let serve = format!("[serve]\nlisten = \"127.0.0.1:{}\"\n", agent.port);
    // Remove b, change a's path, add c.
    let next = format!(
        "{serve}[source.infra]\nlocation = \"{}\"\ninterval = \"200ms\"\n\
         [target.a]\nbackend = \"dir:{}\"\nsource = \"infra\"\npath = \"apps/b\"\n\
         [target.c]\nbackend = \"dir:{}\"\nsource = \"infra\"\npath = \"apps/a\"\n",
        repo.dir.display(),
        env.path("out/a").display(),
        env.path("out/c").display(),
    );
    std::fs::write(env.path("plumb.toml"), &next).unwrap();
    agent.signal("-HUP");
    agent.wait_for("c is applied and a follows apps/b", |_| {
        read(&env, "out/c/conf") == "a1\n" && read(&env, "out/a/conf") == "b1\n"
    });
    let names: Vec<String> = env.ok_json(&["target", "list", "--json"])["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a", "c"]);
    // A bad file (seen by the watch) is refused; the old one runs on.
    std::fs::write(
        env.path("plumb.toml"),
        format!("{next}[target.d]\nbackend = \"dir:/x\"\n"),
    )
    .unwrap();
    agent.wait_for("the refusal is counted", |a| {
        a.get("/metrics")
            .1
            .contains("plumb_config_reloads_total{result=\"refused\"} 1")
    });
    assert!(agent.log().contains("plumb.toml:"), "{}", agent.log());
    repo.write("apps/a/conf", b"a2\n");
    repo.commit("a2");
    agent.wait_for("the old configuration still applies", |_| {
        read(&env, "out/c/conf") == "a2\n"
    });
}

#[test]
fn a_bad_token_gets_401() {
    let env = Env::new();
    std::fs::write(env.path("token"), "s3cret\n").unwrap();
    let config = format!(
        "[serve]\nlisten = \"127.0.0.1:PORT\"\ntoken_file = \"{}\"\n",
        env.path("token").display()
    );
    let agent = Agent::start(&env, &config);
    assert_eq!(agent.request("GET", "/api/v1/status", None).0, 401);
    assert_eq!(agent.request("GET", "/api/v1/status", Some("wrong")).0, 401);
    assert_eq!(
        agent.request("GET", "/api/v1/status", Some("s3cret")).0,
        200
    );
    assert_eq!(agent.get("/healthz").0, 200);
}

#[test]
fn sigterm_stops_and_exits_0() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, ""));
    agent.wait_for("the first apply", |_| read(&env, "out/a/conf") == "a1\n");
    agent.signal("-TERM");
    assert_eq!(agent.exit_code(), 0, "{}", agent.log());
}

#[test]
fn metrics_pass_promtool() {
    let env = Env::new();
    let repo = monorepo(&env);
    let mut agent = Agent::start(&env, &two_apps(&env, &repo, ""));
    agent.wait_for("the first apply", |_| read(&env, "out/a/conf") == "a1\n");
    let (code, text) = agent.get("/metrics");
    assert_eq!(code, 200);
    for name in [
        "plumb_ingest_duration_seconds_bucket",
        "plumb_reconcile_duration_seconds_bucket",
        "plumb_last_success_timestamp_seconds",
        "plumb_snapshots_ingested_total",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
    let Ok(mut promtool) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing in CI"
        );
        eprintln!("notice: promtool is not installed; skipping its check");
        return;
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_source_and_a_failing_target_leave_the_rest_working() {
    let env = Env::new();
    let repo = monorepo(&env);
    // b's root holds a file plumb does not own: every apply of b is
    // refused (a conflict) and retried.
    std::fs::create_dir_all(env.path("out/b")).unwrap();
    std::fs::write(env.path("out/b/conf"), "not plumb's\n").unwrap();
    let config = format!(
        "{}[source.gone]\nlocation = \"file://{}\"\nvcs = \"git\"\ninterval = \"200ms\"\n",
        two_apps(&env, &repo, ""),
        env.path("no-such-repo").display()
    );
    let mut agent = Agent::start(&env, &config);
    agent.wait_for("a is applied", |_| read(&env, "out/a/conf") == "a1\n");
    agent.wait_for("both failures are reported", |a| {
        let doc = a.json("/api/v1/status");
        let gone = doc["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "gone")
            .unwrap();
        let b = doc["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "b")
            .unwrap();
        gone["last_error"].is_string() && b["last_error"].is_string()
    });
    agent.wait_for("readyz (every source was attempted)", |a| {
        a.get("/readyz").0 == 200
    });
    repo.write("apps/a/conf", b"a2\n");
    repo.commit("a2");
    agent.wait_for("a still follows its source", |_| {
        read(&env, "out/a/conf") == "a2\n"
    });
    assert_eq!(read(&env, "out/b/conf"), "not plumb's\n");
    let metrics = agent.get("/metrics").1;
    assert!(
        metrics.contains("plumb_errors_total{kind=\"ingest\"}"),
        "{metrics}"
    );
}
