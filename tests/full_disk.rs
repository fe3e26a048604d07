//! A full disk: one clear error line, and the store keeps everything it had.
//! Needs permission to mount a small tmpfs (root, as in CI); skipped otherwise.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::process::Command;

use crate::Env;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    // xorshift: incompressible, so zstd cannot make it fit.
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn full_disk_fails_cleanly_and_loses_nothing() {
    let env = Env::new();
    let mnt = env.path("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _guard = Mount(mnt.clone());
    let store = mnt.join("store");
    let plumb = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_plumb"))
            .arg("--store")
            .arg(&store)
            .args(args)
            .current_dir(env.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    assert!(plumb(&["init"]).status.success());
    env.write("cfg/small.conf", b"a = 1\n");
    assert!(plumb(&["source", "add", "app", "cfg"]).status.success());
    assert!(plumb(&["ingest"]).status.success());

    for i in 0..40 {
        env.write(&format!("cfg/big{i}.bin"), &random_bytes(i + 1, 200_000));
    }
    let out = plumb(&["ingest"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no space left"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let fsck = plumb(&["fsck"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let log = plumb(&["log", "app"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 1);
    assert_eq!(plumb(&["cat", "app@latest:small.conf"]).stdout, b"a = 1\n");

    // With room again (the disk grows, as when a user frees space), the same
    // command finishes the job.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(grown.success());
    let out = plumb(&["ingest"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        plumb(&["cat", "app@latest:big7.bin"]).stdout,
        random_bytes(8, 200_000)
    );
    assert!(plumb(&["fsck"]).status.success());
}
