//! The peak resident memory of a command, as the kernel counts it for
//! that one process (its `ru_maxrss` from `wait4`): what "memory used"
//! means to a user. An address-space limit (`ulimit -v`, `prlimit --as`)
//! would count mapped files and every thread's reserved stack as well, so
//! it measures layout rather than use, and a cgroup needs privileges.
//! Python's `os.wait4` reads it (Python is there wherever Mercurial is,
//! which the tests need anyway), without unsafe code here.

use std::path::Path;
use std::process::{Command, Stdio};

/// What a measured run gave.
#[derive(Debug)]
pub struct Measured {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// The peak resident set size, in bytes.
    pub peak_rss: u64,
    /// What it wrote to stderr.
    pub stderr: String,
}

const WAIT: &str = "import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
p.returncode = 0
with open(sys.argv[1], 'w') as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 255)
";

/// Runs `cmd` (its program, arguments, environment and directory) with
/// `stdout` as its standard output, and measures its peak resident memory.
/// `scratch` is a directory for the measurement's own file.
pub fn measured(cmd: &Command, stdout: Stdio, scratch: &Path) -> Measured {
    let report = scratch.join(format!("rss-{}", std::process::id()));
    let mut wrapper = Command::new("python3");
    wrapper
        .arg("-c")
        .arg(WAIT)
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapper.env(k, v),
            None => wrapper.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.current_dir(dir);
    }
    let out = wrapper
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run python3");
    let kib: u64 = std::fs::read_to_string(&report)
        .expect("the measured peak")
        .trim()
        .parse()
        .expect("a number of KiB");
    let _ = std::fs::remove_file(&report);
    Measured {
        code: out
            .status
            .code()
            .map_or(-1, |c| if c == 255 { -1 } else { c }),
        peak_rss: kib * 1024,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
