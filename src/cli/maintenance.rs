//! `plumb fsck` and `plumb gc`.

use super::output::{errln, outln};
use anyhow::bail;

use std::path::Path;

use plumb::maintenance::FsckReport;
use plumb::store::backup::Verify;
use plumb::store::fsck::{Problem, ProblemKind};
use plumb::store::{EngineCheck, EngineError, Integrity, Store, StoreError, Wait};

use super::output::{print_json, short};

use super::exit;
use super::ingest_cmd::human_bytes;

/// Bytes the store's files take on disk (0 for a store in memory).
fn store_size(store: &Store) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if !meta.is_dir() {
            return meta.len();
        }
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
            .unwrap_or(0)
    }
    store.path().map_or(0, walk)
}

/// What `fsck` learnt of the database from the engine's own check.
struct DatabaseCheck {
    /// `intact`, `repaired`, `unchecked`, `skipped` or `damaged`.
    state: &'static str,
    /// A line to say about it, if any.
    note: Option<String>,
}

fn check_database(dir: &Path, problems: &mut Vec<Problem>) -> anyhow::Result<DatabaseCheck> {
    let (state, note) = match Store::check_engine(dir) {
        Ok(EngineCheck::Ran(Integrity::Intact)) => ("intact", None),
        Ok(EngineCheck::Ran(Integrity::Repaired)) => (
            "repaired",
            Some("the engine found its free-space records inconsistent and rebuilt them".into()),
        ),
        Ok(EngineCheck::Ran(Integrity::Unchecked)) => ("unchecked", None),
        Ok(EngineCheck::Skipped { holder }) => (
            "skipped",
            Some(format!(
                "database pages not checked: {holder} holds the writer's turn (rows and objects are checked)"
            )),
        ),
        Err(StoreError::Engine(e @ EngineError::Damaged { .. })) => {
            problems.push(database_problem(&e));
            ("damaged", None)
        }
        // The check commits what it rebuilds, so it needs room to write.
        Err(StoreError::Engine(EngineError::NoSpace)) => (
            "skipped",
            Some(
                "database pages not checked: the disk is full (rows and objects are checked)"
                    .into(),
            ),
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(DatabaseCheck { state, note })
}

fn database_problem(e: &EngineError) -> Problem {
    Problem {
        kind: ProblemKind::Database,
        object: None,
        detail: e.to_string(),
    }
}

/// Runs `fsck` on the store at `dir`: the engine's check of its database,
/// then every object and row. A database too damaged to read ends the
/// check with what was found.
pub fn fsck(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let mut problems = Vec::new();
    let database = check_database(dir, &mut problems)?;
    let damaged = |e: StoreError, problems: &mut Vec<Problem>| match e {
        StoreError::Engine(e @ EngineError::Damaged { .. }) => {
            if problems.is_empty() {
                problems.push(database_problem(&e));
            }
            Ok(FsckReport::default())
        }
        other => Err(other),
    };
    let report = match Store::open_read_only(dir) {
        Ok(store) => plumb::maintenance::fsck(&store, &|_| {}),
        Err(e) => Err(e),
    };
    let mut report = match report {
        Ok(r) => r,
        Err(e) => damaged(e, &mut problems)?,
    };
    problems.append(&mut report.problems);
    report.problems = problems;
    let count = |kind| report.problems.iter().filter(|p| p.kind == kind).count();
    let summary = format!(
        "{} corrupt object{}, {} missing, {} index problem{}, database {}; {} snapshot{} affected",
        count(ProblemKind::Corrupt),
        plural(count(ProblemKind::Corrupt)),
        count(ProblemKind::Missing),
        count(ProblemKind::Index),
        plural(count(ProblemKind::Index)),
        database.state,
        report.affected.len(),
        plural(report.affected.len()),
    );
    let ok = report.problems.is_empty();
    if json {
        print_json(&serde_json::json!({
            "outcome": if ok { "ok" } else { "damaged" },
            "objects": report.objects,
            "packed_bytes": report.packed_bytes,
            "snapshots": report.snapshots,
            "sources": report.sources,
            "rows": report.rows,
            "database": database.state,
            "problems": problems_json(&report),
            "affected": affected_json(&report),
        }))?;
    } else {
        if let Some(note) = &database.note {
            errln!("plumb: fsck: {note}");
        }
        print_problems("fsck", &report);
    }
    if !ok {
        if json {
            // The document above is the one JSON document; the error is
            // its one line on stderr.
            errln!("plumb: error: store is damaged: {summary}");
            return Ok(exit::ERROR);
        }
        bail!("store is damaged: {summary}");
    }
    if !json {
        outln!(
            "ok: {} objects ({} packed), {} snapshots in {} sources, {} index rows verified; database {}",
            report.objects,
            human_bytes(report.packed_bytes),
            report.snapshots,
            report.sources,
            report.rows,
            database.state,
        );
    }
    Ok(exit::OK)
}

/// `fsck`'s problems as JSON: `kind`, `object`, `detail` each.
fn problems_json(report: &FsckReport) -> Vec<serde_json::Value> {
    report
        .problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "kind": p.kind.name(),
                "object": p.object.map(|o| o.to_string()),
                "detail": p.detail,
            })
        })
        .collect()
}

/// The snapshots `fsck` found reaching a problem, as JSON.
fn affected_json(report: &FsckReport) -> Vec<serde_json::Value> {
    report
        .affected
        .iter()
        .map(|a| {
            serde_json::json!({
                "source": a.source,
                "seq": a.seq,
                "snapshot": a.snapshot.to_string(),
            })
        })
        .collect()
}

