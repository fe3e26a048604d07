//! The journal: every index batch that writes what objects cannot give
//! back (source definitions, logs, refs, targets, inventories, runs) is
//! also appended to the pack, as an entry ([`plumb_core::journal`]), before
//! the batch commits, so a lost or damaged index can be rebuilt from the
//! packs alone ([`super::repair`]).
//!
//! Entries are ordered by a generation kept in the index (`meta/journal`)
//! and committed in the same batch as the writes it numbers: an index that
//! lost its last batches (a crash before they were durable) hands out
//! their numbers again, and replay lets a later entry of generation `g`
//! replace every earlier one of `g` or more (`spec/store.md`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use plumb_core::ObjectId;
use plumb_core::engine::{Batch, KeyRange, Op, Table};
use plumb_core::journal::{Entry, Form, TABLES, keeps, op_table};

use super::packs::Location;
use super::{Store, StoreError, packing};

/// The `meta` key holding the generation of the last journal entry the
/// index holds, u64 big-endian.
pub const GENERATION_KEY: &[u8] = b"journal";

/// The `meta` key holding where the last checkpoint lies, as a pack
/// pointer (`spec/store.md`): `gc` counts it as live.
pub const CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// Set to `off`, the store writes no journal: for measuring what it costs
/// (`bench/git_bench.py`), never for use (a store written so cannot be
/// repaired past the gap).
const SWITCH: &str = "PLUMB_JOURNAL";

/// The journal's state in a writing process.
#[derive(Debug, Default)]
pub(super) struct Journal {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The generation of the last entry committed, once read from the index.
    last: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is one number, set after the commit it counts.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the journal is written (see [`SWITCH`]).
fn enabled() -> bool {
    std::env::var_os(SWITCH).is_none_or(|v| v != "off")
}

/// The generation a `meta` value holds.
pub(super) fn decode_generation(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

/// The journal entry's record id: the BLAKE3 hash of its canonical bytes,
/// as for objects, so reading it back verifies it.
fn append(store: &Store, entry: &Entry) -> Result<Location, StoreError> {
    let bytes = entry.encode();
    let id = ObjectId::of_encoding(&bytes);
    let packs = store.packs.as_ref().ok_or_else(|| {
        StoreError::Invalid("a journal needs pack files (a store on disk)".into())
    })?;
    let loc = packs.append(&id, &packing::pack(&bytes))?;
    // Into the file at once (not yet synced): a process killed after the
    // index commit still leaves the entry to the next reader of the pack.
    packs.flush()?;
    Ok(loc)
}

/// Adds to `batch` the `meta` row saying the index holds the journal up
/// to `generation`.
pub(super) fn put_generation(batch: &mut Batch, generation: u64) {
    batch.put(
        Table::Meta,
        GENERATION_KEY.to_vec(),
        generation.to_be_bytes().to_vec(),
    );
}

/// The whole state of the journaled tables, as a checkpoint entry.
fn checkpoint_of(store: &Store, generation: u64) -> Result<Entry, StoreError> {
    let mut entry = Entry::new(generation, Form::Checkpoint);
    for (table, _) in TABLES {
        store
            .engine
            .scan(table, KeyRange::all(), false, &mut |k, v| {
                entry.put(table, k.to_vec(), v.to_vec());
                Ok(true)
            })?;
    }
    Ok(entry)
}

impl Store {
    /// Commits `batch`, first journaling what it writes to journaled
    /// tables; see [`Store::commit`] for durability.
    pub(super) fn journaled_commit(&self, mut batch: Batch) -> Result<(), StoreError> {
        let journaled = self.packs.is_some()
            && enabled()
            && (batch.ops.iter().any(|op| keeps(op_table(op)))
                || batch.expect.iter().any(|e| keeps(e.table)));
        if !journaled {
            return self.commit_unjournaled(batch);
        }
        let mut state = lock(&self.journal.state);
        let last = match self.last_generation(&mut state)? {
            Some(last) => last,
            None => {
                // A store written before the journal: its history starts
                // with a checkpoint of everything the index holds now.
                append(self, &checkpoint_of(self, 1)?)?;
                1
            }
        };
        let generation = last + 1;
        let entry = Entry {
            generation,
            form: Form::Batch,
            expect: batch.expect.clone(),
            ops: batch
                .ops
                .iter()
                .filter(|op| keeps(op_table(op)))
                .cloned()
                .collect(),
        };
        append(self, &entry)?;
        put_generation(&mut batch, generation);
        self.commit_unjournaled(batch)?;
        state.last = Some(generation);
        Ok(())
    }

    /// The generation of the last entry committed: `Ok(None)` for a store
    /// from before the journal (no `meta` value).
    fn last_generation(&self, state: &mut State) -> Result<Option<u64>, StoreError> {
        if state.last.is_none() {
            state.last = match self.engine.get(Table::Meta, GENERATION_KEY)? {
                None => None,
                Some(v) => Some(
                    decode_generation(&v).ok_or_else(|| StoreError::CorruptIndex {
                        table: Table::Meta,
                        key: "journal".into(),
                        reason: "expected 8 bytes".into(),
                    })?,
                ),
            };
        }
        Ok(state.last)
    }

    /// Where the last checkpoint `gc` wrote lies, if any (an unreadable
    /// value counts as none: it only spares a rewrite).
    pub(super) fn last_checkpoint(&self) -> Result<Option<Location>, StoreError> {
        Ok(self
            .engine
            .get(Table::Meta, CHECKPOINT_KEY)?
            .and_then(|v| Location::decode(&v)))
    }

    /// Marks a new store's journal as complete from its first entry.
    pub(super) fn start_journal(&self) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        put_generation(&mut batch, 0);
        self.commit_unjournaled(batch)
    }

    /// Appends a checkpoint (the whole state of the journaled tables) and
    /// commits its generation durably; returns the pack it went to, which
    /// `gc` must not rewrite in the same run. Entries before it are no
    /// longer needed. `None` for a store without packs or journal.
    pub(super) fn journal_checkpoint(&self) -> Result<Option<u32>, StoreError> {
        if self.packs.is_none() || !enabled() {
            return Ok(None);
        }
        let mut state = lock(&self.journal.state);
        let generation = self.last_generation(&mut state)?.map_or(1, |g| g + 1);
        let loc = append(self, &checkpoint_of(self, generation)?)?;
        let mut batch = Batch::new();
        put_generation(&mut batch, generation);
        batch.put(Table::Meta, CHECKPOINT_KEY.to_vec(), loc.encode());
        self.commit_unjournaled(batch)?;
        state.last = Some(generation);
        Ok(Some(loc.pack))
    }
}

/// A journal entry found in a pack, where it was found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The pack's number.
    pub pack: u32,
    /// The record's offset.
    pub offset: u64,
    /// The entry.
    pub entry: Entry,
}

