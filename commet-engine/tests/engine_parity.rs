//! Engine parity: every scenario of `commet_engine::testkit::scenarios`, run on `MemoryStore` and
//! on `SqliteStore` (a file), produces the same [`Transcript`] byte for byte: every invoice and
//! every event envelope as JSON. The scenarios' `Harness` uses seeded ids, a fixed signing key
//! and a test clock, so nothing but the store differs between the two runs.
//!
//! Beyond the transcript, the stores are then read back and compared: every subscription and
//! every payment attempt, and the invoice number series.

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../commet-store-sqlite/tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use commet_core::invoice::NumberSeries;
use commet_engine::store::{InvoiceQuery, Store, SubscriptionQuery, every_page};
use commet_engine::testkit::scenarios::{self, Transcript};
use commet_store_memory::MemoryStore;

type Scenario = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = Transcript>>>;

macro_rules! scenario_list {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), (|store| Box::pin(scenarios::$name(store))) as Scenario)),*]
    };
}

/// Every scenario the testkit has (the same list `engine_scenario_tests!` stamps).
const SCENARIOS: [(&str, Scenario); 7] = scenario_list![
    jan_31_anchor_renews_on_feb_29_mar_31_apr_30,
    upgrade_mid_period_prorates_to_the_cent,
    trial_reminder_then_declined_first_charge_recovers_on_second_retry,
    dunning_exhausted_on_day_7_marks_the_invoice_uncollectible,
    cancel_at_period_end_then_uncancel,
    reactivate_after_cancel,
    admin_override_activates_a_pending_subscription,
];

/// What a store holds after a scenario, beyond the transcript, as JSON.
#[derive(Debug, PartialEq, Eq)]
struct State {
    subscriptions: Vec<String>,
    payment_attempts: Vec<String>,
    series: Option<String>,
}

async fn state(store: &dyn Store, series: Option<NumberSeries>) -> State {
    let subscriptions: Vec<String> =
        every_page(|page| store.subscriptions(SubscriptionQuery::default(), page))
            .await
            .unwrap()
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
    let mut payment_attempts = Vec::new();
    for invoice in every_page(|page| store.invoices(InvoiceQuery::default(), page))
        .await
        .unwrap()
    {
        for attempt in store.payment_attempts(invoice.id()).await.unwrap() {
            payment_attempts.push(serde_json::to_string(&attempt).unwrap());
        }
    }
    let series = series.map(|series| format!("{series:?}"));
    State {
        subscriptions,
        payment_attempts,
        series,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gives_the_same_transcript_on_memory_and_sqlite() {
    for (name, scenario) in SCENARIOS {
        let reference = Arc::new(MemoryStore::new());
        let memory: Arc<dyn Store> = reference.clone();
        let on_memory = scenario(Arc::clone(&memory)).await;
        let file = Arc::new(common::TempFileStore::new().await);
        let sqlite: Arc<dyn Store> = file.clone();
        let on_sqlite = scenario(Arc::clone(&sqlite)).await;

        assert!(
            !on_memory.events.is_empty(),
            "{name}: the scenario produced no events"
        );
        assert_eq!(
            on_memory.invoices.len(),
            on_sqlite.invoices.len(),
            "{name}: invoice count"
        );
        for (i, (m, s)) in on_memory
            .invoices
            .iter()
            .zip(&on_sqlite.invoices)
            .enumerate()
        {
            assert_eq!(m, s, "{name}: invoice {i} differs");
        }
        assert_eq!(
            on_memory.events.len(),
            on_sqlite.events.len(),
            "{name}: event count"
        );
        for (i, (m, s)) in on_memory.events.iter().zip(&on_sqlite.events).enumerate() {
            assert_eq!(m, s, "{name}: event {} differs", i + 1);
        }
        assert_eq!(on_memory, on_sqlite, "{name}: transcripts differ");
        assert_eq!(
            state(memory.as_ref(), reference.number_series("INV-")).await,
            state(sqlite.as_ref(), file.number_series("INV-").await.unwrap()).await,
            "{name}: stored subscriptions, attempts or series differ"
        );
    }
}

/// A scenario run twice on the same kind of store gives the same transcript: the comparison
/// above is meaningful (nothing in a transcript comes from the wall clock or a random source).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_is_deterministic() {
    let (_, scenario) = SCENARIOS[2];
    let first = scenario(Arc::new(common::TempFileStore::new().await)).await;
    let second = scenario(Arc::new(common::TempFileStore::new().await)).await;
    assert_eq!(first, second);
}
