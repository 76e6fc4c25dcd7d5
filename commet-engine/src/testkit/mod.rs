//! Test support (feature `testkit`): fixtures, and the conformance suite every store runs.
//!
//! A store crate runs the whole suite with one macro in its tests:
//!
//! ```text
//! commet_engine::store_conformance_tests!(|| async {
//!     std::sync::Arc::new(commet_store_memory::MemoryStore::new()) as std::sync::Arc<dyn commet_engine::store::Store>
//! });
//! ```
//!
//! which stamps one `#[tokio::test]` per behaviour of [`conformance`] into the crate, one module
//! per concern (the crate needs `tokio` with the `macros` and `rt-multi-thread` features as a
//! dev-dependency).
//! Fixtures build values through the real commands, so they are always consistent.
// Test code: a panic is how a check fails, and checks read best indexed and in one piece.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

pub mod conformance;
pub mod gateway;
pub mod receiver;
pub mod scenarios;
pub mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// Yield to the executor once, so concurrent futures interleave.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
    YieldNow(false)
}
