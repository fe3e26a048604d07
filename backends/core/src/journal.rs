//! The journal's entry format: index writes that objects cannot give back
//! (source definitions, logs, refs, targets, inventories, runs), kept in
//! the pack files beside the objects so that a lost or damaged index can be
//! rebuilt (`spec/store.md`, "The journal").
//!
//! An entry is written byte by byte like an object (`spec/store.md` gives
//! the layout; `spec/vectors/journal.txt` holds vectors): a tag byte that
//! no object kind uses, a version, the generation, the form, then the
//! preconditions and writes of one index batch. The decoder accepts
//! exactly what the encoder writes, so one entry has one byte string and
//! its BLAKE3 hash, kept as the pack record's id, verifies every read.
//!
//! ```
//! use plumb_core::engine::Table;
//! use plumb_core::journal::{Entry, Form};
//!
//! let mut entry = Entry::new(7, Form::Batch);
//! entry.put(Table::Log, b"app\0\0\0\0\0\0\0\0\x01".to_vec(), vec![0xab; 32]);
//! let bytes = entry.encode();
//! assert_eq!(Entry::decode(&bytes).unwrap(), entry);
//! ```

use crate::engine::{Expect, Op, Table};
use crate::leb128;

/// The first byte of every entry: `J`, which no object kind uses.
pub const TAG: u8 = 0x4a;
/// The entry format's version.
pub const VERSION: u8 = 0x01;

/// The tables the journal keeps, with their codes in an entry. Every other
/// table is derived from these and the objects, or disposable.
pub const TABLES: [(Table, u8); 6] = [
    (Table::Sources, 1),
    (Table::Refs, 2),
    (Table::Log, 3),
    (Table::Targets, 4),
    (Table::Inventory, 5),
    (Table::Runs, 6),
];

/// Whether the journal keeps `table`.
pub fn keeps(table: Table) -> bool {
    code(table).is_some()
}

fn code(table: Table) -> Option<u8> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}

fn table_of(code: u8) -> Option<Table> {
    TABLES.iter().find(|(_, c)| *c == code).map(|(t, _)| *t)
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// One committed batch: its preconditions and writes, to replay in
    /// order on the state before it.
    Batch,
    /// The whole state of the journaled tables at its generation (puts
    /// only): replay starts over from it, and entries before it are no
    /// longer needed.
    Checkpoint,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the store's order of index batches (from 1).
    pub generation: u64,
    /// Batch or checkpoint.
    pub form: Form,
    /// The batch's preconditions on journaled tables (none in a checkpoint).
    pub expect: Vec<Expect>,
    /// Its writes to journaled tables, in order (puts only in a checkpoint).
    pub ops: Vec<Op>,
}

/// Why bytes are not a journal entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The input ended early.
    #[error("journal entry truncated")]
    Truncated,
    /// The tag or version byte is not this format's.
    #[error("not a journal entry of version 1 (starts with {0:#04x} {1:#04x})")]
    NotAnEntry(u8, u8),
    /// A number is not in its one canonical form.
    #[error("journal entry: {0}")]
    Number(#[from] leb128::Leb128Error),
    /// A byte that names something names nothing known.
    #[error("journal entry: unknown {what} {value:#04x}")]
    Unknown {
        /// What the byte names: `form`, `table`, `op`, `presence`.
        what: &'static str,
        /// The byte.
        value: u8,
    },
    /// A checkpoint holds a precondition or a delete.
    #[error("journal entry: a checkpoint holds only puts")]
    CheckpointWrites,
    /// Bytes follow the entry's end.
    #[error("journal entry: {0} bytes after its end")]
    Trailing(usize),
}

impl Entry {
    /// An empty entry.
    pub fn new(generation: u64, form: Form) -> Self {
        Self {
            generation,
            form,
            expect: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a put.
    pub fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put { table, key, value });
    }

    /// Whether it records nothing.
    pub fn is_empty(&self) -> bool {
        self.expect.is_empty() && self.ops.is_empty()
    }

