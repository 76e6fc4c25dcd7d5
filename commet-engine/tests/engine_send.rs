//! The engine's futures are `Send`, so a service can `tokio::spawn` them or await them in a web
//! framework's handlers. `every_public_future_is_send` is checked by the compiler for each
//! public async method of `Billing` (it is never run); the test runs spawned calls on a
//! multi-threaded runtime.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::DateTime;
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, PricingModel};
use commet_core::clock::TestClock;
use commet_core::customer::CustomerDetails;
use commet_core::fixtures::utc;
use commet_core::ids::{CustomerId, InvoiceId, PriceId, SubscriptionId};
use commet_core::subscription::{AdminUpdate, SubscriptionStatus};
use commet_core::token::SigningKey;
use commet_engine::store::{InvoiceQuery, PageRequest, SubscriptionQuery};
use commet_engine::testkit::gateway::FakeGateway;
use commet_engine::{Billing, BillingConfig, CancelRequest, CreateSubscription};
use commet_store_memory::MemoryStore;

fn send<T: Send>(_: &T) {}

#[allow(dead_code, clippy::too_many_lines)]
fn every_public_future_is_send(
    billing: &Billing,
    customer: CustomerId,
    subscription: SubscriptionId,
    invoice: InvoiceId,
    price: PriceId,
) {
    let details = CustomerDetails::default;
    let plan = || NewPlan {
        code: "pro".into(),
        name: "Pro".into(),
        description: None,
    };
    let create = || CreateSubscription {
        customer,
        items: vec![(price, 1)],
        draft: false,
        success_url: None,
        cancel_url: None,
        metadata: BTreeMap::new(),
    };
    let admin = || AdminUpdate {
        status: SubscriptionStatus::Active,
        reason: "migration".into(),
        actor: "support".into(),
        invoice_policy: None,
    };
    let customers = billing.customers();
    send(&customers.create(details()));
    send(&customers.update(customer, details()));
    send(&customers.set_payment_method(customer, "pm_card_visa"));
    send(&customers.get(customer));
    send(&customers.find_by_external_id("user_1"));
    send(&customers.list(PageRequest::first(10)));
    let catalog = billing.catalog();
    send(&catalog.define_plan(plan()));
    send(&catalog.plans());
    send(&catalog.prices(None));
    let subscriptions = billing.subscriptions();
    send(&subscriptions.create(create()));
    send(&subscriptions.submit(subscription));
    send(&subscriptions.get(subscription));
    send(&subscriptions.list(SubscriptionQuery::default(), PageRequest::first(10)));
    send(&subscriptions.active_for(customer));
    send(&subscriptions.cancel(subscription, CancelRequest::default()));
    send(&subscriptions.uncancel(subscription));
    send(&subscriptions.pause(subscription));
    send(&subscriptions.revoke_plan_change(subscription));
    send(&subscriptions.update(subscription, admin()));
    send(&subscriptions.resume(subscription));
    send(&subscriptions.reactivate(subscription));
    send(&subscriptions.retry_payment(subscription));
    send(&subscriptions.preview_change(subscription, vec![(price, 2)]));
    send(&subscriptions.change_plan(subscription, vec![(price, 2)]));
    let checkout = billing.checkout();
    send(&checkout.open(subscription, "token"));
    send(&checkout.complete(subscription, "token", "pm_card_visa"));
    send(&checkout.expire(subscription));
    let invoices = billing.invoices();
    send(&invoices.list(InvoiceQuery::default(), PageRequest::first(10)));
    send(&invoices.retrieve(invoice));
    send(&invoices.mark_paid_out_of_band(invoice));
    send(&invoices.void(invoice));
    send(&billing.events_after(0, 10));
    send(&billing.access(customer));
    send(&billing.run_due());
    send(&billing.advance_to(DateTime::UNIX_EPOCH));
    let idempotent = billing.idempotent("key");
    send(
        &idempotent
            .subscriptions()
            .cancel(subscription, CancelRequest::default()),
    );
    send(
        &idempotent
            .checkout()
            .complete(subscription, "token", "pm_card_visa"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_calls_run_on_a_multi_threaded_runtime() {
    let clock = TestClock::new(utc(2024, 1, 31));
    let billing = Arc::new(
        Billing::new(
            Arc::new(MemoryStore::new()),
            Arc::new(FakeGateway::new()),
            Arc::new(clock.clone()),
            BillingConfig::new("org_test", SigningKey::from_bytes(&[42; 32]).unwrap()),
        )
        .unwrap(),
    );
    let plan = billing
        .catalog()
        .define_plan(NewPlan {
            code: "pro".into(),
            name: "Pro".into(),
            description: None,
        })
        .await
        .unwrap();
    let price = billing
        .catalog()
        .define_price(NewPrice {
            plan: plan.id(),
            unit_amount: "50 USD".parse().unwrap(),
            interval: Interval::MONTHLY,
            trial_days: 0,
            model: PricingModel::Flat,
        })
        .await
        .unwrap()
        .id();

    // Eight sign-ups, each a spawned task (as a web handler would run them).
    let mut signups = Vec::new();
    for n in 0..8 {
        let billing = Arc::clone(&billing);
        signups.push(tokio::spawn(async move {
            let customer = billing
                .customers()
                .create(CustomerDetails {
                    email: format!("user{n}@example.com"),
                    ..CustomerDetails::default()
                })
                .await
                .unwrap();
            let view = billing
                .subscriptions()
                .create(CreateSubscription {
                    customer: customer.id(),
                    items: vec![(price, 1)],
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
                .unwrap()
                .subscription
                .status()
        }));
    }
    for signup in signups {
        assert_eq!(signup.await.unwrap(), SubscriptionStatus::Active);
    }

    // The worker loop, spawned too: the first renewal of all eight on Feb 29.
    clock.set(utc(2024, 2, 29)).unwrap();
    let worker = tokio::spawn({
        let billing = Arc::clone(&billing);
        async move { billing.run_due().await.unwrap() }
    });
    let report = worker.await.unwrap();
    assert_eq!(report.renewals, 8);
    assert_eq!(report.charges_paid, 8);
}
