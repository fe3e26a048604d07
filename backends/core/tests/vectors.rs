//! Checks the decoder and encoders against the golden vectors in
//! `spec/vectors/objects.txt` (format described at the top of that file).

use crate::encode;
use plumb_core::leb128::Leb128Error;
use plumb_core::{
    DecodeError, Kind, NameError, Object, ObjectId, decode, decode_blob, decode_snapshot,
    decode_tree,
};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/objects.txt"
);

#[derive(Debug)]
pub(crate) struct Vector {
    pub(crate) name: String,
    line: usize,
    pub(crate) valid: bool,
    kind: Option<String>,
    /// What generates a valid vector's input, where the file says
    /// (`vectors/chunks.txt`).
    pub(crate) content: Option<String>,
    pub(crate) hex: String,
    pub(crate) id: Option<String>,
    pub(crate) error: Option<String>,
}

impl Vector {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        assert!(
            self.hex.len().is_multiple_of(2),
            "{}: odd number of hex digits",
            self.name
        );
        (0..self.hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&self.hex[i..i + 2], 16)
                    .unwrap_or_else(|e| panic!("{}: bad hex: {e}", self.name))
            })
            .collect()
    }
}

fn load() -> Vec<Vector> {
    load_from(VECTORS)
}

/// The vectors of a file in the format of `spec/vectors/objects.txt`.
pub(crate) fn load_from(path: &str) -> Vec<Vector> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut out: Vec<Vector> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("line {}: no `key:` in {line:?}", i + 1));
        let value = value.trim();
        if key == "valid" || key == "invalid" {
            out.push(Vector {
                name: value.to_owned(),
                line: i + 1,
                valid: key == "valid",
                kind: None,
                content: None,
                hex: String::new(),
                id: None,
                error: None,
            });
            continue;
        }
        let v = out
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: field before the first vector", i + 1));
        match key {
            "kind" => v.kind = Some(value.to_owned()),
            "hex" => v.hex.push_str(value),
            "id" => v.id = Some(value.to_owned()),
            "error" => v.error = Some(value.to_owned()),
            "content" => v.content = Some(value.to_owned()),
            "note" => {}
            _ => panic!("line {}: unknown field {key:?}", i + 1),
        }
    }
    let mut names: Vec<&str> = out.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "vector name used twice");
    }
    out
}

fn id(object: &Object) -> ObjectId {
    match object {
        Object::Blob(b) => b.id().into(),
        Object::Tree(t) => t.id().into(),
        Object::Snapshot(s) => s.id().expect("a decoded snapshot has an id").into(),
    }
}

/// The vector-file name of an error: its variant, and for `Number` and
/// `BadName` the inner reason after a slash.
fn error_name(e: &DecodeError) -> String {
    match e {
        DecodeError::Truncated { .. } => "Truncated".into(),
        DecodeError::Number { source, .. } => match source {
            Leb128Error::Truncated => "Number/Truncated".into(),
            Leb128Error::Overlong => "Number/Overlong".into(),
            Leb128Error::Overflow => "Number/Overflow".into(),
        },
        DecodeError::UnknownKind { .. } => "UnknownKind".into(),
        DecodeError::WrongKind { .. } => "WrongKind".into(),
        DecodeError::UnsupportedVersion { .. } => "UnsupportedVersion".into(),
        DecodeError::TrailingBytes { .. } => "TrailingBytes".into(),
        DecodeError::BadName { source, .. } => match source {
            NameError::Empty => "BadName/Empty".into(),
            NameError::Dot { .. } => "BadName/Dot".into(),
            NameError::Forbidden { .. } => "BadName/Forbidden".into(),
        },
        DecodeError::Unsorted { .. } => "Unsorted".into(),
        DecodeError::UnknownEntryKind { .. } => "UnknownEntryKind".into(),
        DecodeError::NotUtf8 { .. } => "NotUtf8".into(),
        DecodeError::Empty { .. } => "Empty".into(),
        DecodeError::OutOfRange { .. } => "OutOfRange".into(),
        DecodeError::Attributes { .. } => "Attributes".into(),
    }
}

