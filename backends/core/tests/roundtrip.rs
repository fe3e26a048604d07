//! Property tests of the canonical encoding: every valid object survives an
//! encode/decode round trip, and every byte string the decoder accepts is
//! the encoding of what it decodes to (one object, one byte string, one id).

use crate::encode;
use plumb_core::{
    Attrs, Blob, BlobId, DecodeError, EntryValue, Kind, Name, Object, ObjectId, Owner, Person,
    Snapshot, SnapshotError, SnapshotId, Tree, TreeEntry, TreeError, TreeId, decode, decode_blob,
    decode_snapshot, decode_tree,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

/// Largest timezone offset a person may carry, in minutes (±99:59).
const MAX_TZ: i32 = 99 * 60 + 59;

fn object_id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 32]>().prop_map(ObjectId::from_bytes)
}

/// Short byte strings that lean on the bytes the name rules care about.
fn name_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            3 => b'a'..=b'e',
            2 => Just(b'.'),
            1 => Just(b'/'),
            1 => Just(0u8),
            3 => any::<u8>(),
        ],
        0..6,
    )
}

/// Valid names, including non-UTF-8 ones and names made of dots.
fn name() -> impl Strategy<Value = Name> {
    name_bytes().prop_filter_map("not a valid name", |b| Name::new(b).ok())
}

fn non_empty_string() -> impl Strategy<Value = String> {
    vec(any::<char>(), 1..12).prop_map(String::from_iter)
}

fn entry_value() -> impl Strategy<Value = EntryValue> {
    prop_oneof![
        object_id().prop_map(|id| EntryValue::File(BlobId::new(id))),
        object_id().prop_map(|id| EntryValue::Executable(BlobId::new(id))),
        object_id().prop_map(|id| EntryValue::Symlink(BlobId::new(id))),
        object_id().prop_map(|id| EntryValue::Tree(TreeId::new(id))),
        non_empty_string().prop_map(EntryValue::Submodule),
        any::<[u8; 20]>().prop_map(|sha| {
            let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
            EntryValue::Submodule(format!("git:sha1:{hex}"))
        }),
    ]
}

fn blob() -> impl Strategy<Value = Blob> {
    vec(any::<u8>(), 0..300).prop_map(Blob::new)
}

fn owner() -> impl Strategy<Value = Owner> {
    prop_oneof![
        any::<u32>().prop_map(Owner::Id),
        Just(Owner::Id(0)),
        Just(Owner::Name("root".into())),
        Just(Owner::Name("ssl-cert".into())),
        Just(Owner::Name("sch\u{f6}n_1".into())),
    ]
}

/// Attributes, often none (so trees of both versions are made).
fn attrs() -> impl Strategy<Value = Attrs> {
    prop_oneof![
        2 => Just(Attrs::default()),
        1 => (
            proptest::option::of(0u32..=0o7777),
            proptest::option::of(owner()),
            proptest::option::of(owner()),
        )
            .prop_map(|(mode, owner, group)| Attrs { mode, owner, group }),
    ]
}

