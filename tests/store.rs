//! Store behaviour above the backend: verification, the index, gc and fsck,
//! on the memory and redb backends alike.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::Arc;

use plumb::store::fsck::ProblemKind;
use plumb::store::{SourceDef, Store, StoreError, StoreSink, Vcs, engines};
use plumb_core::engine::memory::MemoryEngine;
use plumb_core::engine::{Batch, Engine, EngineError, KeyRange, Table, Visit};
use plumb_core::source::{IngestSink, NamedRef};
use plumb_core::{Blob, EntryValue, Name, Object, Person, Snapshot, Tree, TreeEntry};
use plumb_engine_redb::RedbEngine;

/// What lies beneath a test store, where a test plants damage: the memory
/// engine it runs on, or the directory holding it (in `s`).
enum Beneath {
    Memory(Arc<MemoryEngine>),
    Disk(tempfile::TempDir),
}

/// A memory engine that a test keeps a second handle on.
struct Shared(Arc<MemoryEngine>);

impl Engine for Shared {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.0.get(table, key)
    }
    fn scan(
        &self,
        table: Table,
        range: KeyRange<'_>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), EngineError> {
        self.0.scan(table, range, reverse, visit)
    }
    fn commit(&self, batch: Batch) -> Result<(), EngineError> {
        self.0.commit(batch)
    }
    fn name(&self) -> &'static str {
        self.0.name()
    }
}

fn stores() -> Vec<(Beneath, Store)> {
    let memory = Arc::new(MemoryEngine::new());
    let d = tempfile::tempdir().unwrap();
    let redb = Store::init(&d.path().join("s"), &engines::REDB).unwrap();
    vec![
        (
            Beneath::Memory(memory.clone()),
            Store::with_engine(Box::new(Shared(memory))),
        ),
        (Beneath::Disk(d), redb),
    ]
}

/// Commits `batch` to the engine beneath a store, bypassing the store: to
/// the memory engine it shares, or to its redb file while it is closed.
/// Returns the store, reopened.
fn commit_beneath(beneath: &Beneath, store: Store, batch: Batch) -> Store {
    match beneath {
        Beneath::Memory(engine) => {
            engine.commit(batch).unwrap();
            store
        }
        Beneath::Disk(d) => {
            let dir = d.path().join("s");
            drop(store);
            RedbEngine::open(&dir.join("store.redb"))
                .unwrap()
                .commit(batch)
                .unwrap();
            Store::open(&dir).unwrap()
        }
    }
}

fn add(store: &Store, name: &str) {
    store
        .add_source(&SourceDef {
            name: name.into(),
            vcs: Vcs::Dir,
            location: "/nowhere".into(),
            refs: vec![],
            path: None,
        })
        .unwrap();
}

fn snapshot_of(sink: &StoreSink<'_>, files: &[(&str, &[u8])], rev: &str, time: i64) -> Snapshot {
    let entries = files
        .iter()
        .map(|(n, data)| {
            TreeEntry::new(
                Name::new(*n).unwrap(),
                EntryValue::File(sink.put_blob(data).unwrap()),
            )
        })
        .collect();
    let tree = sink.put_tree(&Tree::new(entries).unwrap()).unwrap();
    let parents = sink
        .latest()
        .unwrap()
        .map(|(id, _)| vec![id])
        .unwrap_or_default();
    Snapshot {
        tree,
        parents,
        revision: rev.into(),
        committer: Person {
            time,
            ..Person::default()
        },
        ..Snapshot::default()
    }
}

#[test]
fn log_revisions_and_times() {
    for (_d, store) in stores() {
        add(&store, "app");
        let sink = StoreSink::new(&store, "app", Box::new(|_, _, _| {})).unwrap();
        let mut ids = Vec::new();
        for (i, t) in [(1, 100), (2, 200), (3, 300)] {
            let s = snapshot_of(
                &sink,
                &[("a", format!("v{i}").as_bytes())],
                &format!("dir:{i}"),
                t,
            );
            ids.push(sink.commit(&s).unwrap());
        }
        sink.finish().unwrap();
        assert_eq!(store.head("app").unwrap().unwrap().seq, 3);
        let mut seen = Vec::new();
        store
            .log("app", |e| {
                seen.push((e.seq, e.id));
                Ok(true)
            })
            .unwrap();
        assert_eq!(seen, vec![(3, ids[2]), (2, ids[1]), (1, ids[0])]);
        assert_eq!(store.revision("app", "dir:2").unwrap().unwrap().id, ids[1]);
        assert_eq!(store.as_of("app", 250).unwrap().unwrap().id, ids[1]);
        assert_eq!(store.as_of("app", 300).unwrap().unwrap().id, ids[2]);
        assert_eq!(store.as_of("app", 99).unwrap(), None);
        let r = plumb::rev::resolve(&store, "app@~2").unwrap();
        assert_eq!(r.id, ids[0]);
        assert!(plumb::rev::resolve(&store, "app@~3").is_err());
        let r = plumb::rev::resolve(&store, &ids[1].to_hex()[..10]).unwrap();
        assert_eq!(r.id, ids[1]);
        let r = plumb::rev::resolve(&store, "app@{1970-01-01T00:03:20Z}").unwrap();
        assert_eq!(r.id, ids[1]);
        // A snapshot's parents chain back through the log.
        assert_eq!(store.snapshot(&ids[2]).unwrap().parents, vec![ids[1]]);
    }
}

