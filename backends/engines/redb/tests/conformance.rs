//! The redb engine passes the storage engine conformance suite.

use plumb_core::engine::Engine;
use plumb_core::testing::engine_suite::EngineFactory;
use plumb_engine_redb::RedbEngine;

const REDB: EngineFactory = EngineFactory {
    create: |dir| Box::new(RedbEngine::create(&dir.join("store.redb")).expect("create a store")),
    reopen: Some(|dir| {
        RedbEngine::open(&dir.join("store.redb")).map(|e| Box::new(e) as Box<dyn Engine>)
    }),
    read_only: Some(|dir| {
        RedbEngine::open_read_only(&dir.join("store.redb")).map(|e| Box::new(e) as Box<dyn Engine>)
    }),
};

plumb_core::engine_conformance!(REDB);
