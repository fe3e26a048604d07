//! File and directory modes are set exactly whatever the umask. A binary of its own,
//! since the umask is process-wide.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use plumb_core::ResolvedAttrs;
use plumb_core::target::Change;
use plumb_core::testing::MemoryContent;
use plumb_core::testing::target::{apply_ok, path};
use plumb_target_dir::DirTarget;
use rustix::fs::Mode;

#[test]
fn modes_ignore_the_umask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let mut target = DirTarget::new(root.clone());
    let store = MemoryContent::default();
    for umask in [0o077, 0o000, 0o022] {
        rustix::process::umask(Mode::from_raw_mode(umask));
        apply_ok(
            &mut target,
            &store,
            &[
                store.write(b"plain", format!("{umask}").as_bytes(), false),
                store.write(b"exec", format!("{umask}").as_bytes(), true),
            ],
        );
        let mode = |name: &str| {
            fs::metadata(root.join(name))
                .expect("exists")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("plain"), 0o644, "umask {umask:o}");
        assert_eq!(mode("exec"), 0o755, "umask {umask:o}");
    }
}

#[test]
fn directory_modes_ignore_the_umask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let mut target = DirTarget::new(root.clone());
    let store = MemoryContent::default();
    for umask in [0o077u32, 0o000, 0o022, 0o027] {
        rustix::process::umask(Mode::from_raw_mode(umask));
        let plain = format!("plain{umask:o}");
        let declared = format!("declared{umask:o}");
        apply_ok(
            &mut target,
            &store,
            &[
                Change::MakeDir {
                    path: path(plain.as_bytes()),
                    attrs: ResolvedAttrs::default(),
                },
                Change::MakeDir {
                    path: path(declared.as_bytes()),
                    attrs: ResolvedAttrs {
                        mode: Some(0o2775),
                        ..ResolvedAttrs::default()
                    },
                },
            ],
        );
        let mode = |name: &str| {
            fs::metadata(root.join(name))
                .expect("exists")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(&plain), 0o755, "umask {umask:o}");
        assert_eq!(mode(&declared), 0o2775, "umask {umask:o}");
    }
}
