//! The storage engine conformance suite: every [`Engine`] runs the same
//! checks of its contract, each engine crate in its own tests, in a line:
//!
//! ```ignore
//! const REDB: EngineFactory = EngineFactory {
//!     create: |dir| Box::new(RedbEngine::create(&dir.join("store.redb")).expect("create")),
//!     reopen: Some(|dir| RedbEngine::open(&dir.join("store.redb")).map(|e| Box::new(e) as _)),
//!     read_only: Some(|dir| {
//!         RedbEngine::open_read_only(&dir.join("store.redb")).map(|e| Box::new(e) as _)
//!     }),
//! };
//! plumb_core::engine_conformance!(REDB);
//! ```
//!
//! Each check makes its engine in a temporary directory of its own.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::engine::{Batch, Engine, EngineError, KeyRange, Table};

/// Opens the engine in a directory.
pub type Open = fn(&Path) -> Result<Box<dyn Engine>, EngineError>;

/// How the suite makes the engine under test.
#[derive(Clone, Copy)]
pub struct EngineFactory {
    /// Makes a fresh engine in an empty directory (an engine in memory
    /// ignores it).
    pub create: fn(&Path) -> Box<dyn Engine>,
    /// Opens the engine `create` made in a directory once more; `None` for
    /// an engine that keeps nothing on disk.
    pub reopen: Option<Open>,
    /// Opens it read-only beside a writer, for an engine shared between
    /// processes; `None` for one that is single-process (or in memory).
    pub read_only: Option<Open>,
}

/// Defines one `#[test]` per check of the engine conformance suite, for
/// the [`EngineFactory`](crate::testing::engine_suite::EngineFactory) `$factory`
/// (an expression evaluated by each test).
#[macro_export]
macro_rules! engine_conformance {
    ($factory:expr) => {
        #[test]
        fn get_put_delete() {
            $crate::testing::engine_suite::get_put_delete(&$factory);
        }

        #[test]
        fn scans_in_order() {
            $crate::testing::engine_suite::scans_in_order(&$factory);
        }

        #[test]
        fn batches_are_atomic_and_conditional() {
            $crate::testing::engine_suite::batches_are_atomic_and_conditional(&$factory);
        }

        #[test]
        fn survives_reopen_and_locks() {
            $crate::testing::engine_suite::survives_reopen_and_locks(&$factory);
        }

        #[test]
        fn agrees_with_model() {
            $crate::testing::engine_suite::agrees_with_model(&$factory);
        }
    };
}

/// A temporary directory for one engine.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn put(b: &dyn Engine, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = Batch::new();
    batch.put(table, key, value);
    b.commit(batch).expect("commit a put");
}

fn get(b: &dyn Engine, table: Table, key: &[u8]) -> Option<Vec<u8>> {
    b.get(table, key).expect("get")
}

fn scan_all(b: &dyn Engine, table: Table, range: KeyRange<'_>, reverse: bool) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    b.scan(table, range, reverse, &mut |k, _| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .expect("scan");
    keys
}

/// Values come back as put, overwritten and deleted; tables are separate
/// key spaces; empty keys and values and large values are kept exactly.
pub fn get_put_delete(engine: &EngineFactory) {
    let dir = scratch();
    let b = (engine.create)(dir.path());
    assert_eq!(get(&*b, Table::Objects, b"k"), None);
    assert!(!b.contains(Table::Objects, b"k").expect("contains"));
    put(&*b, Table::Objects, b"k", b"v1");
    assert_eq!(get(&*b, Table::Objects, b"k").as_deref(), Some(&b"v1"[..]));
    assert!(b.contains(Table::Objects, b"k").expect("contains"));
    put(&*b, Table::Objects, b"k", b"v2");
    assert_eq!(get(&*b, Table::Objects, b"k").as_deref(), Some(&b"v2"[..]));
    // Tables are separate key spaces.
    assert_eq!(get(&*b, Table::Refs, b"k"), None);
    let mut batch = Batch::new();
    batch.delete(Table::Objects, b"k");
    batch.delete(Table::Objects, b"never-there");
    b.commit(batch).expect("commit deletes");
    assert_eq!(get(&*b, Table::Objects, b"k"), None);
    // Empty keys and values, and large values, are kept exactly.
    put(&*b, Table::Cache, b"", b"");
    assert_eq!(get(&*b, Table::Cache, b"").as_deref(), Some(&b""[..]));
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    put(&*b, Table::Cache, b"big", &big);
    assert_eq!(get(&*b, Table::Cache, b"big"), Some(big));
}

