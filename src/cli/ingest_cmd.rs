//! `plumb ingest`.

use super::output::{errln, outln};
use std::time::Instant;

use anyhow::bail;
use std::path::Path;

use plumb::store::{Store, Wait};

use super::{Within, exit};

pub fn run(dir: &Path, names: &[String], wait: Wait) -> anyhow::Result<u8> {
    let names: Vec<String> = {
        let store = Store::open_read_only(dir)?;
        if names.is_empty() {
            store.sources()?.into_iter().map(|s| s.name).collect()
        } else {
            for n in names {
                store.source(n)?;
            }
            names.to_vec()
        }
    };
    if names.is_empty() {
        bail!("no sources defined (add one with `plumb source add NAME LOCATION`)");
    }
    let mut failed = 0usize;
    for name in &names {
        // One failing source does not keep the others from being read.
        if let Err(e) = ingest_one(dir, name, wait) {
            errln!("plumb: error: {e}");
            failed += 1;
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}

/// Fetches one source (a remote's copy) without the writer turn, then
/// ingests it holding the turn, and prints what it did.
fn ingest_one(dir: &Path, name: &str, wait: Wait) -> anyhow::Result<()> {
    let def = Store::open_read_only(dir)?.source(name)?;
    let bar = super::progress::bar(name);
    bar.set_message("fetching");
    let what = format!("source {name}");
    let fetched = plumb::ingest::fetch(dir, &def, wait, &super::waiting_for(&what));
    bar.finish_and_clear();
    let (source, _source_lock) = fetched?;
    let store = super::open_writer(dir, wait)?;
    let started = Instant::now();
    let bar = super::progress::bar(name);
    let progress_bar = bar.clone();
    let report = plumb::ingest::ingest_source(
        &store,
        name,
        source.as_ref(),
        Box::new(move |what: &str, done: u64, total: u64| {
            progress_bar.set_message(what.to_owned());
            super::progress::update(&progress_bar, done, total);
        }),
    );
    bar.finish_and_clear();
    let report = report?;
    let paths = plumb::ingest::path_warnings(&store, name).within(|| format!("source {name:?}"))?;
    for w in report.warnings.iter().chain(&paths) {
        errln!("plumb: warning: {name}: {w}");
    }
    let secs = started.elapsed().as_secs_f64();
    match report.new_snapshots.as_slice() {
        [] => outln!(
            "{name}: up to date ({} files read, {secs:.2}s)",
            report.files_read
        ),
        new => {
            let last = new.last().expect("non-empty");
            let s = store.snapshot(last)?;
            outln!(
                "{name}: {} new snapshot{} (latest {} {}), {} files read, {}, {secs:.2}s",
                new.len(),
                if new.len() == 1 { "" } else { "s" },
                s.revision,
                super::output::short(last),
                report.files_read,
                human_bytes(report.bytes_read),
            );
        }
    }
    Ok(())
}

/// Bytes in binary units, one decimal.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
