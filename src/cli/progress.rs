//! The progress bar of long commands (ingest, apply), on stderr when it is
//! a terminal: a bar and `done/total` while the total is known, a count
//! alone while it is not, and a rate rounded as a person reads it.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Cells of the bar.
const WIDTH: u64 = 30;

/// A progress bar for work on `name`: hidden unless stderr is a terminal.
pub fn bar(name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::no_length();
    let style = ProgressStyle::with_template(&format!("{name}: {{msg}} {{progress}}"))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "progress",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let text = progress_text(state.pos(), state.len(), state.per_sec(), state.eta());
                let _ = w.write_str(&text);
            },
        );
    bar.set_style(style);
    bar
}

/// Moves the bar to `done` of `total` (0: not known). A total below what
/// is done is grown to it, so the bar never shows `547/56`.
pub fn update(bar: &ProgressBar, done: u64, total: u64) {
    match length(done, total) {
        Some(len) => bar.set_length(len),
        None => bar.unset_length(),
    }
    bar.set_position(done);
}

/// The length a bar shows: none when the total is unknown (0), else at
/// least what is done.
fn length(done: u64, total: u64) -> Option<u64> {
    (total > 0).then(|| total.max(done))
}

/// `[bar] done/len (rate, time left)` when the length is known, else
/// `done (rate)`.
fn progress_text(pos: u64, len: Option<u64>, per_sec: f64, eta: Duration) -> String {
    let Some(len) = len.filter(|&l| l > 0) else {
        return format!("{pos} ({})", rate(per_sec));
    };
    let pos = pos.min(len);
    let filled = (pos * WIDTH / len) as usize;
    let mut text = String::new();
    text.push_str(&"█".repeat(filled));
    text.push_str(&"░".repeat(WIDTH as usize - filled));
    let _ = write!(
        text,
        " {pos}/{len} ({}, {} left)",
        rate(per_sec),
        duration(eta)
    );
    text
}

/// Items per second: whole numbers with thousands separators from 100 up
/// (`27,792/s`), one decimal below (`12.5/s`), two below 1 (`0.25/s`).
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".into();
    }
    if per_sec >= 100.0 {
        return format!("{}/s", thousands(per_sec.round() as u64));
    }
    if per_sec >= 1.0 {
        return format!("{per_sec:.1}/s");
    }
    format!("{per_sec:.2}/s")
}

/// `27792` as `27,792`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `7s`, `2m05s`, `1h03m`.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_never_falls_below_the_position() {
        assert_eq!(length(547, 56), Some(547));
        assert_eq!(length(3, 56), Some(56));
        assert_eq!(length(547, 0), None, "unknown: a count alone");
        let text = progress_text(547, length(547, 56), 10.0, Duration::ZERO);
        assert!(text.contains(" 547/547 "), "{text}");
        assert_eq!(
            progress_text(547, None, 10.0, Duration::ZERO),
            "547 (10.0/s)"
        );
    }

    #[test]
    fn rates_are_rounded_for_people() {
        assert_eq!(rate(27_792.466_3), "27,792/s");
        assert_eq!(rate(1_234_567.0), "1,234,567/s");
        assert_eq!(rate(100.0), "100/s");
        assert_eq!(rate(12.46), "12.5/s");
        assert_eq!(rate(0.25), "0.25/s");
        assert_eq!(rate(f64::NAN), "0/s");
        assert_eq!(rate(f64::INFINITY), "0/s");
    }

    #[test]
    fn the_bar_fills_with_the_position() {
        let half = progress_text(15, Some(30), 1.0, Duration::from_secs(125));
        assert_eq!(half.matches('█').count(), 15, "{half}");
        assert_eq!(half.matches('░').count(), 15, "{half}");
        assert!(half.ends_with(" 15/30 (1.0/s, 2m05s left)"), "{half}");
        assert_eq!(duration(Duration::from_secs(3780)), "1h03m");
    }
}
