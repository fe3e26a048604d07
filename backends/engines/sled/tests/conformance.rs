//! The sled engine passes the storage engine conformance suite.

use plumb_core::engine::Engine;
use plumb_core::testing::engine_suite::EngineFactory;
use plumb_engine_sled::SledEngine;

const SLED: EngineFactory = EngineFactory {
    create: |dir| Box::new(SledEngine::open(&dir.join("sled")).expect("create a store")),
    reopen: Some(|dir| SledEngine::open(&dir.join("sled")).map(|e| Box::new(e) as Box<dyn Engine>)),
    read_only: None,
};

plumb_core::engine_conformance!(SLED);
