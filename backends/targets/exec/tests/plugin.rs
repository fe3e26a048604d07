//! `ExecTarget` driving a real plugin written in another language: the
//! Python/SQLite plugin in `tests/plugins/sqlite_target.py`, which is the
//! proof that the protocol (spec/plugin-protocol.md) is language-neutral,
//! and the same script misbehaving on purpose for the error paths.
//!
//! python3 is required: these tests fail, never skip, without it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plumb_core::Name;
use plumb_core::target::{
    Change, Digest, DigestKind, ObserveRequest, Observed, Target, TargetError,
};
use plumb_core::testing::MemoryContent;
use plumb_core::testing::target::{apply, apply_ok, observe_one, path as p, request as req};
use plumb_target_exec::{Capabilities, ExecTarget, SpawnOptions};
use sha2::{Digest as _, Sha256};

fn plugin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/sqlite_target.py")
}

/// Fails loudly when python3 is missing: CI machines have it.
fn require_python() {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 is required by the plugin target tests (the test plugin is a Python script); install it"
    );
}

/// The reference plugin's command line, on a database of its own.
pub(crate) struct Plugin {
    _dir: tempfile::TempDir,
    db: PathBuf,
    command: String,
}

/// The reference plugin, misbehaving in `misbehave`'s way if given.
pub(crate) fn plugin(misbehave: Option<&str>) -> Plugin {
    require_python();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("state.sqlite");
    let mut command = format!("python3 '{}' '{}'", plugin_script().display(), db.display());
    if let Some(mode) = misbehave {
        command.push_str(&format!(" --misbehave {mode}"));
    }
    Plugin {
        _dir: dir,
        db,
        command,
    }
}

impl Plugin {
    fn spawn_with(&self, options: SpawnOptions) -> Result<ExecTarget, TargetError> {
        ExecTarget::spawn_with(&self.command, std::env::temp_dir(), options)
    }

    /// Starts the plugin; the handshake must succeed.
    pub(crate) fn spawn(&self) -> ExecTarget {
        self.spawn_with(SpawnOptions::with_timeout(Duration::from_secs(30)))
            .expect("plugin starts")
    }
}

fn sha256(data: &[u8]) -> Digest {
    Digest::Sha256(Sha256::digest(data).into())
}

fn names(list: &[&[u8]]) -> Vec<Name> {
    list.iter()
        .map(|n| Name::new(n.to_vec()).expect("valid name"))
        .collect()
}

#[test]
fn handshake_gives_name_capabilities_and_describe() {
    let plugin = plugin(None);
    let target = plugin.spawn();
    assert_eq!(target.name(), "sqlite");
    assert_eq!(
        target.capabilities(),
        Capabilities {
            dir: true,
            symlink: true,
            executable: true,
            attrs: true,
        }
    );
    assert_eq!(target.digest_kind(), DigestKind::Sha256);
    assert_eq!(target.describe(), format!("exec:{}", plugin.command));
}

#[test]
fn observe_missing_file_dir_listing_and_symlink() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    assert_eq!(
        observe_one(&mut target, req(b"nothing", true, true)),
        Observed::Missing
    );

    let changes = vec![
        Change::MakeDir {
            path: p(b"etc"),
            attrs: Default::default(),
        },
        Change::MakeDir {
            path: p(b"etc/app"),
            attrs: Default::default(),
        },
        blobs.write(b"etc/app/app.conf", b"port = 8080\n", false),
        blobs.write(b"etc/motd", b"hi\n", false),
        Change::Symlink {
            path: p(b"etc/current"),
            target: b"app/app.conf".to_vec(),
        },
    ];
    apply_ok(&mut target, &blobs, &changes);

    let got = target
        .observe(&[
            req(b"etc", false, true),
            req(b"etc/app/app.conf", true, false),
            req(b"etc/current", true, true),
            req(b"etc/missing/deeper", false, false),
            req(b"etc/current/through", false, false),
            req(b"etc/motd/inside", false, false),
            req(b"etc/app", false, false),
        ])
        .expect("observe");
    let got: Vec<Observed> = got
        .into_iter()
        .map(|r| sans_attrs(r.expect("entry")))
        .collect();
    assert_eq!(
        got[0],
        Observed::Dir {
            children: Some(names(&[b"app", b"current", b"motd"])),
            attrs: Default::default(),
        }
    );
    match &got[1] {
        Observed::File {
            size,
            executable,
            digest,
            token,
            ..
        } => {
            assert_eq!(*size, 12);
            assert!(!executable);
            assert_eq!(*digest, Some(sha256(b"port = 8080\n")));
            assert!(token.is_some());
        }
        other => panic!("expected a file, got {other:?}"),
    }
    assert_eq!(
        got[2],
        Observed::Symlink {
            target: b"app/app.conf".to_vec()
        }
    );
    assert_eq!(got[3], Observed::Missing);
    assert_eq!(
        got[4],
        Observed::Blocked {
            at: p(b"etc/current"),
            what: "symlink".into()
        }
    );
    assert_eq!(
        got[5],
        Observed::Blocked {
            at: p(b"etc/motd"),
            what: "file".into()
        }
    );
    assert_eq!(
        got[6],
        Observed::Dir {
            children: None,
            attrs: Default::default()
        }
    );
}

