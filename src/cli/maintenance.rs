//! `plumb fsck` and `plumb gc`.

use super::output::{errln, outln};
use anyhow::bail;

use plumb::store::Store;

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

pub fn fsck(store: &Store) -> anyhow::Result<u8> {
    let report = plumb::maintenance::fsck(store, &|_| {})?;
    for p in &report.problems {
        errln!("plumb: fsck: {p}");
    }
    if !report.problems.is_empty() {
        bail!(
            "store is damaged: {} problem{} found in {} objects",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            report.objects
        );
    }
    outln!(
        "ok: {} objects ({} packed), {} snapshots in {} sources verified",
        report.objects,
        human_bytes(report.packed_bytes),
        report.snapshots,
        report.sources
    );
    Ok(exit::OK)
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
