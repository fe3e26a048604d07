//! Checks the journal entry decoder and encoder against the vectors in
//! `spec/vectors/journal.txt` (format described at the top of that file).

use plumb_core::journal::{Entry, Form, JournalError};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/journal.txt"
);

/// A vector: its name, whether valid, its fields in order, its bytes.
struct Vector {
    name: String,
    valid: bool,
    fields: Vec<(String, String)>,
    bytes: Vec<u8>,
}

impl Vector {
    fn field(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{}: no `{key}:`", self.name))
    }
}

fn load() -> Vec<Vector> {
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}"));
    let mut out: Vec<Vector> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("no `key:` in {line:?}"));
        let value = value.trim();
        match key {
            "valid" | "invalid" => out.push(Vector {
                name: value.to_owned(),
                valid: key == "valid",
                fields: Vec::new(),
                bytes: Vec::new(),
            }),
            "hex" => {
                let v = out.last_mut().expect("a field before any vector");
                for i in (0..value.len()).step_by(2) {
                    v.bytes
                        .push(u8::from_str_radix(&value[i..i + 2], 16).expect("hex digits"));
                }
            }
            _ => out
                .last_mut()
                .expect("a field before any vector")
                .fields
                .push((key.to_owned(), value.to_owned())),
        }
    }
    out
}

fn variant(e: &JournalError) -> &'static str {
    match e {
        JournalError::Truncated => "Truncated",
        JournalError::NotAnEntry(..) => "NotAnEntry",
        JournalError::Number(_) => "Number",
        JournalError::Unknown { .. } => "Unknown",
        JournalError::CheckpointWrites => "CheckpointWrites",
        JournalError::Trailing(_) => "Trailing",
    }
}

#[test]
fn journal_vectors() {
    let vectors = load();
    assert!(vectors.iter().filter(|v| v.valid).count() >= 4);
    assert!(vectors.iter().filter(|v| !v.valid).count() >= 8);
    for v in &vectors {
        match (v.valid, Entry::decode(&v.bytes)) {
            (true, Ok(entry)) => {
                assert_eq!(entry.encode(), v.bytes, "{}: encodes differently", v.name);
                assert_eq!(
                    entry.generation.to_string(),
                    v.field("generation"),
                    "{}",
                    v.name
                );
                let form = match entry.form {
                    Form::Batch => "batch",
                    Form::Checkpoint => "checkpoint",
                };
                assert_eq!(form, v.field("form"), "{}", v.name);
                assert_eq!(
                    entry.expect.len().to_string(),
                    v.field("expect"),
                    "{}",
                    v.name
                );
                assert_eq!(entry.ops.len().to_string(), v.field("ops"), "{}", v.name);
            }
            (true, Err(e)) => panic!("{}: rejected: {e}", v.name),
            (false, Ok(_)) => panic!("{}: accepted", v.name),
            (false, Err(e)) => assert_eq!(variant(&e), v.field("error"), "{}: {e}", v.name),
        }
    }
}