#[test]
fn write_then_observe_gives_sha256_and_stable_token_and_read_returns_bytes() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    let data = b"line one\n\0binary\xff\nno final newline";
    apply_ok(&mut target, &blobs, &[blobs.write(b"f", data, false)]);
    let first = observe_one(&mut target, req(b"f", true, false));
    let Observed::File {
        size,
        digest,
        token,
        ..
    } = first.clone()
    else {
        panic!("expected a file, got {first:?}");
    };
    assert_eq!(size, data.len() as u64);
    assert_eq!(digest, Some(sha256(data)));
    assert_eq!(observe_one(&mut target, req(b"f", true, false)), first);
    assert_eq!(target.read(&p(b"f")).expect("read"), data);

    // Rewriting changes the token; writing the same again is idempotent.
    apply_ok(&mut target, &blobs, &[blobs.write(b"f", b"v2", false)]);
    apply_ok(&mut target, &blobs, &[blobs.write(b"f", b"v2", false)]);
    let Observed::File {
        digest: d2,
        token: t2,
        ..
    } = observe_one(&mut target, req(b"f", true, false))
    else {
        panic!("expected a file");
    };
    assert_eq!(d2, Some(sha256(b"v2")));
    assert_ne!(t2, token);

    // Reading what is not a file is an error for that path only.
    match target.read(&p(b"nope")) {
        Err(TargetError::Path { path, .. }) => assert_eq!(path, p(b"nope")),
        other => panic!("expected a path error, got {other:?}"),
    }
    assert_eq!(target.read(&p(b"f")).expect("still usable"), b"v2");
}

#[test]
fn large_content_streams_intact_both_ways() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    // 20 MiB that is not periodic in 64 KiB, so a misplaced chunk shows.
    let mut data = Vec::with_capacity(20 << 20);
    let mut x: u32 = 0x1234_5678;
    while data.len() < 20 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let change = blobs.write(b"big.bin", &data, false);
    apply_ok(&mut target, &blobs, &[change]);
    match observe_one(&mut target, req(b"big.bin", true, false)) {
        Observed::File { size, digest, .. } => {
            assert_eq!(size, data.len() as u64);
            assert_eq!(digest, Some(sha256(&data)));
        }
        other => panic!("expected a file, got {other:?}"),
    }
    let back = target.read(&p(b"big.bin")).expect("read");
    assert!(back == data, "20 MiB read back differs");
}

#[test]
fn executable_bit_round_trips() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    apply_ok(
        &mut target,
        &blobs,
        &[
            blobs.write(b"run.sh", b"#!/bin/sh\n", true),
            blobs.write(b"plain", b"x", false),
        ],
    );
    let exec = |o: Observed| match o {
        Observed::File { executable, .. } => executable,
        other => panic!("expected a file, got {other:?}"),
    };
    assert!(exec(observe_one(&mut target, req(b"run.sh", false, false))));
    assert!(!exec(observe_one(&mut target, req(b"plain", false, false))));
    apply_ok(
        &mut target,
        &blobs,
        &[blobs.write(b"run.sh", b"#!/bin/sh\n", false)],
    );
    assert!(!exec(observe_one(
        &mut target,
        req(b"run.sh", false, false)
    )));
}

