//! Hooks around an apply, with real programs: `check` runs on the staged
//! new tree (real nginx validating a real config, and serving the live
//! one), and the process model: argv, placeholders, environment, the
//! changed-paths file, the timeout and the output bound.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Env;
use plumb_testutils::net::free_port;
use plumb_testutils::programs::required;

/// An nginx config serving directory `root` on `port`, its logs on stderr and its
/// temporary files under its prefix, so it runs under any directory.
fn nginx_conf(port: u16, root: &str, broken: bool) -> Vec<u8> {
    format!(
        "daemon off;\nerror_log stderr;\npid nginx.pid;\nevents {{}}\nhttp {{\n  access_log off;\n  \
         client_body_temp_path tmp;\n  proxy_temp_path tmp;\n  fastcgi_temp_path tmp;\n  \
         uwsgi_temp_path tmp;\n  scgi_temp_path tmp;\n  \
         server {{ listen 127.0.0.1:{port}; location / {{ root {root}; }} }}\n{}}}\n",
        if broken { "  not_a_directive on;\n" } else { "" }
    )
    .into_bytes()
}

/// The body nginx serves at `/` on `port`, once it answers (10 s at most).
fn get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                return body.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "nginx does not answer on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx serving the live tree at `root`, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A store with source `app` (`files`, under `cfg/`, ingested) and target
/// `web` onto `live/`, added with `target_args` besides its source.
fn store_with_target(files: &[(&str, &[u8])], target_args: &[&str]) -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    for (path, bytes) in files {
        env.write(&format!("cfg/{path}"), bytes);
    }
    env.ok(&["source", "add", "app", "cfg"]);
    env.ok(&["ingest"]);
    let live = format!("dir:{}", env.path("live").display());
    let mut args = vec!["target", "add", "web", &live, "--source", "app"];
    args.extend_from_slice(target_args);
    env.ok(&args);
    env
}

fn setup(check: &str) -> Env {
    store_with_target(
        &[("keep.txt", b"kept\n"), ("app.conf", b"v1\n")],
        &["--check", check, "--check-timeout", "20s"],
    )
}

/// The newest run of target `web`, as `plumb runs --json` shows it.
fn last_run(env: &Env) -> serde_json::Value {
    env.ok_json(&["runs", "web", "--json", "-n", "1"])["runs"][0].clone()
}

