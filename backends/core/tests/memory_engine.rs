//! The in-memory engine passes the storage engine conformance suite.

use plumb_core::engine::memory::MemoryEngine;
use plumb_core::testing::engine_suite::EngineFactory;

const MEMORY: EngineFactory = EngineFactory {
    create: |_| Box::new(MemoryEngine::new()),
    reopen: None,
    read_only: None,
};

plumb_core::engine_conformance!(MEMORY);
