//! Feeds arbitrary bytes to every decoder and checks canonicality: whatever
//! decodes encodes back to exactly the input, the typed decoders agree with
//! the generic one, a tree is of version 2 exactly when an entry carries
//! attributes, and LEB128 numbers read back as they are written. The same
//! bytes, read as an attributes file, never make the parser or matcher
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plumb_core::{Object, ObjectId, decode, decode_blob, decode_snapshot, decode_tree, leb128};

fuzz_target!(|data: &[u8]| {
    let object = decode(data);
    if let Ok(object) = &object {
        let (bytes, id) = match object {
            Object::Blob(b) => (b.encode(), ObjectId::from(b.id())),
            Object::Tree(t) => (t.encode(), ObjectId::from(t.id())),
            Object::Snapshot(s) => (s.encode().unwrap(), ObjectId::from(s.id().unwrap())),
        };
        assert_eq!(bytes, data, "decoded {object:?} encodes differently");
        assert_eq!(id, ObjectId::of_encoding(data));
    }

    let blob = decode_blob(data);
    if let Ok(b) = &blob {
        assert_eq!(b.encode(), data);
        assert_eq!(b.id(), plumb_core::Blob::id_of(b.data()));
    }
    let tree = decode_tree(data);
    if let Ok(t) = &tree {
        assert_eq!(t.encode(), data);
        assert_eq!(data[1] == 2, t.has_attrs(), "version 2 iff attributes");
    }
    if let Ok(rules) = plumb_core::attributes::AttributesFile::parse(data) {
        for path in [&b"a"[..], b"etc/ssl/private/key.pem", b"a/b/c/d/e/f"] {
            let attrs = rules.attrs_for(path, false);
            assert!(attrs.validate().is_ok(), "{attrs:?} from a parsed file");
        }
    }
    let snapshot = decode_snapshot(data);
    if let Ok(s) = &snapshot {
        assert_eq!(s.encode().unwrap(), data);
    }

    // The typed decoders accept exactly what `decode` accepts of their kind.
    match object {
        Ok(Object::Blob(b)) => assert_eq!(blob, Ok(b)),
        Ok(Object::Tree(t)) => assert_eq!(tree, Ok(t)),
        Ok(Object::Snapshot(s)) => assert_eq!(snapshot, Ok(s)),
        Err(_) => assert!(blob.is_err() && tree.is_err() && snapshot.is_err()),
    }

    if let Ok((value, used)) = leb128::read(data) {
        assert!((1..=10).contains(&used) && used <= data.len());
        let (buf, len) = leb128::encode(value);
        assert_eq!(
            &buf[..len],
            &data[..used],
            "{value} read from a non-canonical form"
        );
        let mut written = Vec::new();
        leb128::write(&mut written, value);
        assert_eq!(written, &data[..used]);
        assert_eq!(leb128::zigzag(leb128::unzigzag(value)), value);
    }
});