#[test]
fn remove_and_rmdir_with_their_errors() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    apply_ok(
        &mut target,
        &blobs,
        &[
            Change::MakeDir {
                path: p(b"d"),
                attrs: Default::default(),
            },
            Change::MakeDir {
                path: p(b"d"),
                attrs: Default::default(),
            }, // idempotent
            Change::MakeDir {
                path: p(b"empty"),
                attrs: Default::default(),
            },
        ],
    );
    apply_ok(
        &mut target,
        &blobs,
        &[
            blobs.write(b"d/f", b"1", false),
            Change::Symlink {
                path: p(b"d/l"),
                target: b"f".to_vec(),
            },
        ],
    );
    // Removing a non-empty directory, a directory with `remove`, a file
    // with `rmdir`, or writing below a file fail for their paths only.
    let changes = [
        Change::RemoveDir { path: p(b"d") },
        Change::Remove { path: p(b"empty") },
        Change::RemoveDir { path: p(b"d/f") },
        blobs.write(b"d/f/below", b"x", false),
        blobs.write(b"nodir/f", b"x", false),
        Change::RemoveDir { path: p(b"empty") },
    ];
    let (outcomes, result) = apply(&mut target, &blobs, &changes);
    result.expect("apply goes on after path errors");
    for (i, want) in [
        "directory not empty",
        "is a directory",
        "not a directory",
        "above it is a file",
        "missing",
    ]
    .iter()
    .enumerate()
    {
        match &outcomes[i] {
            Some(Err(e)) => assert!(e.contains(want), "change {i}: {e} lacks {want:?}"),
            other => panic!("change {i}: expected an error, got {other:?}"),
        }
    }
    assert_eq!(outcomes[5], Some(Ok(())));

    apply_ok(
        &mut target,
        &blobs,
        &[
            Change::Remove { path: p(b"d/f") },
            Change::Remove { path: p(b"d/l") },
            Change::Remove {
                path: p(b"d/never"),
            }, // nothing there is fine
        ],
    );
    apply_ok(
        &mut target,
        &blobs,
        &[
            Change::RemoveDir { path: p(b"d") },
            Change::RemoveDir { path: p(b"d") },
        ],
    );
    for path in [&b"d"[..], b"d/f", b"d/l", b"empty"] {
        assert_eq!(
            observe_one(&mut target, req(path, false, false)),
            Observed::Missing
        );
    }
}

#[test]
fn non_utf8_paths_and_link_targets_round_trip() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    let dir = b"caf\xe9";
    let file = b"caf\xe9/r\xc3\xa9sum\xe9\xff.txt";
    apply_ok(
        &mut target,
        &blobs,
        &[Change::MakeDir {
            path: p(dir),
            attrs: Default::default(),
        }],
    );
    apply_ok(
        &mut target,
        &blobs,
        &[
            blobs.write(file, b"latin-1 name", false),
            Change::Symlink {
                path: p(b"caf\xe9/link"),
                target: b"../\xfe\xff".to_vec(),
            },
        ],
    );
    assert_eq!(
        sans_attrs(observe_one(&mut target, req(dir, false, true))),
        Observed::Dir {
            children: Some(names(&[b"link", b"r\xc3\xa9sum\xe9\xff.txt"])),
            attrs: Default::default(),
        }
    );
    match observe_one(&mut target, req(file, true, false)) {
        Observed::File { digest, .. } => assert_eq!(digest, Some(sha256(b"latin-1 name"))),
        other => panic!("expected a file, got {other:?}"),
    }
    assert_eq!(
        observe_one(&mut target, req(b"caf\xe9/link", false, false)),
        Observed::Symlink {
            target: b"../\xfe\xff".to_vec()
        }
    );
    assert_eq!(target.read(&p(file)).expect("read"), b"latin-1 name");
}

#[test]
fn state_survives_a_new_plugin_process_and_recover_is_accepted() {
    let plugin = plugin(None);
    let blobs = MemoryContent::default();
    {
        let mut target = plugin.spawn();
        apply_ok(
            &mut target,
            &blobs,
            &[blobs.write(b"kept", b"durable", false)],
        );
        // Dropped: says bye.
    }
    assert!(plugin.db.exists());
    let mut target = plugin.spawn();
    target
        .recover(&[p(b"kept"), p(b"other/path")])
        .expect("recover");
    target.recover(&[]).expect("recover nothing");
    match observe_one(&mut target, req(b"kept", true, false)) {
        Observed::File { digest, .. } => assert_eq!(digest, Some(sha256(b"durable"))),
        other => panic!("expected a file, got {other:?}"),
    }
}

