//! One conformance suite for every store backend: memory, redb and (with
//! the `sled` feature) sled run the same test bodies.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::ops::Bound;
use std::path::Path;

use plumb_core::engine::memory::MemoryEngine;
use plumb_core::engine::{Batch, Engine, EngineError, KeyRange, Table};
use plumb_engine_redb::RedbEngine;
use proptest::prelude::*;

/// Makes a fresh backend in `dir` (unused by memory).
type Make = fn(&Path) -> Box<dyn Engine>;
/// Reopens the backend in `dir` (disk backends only).
type Reopen = Option<fn(&Path) -> Result<Box<dyn Engine>, EngineError>>;

fn put(b: &dyn Engine, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = Batch::new();
    batch.put(table, key, value);
    b.commit(batch).unwrap();
}

fn scan_all(b: &dyn Engine, table: Table, range: KeyRange<'_>, reverse: bool) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    b.scan(table, range, reverse, &mut |k, _| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    keys
}

fn get_put_delete(make: Make, dir: &Path) {
    let b = make(dir);
    assert_eq!(b.get(Table::Objects, b"k").unwrap(), None);
    assert!(!b.contains(Table::Objects, b"k").unwrap());
    put(&*b, Table::Objects, b"k", b"v1");
    assert_eq!(
        b.get(Table::Objects, b"k").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert!(b.contains(Table::Objects, b"k").unwrap());
    put(&*b, Table::Objects, b"k", b"v2");
    assert_eq!(
        b.get(Table::Objects, b"k").unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    // Tables are separate key spaces.
    assert_eq!(b.get(Table::Refs, b"k").unwrap(), None);
    let mut batch = Batch::new();
    batch.delete(Table::Objects, b"k");
    batch.delete(Table::Objects, b"never-there");
    b.commit(batch).unwrap();
    assert_eq!(b.get(Table::Objects, b"k").unwrap(), None);
    // Empty keys and values, and large values, are kept exactly.
    put(&*b, Table::Cache, b"", b"");
    assert_eq!(b.get(Table::Cache, b"").unwrap().as_deref(), Some(&b""[..]));
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    put(&*b, Table::Cache, b"big", &big);
    assert_eq!(b.get(Table::Cache, b"big").unwrap().unwrap(), big);
}

fn scans_in_order(make: Make, dir: &Path) {
    let b = make(dir);
    let keys: [&[u8]; 6] = [b"a", b"a\0", b"ab", b"a\xff", b"b", b"\xff\xff"];
    for k in keys.iter().rev() {
        put(&*b, Table::Log, k, k);
    }
    put(&*b, Table::Times, b"other-table", b"");
    let all = scan_all(&*b, Table::Log, KeyRange::all(), false);
    assert_eq!(all, keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>());
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(scan_all(&*b, Table::Log, KeyRange::all(), true), rev);
    let range = KeyRange::new(Bound::Included(b"a\0"), Bound::Excluded(b"b"));
    assert_eq!(
        scan_all(&*b, Table::Log, range, false),
        vec![b"a\0".to_vec(), b"ab".to_vec(), b"a\xff".to_vec()]
    );
    let range = KeyRange::new(Bound::Excluded(b"a"), Bound::Included(b"b"));
    assert_eq!(
        scan_all(&*b, Table::Log, range, true),
        vec![
            b"b".to_vec(),
            b"a\xff".to_vec(),
            b"ab".to_vec(),
            b"a\0".to_vec()
        ]
    );
    // Early stop.
    let mut seen = 0;
    b.scan(Table::Log, KeyRange::all(), false, &mut |_, _| {
        seen += 1;
        Ok(seen < 2)
    })
    .unwrap();
    assert_eq!(seen, 2);
    // An error from the visitor stops the scan and comes back.
    let r = b.scan(Table::Log, KeyRange::all(), false, &mut |_, _| {
        Err(EngineError::Other {
            engine: "test",
            message: "stop".into(),
        })
    });
    assert!(matches!(r, Err(EngineError::Other { engine: "test", .. })));
    // An empty table scans as empty.
    assert!(scan_all(&*b, Table::Snapshots, KeyRange::all(), false).is_empty());
}

fn batches_are_atomic_and_conditional(make: Make, dir: &Path) {
    let b = make(dir);
    // Must-be-absent holds: applied.
    let mut batch = Batch::new();
    batch.expect(Table::Refs, b"head", None);
    batch.put(Table::Refs, b"head", b"1");
    batch.put(Table::Log, b"x", b"1");
    b.commit(batch).unwrap();
    // Must-be-absent fails: nothing of the batch is written.
    let mut batch = Batch::new();
    batch.put(Table::Log, b"y", b"2");
    batch.expect(Table::Refs, b"head", None);
    batch.put(Table::Refs, b"head", b"2");
    let err = b.commit(batch).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Conflict {
                table: Table::Refs,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(b.get(Table::Log, b"y").unwrap(), None);
    assert_eq!(
        b.get(Table::Refs, b"head").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // Must-match with the wrong value fails; with the right value succeeds.
    let mut batch = Batch::new();
    batch.expect(Table::Refs, b"head", Some(b"0".to_vec()));
    batch.put(Table::Refs, b"head", b"2");
    assert!(b.commit(batch).is_err());
    let mut batch = Batch::new();
    batch.expect(Table::Refs, b"head", Some(b"1".to_vec()));
    batch.put(Table::Refs, b"head", b"2");
    batch.delete(Table::Log, b"x");
    b.commit(batch).unwrap();
    assert_eq!(
        b.get(Table::Refs, b"head").unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(b.get(Table::Log, b"x").unwrap(), None);
    // Ops apply in order: put then delete of one key leaves it absent.
    let mut batch = Batch::new();
    batch.put(Table::Cache, b"z", b"1");
    batch.delete(Table::Cache, b"z");
    b.commit(batch).unwrap();
    assert_eq!(b.get(Table::Cache, b"z").unwrap(), None);
    // An empty batch is fine.
    b.commit(Batch::new()).unwrap();
}

fn survives_reopen_and_locks(make: Make, reopen: Reopen, dir: &Path) {
    let Some(reopen) = reopen else { return };
    {
        let b = make(dir);
        put(&*b, Table::Sources, b"app", b"def");
        // A second handle on the same store is refused at once.
        match reopen(dir) {
            Err(EngineError::Locked) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second open of a store in use succeeded"),
        }
    }
    let b = reopen(dir).unwrap();
    assert_eq!(
        b.get(Table::Sources, b"app").unwrap().as_deref(),
        Some(&b"def"[..])
    );
}

/// Random batches against a model: the backend must agree with a BTreeMap.
fn agrees_with_model(make: Make, dir: &Path, ops: &[(bool, u8, u8)]) {
    let b = make(dir);
    let mut model = std::collections::BTreeMap::new();
    for chunk in ops.chunks(4) {
        let mut batch = Batch::new();
        for &(is_put, k, v) in chunk {
            let key = vec![k % 16];
            if is_put {
                batch.put(Table::Objects, key.clone(), vec![v]);
                model.insert(key, vec![v]);
            } else {
                batch.delete(Table::Objects, key.clone());
                model.remove(&key);
            }
        }
        b.commit(batch).unwrap();
    }
    let mut got = Vec::new();
    b.scan(Table::Objects, KeyRange::all(), false, &mut |k, v| {
        got.push((k.to_vec(), v.to_vec()));
        Ok(true)
    })
    .unwrap();
    assert_eq!(got, model.into_iter().collect::<Vec<_>>());
}

macro_rules! conformance {
    ($name:ident, $make:expr, $reopen:expr) => {
        mod $name {
            use super::*;

            fn dir() -> tempfile::TempDir {
                tempfile::tempdir().unwrap()
            }

            #[test]
            fn get_put_delete() {
                let d = dir();
                super::get_put_delete($make, d.path());
            }

            #[test]
            fn scans_in_order() {
                let d = dir();
                super::scans_in_order($make, d.path());
            }

            #[test]
            fn batches_are_atomic_and_conditional() {
                let d = dir();
                super::batches_are_atomic_and_conditional($make, d.path());
            }

            #[test]
            fn survives_reopen_and_locks() {
                let d = dir();
                super::survives_reopen_and_locks($make, $reopen, d.path());
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(24))]
                #[test]
                fn agrees_with_model(ops in proptest::collection::vec(any::<(bool, u8, u8)>(), 0..64)) {
                    let d = dir();
                    super::agrees_with_model($make, d.path(), &ops);
                }
            }
        }
    };
}

conformance!(memory, |_| Box::new(MemoryEngine::new()), None);

conformance!(
    redb,
    |d| Box::new(RedbEngine::create(&d.join("store.redb")).unwrap()),
    Some(|d| RedbEngine::open(&d.join("store.redb")).map(|b| Box::new(b) as Box<dyn Engine>))
);

#[cfg(feature = "sled")]
conformance!(
    sled,
    |d| Box::new(plumb_engine_sled::SledEngine::open(&d.join("sled")).unwrap()),
    Some(|d| {
        plumb_engine_sled::SledEngine::open(&d.join("sled")).map(|b| Box::new(b) as Box<dyn Engine>)
    })
);