/// Damages an object's stored bytes where they really are: in its pack
/// file on disk, or in the objects table of a store in memory.
fn flip_last_byte(beneath: &Beneath, store: &Store, id: &plumb_core::ObjectId) {
    if let Some((pack, offset, len)) = store.location(id).unwrap() {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pack)
            .unwrap();
        let at = offset + u64::from(len) - 1;
        let mut b = [0u8];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
        return;
    }
    let Beneath::Memory(engine) = beneath else {
        panic!("a store on disk keeps its objects in packs");
    };
    let mut stored = engine.get(Table::Objects, id.as_bytes()).unwrap().unwrap();
    let last = stored.len() - 1;
    stored[last] ^= 0x40;
    let mut batch = Batch::new();
    batch.put(Table::Objects, id.as_bytes().to_vec(), stored);
    engine.commit(batch).unwrap();
}

#[test]
fn corrupt_objects_are_errors_naming_them() {
    for (beneath, store) in stores() {
        let blob = Blob::new(b"listen = 0.0.0.0:443\n".repeat(20));
        let id = store.put_object(&Object::Blob(blob.clone())).unwrap();
        assert_eq!(store.object(&id).unwrap(), Object::Blob(blob));
        flip_last_byte(&beneath, &store, &id);
        let err = store.object(&id).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { id: e, .. } if e == id),
            "{err}"
        );
        assert!(err.to_string().contains(&id.to_hex()));
        let report = plumb::maintenance::fsck(&store, &|_| {}).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].detail.contains(&id.to_hex()));
        assert_eq!(report.problems[0].kind, ProblemKind::Corrupt);
    }
}

#[test]
fn gc_keeps_what_logs_reach_and_fsck_finds_holes() {
    for (beneath, store) in stores() {
        add(&store, "app");
        let sink = StoreSink::new(&store, "app", Box::new(|_, _, _| {})).unwrap();
        let s = snapshot_of(&sink, &[("a", b"kept"), ("b", b"also kept")], "dir:1", 1);
        let snap = sink.commit(&s).unwrap();
        sink.finish().unwrap();
        drop(sink);
        let stray = store
            .put_object(&Object::Blob(Blob::new(b"stray".to_vec())))
            .unwrap();
        let report = plumb::maintenance::gc(&store).unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(report.kept, 4);
        assert!(!store.contains(&stray).unwrap());
        assert!(
            plumb::maintenance::fsck(&store, &|_| {})
                .unwrap()
                .problems
                .is_empty()
        );
        // Remove a blob the snapshot needs: fsck names it.
        let tree = store.tree(&store.snapshot(&snap).unwrap().tree).unwrap();
        let needed = tree.entries()[0].value.blob().unwrap();
        let mut batch = Batch::new();
        batch.delete(Table::Objects, needed.as_bytes().to_vec());
        let store = commit_beneath(&beneath, store, batch);
        let problems = plumb::maintenance::fsck(&store, &|_| {}).unwrap().problems;
        assert!(
            problems
                .iter()
                .any(|p| p.kind == ProblemKind::Missing && p.detail.contains(&needed.to_hex())),
            "{problems:?}"
        );
        // Removing the source makes everything garbage.
        store.remove_source("app").unwrap();
        assert!(store.head("app").unwrap().is_none());
        assert_eq!(plumb::maintenance::gc(&store).unwrap().kept, 0);
    }
}

#[test]
fn sources_are_unique_and_named_safely() {
    for (_d, store) in stores() {
        add(&store, "app");
        let dup = store.add_source(&SourceDef {
            name: "app".into(),
            vcs: Vcs::Dir,
            location: "/x".into(),
            refs: vec![],
            path: None,
        });
        assert!(matches!(dup, Err(StoreError::SourceExists { .. })));
        for bad in ["", "a/b", "a\0b", ".hidden", "-flag", "a b"] {
            let r = store.add_source(&SourceDef {
                name: bad.into(),
                vcs: Vcs::Dir,
                location: "/x".into(),
                refs: vec![],
                path: None,
            });
            assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?} accepted");
        }
        assert!(matches!(
            store.source("nope"),
            Err(StoreError::NoSuchSource { .. })
        ));
        assert_eq!(store.sources().unwrap().len(), 1);
    }
}