/// What replaying a journal gave.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The journaled tables' rows.
    pub rows: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
    /// The generation of the last entry replayed (0 when none).
    pub generation: u64,
    /// Entries replayed (a checkpoint counts as one).
    pub entries: u64,
    /// Entries skipped because their preconditions did not hold: batches
    /// that never committed.
    pub skipped: u64,
    /// Ranges of generations absent from the history (`first..=last`).
    pub gaps: Vec<(u64, u64)>,
    /// Whether a history was found at all.
    pub found: bool,
}

/// Replays entries found in pack order (pack number, then offset): an
/// entry of generation `g` replaces every earlier one of `g` or more
/// (their batches never committed, or the index lost them); the history
/// then starts at the last checkpoint (or at generation 1), and each batch
/// applies when its preconditions hold on the state before it.
pub fn replay(found: impl IntoIterator<Item = Found>) -> Replayed {
    let mut kept: Vec<Entry> = Vec::new();
    for f in found {
        while kept
            .last()
            .is_some_and(|e| e.generation >= f.entry.generation)
        {
            kept.pop();
        }
        kept.push(f.entry);
    }
    let mut out = Replayed {
        found: !kept.is_empty(),
        ..Replayed::default()
    };
    let start = kept
        .iter()
        .rposition(|e| e.form == Form::Checkpoint)
        .unwrap_or(0);
    let mut expected = if kept.get(start).is_some_and(|e| e.form == Form::Checkpoint) {
        None
    } else {
        Some(1)
    };
    for entry in kept.drain(start..) {
        if let Some(want) = expected
            && entry.generation > want
        {
            out.gaps.push((want, entry.generation - 1));
        }
        expected = Some(entry.generation + 1);
        out.generation = entry.generation;
        out.entries += 1;
        if entry.form == Form::Checkpoint {
            out.rows.clear();
        } else if !entry
            .expect
            .iter()
            .all(|e| out.rows.get(&(e.table, e.key.clone())) == e.value.as_ref())
        {
            out.skipped += 1;
            continue;
        }
        for op in entry.ops {
            match op {
                Op::Put { table, key, value } => {
                    out.rows.insert((table, key), value);
                }
                Op::Delete { table, key } => {
                    out.rows.remove(&(table, key));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use plumb_core::engine::Expect;

    fn batch(generation: u64, key: &str, expect: Option<Option<&str>>) -> Found {
        let mut entry = Entry::new(generation, Form::Batch);
        if let Some(v) = expect {
            entry.expect.push(Expect {
                table: Table::Refs,
                key: b"head".to_vec(),
                value: v.map(|v| v.as_bytes().to_vec()),
            });
        }
        entry.put(Table::Refs, b"head".to_vec(), key.as_bytes().to_vec());
        Found {
            pack: 0,
            offset: 0,
            entry,
        }
    }

    fn head(r: &Replayed) -> Option<&str> {
        r.rows
            .get(&(Table::Refs, b"head".to_vec()))
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn later_entries_replace_lost_ones_and_failed_preconditions_skip() {
        // 2 and 3 were lost by the index (a crash before they were
        // durable); the next process wrote 2 again.
        let r = replay([
            batch(1, "a", Some(None)),
            batch(2, "b", Some(Some("a"))),
            batch(3, "c", Some(Some("b"))),
            batch(2, "x", Some(Some("a"))),
            // A batch whose precondition failed: it never committed.
            batch(3, "y", Some(Some("b"))),
        ]);
        assert_eq!(head(&r), Some("x"));
        assert_eq!((r.generation, r.entries, r.skipped), (3, 3, 1));
        assert!(r.gaps.is_empty());
    }

    #[test]
    fn a_checkpoint_starts_the_history_and_gaps_are_found() {
        let mut cp = Entry::new(5, Form::Checkpoint);
        cp.put(Table::Refs, b"head".to_vec(), b"c".to_vec());
        let r = replay([
            batch(1, "a", None),
            Found {
                pack: 1,
                offset: 0,
                entry: cp,
            },
            batch(6, "d", Some(Some("c"))),
            batch(9, "e", None),
        ]);
        assert_eq!(head(&r), Some("e"));
        assert_eq!(r.gaps, vec![(7, 8)]);
        let r = replay([batch(3, "a", None)]);
        assert_eq!(r.gaps, vec![(1, 2)]);
    }
}