/// `attrs` made valid for an entry holding `value`: none on a symlink or
/// submodule, a mode whose execute bits agree with the kind.
fn fit(attrs: Attrs, value: &EntryValue) -> Attrs {
    match value {
        EntryValue::Symlink(_) | EntryValue::Submodule(_) => Attrs::default(),
        EntryValue::File(_) => Attrs {
            mode: attrs.mode.map(|m| m & !0o111),
            ..attrs
        },
        EntryValue::Executable(_) => Attrs {
            mode: attrs.mode.map(|m| m | 0o100),
            ..attrs
        },
        EntryValue::Tree(_) => attrs,
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    btree_map(name(), (entry_value(), attrs()), 0..10).prop_map(|entries| {
        // Hand the entries over in reverse: the constructor does the sorting.
        let entries = entries
            .into_iter()
            .rev()
            .map(|(name, (value, attrs))| TreeEntry {
                attrs: fit(attrs, &value),
                name,
                value,
            })
            .collect();
        Tree::new(entries).expect("names are unique, revisions non-empty")
    })
}

fn person() -> impl Strategy<Value = Person> {
    (
        vec(any::<u8>(), 0..12),
        vec(any::<u8>(), 0..12),
        prop_oneof![any::<i64>(), -1i64..=1, Just(i64::MIN), Just(i64::MAX)],
        prop_oneof![-MAX_TZ..=MAX_TZ, Just(-MAX_TZ), Just(MAX_TZ)],
    )
        .prop_map(|(name, email, time, tz_minutes)| Person {
            name,
            email,
            time,
            tz_minutes,
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let extra_name = prop_oneof![
        Just("gpgsig".to_owned()),
        Just("mergetag".to_owned()),
        non_empty_string(),
    ];
    (
        object_id(),
        vec(object_id(), 0..4),
        non_empty_string(),
        person(),
        person(),
        vec(any::<u8>(), 0..40),
        vec((extra_name, vec(any::<u8>(), 0..20)), 0..5),
    )
        .prop_map(
            |(tree, parents, revision, author, committer, message, extra)| Snapshot {
                tree: TreeId::new(tree),
                parents: parents.into_iter().map(SnapshotId::new).collect(),
                revision,
                author,
                committer,
                message,
                extra,
            },
        )
}

fn object() -> impl Strategy<Value = Object> {
    prop_oneof![
        blob().prop_map(Object::Blob),
        tree().prop_map(Object::Tree),
        snapshot().prop_map(Object::Snapshot),
    ]
}

/// The canonicality property: whatever `bytes` decode to encodes back to
/// exactly `bytes`. Returns whether they decoded.
fn assert_canonical(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(object) = decode(bytes) else {
        return Ok(false);
    };
    prop_assert_eq!(&encode(&object), bytes, "decoded to {:?}", object);
    Ok(true)
}

/// Encodings of arbitrary objects, with a byte position inside them.
fn encoding_and_position() -> impl Strategy<Value = (Object, Vec<u8>, usize)> {
    object().prop_flat_map(|o| {
        let bytes = encode(&o);
        let len = bytes.len();
        (Just(o), Just(bytes), 0..len)
    })
}

proptest! {
    #[test]
    fn blob_round_trip(b in blob()) {
        let bytes = b.encode();
        prop_assert_eq!(decode_blob(&bytes), Ok(b.clone()));
        prop_assert_eq!(decode(&bytes), Ok(Object::Blob(b.clone())));
        prop_assert_eq!(ObjectId::from(b.id()), ObjectId::of_encoding(&bytes));
        prop_assert_eq!(Blob::id_of(b.data()), b.id());
        let (head, n) = Blob::header(b.data().len());
        prop_assert_eq!(&head[..n], &bytes[..n]);
        let encoded = Blob::encoded(b.data());
        prop_assert_eq!((encoded.kind(), encoded.id(), encoded.bytes()), (Kind::Blob, ObjectId::from(b.id()), &bytes[..]));
    }

    #[test]
    fn tree_round_trip(t in tree()) {
        let bytes = t.encode();
        prop_assert_eq!(decode_tree(&bytes), Ok(t.clone()));
        prop_assert_eq!(decode(&bytes), Ok(Object::Tree(t.clone())));
        prop_assert_eq!(ObjectId::from(t.id()), ObjectId::of_encoding(&bytes));
        let encoded = t.encoded();
        prop_assert_eq!((encoded.kind(), encoded.id(), encoded.bytes()), (Kind::Tree, ObjectId::from(t.id()), &bytes[..]));
        for pair in t.entries().windows(2) {
            prop_assert!(pair[0].name.as_bytes() < pair[1].name.as_bytes());
        }
        for e in t.entries() {
            prop_assert_eq!(t.get(e.name.as_bytes()), Some(e));
        }
    }

    #[test]
    fn snapshot_round_trip(s in snapshot()) {
        let bytes = s.encode().unwrap();
        prop_assert_eq!(decode_snapshot(&bytes), Ok(s.clone()));
        prop_assert_eq!(decode(&bytes), Ok(Object::Snapshot(s.clone())));
        prop_assert_eq!(ObjectId::from(s.id().unwrap()), ObjectId::of_encoding(&bytes));
    }

    #[test]
    fn typed_decoders_reject_other_kinds(o in object()) {
        let bytes = encode(&o);
        let found = o.kind();
        let results = [
            (Kind::Blob, decode_blob(&bytes).err()),
            (Kind::Tree, decode_tree(&bytes).err()),
            (Kind::Snapshot, decode_snapshot(&bytes).err()),
        ];
        for (expected, err) in results {
            if expected == found {
                prop_assert_eq!(err, None);
            } else {
                prop_assert_eq!(err, Some(DecodeError::WrongKind { expected, found }));
            }
        }
    }

    /// Any prefix of an encoding, or an encoding with bytes after it, is rejected.
    #[test]
    fn prefixes_and_extensions_are_rejected((o, bytes, cut) in encoding_and_position(), tail in vec(any::<u8>(), 1..4)) {
        prop_assert!(decode(&bytes[..cut]).is_err(), "prefix of {:?} decoded", o);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&tail);
        let is_trailing = matches!(
            decode(&longer),
            Err(DecodeError::TrailingBytes { offset, count })
                if offset == bytes.len() && count == tail.len()
        );
        prop_assert!(is_trailing);
    }

    /// Arbitrary bytes: whatever decodes is canonical.
    #[test]
    fn arbitrary_bytes_are_canonical_or_rejected(bytes in vec(any::<u8>(), 0..64)) {
        assert_canonical(&bytes)?;
    }

    /// Arbitrary bodies behind a valid header reach deeper into the decoder.
    #[test]
    fn arbitrary_bodies_are_canonical_or_rejected(
        kind in 1u8..=3,
        body in vec(prop_oneof![0u8..=8, any::<u8>()], 0..96),
    ) {
        let mut bytes = vec![kind, 1];
        bytes.extend_from_slice(&body);
        assert_canonical(&bytes)?;
    }

    /// Changing one byte of a valid encoding (every position, here with one
    /// mask) either breaks it or yields another object whose encoding is
    /// exactly the changed bytes.
    #[test]
    fn single_byte_changes_are_rejected_or_canonical(o in object(), mask in 1u8..=255) {
        let bytes = encode(&o);
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= mask;
            if assert_canonical(&changed)? {
                prop_assert_ne!(decode(&changed), Ok(o.clone()));
            }
        }
    }

    /// Every value of one byte of a valid encoding.
    #[test]
    fn every_value_of_one_byte_is_rejected_or_canonical((o, bytes, i) in encoding_and_position()) {
        for value in 0..=255u8 {
            let mut changed = bytes.clone();
            changed[i] = value;
            let decoded = assert_canonical(&changed)?;
            if value == bytes[i] {
                prop_assert!(decoded, "{:?} does not decode", o);
            }
        }
    }

    /// Inserting or deleting one byte either breaks the encoding or yields
    /// the canonical encoding of another object.
    #[test]
    fn insertions_and_deletions_are_rejected_or_canonical(
        (_o, bytes, i) in encoding_and_position(),
        value in any::<u8>(),
    ) {
        let mut shorter = bytes.clone();
        shorter.remove(i);
        assert_canonical(&shorter)?;
        let mut longer = bytes.clone();
        longer.insert(i, value);
        assert_canonical(&longer)?;
    }

    /// The encoder refuses exactly the timezones the decoder refuses, and
    /// never overflows on the extremes of `i32`.
    #[test]
    fn timezone_range(s in snapshot(), tz in prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), -6001..=6001], author in any::<bool>()) {
        let mut s = s;
        if author { s.author.tz_minutes = tz } else { s.committer.tz_minutes = tz }
        let in_range = (-MAX_TZ..=MAX_TZ).contains(&tz);
        match s.encode() {
            Ok(bytes) => {
                prop_assert!(in_range);
                prop_assert_eq!(decode_snapshot(&bytes), Ok(s));
            }
            Err(e) => {
                prop_assert!(!in_range);
                prop_assert_eq!(e, SnapshotError::Timezone { minutes: tz });
            }
        }
    }
}

