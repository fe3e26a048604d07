//! Rebuilding the index from the pack files alone: every intact object
//! record is indexed, the journal ([`super::journal`]) is replayed into the
//! tables it keeps, and the tables derived from logs and snapshots
//! (`revisions`, `times`, `snapshots`) are computed again. The new index is
//! written beside the old one and swapped in atomically; the old one is
//! kept as `FILE.damaged-TIME` (`spec/store.md`, "Repair").

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use plumb_core::engine::{Batch, Table};
use plumb_core::journal::{Entry, TAG};
use plumb_core::{ObjectId, SnapshotId};

use super::chunked;
use super::index::{LogEntry, encode_entry, keyed, time_key, unkeyed};
use super::journal::{self, Found};
use super::lock::{Holder, Wait};
use super::packs::{CHUNKED_POINTER, Location, POINTER, Packs, pack_name};
use super::{EngineKind, Mode, PACKS_DIR, Store, StoreError, packing};

/// A row of the new index: table, key, value.
type Row = (Table, Vec<u8>, Vec<u8>);

/// Rows written to the new index per batch.
const BATCH_ROWS: usize = 1 << 16;

/// What a repair did and could not do.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Pack files read.
    pub packs: u64,
    /// Objects indexed (one intact copy each).
    pub objects: u64,
    /// Journal entries replayed (a checkpoint counts as one).
    pub journal_entries: u64,
    /// Rows of the journaled tables recovered.
    pub rows: u64,
    /// Where the index from before the repair is kept, when there was one.
    pub kept: Option<PathBuf>,
    /// What could not be recovered, one line each.
    pub lost: Vec<String>,
    /// Damage met on the way that cost nothing by itself (a torn pack
    /// tail, a corrupt copy of an object): anything it cost appears in
    /// `lost` or as a missing object.
    pub notes: Vec<String>,
}

/// What the packs hold.
#[derive(Default)]
struct Salvage {
    /// Each object's first intact record, and the pointer flag it takes
    /// (a large blob's chunk list is pointed at as one).
    objects: HashMap<ObjectId, (Location, u8)>,
    journal: Vec<Found>,
    /// Corrupt records: pack, offset, the id they claim.
    corrupt: Vec<(u32, u64, ObjectId)>,
}

/// Reads every record of every pack, verifying each.
fn salvage(packs: &Packs, report: &mut RepairReport) -> Result<Salvage, StoreError> {
    let mut out = Salvage::default();
    for number in packs.list()? {
        report.packs += 1;
        let scanned = packs.scan(number, |id, loc, packed| {
            if packed.first() == Some(&chunked::CHUNKED) {
                // A chunk list: its chunks are objects of their own, each
                // verified; the list itself decodes or is corrupt.
                match chunked::unpack_list(&id, &packed) {
                    Ok(_) => {
                        out.objects.entry(id).or_insert((loc, CHUNKED_POINTER));
                    }
                    Err(_) => out.corrupt.push((number, loc.offset, id)),
                }
                return Ok(());
            }
            match packing::unpack(&id, &packed) {
                Ok(canonical) if canonical.first() == Some(&TAG) => {
                    match Entry::decode(&canonical) {
                        Ok(entry) => out.journal.push(Found {
                            pack: number,
                            offset: loc.offset,
                            entry,
                        }),
                        Err(_) => out.corrupt.push((number, loc.offset, id)),
                    }
                }
                Ok(_) => {
                    out.objects.entry(id).or_insert((loc, POINTER));
                }
                Err(_) => out.corrupt.push((number, loc.offset, id)),
            }
            Ok(())
        })?;
        if scanned.end < scanned.size {
            report.notes.push(format!(
                "{}: {} bytes from offset {} are not whole records (a torn end, or a damaged length)",
                pack_name(number),
                scanned.size - scanned.end,
                scanned.end
            ));
        }
    }
    let mut per_pack: HashMap<u32, (u64, u64, ObjectId, bool)> = HashMap::new();
    for (pack, offset, id) in &out.corrupt {
        let e = per_pack
            .entry(*pack)
            .or_insert((0, *offset, *id, out.objects.contains_key(id)));
        e.0 += 1;
    }
    let mut packs_hit: Vec<_> = per_pack.into_iter().collect();
    packs_hit.sort_unstable_by_key(|(p, _)| *p);
    for (pack, (n, offset, id, copy)) in packs_hit {
        report.notes.push(format!(
            "{}: {n} corrupt record{} (first at offset {offset}, of {id}{})",
            pack_name(pack),
            if n == 1 { "" } else { "s" },
            if copy {
                ", which has an intact copy"
            } else {
                ""
            }
        ));
    }
    Ok(out)
}

/// Removes a file or directory left by an earlier, killed repair.
fn remove_any(path: &Path) -> Result<(), StoreError> {
    let io_err = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err),
        Ok(_) => fs::remove_file(path).map_err(io_err),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

