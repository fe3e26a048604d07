//! Shared output helpers: times, people, colour, JSON.

use std::io::{self, IsTerminal, Write};

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use plumb_core::{Person, SnapshotId};

/// Whether stdout may carry colour: a terminal, and `NO_COLOR` unset.
pub fn color_stdout() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// RFC 3339 in the person's own offset (`2026-03-01T12:00:00+01:00`).
pub fn rfc3339(p: &Person) -> String {
    let Ok(ts) = Timestamp::from_second(p.time) else {
        return format!("@{}", p.time);
    };
    let offset = Offset::from_seconds(p.tz_minutes * 60).unwrap_or(Offset::UTC);
    let zoned = ts.to_zoned(TimeZone::fixed(offset));
    if p.tz_minutes == 0 {
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// `name <email>`, lossily as text.
pub fn person(p: &Person) -> String {
    format!(
        "{} <{}>",
        String::from_utf8_lossy(&p.name),
        String::from_utf8_lossy(&p.email)
    )
}

/// A person as JSON, name and email byte-exact.
pub fn person_json(p: &Person) -> serde_json::Value {
    serde_json::json!({
        "name": super::json::bytes(&p.name),
        "email": super::json::bytes(&p.email),
        "time": rfc3339(p),
    })
}

/// `PREFIX/PATH` as a diff header shows it, quoted as a whole when the
/// path needs it ([`plumb_core::quote`]).
pub fn label(prefix: &str, path: &[u8]) -> String {
    let mut raw = format!("{prefix}/").into_bytes();
    raw.extend_from_slice(path);
    plumb_core::quote::quote(&raw).into_owned()
}

/// The first 12 hex digits of an id: enough to name it in any real store.
pub fn short(id: &SnapshotId) -> String {
    id.to_hex()[..12].to_owned()
}

/// Writes JSON and a newline to stdout; a closed pipe is a normal end
/// (`plumb log --json | head -1`).
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out));
    ignore_broken_pipe(written)
}

/// Prints a line to stdout, like `println!`, but never panics: a closed
/// pipe (`plumb ingest | head -1`) only discards the output (see
/// [`discard_closed_pipe`]), and the command finishes its work.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::output::discard_closed_pipe(writeln!(std::io::stdout(), $($arg)*));
    }};
}
pub(crate) use outln;

/// Prints a line to stderr, like `eprintln!`, but never panics: when stderr
/// cannot be written there is nobody left to tell.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use errln;

/// The rule for output that cannot be written: a closed pipe is the reader
/// having seen enough, as with git, so it is no error and the work goes
/// on; any other failure (a full disk behind a redirection) is said on
/// stderr.
pub fn discard_closed_pipe(r: io::Result<()>) {
    if let Err(e) = r
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        errln!("plumb: error: writing to stdout: {e}");
    }
}

/// Treats a closed pipe (`plumb log | head`) as a normal end.
pub fn ignore_broken_pipe(r: io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
