//! Programs a test runs as an oracle or a real service, which a developer's
//! machine may lack.

use std::path::{Path, PathBuf};

/// Where `program` is on `PATH`, if anywhere.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a test that needs `program` runs: yes when it is on `PATH`.
/// When it is missing, the test is skipped with a notice on stderr, except
/// under CI (`CI` set), where `.ci/run` installs it and its absence fails
/// the test.
pub fn required(program: &str) -> bool {
    if find(program).is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is not on PATH, and CI must run every test (.ci/run installs it)"
    );
    eprintln!("skipped: {program} is not on PATH");
    false
}
