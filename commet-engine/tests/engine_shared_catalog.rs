//! Two engines on one SQLite file (as two processes of one service would run): a plan and
//! price defined through one are used by the other's decisions, although the other has read
//! (and keeps) the catalog as it was before. The engine keeps the plans and prices it has read
//! (the catalog is insert-only) and reads the plans again when a decision names one it has not
//! seen.
// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../commet-store-sqlite/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, Price, PricingModel};
use commet_core::clock::TestClock;
use commet_core::customer::CustomerDetails;
use commet_core::event::EventKind;
use commet_core::fixtures::utc;
use commet_core::ids::SubscriptionId;
use commet_core::subscription::SubscriptionStatus;
use commet_core::token::SigningKey;
use commet_engine::testkit::gateway::FakeGateway;
use commet_engine::{Billing, BillingConfig, ChangeResult, CreateSubscription};
use commet_store_sqlite::SqliteStore;

fn engine(store: SqliteStore, clock: &TestClock) -> Billing {
    let config = BillingConfig::new("org_shared", SigningKey::from_bytes(&[9; 32]).unwrap());
    Billing::new(
        Arc::new(store),
        Arc::new(FakeGateway::new()),
        Arc::new(clock.clone()),
        config,
    )
    .unwrap()
}

async fn price(billing: &Billing, code: &str, amount: &str) -> Price {
    let plan = billing
        .catalog()
        .define_plan(NewPlan {
            code: code.into(),
            name: code.to_uppercase(),
            description: None,
        })
        .await
        .unwrap();
    billing
        .catalog()
        .define_price(NewPrice {
            plan: plan.id(),
            unit_amount: amount.parse().unwrap(),
            interval: Interval::MONTHLY,
            trial_days: 0,
            model: PricingModel::Flat,
        })
        .await
        .unwrap()
}

/// A customer subscribed to `price` through `billing`, checkout completed.
async fn subscribe(billing: &Billing, n: u32, price: &Price) -> SubscriptionId {
    let customer = billing
        .customers()
        .create(CustomerDetails {
            external_id: Some(format!("user_{n}")),
            email: format!("user{n}@example.com"),
            full_name: None,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let view = billing
        .subscriptions()
        .create(CreateSubscription {
            customer: customer.id(),
            items: vec![(price.id(), 1)],
            draft: false,
            success_url: None,
            cancel_url: None,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    billing
        .checkout()
        .complete(view.subscription.id(), &token, "pm_card_visa")
        .await
        .unwrap();
    view.subscription.id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_defined_by_one_engine_is_used_by_the_other() {
    let file = common::TempFileStore::new().await;
    let clock = TestClock::new(utc(2024, 1, 1));
    let first = engine(SqliteStore::open(file.path()).await.unwrap(), &clock);
    let second = engine(SqliteStore::open(file.path()).await.unwrap(), &clock);

    // The first engine reads the catalog (one plan) while renewing a subscription to it.
    let basic = price(&first, "basic", "10 USD").await;
    let early = subscribe(&first, 1, &basic).await;
    clock.set(utc(2024, 2, 1)).unwrap();
    assert_eq!(first.run_due().await.unwrap().renewals, 1);

    // The second engine defines another plan.
    let pro = price(&second, "pro", "50 USD").await;

    // The first engine upgrades the subscription to it: the decision names both plans in
    // `subscription.plan_changed`, so the first engine must read the plans again.
    let changed = first
        .subscriptions()
        .change_plan(early, vec![(pro.id(), 1)])
        .await
        .unwrap();
    let ChangeResult::Changed {
        subscription,
        invoice: Some(invoice),
    } = changed
    else {
        panic!("an upgrade is immediate: {changed:?}");
    };
    assert_eq!(subscription.items()[0].price, pro.id());
    // Upgraded at the very start of a paid period: all of it is credited (10.00).
    assert_eq!(invoice.amount_due().to_string(), "40.00 USD");
    let events = first.store().events_after(0, 1_000).await.unwrap();
    let plan_changed = events
        .iter()
        .find(|e| e.envelope.event.kind() == EventKind::SubscriptionPlanChanged)
        .unwrap()
        .envelope
        .to_json()
        .unwrap();
    assert!(
        plan_changed.contains(r#""BASIC""#) && plan_changed.contains(r#""PRO""#),
        "{plan_changed}"
    );

    // And renews it at the new price a month later.
    clock.advance(TimeDelta::days(29)).unwrap();
    let report = first.run_due().await.unwrap();
    assert_eq!(report.renewals, 1, "{report:?}");
    let renewed = second
        .subscriptions()
        .get(early)
        .await
        .unwrap()
        .subscription;
    assert_eq!(renewed.status(), SubscriptionStatus::Active);
    assert_eq!(renewed.current_period().unwrap().start(), utc(2024, 3, 1));
}
