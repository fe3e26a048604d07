//! `fsck`'s check of the index's own rows: every row of `refs`, `sources`,
//! `log`, `revisions`, `times`, `snapshots`, `cache` and `meta` decodes, belongs to
//! a source that exists, and agrees with that source's log
//! (`spec/store.md`). Rows wrong in the same way are counted on one line.

use std::collections::{BTreeMap, HashMap};

use plumb_core::{Kind, SnapshotId};

use super::fsck::{Problems, Verified};
use super::index::{decode_entry, decode_named_ref, decode_source, snapshot_id};
use super::{Store, StoreError, Table};

/// Each source's log: position to snapshot.
pub type Logs = BTreeMap<String, HashMap<u64, SnapshotId>>;

/// Problems of one kind in one table for one source: a count and the first
/// key.
#[derive(Default)]
struct Tally(BTreeMap<(Table, String, String), (u64, String)>);

impl Tally {
    fn add(&mut self, table: Table, source: &str, what: impl Into<String>, key: &[u8]) {
        let e = self
            .0
            .entry((table, source.to_owned(), what.into()))
            .or_insert_with(|| (0, String::from_utf8_lossy(key).escape_debug().to_string()));
        e.0 += 1;
    }

    fn report(self, problems: &mut Problems) {
        for ((table, source, what), (n, first)) in self.0 {
            let rows = if n == 1 { "row" } else { "rows" };
            let of = if source.is_empty() {
                String::new()
            } else {
                format!(" of source {source:?}")
            };
            problems.index(format!("{table}: {n} {rows}{of} {what} (first: {first})"));
        }
    }
}

/// The source name before the first NUL of a key, and what follows it.
fn split_name(key: &[u8]) -> Option<(&str, &[u8])> {
    let (name, rest) = super::unkeyed(key)?;
    Some((std::str::from_utf8(name).ok()?, rest))
}

/// Checks every row of the index's own tables against `logs`; returns the
/// count of rows read.
pub fn check(
    store: &Store,
    logs: &Logs,
    verified: &Verified,
    problems: &mut Problems,
) -> Result<u64, StoreError> {
    let mut rows = 0u64;
    let mut tally = Tally::default();
    let logged = |source: &str, seq: u64, id: &SnapshotId| {
        logs.get(source)
            .and_then(|l| l.get(&seq))
            .is_some_and(|s| s == id)
    };

    store.for_prefix(Table::Sources, b"", false, |k, v| {
        rows += 1;
        match decode_source(k, v) {
            Ok(def) if def.name.as_bytes() == k => {}
            Ok(_) => tally.add(Table::Sources, "", "name another source than their key", k),
            Err(_) => tally.add(Table::Sources, "", "do not decode", k),
        }
        Ok(true)
    })?;

    store.for_prefix(Table::Refs, b"", false, |k, v| {
        rows += 1;
        if let Some(name) = k.strip_prefix(b"source/") {
            let name = String::from_utf8_lossy(name);
            match decode_entry(Table::Refs, k, v) {
                Ok(e) if logged(&name, e.seq, &e.id) => {}
                Ok(_) => tally.add(Table::Refs, &name, "name a head its log does not hold", k),
                Err(_) => tally.add(Table::Refs, &name, "do not decode", k),
            }
        } else if let Some((name, refname)) = k.strip_prefix(b"ref\0").and_then(split_name) {
            let refname = String::from_utf8_lossy(refname).into_owned();
            match decode_named_ref(refname, k, v) {
                Ok(_) if !logs.contains_key(name) => {
                    tally.add(Table::Refs, name, "belong to no source", k);
                }
                Ok(r) => {
                    verified.require(r.snapshot.object_id(), Kind::Snapshot, problems, || {
                        format!("source {name:?}: ref {}", r.name)
                    });
                    if let Some(a) = r.annotation {
                        verified.require(a.object_id(), Kind::Blob, problems, || {
                            format!("source {name:?}: annotation of ref {}", r.name)
                        });
                    }
                }
                Err(_) => tally.add(Table::Refs, name, "do not decode", k),
            }
        } else {
            tally.add(Table::Refs, "", "have a key of no known form", k);
        }
        Ok(true)
    })?;

    for table in [Table::Log, Table::Revisions, Table::Times, Table::Cache] {
        store.for_prefix(table, b"", false, |k, v| {
            rows += 1;
            let Some((name, rest)) = split_name(k) else {
                tally.add(table, "", "have a key of no known form", k);
                return Ok(true);
            };
            if !logs.contains_key(name) {
                tally.add(table, name, "belong to no source", k);
                return Ok(true);
            }
            let seq_at = |at: usize| {
                rest.get(at..at + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
            };
            let entry = match table {
                Table::Log if rest.len() == 8 => {
                    snapshot_id(table, k, v).map(|id| seq_at(0).map(|s| (s, id)))
                }
                Table::Times if rest.len() == 16 => {
                    snapshot_id(table, k, v).map(|id| seq_at(8).map(|s| (s, id)))
                }
                Table::Revisions => decode_entry(table, k, v).map(|e| Some((e.seq, e.id))),
                Table::Cache => return Ok(true),
                _ => Ok(None),
            };
            match entry {
                Ok(Some((seq, id))) if logged(name, seq, &id) => {}
                Ok(Some(_)) => tally.add(table, name, "disagree with its log", k),
                Ok(None) | Err(_) => tally.add(table, name, "do not decode", k),
            }
            Ok(true)
        })?;
    }

    store.for_prefix(Table::Snapshots, b"", false, |k, v| {
        rows += 1;
        let (Some(id), Ok(name), Ok(seq)) = (
            k.get(..32).and_then(|b| <[u8; 32]>::try_from(b).ok()),
            std::str::from_utf8(k.get(32..).unwrap_or_default()),
            <[u8; 8]>::try_from(v),
        ) else {
            tally.add(Table::Snapshots, "", "do not decode", k);
            return Ok(true);
        };
        let id = SnapshotId::new(plumb_core::ObjectId::from_bytes(id));
        if !logs.contains_key(name) {
            tally.add(Table::Snapshots, name, "belong to no source", k);
        } else if !logged(name, u64::from_be_bytes(seq), &id) {
            tally.add(Table::Snapshots, name, "disagree with its log", k);
        }
        Ok(true)
    })?;

    store.for_prefix(Table::Meta, b"", false, |k, v| {
        rows += 1;
        let decodes = if k == super::journal::GENERATION_KEY {
            super::journal::decode_generation(v).is_some()
        } else if k == super::journal::CHECKPOINT_KEY {
            super::packs::Location::decode(v).is_some()
        } else {
            tally.add(Table::Meta, "", "have a key of no known form", k);
            true
        };
        if !decodes {
            tally.add(Table::Meta, "", "do not decode", k);
        }
        Ok(true)
    })?;

    // Every logged snapshot is in the snapshot map.
    for (name, log) in logs {
        for (seq, id) in log {
            if !store
                .sources_of(id)?
                .iter()
                .any(|(s, at)| s == name && at == seq)
            {
                tally.add(
                    Table::Snapshots,
                    name,
                    "missing for logged snapshots",
                    format!("#{seq}").as_bytes(),
                );
            }
        }
    }
    tally.report(problems);
    Ok(rows)
}
