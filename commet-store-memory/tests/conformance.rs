//! The shared store conformance suite, run against `MemoryStore`.

use std::sync::Arc;

use commet_core::store::Store;
use commet_store_memory::MemoryStore;

commet_core::store_conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });

commet_core::engine_scenario_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
