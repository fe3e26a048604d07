//! File and directory modes are set exactly whatever the umask. A binary
//! of its own, since the umask is process-wide.

use std::path::Path;

use plumb_core::ResolvedAttrs;
use plumb_core::target::Change;
use plumb_core::testing::MemoryContent;
use plumb_core::testing::target::{apply_ok, path};
use plumb_target_dir::DirTarget;
use plumb_testutils::fs::mode_of;
use rustix::fs::Mode;

/// Runs `check` on one target under each umask in turn.
fn under_each_umask(check: impl Fn(u32, &mut DirTarget, &MemoryContent, &Path)) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let mut target = DirTarget::new(root.clone());
    let store = MemoryContent::default();
    for umask in [0o077, 0o000, 0o022, 0o027] {
        rustix::process::umask(Mode::from_raw_mode(umask));
        check(umask, &mut target, &store, &root);
    }
}

#[test]
fn modes_ignore_the_umask() {
    under_each_umask(|umask, target, store, root| {
        apply_ok(
            target,
            store,
            &[
                store.write(b"plain", format!("{umask}").as_bytes(), false),
                store.write(b"exec", format!("{umask}").as_bytes(), true),
            ],
        );
        assert_eq!(mode_of(&root.join("plain")), 0o644, "umask {umask:o}");
        assert_eq!(mode_of(&root.join("exec")), 0o755, "umask {umask:o}");
    });
}

#[test]
fn directory_modes_ignore_the_umask() {
    under_each_umask(|umask, target, store, root| {
        let plain = format!("plain{umask:o}");
        let declared = format!("declared{umask:o}");
        let make = |name: &str, mode| Change::MakeDir {
            path: path(name.as_bytes()),
            attrs: ResolvedAttrs {
                mode,
                ..ResolvedAttrs::default()
            },
        };
        apply_ok(
            target,
            store,
            &[make(&plain, None), make(&declared, Some(0o2775))],
        );
        assert_eq!(mode_of(&root.join(&plain)), 0o755, "umask {umask:o}");
        assert_eq!(mode_of(&root.join(&declared)), 0o2775, "umask {umask:o}");
    });
}