#[test]
fn snapshot_encoder_refuses_what_the_decoder_refuses() {
    let valid = Snapshot {
        revision: "r".into(),
        ..Snapshot::default()
    };
    assert!(valid.encode().is_ok());
    let empty_revision = Snapshot::default();
    assert_eq!(empty_revision.encode(), Err(SnapshotError::EmptyRevision));
    let empty_extra = Snapshot {
        extra: vec![(String::new(), b"v".to_vec())],
        ..valid.clone()
    };
    assert_eq!(empty_extra.encode(), Err(SnapshotError::EmptyExtraName));
    for minutes in [i32::MIN, -6000, 6000, i32::MAX] {
        let mut s = valid.clone();
        s.committer.tz_minutes = minutes;
        assert_eq!(s.encode(), Err(SnapshotError::Timezone { minutes }));
        assert_eq!(s.id(), Err(SnapshotError::Timezone { minutes }));
    }
}

#[test]
fn tree_constructor_refuses_what_the_decoder_refuses() {
    let id = BlobId::new(ObjectId::from_bytes([7; 32]));
    let entry =
        |name: &str, value: EntryValue| TreeEntry::new(Name::try_from(name).unwrap(), value);
    assert!(matches!(
        Tree::new(vec![
            entry("a", EntryValue::File(id)),
            entry("a", EntryValue::Symlink(id))
        ]),
        Err(TreeError::Duplicate { .. })
    ));
    assert!(matches!(
        Tree::new(vec![entry("m", EntryValue::Submodule(String::new()))]),
        Err(TreeError::EmptySubmodule { .. })
    ));
    let t = Tree::new(vec![
        entry("b", EntryValue::File(id)),
        entry("a", EntryValue::Executable(id)),
    ])
    .unwrap();
    let names: Vec<&[u8]> = t.entries().iter().map(|e| e.name.as_bytes()).collect();
    assert_eq!(names, [b"a", b"b"]);
}