fn commit_in_batches(
    engine: &dyn plumb_core::engine::Engine,
    rows: impl IntoIterator<Item = Row>,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    for (table, key, value) in rows {
        batch.put(table, key, value);
        if batch.ops.len() >= BATCH_ROWS {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        engine.commit(batch)?;
    }
    Ok(())
}

/// The rows `revisions`, `times` and `snapshots` derive from a log row and
/// its snapshot; `None` when the snapshot is not in the packs.
fn derived(
    packs: &Packs,
    objects: &HashMap<ObjectId, (Location, u8)>,
    key: &[u8],
    value: &[u8],
) -> Option<[Row; 3]> {
    let (name, seq) = unkeyed(key)?;
    let seq = u64::from_be_bytes(seq.try_into().ok()?);
    let id = SnapshotId::new(ObjectId::from_bytes(value.try_into().ok()?));
    let oid = id.object_id();
    let (loc, _) = *objects.get(&oid)?;
    let canonical = packing::unpack(&oid, &packs.read(&oid, loc).ok()?).ok()?;
    let snapshot = plumb_core::decode_snapshot(&canonical).ok()?;
    let name = std::str::from_utf8(name).ok()?;
    let entry = LogEntry { seq, id };
    let mut time = time_key(snapshot.committer.time).to_vec();
    time.extend_from_slice(&seq.to_be_bytes());
    let mut snap_key = id.as_bytes().to_vec();
    snap_key.extend_from_slice(name.as_bytes());
    Some([
        (
            Table::Revisions,
            keyed(name, snapshot.revision.as_bytes()),
            encode_entry(&entry),
        ),
        (Table::Times, keyed(name, &time), id.as_bytes().to_vec()),
        (Table::Snapshots, snap_key, seq.to_be_bytes().to_vec()),
    ])
}

/// Writes the new index at `path`: objects, the journal's rows, the
/// derived rows, and the journal's generation.
fn write_index(
    kind: &EngineKind,
    path: &Path,
    packs: &Packs,
    salvage: &Salvage,
    report: &mut RepairReport,
) -> Result<(), StoreError> {
    let opener = kind.opener.ok_or_else(|| StoreError::Format {
        path: path.to_path_buf(),
        reason: format!("this plumb was built without the {} engine", kind.name),
    })?;
    let engine = (opener.create)(path)?;
    let mut objects: Vec<_> = salvage.objects.iter().collect();
    objects.sort_unstable_by_key(|(id, _)| **id);
    report.objects = objects.len() as u64;
    commit_in_batches(
        engine.as_ref(),
        objects.into_iter().map(|(id, (loc, flag))| {
            (Table::Objects, id.as_bytes().to_vec(), loc.encode_as(*flag))
        }),
    )?;

    let replayed = journal::replay(salvage.journal.iter().cloned());
    report.journal_entries = replayed.entries;
    report.rows = replayed.rows.len() as u64;
    if !replayed.found {
        report.lost.push(
            "the packs hold no journal (the store was written by a plumb from before it): \
             only objects are recovered, not source definitions, logs, refs, targets, \
             inventories or runs"
                .into(),
        );
    }
    for (first, last) in &replayed.gaps {
        report.lost.push(if first == last {
            format!("journal entry {first} is not in the packs: what it wrote is not recovered")
        } else {
            format!(
                "journal entries {first} to {last} are not in the packs: what they wrote is not recovered"
            )
        });
    }
    let mut derived_rows = Vec::new();
    for ((table, key), value) in &replayed.rows {
        if *table == Table::Log
            && let Some(rows) = derived(packs, &salvage.objects, key, value)
        {
            derived_rows.extend(rows);
        }
    }
    commit_in_batches(
        engine.as_ref(),
        replayed
            .rows
            .into_iter()
            .map(|((table, key), value)| (table, key, value))
            .chain(derived_rows),
    )?;
    let mut batch = Batch::new();
    journal::put_generation(&mut batch, replayed.generation);
    engine.commit(batch)?;
    Ok(())
}

/// Where the index from before a repair is kept: `FILE.damaged-TIME`, with
/// a counter should two repairs meet in one second.
fn kept_name(dir: &Path, file: &str) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let mut path = dir.join(format!("{file}.damaged-{stamp}"));
    let mut n = 1;
    while fs::symlink_metadata(&path).is_ok() {
        n += 1;
        path = dir.join(format!("{file}.damaged-{stamp}-{n}"));
    }
    path
}

/// Puts the new index at `tmp` in place of the live one, keeping the old
/// one. A file is kept by a hard link and replaced by one rename, so the
/// live name always names a whole index; a directory (sled) is moved
/// aside first, and a kill between the two renames leaves no index, which
/// the next repair rebuilds.
fn swap_in(dir: &Path, file: &str, tmp: &Path) -> Result<Option<PathBuf>, StoreError> {
    let live = dir.join(file);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let kept = match fs::symlink_metadata(&live) {
        Ok(m) => {
            let kept = kept_name(dir, file);
            if m.is_dir() {
                fs::rename(&live, &kept).map_err(io_err(&live))?;
            } else {
                fs::hard_link(&live, &kept).map_err(io_err(&kept))?;
            }
            Some(kept)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&live)(e)),
    };
    fs::rename(tmp, &live).map_err(io_err(&live))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(kept)
}

/// Rebuilds the index of the store at `dir` from its pack files, holding
/// the writer turn (waiting for it as `wait` allows), and returns the
/// store opened on the new index, still holding the turn, with what was
/// done. The old index is never read: a repair works the same on a
/// damaged, an intact or a deleted one.
pub fn rebuild(
    dir: &Path,
    wait: Wait,
    waiting: &dyn Fn(&Holder),
) -> Result<(Store, RepairReport), StoreError> {
    let format = Store::read_format(dir)?;
    let kind = format.engine;
    let turn = Store::take_turn(dir, wait, waiting)?;
    let mut report = RepairReport::default();
    let packs = Packs::open(dir.join(PACKS_DIR), true)?;
    let salvage = salvage(&packs, &mut report)?;
    let tmp = dir.join(format!("{}.repair-tmp", kind.file));
    remove_any(&tmp)?;
    write_index(kind, &tmp, &packs, &salvage, &mut report)?;
    report.kept = swap_in(dir, kind.file, &tmp)?;
    let mut store = Store::open_kind(dir, &format, Mode::ReadWrite)?;
    store.turn = Some(turn);
    Ok((store, report))
}
