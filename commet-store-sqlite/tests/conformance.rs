//! The shared store conformance suite, run against `SqliteStore`: on a fresh database file
//! (WAL, foreign keys, `synchronous = FULL`) for every behaviour; on one file shared by two
//! connections, calls alternating between them (as two processes would share it: commits
//! meet on SQLite's write lock and the busy timeout); and in memory.

#![allow(clippy::expect_used)] // test set-up: a failure is the test failing

mod common;

use std::sync::Arc;

use commet_engine::store::Store;
use commet_store_sqlite::SqliteStore;

commet_engine::store_conformance_tests!(|| async {
    Arc::new(common::TempFileStore::new().await) as Arc<dyn Store>
});

commet_engine::engine_scenario_tests!(|| async {
    Arc::new(common::TempFileStore::new().await) as Arc<dyn Store>
});

/// The suite on one file through two connections, each call going to the next connection.
mod two_connections {
    use super::*;

    commet_engine::store_conformance_tests!(|| async {
        Arc::new(common::TempFileStore::shared(2).await) as Arc<dyn Store>
    });
}

/// The suite on an in-memory database (what an application's own tests would use).
mod in_memory {
    use super::*;

    commet_engine::store_conformance_tests!(|| async {
        Arc::new(SqliteStore::in_memory().await.expect("the store opens")) as Arc<dyn Store>
    });
}