#[test]
fn many_paths_in_one_observe() {
    let plugin = plugin(None);
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    let changes: Vec<Change> = (0..300)
        .map(|i| blobs.write(format!("f{i}").as_bytes(), format!("{i}").as_bytes(), false))
        .collect();
    apply_ok(&mut target, &blobs, &changes);
    let requests: Vec<ObserveRequest> = (0..600)
        .map(|i| req(format!("f{i}").as_bytes(), true, false))
        .collect();
    let got = target.observe(&requests).expect("observe");
    assert_eq!(got.len(), 600);
    for (i, r) in got.into_iter().enumerate() {
        match r.expect("entry") {
            Observed::File { digest, .. } if i < 300 => {
                assert_eq!(digest, Some(sha256(format!("{i}").as_bytes())));
            }
            Observed::Missing if i >= 300 => {}
            other => panic!("f{i}: {other:?}"),
        }
    }
}

#[test]
fn missing_capabilities_fail_those_changes_without_sending_them() {
    let plugin = plugin(Some("no-symlinks"));
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    let changes = [
        Change::Symlink {
            path: p(b"l"),
            target: b"x".to_vec(),
        },
        blobs.write(b"x", b"#!", true),
        blobs.write(b"y", b"plain", false),
    ];
    let (outcomes, result) = apply(&mut target, &blobs, &changes);
    result.expect("apply");
    assert!(
        matches!(&outcomes[0], Some(Err(e)) if e.contains("no symlinks")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], Some(Err(e)) if e.contains("no executable")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], Some(Ok(())));
    assert_eq!(
        observe_one(&mut target, req(b"l", false, false)),
        Observed::Missing
    );
}