    /// The canonical bytes. Entries are made by the store from journaled
    /// tables only; an op on any other table is left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TAG, VERSION];
        leb128::write(&mut out, self.generation);
        out.push(match self.form {
            Form::Batch => 0,
            Form::Checkpoint => 1,
        });
        let expects: Vec<_> = self.expect.iter().filter(|e| keeps(e.table)).collect();
        leb128::write(&mut out, expects.len() as u64);
        for e in expects {
            out.push(code(e.table).unwrap_or(0));
            bytes(&mut out, &e.key);
            match &e.value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    bytes(&mut out, v);
                }
            }
        }
        let ops: Vec<_> = self.ops.iter().filter(|op| keeps(op_table(op))).collect();
        leb128::write(&mut out, ops.len() as u64);
        for op in ops {
            match op {
                Op::Put { table, key, value } => {
                    out.push(0);
                    out.push(code(*table).unwrap_or(0));
                    bytes(&mut out, key);
                    bytes(&mut out, value);
                }
                Op::Delete { table, key } => {
                    out.push(1);
                    out.push(code(*table).unwrap_or(0));
                    bytes(&mut out, key);
                }
            }
        }
        out
    }

    /// Decodes canonical bytes; anything else is an error.
    pub fn decode(input: &[u8]) -> Result<Self, JournalError> {
        let mut r = Reader { input, at: 0 };
        let (tag, version) = (r.byte()?, r.byte()?);
        if tag != TAG || version != VERSION {
            return Err(JournalError::NotAnEntry(tag, version));
        }
        let generation = r.number()?;
        let form = match r.byte()? {
            0 => Form::Batch,
            1 => Form::Checkpoint,
            value => {
                return Err(JournalError::Unknown {
                    what: "form",
                    value,
                });
            }
        };
        let mut entry = Entry::new(generation, form);
        for _ in 0..r.number()? {
            let table = r.table()?;
            let key = r.bytes()?;
            let value = match r.byte()? {
                0 => None,
                1 => Some(r.bytes()?),
                value => {
                    return Err(JournalError::Unknown {
                        what: "presence",
                        value,
                    });
                }
            };
            entry.expect.push(Expect { table, key, value });
        }
        for _ in 0..r.number()? {
            let op = r.byte()?;
            let table = r.table()?;
            let key = r.bytes()?;
            entry.ops.push(match op {
                0 => Op::Put {
                    table,
                    key,
                    value: r.bytes()?,
                },
                1 => Op::Delete { table, key },
                value => return Err(JournalError::Unknown { what: "op", value }),
            });
        }
        if form == Form::Checkpoint
            && (!entry.expect.is_empty()
                || entry.ops.iter().any(|op| !matches!(op, Op::Put { .. })))
        {
            return Err(JournalError::CheckpointWrites);
        }
        if r.at != input.len() {
            return Err(JournalError::Trailing(input.len() - r.at));
        }
        Ok(entry)
    }
}

/// The table an op writes.
pub fn op_table(op: &Op) -> Table {
    match op {
        Op::Put { table, .. } | Op::Delete { table, .. } => *table,
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    leb128::write(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, JournalError> {
        let b = *self.input.get(self.at).ok_or(JournalError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    fn number(&mut self) -> Result<u64, JournalError> {
        let (n, used) = leb128::read(&self.input[self.at..])?;
        self.at += used;
        Ok(n)
    }

    fn table(&mut self) -> Result<Table, JournalError> {
        let value = self.byte()?;
        table_of(value).ok_or(JournalError::Unknown {
            what: "table",
            value,
        })
    }

    fn bytes(&mut self) -> Result<Vec<u8>, JournalError> {
        let len = self.number()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|&end| end <= self.input.len())
            .ok_or(JournalError::Truncated)?;
        let out = self.input[self.at..end].to_vec();
        self.at = end;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_rejects_what_it_does_not_write() {
        let mut e = Entry::new(300, Form::Batch);
        e.expect.push(Expect {
            table: Table::Refs,
            key: b"source/app".to_vec(),
            value: None,
        });
        e.put(Table::Refs, b"source/app".to_vec(), vec![1; 40]);
        e.ops.push(Op::Delete {
            table: Table::Runs,
            key: b"web\0".to_vec(),
        });
        // Ops on tables the journal does not keep are left out.
        e.put(Table::Objects, vec![0; 32], vec![2]);
        let bytes = e.encode();
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(back.ops.len(), 2);
        assert_eq!(back.encode(), bytes);
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Entry::decode(&long), Err(JournalError::Trailing(1)));
        let mut c = Entry::new(1, Form::Checkpoint);
        c.ops.push(Op::Delete {
            table: Table::Log,
            key: vec![],
        });
        assert_eq!(
            Entry::decode(&c.encode()),
            Err(JournalError::CheckpointWrites)
        );
    }
}