/// Scans visit keys in byte order, forwards and backwards, within their
/// bounds and their table, stop when the visitor says so, and return the
/// visitor's error.
pub fn scans_in_order(engine: &EngineFactory) {
    let dir = scratch();
    let b = (engine.create)(dir.path());
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
    .expect("scan");
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

/// A batch applies whole or not at all: its expectations (absent, or a
/// given value) are checked first, then its operations in order.
pub fn batches_are_atomic_and_conditional(engine: &EngineFactory) {
    let dir = scratch();
    let b = (engine.create)(dir.path());
    // Must-be-absent holds: applied.
    let mut batch = Batch::new();
    batch.expect(Table::Refs, b"head", None);
    batch.put(Table::Refs, b"head", b"1");
    batch.put(Table::Log, b"x", b"1");
    b.commit(batch).expect("an expectation that holds");
    // Must-be-absent fails: nothing of the batch is written.
    let mut batch = Batch::new();
    batch.put(Table::Log, b"y", b"2");
    batch.expect(Table::Refs, b"head", None);
    batch.put(Table::Refs, b"head", b"2");
    let err = b
        .commit(batch)
        .expect_err("an expectation that does not hold");
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
    assert_eq!(get(&*b, Table::Log, b"y"), None);
    assert_eq!(get(&*b, Table::Refs, b"head").as_deref(), Some(&b"1"[..]));
    // Must-match with the wrong value fails; with the right value succeeds.
    let mut batch = Batch::new();
    batch.expect(Table::Refs, b"head", Some(b"0".to_vec()));
    batch.put(Table::Refs, b"head", b"2");
    assert!(b.commit(batch).is_err());
    let mut batch = Batch::new();
    batch.expect(Table::Refs, b"head", Some(b"1".to_vec()));
    batch.put(Table::Refs, b"head", b"2");
    batch.delete(Table::Log, b"x");
    b.commit(batch).expect("a matching value");
    assert_eq!(get(&*b, Table::Refs, b"head").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&*b, Table::Log, b"x"), None);
    // Ops apply in order: put then delete of one key leaves it absent.
    let mut batch = Batch::new();
    batch.put(Table::Cache, b"z", b"1");
    batch.delete(Table::Cache, b"z");
    b.commit(batch).expect("put then delete");
    assert_eq!(get(&*b, Table::Cache, b"z"), None);
    // An empty batch is fine.
    b.commit(Batch::new()).expect("an empty batch");
}

/// An engine on disk keeps what was committed when opened again, and
/// refuses a second writer while the first is in use; a shared engine's
/// readers open beside the writer and see each of its commits, a
/// single-process engine refuses them too (nothing to check for an engine
/// in memory).
pub fn survives_reopen_and_locks(engine: &EngineFactory) {
    let Some(reopen) = engine.reopen else { return };
    let dir = scratch();
    {
        let b = (engine.create)(dir.path());
        put(&*b, Table::Sources, b"app", b"def");
        // A second writer on the same store is refused at once.
        match reopen(dir.path()) {
            Err(EngineError::Locked) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => panic!("a second open of a store in use succeeded"),
        }
        if let Some(read_only) = engine.read_only {
            let r = read_only(dir.path()).expect("a reader beside the writer");
            let r2 = read_only(dir.path()).expect("a second reader");
            assert_eq!(
                get(&*r, Table::Sources, b"app").as_deref(),
                Some(&b"def"[..])
            );
            // Each read begins at the writer's last commit.
            put(&*b, Table::Sources, b"web", b"def2");
            assert_eq!(
                get(&*r, Table::Sources, b"web").as_deref(),
                Some(&b"def2"[..])
            );
            assert_eq!(
                get(&*r2, Table::Sources, b"web").as_deref(),
                Some(&b"def2"[..])
            );
            let mut batch = Batch::new();
            batch.put(Table::Sources, b"x".to_vec(), b"y".to_vec());
            assert!(matches!(r.commit(batch), Err(EngineError::ReadOnly)));
        }
    }
    let b = reopen(dir.path()).expect("reopen");
    assert_eq!(
        get(&*b, Table::Sources, b"app").as_deref(),
        Some(&b"def"[..])
    );
}

/// Random batches of puts and deletes: the engine agrees with a `BTreeMap`
/// doing the same (24 cases).
pub fn agrees_with_model(engine: &EngineFactory) {
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    let ops = proptest::collection::vec(any::<(bool, u8, u8)>(), 0..64);
    let result = TestRunner::new(config).run(&ops, |ops| {
        let dir = scratch();
        agrees_with_model_on(&*(engine.create)(dir.path()), &ops);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn agrees_with_model_on(b: &dyn Engine, ops: &[(bool, u8, u8)]) {
    let mut model = BTreeMap::new();
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
        b.commit(batch).expect("commit");
    }
    let mut got = Vec::new();
    b.scan(Table::Objects, KeyRange::all(), false, &mut |k, v| {
        got.push((k.to_vec(), v.to_vec()));
        Ok(true)
    })
    .expect("scan");
    assert_eq!(got, model.into_iter().collect::<Vec<_>>());
}