#[test]
fn nginx_check_refuses_a_broken_config_and_the_old_one_keeps_serving() {
    if !required("nginx") {
        return;
    }
    let port = free_port();
    let env = store_with_target(
        &[
            ("nginx.conf", &nginx_conf(port, "html", false)),
            ("html/index.html", b"one\n"),
        ],
        &[
            "--check",
            "nginx -t -q -e stderr -p {staged}/ -c nginx.conf",
        ],
    );
    let live = env.path("live");
    env.ok(&["apply", "web"]);
    let run = last_run(&env);
    assert_eq!(run["hooks"][0]["hook"], "check");
    assert_eq!(run["hooks"][0]["exit_code"], 0, "{run}");
    let _nginx = Nginx(
        Command::new("nginx")
            .args(["-e", "stderr", "-p"])
            .arg(format!("{}/", live.display()))
            .args(["-c", "nginx.conf"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert_eq!(get(port), "one\n");

    // A syntax error: refused before any live file changes.
    let before = std::fs::read(live.join("nginx.conf")).unwrap();
    env.write("cfg/nginx.conf", &nginx_conf(port, "html", true));
    env.write("cfg/html/index.html", b"two\n");
    env.ok(&["ingest"]);
    let err = env.fails(&["apply", "web"], 1);
    assert!(
        err.contains("check") && err.contains("nothing applied"),
        "{err}"
    );
    assert!(err.contains("unknown directive"), "{err}");
    assert_eq!(std::fs::read(live.join("nginx.conf")).unwrap(), before);
    assert_eq!(
        std::fs::read(live.join("html/index.html")).unwrap(),
        b"one\n"
    );
    assert_eq!(get(port), "one\n");
    let run = last_run(&env);
    assert_eq!(run["outcome"], "refused", "{run}");
    assert_eq!(run["hooks"][0]["exit_code"], 1, "{run}");
    let text = env.ok_text(&["runs", "web", "-n", "1"]);
    assert!(
        text.contains("check: nginx -t") && text.contains("unknown directive"),
        "{text}"
    );
    // The dry run says the same and changes nothing.
    let err = env.fails(&["plan", "web", "--check"], 1);
    assert!(err.contains("unknown directive"), "{err}");
    assert_eq!(
        std::fs::read(live.join("html/index.html")).unwrap(),
        b"one\n"
    );
    // Nothing staged is left behind.
    let staging = env.store().join("staging");
    assert_eq!(std::fs::read_dir(&staging).map_or(0, Iterator::count), 0);

    // Fixed: the check passes, the new files go live, nginx reloads and
    // serves them.
    env.ok(&[
        "target",
        "set",
        "web",
        "--after",
        "nginx -s reload -e stderr -p {root}/ -c nginx.conf",
    ]);
    // The fixed config serves another directory: only a reload shows it.
    env.write("cfg/nginx.conf", &nginx_conf(port, "html2", false));
    env.write("cfg/html2/index.html", b"three\n");
    env.ok(&["ingest"]);
    let (code, out, _) = env.code(&["plan", "web", "--check"]);
    assert_eq!(code, 2, "{out}");
    env.ok(&["apply", "web"]);
    assert_eq!(
        std::fs::read(live.join("html/index.html")).unwrap(),
        b"two\n"
    );
    let run = last_run(&env);
    assert_eq!(run["hooks"][1]["hook"], "after", "{run}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(port) != "three\n" {
        assert!(Instant::now() < deadline, "nginx still serves the old page");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn after_runs_once_something_changed_and_its_failure_fails_the_run() {
    let env = setup("true");
    env.ok(&[
        "target",
        "set",
        "web",
        "--after",
        "sh -c 'tr \"\\0\" \"\\n\" < \"$PLUMB_CHANGED\"; printf %s \"$PLUMB_ROOT|$PLUMB_STAGED\"'",
    ]);
    env.ok(&["apply", "web"]);
    let run = last_run(&env);
    let hooks = run["hooks"].as_array().unwrap();
    assert_eq!(
        (hooks[0]["hook"].as_str(), hooks[1]["hook"].as_str()),
        (Some("check"), Some("after"))
    );
    let root = env.path("live");
    assert_eq!(
        hooks[1]["stdout"],
        format!("app.conf\nkeep.txt\n{}|", root.display())
    );
    // Nothing changed: no hook runs.
    env.ok(&["apply", "web"]);
    assert_eq!(last_run(&env)["hooks"], serde_json::json!([]));
    // A failing reload: the files are live, the run failed, exit 1.
    env.ok(&[
        "target",
        "set",
        "web",
        "--after",
        "sh -c 'echo reload broke >&2; exit 4'",
    ]);
    env.write("cfg/app.conf", b"v2\n");
    env.ok(&["ingest"]);
    let err = env.fails(&["apply", "web"], 1);
    assert!(err.contains("after") && err.contains("exit 4"), "{err}");
    assert!(
        err.contains("reload broke") && err.contains("the changes were applied"),
        "{err}"
    );
    assert_eq!(std::fs::read(root.join("app.conf")).unwrap(), b"v2\n");
    let run = last_run(&env);
    assert_eq!(run["outcome"], "failed", "{run}");
    assert_eq!(run["hooks"][1]["exit_code"], 4, "{run}");
    env.ok(&["target", "set", "web", "--no-after"]);
    let list = env.ok_json(&["target", "list", "--json"]);
    assert_eq!(
        list["targets"][0]["hooks"]["after"],
        serde_json::Value::Null
    );
}

#[test]
fn check_sees_the_staged_tree_its_changes_and_the_run() {
    let env = setup(
        "sh -c 'printf \"%s|%s|%s|%s\" \"$PLUMB_TARGET\" \"$PLUMB_SNAPSHOT\" \"$PLUMB_REVISION\" \"$1\"; \
         tr \"\\0\" \"\\n\" < \"$PLUMB_CHANGED\" >&2; cat app.conf >&2; stat -c %h keep.txt >&2; \
         test \"$1\" = \"$PLUMB_STAGED\" && test \"$(pwd)\" = \"$PLUMB_STAGED\" && test \"$2\" = \"$PLUMB_ROOT\"' \
         check {staged} {root}",
    );
    env.ok(&["apply", "web"]);
    env.write("cfg/app.conf", b"v2\n");
    env.ok(&["ingest"]);
    env.ok(&["apply", "web"]);
    let run = last_run(&env);
    let hook = &run["hooks"][0];
    assert_eq!(hook["exit_code"], 0, "{run}");
    let out = hook["stdout"].as_str().unwrap();
    let fields: Vec<&str> = out.split('|').collect();
    assert_eq!(fields[0], "web");
    assert_eq!(fields[1], run["snapshot"].as_str().unwrap());
    assert_eq!(fields[2], env.revision("app@latest"));
    assert!(
        fields[3].starts_with(env.store().to_str().unwrap()),
        "{out}"
    );
    // Only the changed path is listed; the staged file is the new one; the
    // kept one is a hard link to the live file (same file system here).
    assert_eq!(hook["stderr"], "app.conf\nv2\n2\n");
    // The placeholders were expanded in the argv recorded.
    assert_eq!(hook["argv"][4], fields[3]);
}

#[test]
fn no_change_runs_no_check() {
    let env = setup("false");
    // The first apply changes something: the check refuses it.
    env.fails(&["apply", "web"], 1);
    env.ok(&["target", "set", "web", "--no-check"]);
    env.ok(&["apply", "web"]);
    env.ok(&["target", "set", "web", "--check", "false"]);
    // Nothing to change: the check does not run, the apply succeeds.
    env.ok(&["apply", "web"]);
    assert_eq!(last_run(&env)["hooks"], serde_json::json!([]));
    let list = env.ok_json(&["target", "list", "--json"]);
    assert_eq!(list["targets"][0]["hooks"]["check"]["argv"][0], "false");
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_process_group() {
    let env = setup("true");
    let pidfile_now = env.path("bg.pid");
    env.ok(&[
        "target",
        "set",
        "web",
        "--check",
        &format!(
            "sh -c 'sleep 60 & echo $! > {}; sleep 60'",
            pidfile_now.display()
        ),
        "--check-timeout",
        "500ms",
    ]);
    let started = Instant::now();
    let err = env.fails(&["apply", "web"], 1);
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    assert!(err.contains("timed out"), "{err}");
    let pid = std::fs::read_to_string(&pidfile_now).unwrap();
    // The background sleep, in the hook's process group, is gone (or a
    // zombie waiting for its reaper).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    assert!(
        stat.as_ref().map_or(true, |s| s.contains(") Z")),
        "{stat:?}"
    );
    assert_eq!(last_run(&env)["hooks"][0]["timed_out"], true);
}

#[test]
fn hook_output_is_bounded() {
    let env = setup("sh -c 'head -c 200000 /dev/zero | tr \"\\0\" x; exit 3'");
    env.fails(&["apply", "web"], 1);
    let hook = &last_run(&env)["hooks"][0];
    assert_eq!(hook["exit_code"], 3);
    assert_eq!(hook["stdout"].as_str().unwrap().len(), 64 * 1024);
    assert_eq!(hook["dropped_bytes"], 200_000 - 64 * 1024);
}

#[test]
fn hook_flags_are_checked() {
    let env = setup("true");
    let err = env.fails(&["target", "set", "web", "--check", "sh -c 'open"], 64);
    assert!(err.contains("unclosed quote"), "{err}");
    let env2 = Env::new();
    env2.ok(&["init"]);
    env2.write("cfg/a", b"a");
    env2.ok(&["source", "add", "app", "cfg"]);
    let err = env2.fails(
        &[
            "target",
            "add",
            "t",
            "dir:out",
            "--source",
            "app",
            "--check-timeout",
            "5s",
        ],
        64,
    );
    assert!(err.contains("--check"), "{err}");
    env.ok(&["target", "set", "web", "--no-check"]);
    let err = env.fails(&["plan", "web", "--check"], 64);
    assert!(err.contains("no check hook"), "{err}");
}

#[test]
fn health_is_retried_until_it_passes_and_fails_the_run_when_it_never_does() {
    let env = setup("true");
    let counter = env.path("attempts");
    let failures = env.path("failures");
    // Passes on the third attempt.
    env.ok(&[
        "target",
        "set",
        "web",
        "--health",
        &format!(
            "sh -c 'n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; echo attempt $n; test $n -ge 2'",
            c = counter.display()
        ),
        "--health-timeout",
        "20s",
    ]);
    env.ok(&["apply", "web"]);
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "3\n");
    let run = last_run(&env);
    assert_eq!(run["hooks"][1]["hook"], "health", "{run}");
    assert_eq!(run["hooks"][1]["stdout"], "attempt 2\n", "{run}");
    // Never passes: retried until the timeout, then the run fails.
    env.ok(&[
        "target",
        "set",
        "web",
        "--health",
        &format!(
            "sh -c 'echo x >> {c}; echo not yet >&2; exit 1'",
            c = failures.display()
        ),
        "--health-timeout",
        "2s",
    ]);
    env.write("cfg/app.conf", b"v2\n");
    env.ok(&["ingest"]);
    let err = env.fails(&["apply", "web"], 1);
    assert!(err.contains("health") && err.contains("not yet"), "{err}");
    let attempts = std::fs::read_to_string(&failures).unwrap().lines().count();
    assert!(attempts >= 2, "tried {attempts} times: {err}");
    assert_eq!(last_run(&env)["outcome"], "failed");
    // No change: no health check.
    env.ok(&["apply", "web"]);
    assert_eq!(last_run(&env)["hooks"], serde_json::json!([]));
}
