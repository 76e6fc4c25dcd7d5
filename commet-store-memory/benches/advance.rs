//! `Billing::advance_to` over long simulated spans: one monthly subscription on `MemoryStore`,
//! renewed for 100 to 800 simulated years. The time per simulated year must not grow with the
//! span (the cost of a renewal must not depend on how many came before it).
//!
//! ```text
//! cargo bench -p commet-store-memory --bench advance
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use commet_core::calendar::Interval;
use commet_engine::testkit::scenarios::Harness;
use commet_store_memory::MemoryStore;

fn main() {
    divan::main();
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 31, 0, 0, 0).unwrap()
}

/// A harness with one active monthly subscription from Jan 31, 2024.
fn subscribed(runtime: &tokio::runtime::Runtime) -> Harness {
    runtime.block_on(async {
        let harness = Harness::new(Arc::new(MemoryStore::new()), start());
        let price = harness.price("pro", "50 USD", Interval::MONTHLY, 0).await;
        let customer = harness.customer(1).await;
        harness
            .subscribe(customer.id(), &price, "pm_card_visa")
            .await;
        harness
    })
}

/// One subscription renewed monthly for `years` simulated years.
#[divan::bench(args = [100, 200, 400, 800], sample_count = 3, sample_size = 1)]
fn advance_years(bencher: divan::Bencher, years: i32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let until = start().with_year(2024 + years).unwrap();
    bencher
        .with_inputs(|| subscribed(&runtime))
        .bench_local_values(|harness| {
            let report = runtime.block_on(harness.billing.advance_to(until)).unwrap();
            assert_eq!(report.renewals, u64::try_from(years * 12).unwrap());
            harness
        });
}