/// The result of the typed decoder for `kind`, as an `Object`.
fn decode_as(kind: Kind, bytes: &[u8]) -> Result<Object, DecodeError> {
    match kind {
        Kind::Blob => decode_blob(bytes).map(Object::Blob),
        Kind::Tree => decode_tree(bytes).map(Object::Tree),
        Kind::Snapshot => decode_snapshot(bytes).map(Object::Snapshot),
    }
}

const KINDS: [Kind; 3] = [Kind::Blob, Kind::Tree, Kind::Snapshot];

#[test]
fn valid_vectors_round_trip_and_hash() {
    let vectors = load();
    let mut seen = [0usize; 3];
    for v in vectors.iter().filter(|v| v.valid) {
        let ctx = format!("vector {} (line {})", v.name, v.line);
        let bytes = v.bytes();
        let object = decode(&bytes).unwrap_or_else(|e| panic!("{ctx}: does not decode: {e}"));

        let kind = v
            .kind
            .as_deref()
            .unwrap_or_else(|| panic!("{ctx}: no kind"));
        assert_eq!(object.kind().as_str(), kind, "{ctx}: kind");
        seen[KINDS.iter().position(|&k| k == object.kind()).unwrap()] += 1;

        assert_eq!(encode(&object), bytes, "{ctx}: re-encoding differs");

        let want = v.id.as_deref().unwrap_or_else(|| panic!("{ctx}: no id"));
        assert_eq!(id(&object).to_string(), want, "{ctx}: id");
        assert_eq!(
            ObjectId::of_encoding(&bytes).to_string(),
            want,
            "{ctx}: id of bytes"
        );
        assert_eq!(
            want.parse::<ObjectId>().unwrap(),
            id(&object),
            "{ctx}: id parse"
        );
        if let Object::Blob(b) = &object {
            assert_eq!(
                plumb_core::Blob::id_of(b.data()).to_string(),
                want,
                "{ctx}: Blob::id_of"
            );
        }

        for k in KINDS {
            let typed = decode_as(k, &bytes);
            if k == object.kind() {
                assert_eq!(typed.as_ref(), Ok(&object), "{ctx}: typed decoder");
            } else {
                assert_eq!(
                    typed,
                    Err(DecodeError::WrongKind {
                        expected: k,
                        found: object.kind()
                    }),
                    "{ctx}: {k} decoder"
                );
            }
        }
        assert!(v.error.is_none(), "{ctx}: a valid vector has no error");
    }
    assert!(
        seen.iter().all(|&n| n >= 3),
        "too few valid vectors per kind: {seen:?}"
    );
}

#[test]
fn invalid_vectors_are_rejected() {
    let vectors = load();
    let mut count = 0;
    for v in vectors.iter().filter(|v| !v.valid) {
        let ctx = format!("vector {} (line {})", v.name, v.line);
        let bytes = v.bytes();
        let err = match decode(&bytes) {
            Ok(object) => panic!("{ctx}: decoded to {object:?}"),
            Err(e) => e,
        };
        let want = v
            .error
            .as_deref()
            .unwrap_or_else(|| panic!("{ctx}: no error"));
        assert_eq!(error_name(&err), want, "{ctx}: wrong error ({err})");
        assert!(
            v.kind.is_none() && v.id.is_none(),
            "{ctx}: kind or id on an invalid vector"
        );

        // The typed decoder for the kind the bytes claim fails the same way.
        if let Some(kind) = bytes.first().and_then(|&b| Kind::from_byte(b)) {
            assert_eq!(decode_as(kind, &bytes), Err(err), "{ctx}: typed decoder");
        }
        count += 1;
    }
    assert!(count >= 16, "only {count} invalid vectors");
}
