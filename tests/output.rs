//! What the `plumb` binary prints: one JSON document per command under
//! `--json`, quoted names, true advice, one line per error or warning.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::{Env, json_bytes};

/// A store with a directory source `app` (ingested) and a directory
/// target `t` following it.
fn setup() -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/app.conf", b"port = 80\n");
    env.write("src/conf.d/a.conf", b"a = 1\n");
    env.add_dir_source("app", "src");
    env.ok(&["ingest"]);
    let target = format!("dir:{}", env.path("target").display());
    env.ok(&["target", "add", "t", &target, "--source", "app"]);
    env
}

/// Runs a `--json` command: the exit code, the one document on stdout,
/// and stderr.
fn json_run(env: &Env, args: &[&str]) -> (i32, serde_json::Value, String) {
    let (code, out, err) = env.code(args);
    let doc: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {out}"));
    assert!(doc.is_object(), "{args:?}: {doc}");
    (code, doc, err)
}

#[test]
fn every_json_command_prints_one_document_with_an_outcome() {
    let env = setup();
    env.write("src/app.conf", b"port = 81\n");
    env.ok(&["ingest"]);
    let cases: [(&[&str], i32, &str); 11] = [
        (&["log", "app", "--json"], 0, "ok"),
        (&["show", "app@latest", "--json"], 0, "ok"),
        (&["ls", "-r", "app@latest", "--json"], 0, "ok"),
        (&["diff", "app@~1", "app@latest", "--json"], 0, "ok"),
        (&["source", "list", "--json"], 0, "ok"),
        (&["target", "list", "--json"], 0, "ok"),
        (&["drift", "t", "--json"], 2, "never-applied"),
        (&["plan", "t", "--json"], 2, "changes"),
        (&["apply", "t", "--json"], 0, "ok"),
        (&["drift", "t", "--json"], 0, "in-sync"),
        (&["plan", "t", "--json"], 0, "in-sync"),
    ];
    for (args, code, outcome) in cases {
        let (got, doc, err) = json_run(&env, args);
        assert_eq!(
            (got, doc["outcome"].as_str()),
            (code, Some(outcome)),
            "{args:?}: {doc} {err}"
        );
    }
    let (_, runs, _) = json_run(&env, &["runs", "t", "--json"]);
    let outcomes: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["in-sync", "ok", "never-applied"], "{runs}");
    assert_eq!(runs["outcome"], "ok");

    // One name per idea: the snapshot a run is about, and the same counts.
    let (_, plan, _) = json_run(&env, &["plan", "t", "--json"]);
    let (_, drift, _) = json_run(&env, &["drift", "t", "--json"]);
    let (_, list, _) = json_run(&env, &["target", "list", "--json"]);
    assert_eq!(plan["snapshot"], drift["snapshot"]);
    assert_eq!(plan["snapshot"], list["targets"][0]["snapshot"]);
    assert_eq!(plan["snapshot"], runs["runs"][1]["snapshot"]);
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.retain(|k| k != "retain");
        k
    };
    assert_eq!(keys(&plan["counts"]), keys(&runs["runs"][0]["counts"]));
}

