//! What a package installs besides the binary: the systemd unit, shell
//! completions and man pages, each checked by the program that reads it.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

use crate::Env;
use plumb_testutils::programs::required;

/// The repository's `dist/` directory.
fn dist(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dist")
        .join(file)
}

/// Runs `program args` and returns (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bash_completion_parses_and_registers() {
    if !required("bash") {
        return;
    }
    let env = Env::new();
    let script = env.ok(&["completions", "bash"]);
    std::fs::write(env.path("plumb.bash"), &script).unwrap();
    let (ok, _, err) = run(Command::new("bash").arg("-n").arg(env.path("plumb.bash")));
    assert!(ok, "bash -n rejects the script: {err}");
    // Sourced, it registers a completion for plumb that knows the commands.
    let (ok, out, err) = run(Command::new("bash").arg("-c").arg(format!(
        "source {}; complete -p plumb",
        env.path("plumb.bash").display()
    )));
    assert!(ok && out.contains("plumb"), "{out}{err}");
    let text = String::from_utf8(script).unwrap();
    assert!(text.contains("rollback") && text.contains("--max-delete"));
}

#[test]
fn every_shell_gets_a_script_and_unknown_ones_are_usage_errors() {
    let env = Env::new();
    for shell in ["zsh", "fish"] {
        let text = env.ok_text(&["completions", shell]);
        assert!(text.contains("plumb") && text.contains("unpin"), "{shell}");
    }
    let err = env.fails(&["completions", "tcsh"], 64);
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn man_pages_render() {
    let env = Env::new();
    let dir = env.path("man/man1");
    let out = env.ok_text(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.contains("man pages"), "{out}");
    for page in ["plumb.1", "plumb-apply.1", "plumb-target-add.1"] {
        assert!(dir.join(page).is_file(), "{page} missing");
    }
    // Neither clap's `help` nor hidden commands get a page.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("help") || n == "plumb-man.1"),
        "{names:?}"
    );
    // The short help does not list `man`.
    assert!(!env.ok_text(&["--help"]).contains("\n  man "));
    if !required("groff") {
        return;
    }
    // -k reads the page through preconv, as man does: help text may hold
    // UTF-8.
    let (ok, text, err) = run(Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-P", "-cbou", "-ww"])
        .arg(dir.join("plumb-target-add.1")));
    assert!(ok && err.is_empty(), "groff: {err}");
    assert!(text.contains("plumb-target-add"), "{text}");
    assert!(text.contains("--max-delete"), "{text}");
}

#[test]
fn systemd_unit_verifies() {
    if !required("systemd-analyze") {
        return;
    }
    let env = Env::new();
    let unit = std::fs::read_to_string(dist("plumb.service")).unwrap();
    // verify checks that ExecStart's program exists and that the man page
    // Documentation= names is installed: point both at this build.
    let unit = unit.replace("/usr/bin/plumb", env!("CARGO_BIN_EXE_plumb"));
    std::fs::write(env.path("plumb.service"), unit).unwrap();
    env.ok(&["man", "--dir", env.path("man/man1").to_str().unwrap()]);
    let (ok, out, err) = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(env.path("plumb.service"))
        .env("MANPATH", env.path("man"))
        .env("SYSTEMD_LOG_COLOR", "0"));
    // Unknown or misspelt keys are warnings on stderr: none may appear.
    assert!(ok && err.is_empty() && out.is_empty(), "{out}{err}");
}
