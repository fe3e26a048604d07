//! The `plumb` command line.

mod cli;

use std::io::{IsTerminal, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let json = std::env::args_os()
                .skip(1)
                .take_while(|a| a != "--")
                .any(|a| a == "--json");
            return ExitCode::from(cli::report_parse_error(&e, json));
        }
    };
    let (json_logs, level) = args.logging();
    init_logging(json_logs, level);
    quiet_panics();
    let store = args.store_dir();
    let json = args.json();
    match catch_unwind(AssertUnwindSafe(|| cli::run(args))) {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(e)) => ExitCode::from(cli::report_error(&e, json)),
        Err(_) => {
            // A failure no layer below caught: most likely damage the engine
            // guard does not cover. One line, exit 1, never 101.
            let what = PANIC.lock().map(|p| p.clone()).unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "plumb: error: internal failure ({what}); if the store at {} is damaged, `plumb fsck` checks it",
                store.display()
            );
            ExitCode::from(cli::exit::ERROR)
        }
    }
}

/// The message of the last panic, for the line `main` prints.
static PANIC: Mutex<String> = Mutex::new(String::new());

/// Replaces the default panic message and backtrace with a diagnostic
/// (`RUST_LOG=debug` shows it): a panic the store contains becomes an error
/// naming the damage, and one that escapes becomes one line from `main`.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::debug!(
            "panic{at}: {text}\n{}",
            std::backtrace::Backtrace::capture()
        );
        if let Ok(mut last) = PANIC.lock() {
            *last = format!("{text}{at}");
        }
    }));
}

/// Logs to stderr at `RUST_LOG`'s levels (else `level`): text, or one
/// JSON object per event (with its time) when `json`.
fn init_logging(json: bool, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(ansi).without_time().init();
    }
}
