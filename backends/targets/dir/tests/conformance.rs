//! The directory target passes the target conformance suite.

use plumb_core::target::Target;
use plumb_target_dir::DirTarget;

/// Directory targets, each on a directory of its own (not made yet).
fn dir_targets() -> impl FnMut() -> Box<dyn Target> {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let mut made = 0;
    move || {
        made += 1;
        Box::new(DirTarget::new(tmp.path().join(format!("root{made}"))))
    }
}

plumb_core::target_conformance!(dir_targets());
