//! Concurrent calls, on `MemoryStore` and on `SqliteStore` (a file): the same answers on both.
//!
//! - Calls with one idempotency key answer the first result once it exists, and
//!   `RequestInProgress` before; nothing else, and the card is charged once.
//! - Concurrent plan changes lose races as conflicts (re-run from fresh reads), never as an
//!   illegal transition the table allows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../commet-store-sqlite/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use commet_core::calendar::Interval;
use commet_core::fixtures::utc;
use commet_core::ids::SubscriptionId;
use commet_core::proration::ProrationError;
use commet_core::subscription::SubscriptionStatus;
use commet_engine::gateway::{ChargeRequest, GatewayError, PaymentGateway, PaymentOutcome};
use commet_engine::store::Store;
use commet_engine::testkit::gateway::FakeGateway;
use commet_engine::testkit::scenarios::Harness;
use commet_engine::{BillingError, ChangeResult, SubscriptionView};
use commet_store_memory::MemoryStore;

/// The fake provider, answering after a pause, so calls overlap a charge in flight.
#[derive(Debug)]
struct SlowGateway(Arc<FakeGateway>);

#[async_trait]
impl PaymentGateway for SlowGateway {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<PaymentOutcome, GatewayError> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.0.charge(request).await
    }
}

/// A harness whose engine charges through [`SlowGateway`] (its `gateway` keeps the ledger).
fn slow(store: Arc<dyn Store>) -> (Harness, commet_engine::Billing) {
    let harness = Harness::new(Arc::clone(&store), utc(2024, 1, 1));
    let billing = commet_engine::Billing::new(
        store,
        Arc::new(SlowGateway(Arc::clone(&harness.gateway))),
        Arc::new(harness.clock.clone()),
        harness.billing.config().clone(),
    )
    .unwrap();
    (harness, billing)
}

async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("sqlite", Arc::new(common::TempFileStore::new().await)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_with_one_key_answer_the_first_result_or_in_progress_on_every_store() {
    for (name, store) in stores().await {
        let (h, billing) = slow(store);
        let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
        let ana = h.customer(1).await;
        let view = h.create(ana.id(), &pro).await;
        let id = view.subscription.id();
        let token = view.checkout_url.unwrap().token().unwrap().to_owned();
        let billing = Arc::new(billing);
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let billing = Arc::clone(&billing);
                let token = token.clone();
                tokio::spawn(async move {
                    billing
                        .idempotent("checkout-ana")
                        .checkout()
                        .complete(id, &token, "pm_card_visa")
                        .await
                })
            })
            .collect();
        let mut answers: Vec<Result<SubscriptionView, BillingError>> = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        let first = billing
            .idempotent("checkout-ana")
            .checkout()
            .complete(id, &token, "pm_card_visa")
            .await
            .unwrap();
        assert_eq!(
            first.subscription.status(),
            SubscriptionStatus::Active,
            "{name}"
        );
        let mut in_progress = 0;
        for answer in &answers {
            match answer {
                Ok(view) => assert_eq!(view, &first, "{name}: an answer other than the first"),
                Err(BillingError::RequestInProgress { key }) => {
                    assert_eq!(key, "checkout-ana");
                    in_progress += 1;
                }
                Err(other) => panic!("{name}: {other:?}"),
            }
        }
        println!(
            "{name}: {in_progress} of {} calls answered in progress",
            answers.len()
        );
        assert!(
            in_progress < answers.len(),
            "{name}: one call made the charge and answered it"
        );
        assert_eq!(h.gateway.ledger().len(), 1, "{name}: charged once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_plan_changes_never_answer_an_illegal_transition() {
    for (name, store) in stores().await {
        let (h, billing) = slow(store);
        let basic = h.price("basic", "10 USD", Interval::MONTHLY, 0).await;
        let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
        let team = h.price("team", "90 USD", Interval::MONTHLY, 0).await;
        let ana = h.customer(1).await;
        let subscription: SubscriptionId = h.subscribe(ana.id(), &basic, "pm_card_visa").await.id();
        h.clock.advance(TimeDelta::days(10)).unwrap();
        let billing = Arc::new(billing);
        let targets = [&pro, &team, &pro, &basic, &team, &pro];
        let calls: Vec<_> = targets
            .iter()
            .map(|price| {
                let billing = Arc::clone(&billing);
                let items = vec![(price.id(), 1)];
                tokio::spawn(async move {
                    billing
                        .subscriptions()
                        .change_plan(subscription, items)
                        .await
                })
            })
            .collect();
        let mut changed = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(ChangeResult::Changed { .. } | ChangeResult::Scheduled { .. }) => changed += 1,
                // A charge for the subscription was in flight, or the change had already been
                // made by another call: answers about the state now, never "not allowed".
                Err(
                    BillingError::PaymentInProgress { .. }
                    | BillingError::Proration(ProrationError::NoChange),
                ) => {}
                Err(other) => panic!("{name}: {other:?}"),
            }
        }
        println!("{name}: {changed} of {} plan changes made", targets.len());
        assert!(changed >= 1, "{name}: some change was made");
        let upgrades = h
            .gateway
            .ledger()
            .iter()
            .filter(|charge| charge.description.contains("plan change"))
            .count();
        assert!(upgrades >= 1, "{name}");
    }
}
