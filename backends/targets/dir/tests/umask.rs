//! File modes are set exactly whatever the umask. A binary of its own,
//! since the umask is process-wide.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use plumb_core::testing::MemoryContent;
use plumb_core::testing::target::apply_ok;
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