#[test]
fn store_directory_lifecycle() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("st");
    assert!(matches!(
        Store::open(&dir),
        Err(StoreError::NotAStore { .. })
    ));
    let store = Store::init(&dir, &engines::REDB).unwrap();
    assert!(matches!(Store::open(&dir), Err(StoreError::Locked { .. })));
    drop(store);
    assert!(matches!(
        Store::init(&dir, &engines::REDB),
        Err(StoreError::AlreadyExists { .. })
    ));
    drop(Store::open(&dir).unwrap());
    // Readers share the store with each other and with one writer, see
    // its commits, and cannot write; a second writer is refused.
    let r1 = Store::open_read_only(&dir).unwrap();
    let r2 = Store::open_read_only(&dir).unwrap();
    let writer = Store::open(&dir).unwrap();
    let e = Store::open(&dir).unwrap_err();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("in use by pid {}", std::process::id())),
        "{e}"
    );
    let write = r1.put_object(&Object::Blob(Blob::new(b"x".to_vec())));
    assert!(write.is_err(), "a read-only store accepted a write");
    let id = writer
        .put_object(&Object::Blob(Blob::new(b"y".to_vec())))
        .unwrap();
    assert!(r2.contains(&id).unwrap(), "a reader missed a commit");
    drop((r1, r2));
    let r3 = Store::open_read_only(&dir).unwrap();
    assert!(r3.contains(&id).unwrap());
    drop((writer, r3));
    std::fs::write(dir.join("plumb-store"), "something else\n").unwrap();
    assert!(matches!(Store::open(&dir), Err(StoreError::Format { .. })));
}

#[test]
fn named_refs_resolve_and_are_replaced() {
    for (_d, store) in stores() {
        add(&store, "app");
        let sink = StoreSink::new(&store, "app", Box::new(|_, _, _| {})).unwrap();
        let s1 = snapshot_of(&sink, &[("a", b"1")], "git:sha1:1111", 1);
        let id1 = sink.commit(&s1).unwrap();
        let s2 = snapshot_of(&sink, &[("a", b"2")], "git:sha1:2222", 2);
        let note = sink.put_blob(b"object ...\ntag v1.0\n\nrelease\n").unwrap();
        sink.set_refs(&[
            NamedRef::new("refs/heads/main", id1),
            NamedRef {
                annotation: Some(note),
                ..NamedRef::new("refs/tags/v1.0", id1)
            },
        ])
        .unwrap();
        let id2 = sink.commit(&s2).unwrap();
        sink.finish().unwrap();
        assert_eq!(plumb::rev::resolve(&store, "app@v1.0").unwrap().id, id1);
        assert_eq!(plumb::rev::resolve(&store, "app@main").unwrap().id, id1);
        assert_eq!(
            plumb::rev::resolve(&store, "app@refs/tags/v1.0")
                .unwrap()
                .id,
            id1
        );
        // The annotation is kept with the ref, and gc keeps its blob.
        let refs = store.source_refs("app").unwrap();
        assert_eq!(refs[1].annotation, Some(note));
        assert_eq!(refs[0].annotation, None);
        plumb::maintenance::gc(&store).unwrap();
        assert_eq!(
            store.blob(&note).unwrap().data(),
            b"object ...\ntag v1.0\n\nrelease\n"
        );
        // A later ingest replaces the whole set.
        let sink = StoreSink::new(&store, "app", Box::new(|_, _, _| {})).unwrap();
        sink.set_refs(&[NamedRef::new("refs/heads/main", id2)])
            .unwrap();
        sink.finish().unwrap();
        assert_eq!(plumb::rev::resolve(&store, "app@main").unwrap().id, id2);
        assert!(plumb::rev::resolve(&store, "app@v1.0").is_err());
        assert_eq!(store.source_refs("app").unwrap().len(), 1);
        store.remove_source("app").unwrap();
        assert!(store.source_refs("app").unwrap().is_empty());
    }
}

#[test]
fn blob_sizes_come_from_headers_and_match_the_content() {
    for (_dir, store) in stores() {
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("key{i} = value\n").as_bytes());
        }
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for data in [&b""[..], b"tiny", &text, &noise] {
            let blob = Blob::new(data.to_vec());
            let id = store.put_object(&Object::Blob(blob.clone())).unwrap();
            let id = plumb_core::BlobId::new(id);
            assert_eq!(store.blob_size(&id).unwrap(), Some(data.len() as u64));
        }
        let absent = Blob::new(b"never stored".to_vec()).id();
        assert_eq!(store.blob_size(&absent).unwrap(), None);
    }
}
