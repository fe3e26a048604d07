//! `plumb fsck` and `plumb gc`.

use anyhow::bail;

use plumb::store::Store;

use super::exit;
use super::ingest_cmd::human_bytes;

pub fn fsck(store: &Store) -> anyhow::Result<u8> {
    let report = plumb::fsck::fsck(store, &|_| {})?;
    for p in &report.problems {
        eprintln!("plumb: fsck: {p}");
    }
    if !report.problems.is_empty() {
        bail!(
            "store is damaged: {} problem{} found in {} objects",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            report.objects
        );
    }
    println!(
        "ok: {} objects, {} snapshots in {} sources verified",
        report.objects, report.snapshots, report.sources
    );
    Ok(exit::OK)
}

pub fn gc(store: &Store) -> anyhow::Result<u8> {
    let r = plumb::gc::gc(store)?;
    println!(
        "removed {} unreachable objects ({}), kept {}",
        r.removed,
        human_bytes(r.bytes_removed),
        r.kept
    );
    Ok(exit::OK)
}