#[test]
fn errors_under_json_are_documents_too() {
    let env = setup();
    // An error: the document on stdout, the one line on stderr, exit 1.
    let (code, doc, err) = json_run(&env, &["log", "nope", "--json"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["outcome"], "error");
    assert!(doc["error"].as_str().unwrap().contains("nope"), "{doc}");
    assert_eq!(
        err,
        format!("plumb: error: {}\n", doc["error"].as_str().unwrap())
    );
    // A usage error, clap's included: exit 64.
    for args in [
        &["log", "app", "--json", "--bogus"][..],
        &["show", "a@~x", "--json"],
    ] {
        let (code, doc, err) = json_run(&env, args);
        assert_eq!(
            (code, doc["outcome"].as_str()),
            (64, Some("error")),
            "{args:?}: {doc}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A refusal: a conflict, listed in the document.
    env.write("target/app.conf", b"not plumb's\n");
    let (code, doc, _) = json_run(&env, &["apply", "t", "--json"]);
    assert_eq!(
        (code, doc["outcome"].as_str()),
        (1, Some("refused")),
        "{doc}"
    );
    assert_eq!(doc["conflicts"][0]["path"], "app.conf", "{doc}");
    assert_eq!(
        std::fs::read(env.path("target/app.conf")).unwrap(),
        b"not plumb's\n"
    );
    // Another: applying past a rollback's pin.
    env.ok(&["apply", "t", "--adopt"]);
    env.write("src/app.conf", b"port = 81\n");
    env.ok(&["ingest"]);
    env.ok(&["rollback", "t", "app@~1"]);
    let (code, doc, _) = json_run(&env, &["apply", "t", "--rev", "app@latest", "--json"]);
    assert_eq!(
        (code, doc["outcome"].as_str()),
        (1, Some("refused")),
        "{doc}"
    );
}

#[test]
fn non_utf8_and_control_names_round_trip_in_json() {
    let env = setup();
    let odd: &[u8] = b"caf\xe9\n+ create   x";
    std::fs::write(env.path("src").join(OsStr::from_bytes(odd)), b"1\n").unwrap();
    env.ok(&["ingest"]);
    let (_, ls, _) = json_run(&env, &["ls", "app@latest", "--json"]);
    let paths: Vec<Vec<u8>> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json_bytes(&e["path"]))
        .collect();
    assert!(paths.iter().any(|p| p == odd), "{ls}");
    let (_, diff, _) = json_run(&env, &["diff", "app@~1", "app@latest", "--json"]);
    assert_eq!(json_bytes(&diff["changes"][0]["path"]), odd, "{diff}");
    let (_, plan, _) = json_run(&env, &["plan", "t", "--json"]);
    let planned: Vec<Vec<u8>> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json_bytes(&s["path"]))
        .collect();
    assert!(planned.iter().any(|p| p == odd), "{plan}");
}

#[test]
fn plan_and_drift_json_carry_the_diffs() {
    let env = setup();
    env.ok(&["apply", "t"]);
    env.write("target/app.conf", b"port = 99\n");
    let (code, drift, _) = json_run(&env, &["drift", "t", "--json"]);
    assert_eq!(code, 2);
    let diff = drift["drifted"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("-port = 80\n+port = 99\n"), "{drift}");
    env.ok(&["apply", "t"]);
    env.write("src/app.conf", b"port = 81\n");
    env.ok(&["ingest"]);
    let (_, plan, _) = json_run(&env, &["plan", "t", "--json"]);
    let diff = plan["steps"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("-port = 80\n+port = 81\n"), "{plan}");
}

#[test]
fn names_with_control_characters_cannot_fake_output() {
    let env = setup();
    // A name that would print as a line of its own, and an escape sequence.
    let fake: &[u8] = b"x\n+ create   shadow  file";
    let esc: &[u8] = b"\x1b[2Jclear";
    for name in [fake, esc] {
        std::fs::write(env.path("src").join(OsStr::from_bytes(name)), b"1\n").unwrap();
    }
    env.ok(&["ingest"]);
    let (_, plan, _) = env.code(&["plan", "t"]);
    let (_, apply, _) = env.code(&["apply", "t"]);
    let ls = env.ok_text(&["ls", "app@latest"]);
    let diff = env.ok_text(&["diff", "app@~1", "app@latest"]);
    for (what, out) in [
        ("plan", &plan),
        ("apply", &apply),
        ("ls", &ls),
        ("diff", &diff),
    ] {
        assert!(
            !out.lines().any(|l| l.starts_with("+ create   shadow")),
            "{what} lets a name fake a line: {out}"
        );
        assert!(!out.contains('\x1b'), "{what} prints an escape: {out}");
        assert!(
            out.contains(r#"x\n+ create   shadow  file"#) && out.contains(r#"\033[2Jclear""#),
            "{what} does not show the names quoted: {out}"
        );
    }
    // -z stays raw.
    let raw = env.ok(&["ls", "-z", "app@latest"]);
    assert!(raw.split(|b| *b == 0).any(|p| p == fake));
    // So do drift and errors.
    std::fs::write(env.target_file(fake), b"2\n").unwrap();
    let (_, drift, _) = env.code(&["drift", "t"]);
    assert!(drift.contains(r#"modified    "x\n+ create"#), "{drift}");
    let mut arg = b"app@latest:".to_vec();
    arg.extend_from_slice(esc);
    arg.extend_from_slice(b"/nope");
    let out = env
        .cmd(&["cat"])
        .arg(OsStr::from_bytes(&arg))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(r#""\033[2Jclear/nope""#) && !err.contains('\x1b'),
        "{err}"
    );
}

trait TargetFile {
    fn target_file(&self, name: &[u8]) -> std::path::PathBuf;
}

impl TargetFile for Env {
    /// `name` inside the target's directory.
    fn target_file(&self, name: &[u8]) -> std::path::PathBuf {
        self.path("target").join(OsStr::from_bytes(name))
    }
}

#[test]
fn drift_advice_is_true() {
    let env = setup();
    // Never applied: not in sync, and said so.
    let (code, out, _) = env.code(&["drift", "t"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("never applied") && !out.contains("in sync"),
        "{out}"
    );

    env.ok(&["apply", "t"]);
    // A file plumb does not own: apply will not remove it, so drift must
    // not say it would.
    env.write("target/conf.d/stray.conf", b"x\n");
    let (code, out, _) = env.code(&["drift", "t"]);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("plumb apply t` restores"), "{out}");
    assert!(out.contains("apply leaves it"), "{out}");
    env.ok(&["apply", "t"]);
    let (code, out, _) = env.code(&["drift", "t"]);
    assert_eq!(code, 2, "apply did leave it: {out}");

    // With a change apply does restore, the advice says how many.
    env.write("target/app.conf", b"port = 99\n");
    let (_, out, _) = env.code(&["drift", "t"]);
    assert!(
        out.contains("`plumb apply t` restores 1; the 1 added path is not plumb's"),
        "{out}"
    );
    env.ok(&["apply", "t"]);
    assert_eq!(
        std::fs::read(env.path("target/app.conf")).unwrap(),
        b"port = 80\n"
    );
}

#[test]
fn a_warning_is_printed_once() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/app.conf", b"port = 80\n");
    let fifo = env.path("src/pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    env.add_dir_source("app", "src");
    let (code, _, err) = env.code(&["ingest"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("plumb: warning: app: skipped FIFO"),
        "{err}"
    );
}