#[test]
fn plugin_stderr_is_passed_through_with_its_name() {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let plugin = plugin(Some("stderr"));
    let sink = Sink::default();
    let mut target = plugin
        .spawn_with(SpawnOptions {
            timeout: Some(Duration::from_secs(30)),
            stderr: Some(Box::new(sink.clone())),
        })
        .expect("spawn");
    target.observe(&[req(b"x", false, false)]).expect("observe");
    drop(target);
    // The stderr thread may lag the exit by a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&sink.0.lock().expect("lock")).into_owned();
        if text.lines().count() >= 2 {
            for line in text.lines() {
                // Written before the hello: prefixed with the program's name.
                assert!(
                    line.starts_with("[python3] ") || line.starts_with("[sqlite] "),
                    "{text}"
                );
            }
            assert!(text.contains("] starting up\n"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stderr not passed through: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- misbehaving plugins -------------------------------------------------

/// Spawns the test plugin in `mode`, observes one path, and gives the
/// reason of the target error that must follow.
fn observe_fails(mode: &str) -> String {
    let mut target = plugin(Some(mode)).spawn();
    target_reason(target.observe(&[req(b"x", false, false)]).expect_err(mode))
}

fn target_reason(e: TargetError) -> String {
    match e {
        TargetError::Target { target, source } => {
            assert!(target.starts_with("exec:python3 "), "{target}");
            source.to_string()
        }
        other => panic!("expected a target error, got {other:?}"),
    }
}

#[test]
fn crash_mid_apply_confirms_only_what_was_answered() {
    let plugin = plugin(Some("crash-apply:2"));
    let mut target = plugin.spawn();
    let blobs = MemoryContent::default();
    let changes = [
        blobs.write(b"a", b"1", false),
        Change::MakeDir {
            path: p(b"d"),
            attrs: Default::default(),
        },
        blobs.write(b"b", &vec![7u8; 300_000], false),
        blobs.write(b"c", b"3", false),
    ];
    let (outcomes, result) = apply(&mut target, &blobs, &changes);
    let reason = target_reason(result.expect_err("the plugin crashed"));
    assert!(
        reason.contains("exited") && reason.contains('3'),
        "{reason}"
    );
    assert_eq!(outcomes[..2], [Some(Ok(())), Some(Ok(()))]);
    assert_eq!(
        outcomes[2..],
        [None, None],
        "nothing unconfirmed is reported"
    );

    // The target stays failed, with the same reason.
    let again = target_reason(
        target
            .observe(&[req(b"a", false, false)])
            .expect_err("failed"),
    );
    assert!(again.contains(&reason), "{again}");

    // What was confirmed is durable: a well-behaved plugin on the same
    // database sees it, and nothing of the crashed change.
    let healthy = Plugin {
        command: format!(
            "python3 '{}' '{}'",
            plugin_script().display(),
            plugin.db.display()
        ),
        db: plugin.db.clone(),
        _dir: tempfile::tempdir().expect("temp dir"),
    };
    let mut after = healthy.spawn();
    let got = after
        .observe(&[
            req(b"a", true, false),
            req(b"d", false, true),
            req(b"b", false, false),
        ])
        .expect("observe");
    let got: Vec<Observed> = got
        .into_iter()
        .map(|r| sans_attrs(r.expect("entry")))
        .collect();
    assert!(matches!(&got[0], Observed::File { digest: Some(d), .. } if *d == sha256(b"1")));
    assert_eq!(
        got[1],
        Observed::Dir {
            children: Some(vec![]),
            attrs: Default::default(),
        }
    );
    assert_eq!(got[2], Observed::Missing);
}

#[test]
fn hang_past_the_timeout_kills_the_plugin() {
    let plugin = plugin(Some("hang-observe"));
    let mut target = plugin
        .spawn_with(SpawnOptions::with_timeout(Duration::from_secs(1)))
        .expect("handshake works");
    let start = Instant::now();
    let err = target
        .observe(&[req(b"x", false, false)])
        .expect_err("hangs");
    let waited = start.elapsed();
    let reason = target_reason(err);
    assert!(reason.contains("no answer within 1s"), "{reason}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // Killed: the process is gone.
    let pid = target.pid();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "plugin {pid} still running"
    );
}

#[test]
fn hang_in_the_handshake_times_out() {
    let plugin = plugin(Some("hang-hello"));
    let err = plugin
        .spawn_with(SpawnOptions::with_timeout(Duration::from_secs(1)))
        .expect_err("hangs");
    assert!(target_reason(err).contains("no answer within 1s"));
}

#[test]
fn garbage_output_is_a_protocol_violation() {
    let reason = observe_fails("garbage");
    assert!(
        reason.starts_with("protocol violation: not JSON"),
        "{reason}"
    );
}

#[test]
fn an_over_long_line_is_a_protocol_violation() {
    let reason = observe_fails("long-line");
    assert!(
        reason.contains("line longer than the 1048576-byte limit"),
        "{reason}"
    );
}

#[test]
fn an_unknown_message_type_is_a_protocol_violation() {
    let reason = observe_fails("unknown-type");
    assert!(
        reason.contains("unknown message type \"observed-ish\""),
        "{reason}"
    );
}

#[test]
fn a_protocol_version_not_offered_is_refused() {
    let version = plugin(Some("version"));
    let reason = target_reason(
        version
            .spawn_with(SpawnOptions::with_timeout(Duration::from_secs(30)))
            .map(drop)
            .expect_err("version 99"),
    );
    assert!(reason.contains("chose protocol 99"), "{reason}");

    let refuse = plugin(Some("refuse"));
    let reason = target_reason(
        refuse
            .spawn_with(SpawnOptions::default())
            .map(drop)
            .expect_err("refused"),
    );
    assert!(reason.contains("speaks protocol 7 only"), "{reason}");
}

#[test]
fn a_program_that_does_not_exist_or_a_bad_command_line_is_an_error() {
    let err = ExecTarget::spawn("/nonexistent/plumb-plugin --x", ".").expect_err("missing");
    assert!(target_reason_any(err).contains("cannot start /nonexistent/plumb-plugin"));
    let err = ExecTarget::spawn("python3 'unbalanced", ".").expect_err("quotes");
    assert!(target_reason_any(err).contains("unbalanced"));
    let err = ExecTarget::spawn("   ", ".").expect_err("empty");
    assert!(target_reason_any(err).contains("no program"));
    // A program that exits at once, without a word.
    let err = ExecTarget::spawn("true", ".").expect_err("silent");
    assert!(target_reason_any(err).contains("exited"));
}

fn target_reason_any(e: TargetError) -> String {
    match e {
        TargetError::Target { source, .. } => source.to_string(),
        other => panic!("expected a target error, got {other:?}"),
    }
}

/// A directory's observation without its attributes (checked by the
/// conformance suite); anything else as it is.
fn sans_attrs(observed: Observed) -> Observed {
    match observed {
        Observed::Dir { children, .. } => Observed::Dir {
            children,
            attrs: Default::default(),
        },
        other => other,
    }
}