/// Prints each problem and affected snapshot on its line of stderr,
/// `plumb: COMMAND: …`.
fn print_problems(command: &str, report: &FsckReport) {
    for p in &report.problems {
        errln!("plumb: {command}: {p}");
    }
    for a in &report.affected {
        errln!(
            "plumb: {command}: affected: {} #{} snapshot {}",
            a.source,
            a.seq,
            short(&a.snapshot)
        );
    }
}

/// Runs `repair` on the store at `dir`: rebuilds its index from the packs
/// and says what could not be recovered (exit 1 when anything).
pub fn repair(dir: &Path, wait: Wait, json: bool) -> anyhow::Result<u8> {
    let what = format!("the store at {}", dir.display());
    let (report, check) = plumb::maintenance::repair(dir, wait, &super::waiting_for(&what))?;
    let lost = report.lost.len() + check.problems.len();
    let ok = lost == 0;
    let kept = report.kept.as_ref().map(|p| p.display().to_string());
    if json {
        print_json(&serde_json::json!({
            "outcome": if ok { "ok" } else { "damaged" },
            "packs": report.packs,
            "objects": report.objects,
            "journal_entries": report.journal_entries,
            "rows": report.rows,
            "snapshots": check.snapshots,
            "sources": check.sources,
            "kept": kept,
            "lost": report.lost,
            "notes": report.notes,
            "problems": problems_json(&check),
            "affected": affected_json(&check),
        }))?;
    } else {
        for line in report.notes.iter().chain(&report.lost) {
            errln!("plumb: repair: {line}");
        }
        print_problems("repair", &check);
    }
    let summary = format!(
        "rebuilt the index from {} pack{}: {} objects, {} journal entries, {} snapshots in {} sources{}",
        report.packs,
        plural(report.packs as usize),
        report.objects,
        report.journal_entries,
        check.snapshots,
        check.sources,
        kept.map_or(String::new(), |k| format!("; the old index is kept as {k}")),
    );
    if ok {
        if !json {
            outln!("{summary}");
        }
        return Ok(exit::OK);
    }
    let error = format!(
        "repair could not recover everything ({lost} problem{}, {} snapshot{} affected); {summary}",
        plural(lost),
        check.affected.len(),
        plural(check.affected.len())
    );
    if json {
        errln!("plumb: error: {error}");
        return Ok(exit::ERROR);
    }
    bail!("{error}")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn gc(mut store: Store) -> anyhow::Result<u8> {
    let r = plumb::maintenance::gc(&store)?;
    outln!(
        "removed {} unreachable objects ({}), kept {}",
        r.removed,
        human_bytes(r.bytes_removed),
        r.kept
    );
    if r.packs_rewritten > 0 {
        outln!(
            "rewrote {} pack file{}, {} freed",
            r.packs_rewritten,
            if r.packs_rewritten == 1 { "" } else { "s" },
            human_bytes(r.bytes_freed_on_disk)
        );
    }
    let before = store_size(&store);
    store.compact()?;
    let after = store_size(&store);
    if before > after {
        outln!("compacted the store: {} freed", human_bytes(before - after));
    }
    Ok(exit::OK)
}

/// Runs `backup` of the store at `dir` into `dest`.
pub fn backup(
    dir: &Path,
    dest: &Path,
    verify_all: bool,
    json: bool,
    wait: Wait,
) -> anyhow::Result<u8> {
    let verify = if verify_all {
        Verify::Objects
    } else {
        Verify::Pointers
    };
    let what = format!("the store at {}", dir.display());
    let started = std::time::Instant::now();
    let r = plumb::store::backup::backup(dir, dest, verify, wait, &super::waiting_for(&what))?;
    let secs = started.elapsed().as_secs_f64();
    if json {
        super::json::print(
            super::json::Outcome::Ok,
            serde_json::json!({
                "store": dir,
                "dest": dest,
                "sources": r.heads.iter().map(|h| serde_json::json!({
                    "name": h.name,
                    "seq": h.seq,
                })).collect::<Vec<_>>(),
                "packs": {
                    "copied": r.packs_copied,
                    "extended": r.packs_extended,
                    "reused": r.packs_reused,
                    "removed": r.packs_removed,
                },
                "bytes": {
                    "copied": r.bytes_copied,
                    "reused": r.bytes_reused,
                    "index": r.index_bytes,
                },
                "objects": r.objects,
                "verified": r.verify.name(),
                "turn_ms": r.turn_held.as_millis() as u64,
                "duration_ms": (secs * 1000.0) as u64,
            }),
        )?;
        return Ok(exit::OK);
    }
    outln!(
        "backed up {} to {}: {} packs copied, {} extended, {} reused, {} removed; {} copied, {} reused, index {}; {} objects checked ({}); {:.2}s, writer turn held {:.3}s",
        dir.display(),
        dest.display(),
        r.packs_copied,
        r.packs_extended,
        r.packs_reused,
        r.packs_removed,
        human_bytes(r.bytes_copied),
        human_bytes(r.bytes_reused),
        human_bytes(r.index_bytes),
        r.objects,
        r.verify.name(),
        secs,
        r.turn_held.as_secs_f64(),
    );
    for h in &r.heads {
        outln!("{} #{}", h.name, h.seq);
    }
    Ok(exit::OK)
}
