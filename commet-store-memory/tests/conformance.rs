//! The shared store conformance suite, run against `MemoryStore`.

use std::sync::Arc;

use commet_engine::store::Store;
use commet_store_memory::MemoryStore;

commet_engine::store_conformance_tests!(|| async {
    Arc::new(MemoryStore::new()) as Arc<dyn Store>
});

commet_engine::engine_scenario_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