proptest! {
    /// A tree is written in version 1 exactly when no entry has
    /// attributes, and dropping every entry's attributes gives the bytes
    /// and id the tree had before attributes existed.
    #[test]
    fn trees_without_attributes_keep_version_one(t in tree()) {
        let bytes = t.encode();
        prop_assert_eq!(bytes[1], if t.has_attrs() { 2 } else { 1 });
        let plain: Vec<TreeEntry> = t
            .entries()
            .iter()
            .map(|e| TreeEntry::new(e.name.clone(), e.value.clone()))
            .collect();
        let plain = Tree::new(plain).expect("valid");
        let plain_bytes = plain.encode();
        prop_assert_eq!(plain_bytes[1], 1);
        if !t.has_attrs() {
            prop_assert_eq!(&plain_bytes, &bytes);
        }
        prop_assert_eq!(decode_tree(&plain_bytes).expect("decodes"), plain);
    }
}

#[test]
fn attributes_the_decoder_refuses_the_constructor_refuses() {
    let id = BlobId::new(ObjectId::from_bytes([7; 32]));
    let with = |value: EntryValue, attrs: Attrs| {
        Tree::new(vec![TreeEntry {
            name: Name::try_from("a").unwrap(),
            value,
            attrs,
        }])
    };
    let mode = |m| Attrs {
        mode: Some(m),
        ..Attrs::default()
    };
    for (value, attrs) in [
        (EntryValue::Symlink(id), mode(0o644)),
        (EntryValue::File(id), mode(0o755)),
        (EntryValue::Executable(id), mode(0o644)),
        (EntryValue::File(id), mode(0o10000)),
        (
            EntryValue::File(id),
            Attrs {
                owner: Some(Owner::Name("12".into())),
                ..Attrs::default()
            },
        ),
        (
            EntryValue::File(id),
            Attrs {
                group: Some(Owner::Name("a b".into())),
                ..Attrs::default()
            },
        ),
    ] {
        assert!(
            matches!(
                with(value.clone(), attrs.clone()),
                Err(TreeError::Attributes { .. })
            ),
            "{value:?} {attrs:?}"
        );
    }
    assert!(with(EntryValue::Executable(id), mode(0o010)).is_ok());
}
