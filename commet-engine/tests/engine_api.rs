//! The engine's API on the in-memory store: checkout links, idempotency, dunning with a new
//! payment method, an unreachable gateway and crash recovery, exhaustion policies, access,
//! invoices settled out of band, checkout expiry, credit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use commet_core::calendar::Interval;
use commet_core::customer::CustomerDetails;
use commet_core::dunning::{DunningPolicy, Exhaustion, SubscriptionOnExhaustion};
use commet_core::event::{EventKind, Mode};
use commet_core::fixtures::utc;
use commet_core::invoice::{InvoiceKind, InvoiceStatus};
use commet_core::subscription::{AccessReason, SubscriptionState, SubscriptionStatus};
use commet_core::token::{self, Claims, Purpose, SigningKey, TokenError};
use commet_engine::store::{Store, StoreError};
use commet_engine::testkit::gateway::Behaviour;
use commet_engine::testkit::scenarios::Harness;
use commet_engine::{BillingError, CancelRequest, ChangeResult};
use commet_store_memory::MemoryStore;

fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn a_checkout_link_refuses_tampering_expiry_another_purpose_and_another_subscription() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let view = h.create(ana.id(), &pro).await;
    let other = h.create(ana.id(), &pro).await;
    let id = view.subscription.id();
    let token = view
        .checkout_url
        .as_ref()
        .unwrap()
        .token()
        .unwrap()
        .to_owned();
    let checkout = h.billing.checkout();

    let session = checkout.open(id, &token).await.unwrap();
    assert_eq!(session.amount_due_now.to_string(), "50.00 USD");
    assert_eq!(session.email, "user1@example.com");
    assert_eq!(
        session.success_url.as_deref(),
        Some("https://app.example.com/welcome")
    );

    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        checkout
            .complete(id, &tampered, "pm_card_visa")
            .await
            .unwrap_err(),
        BillingError::Token(TokenError::BadSignature)
    );
    let other_token = other
        .checkout_url
        .as_ref()
        .unwrap()
        .token()
        .unwrap()
        .to_owned();
    assert_eq!(
        checkout
            .complete(id, &other_token, "pm_card_visa")
            .await
            .unwrap_err(),
        BillingError::Token(TokenError::WrongSubject {
            purpose: Purpose::Checkout
        })
    );
    let portal = token::issue(
        &SigningKey::from_bytes(&[42; 32]).unwrap(),
        &Claims {
            purpose: Purpose::Portal,
            subject: id.to_string(),
            expires_at: h.billing.now() + TimeDelta::hours(1),
        },
    )
    .unwrap();
    assert!(matches!(
        checkout
            .complete(id, &portal, "pm_card_visa")
            .await
            .unwrap_err(),
        BillingError::Token(TokenError::WrongPurpose { .. })
    ));
    h.clock.advance(TimeDelta::hours(24)).unwrap();
    assert!(matches!(
        checkout.open(id, &token).await.unwrap_err(),
        BillingError::Token(TokenError::Expired { .. })
    ));
    // A fresh link for the same subscription works.
    let fresh = h.billing.subscriptions().get(id).await.unwrap();
    let fresh = fresh.checkout_url.unwrap().token().unwrap().to_owned();
    let active = checkout.complete(id, &fresh, "pm_card_visa").await.unwrap();
    assert_eq!(active.subscription.status(), SubscriptionStatus::Active);
    assert!(h.gateway.ledger().len() == 1);
}

#[tokio::test]
async fn a_declined_checkout_keeps_its_invoice_and_another_card_pays_it() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let view = h.create(ana.id(), &pro).await;
    let id = view.subscription.id();
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    let declined = h
        .billing
        .checkout()
        .complete(id, &token, "pm_card_declined")
        .await
        .unwrap_err();
    assert_eq!(
        declined,
        BillingError::PaymentDeclined {
            code: "card_declined".into(),
            message: "The card was declined (card_declined).".into()
        }
    );
    assert_eq!(
        h.subscription(&view.subscription).await.status(),
        SubscriptionStatus::PendingPayment
    );
    h.clock.advance(TimeDelta::minutes(3)).unwrap();
    let paid = h
        .billing
        .checkout()
        .complete(id, &token, "pm_card_visa")
        .await
        .unwrap();
    let invoices = h.invoices(ana.id()).await;
    assert_eq!(invoices.len(), 1, "the same first invoice is charged again");
    assert_eq!(invoices[0].status(), InvoiceStatus::Paid);
    let attempts = h
        .billing
        .store()
        .payment_attempts(invoices[0].id())
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    // The period is the invoice's: it started at the first attempt.
    assert_eq!(
        paid.subscription.current_period().unwrap().start(),
        utc(2024, 1, 1)
    );
    assert_eq!(
        h.billing
            .customers()
            .get(ana.id())
            .await
            .unwrap()
            .payment_method(),
        Some("pm_card_visa")
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_result_and_refuses_another_request() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let details = CustomerDetails {
        external_id: Some("user_9".into()),
        email: "nine@example.com".into(),
        full_name: None,
        metadata: BTreeMap::new(),
    };
    let customers = h.billing.idempotent("create-9").customers();
    let first = customers.create(details.clone()).await.unwrap();
    let second = customers.create(details.clone()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        h.kinds_after(0).await,
        [EventKind::CustomerCreated],
        "one effect"
    );
    let other = CustomerDetails {
        email: "other@example.com".into(),
        ..details.clone()
    };
    assert_eq!(
        customers.create(other).await.unwrap_err(),
        BillingError::IdempotencyKeyReused {
            key: "create-9".into()
        }
    );
    // Keys are remembered for 24 hours; after that the key is free again (and the external
    // id is taken, so the repeat is now refused by the store).
    h.clock.advance(TimeDelta::hours(25)).unwrap();
    assert!(matches!(
        customers.create(details).await.unwrap_err(),
        BillingError::Store(StoreError::AlreadyExists { .. })
    ));
}

#[tokio::test]
async fn a_repeated_idempotent_checkout_charges_once() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let view = h.create(ana.id(), &pro).await;
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    let checkout = h.billing.idempotent("checkout-once").checkout();
    let first = checkout
        .complete(view.subscription.id(), &token, "pm_card_visa")
        .await
        .unwrap();
    let again = checkout
        .complete(view.subscription.id(), &token, "pm_card_visa")
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(h.gateway.ledger().len(), 1);
}

#[tokio::test]
async fn a_hard_decline_waits_for_a_new_payment_method_which_retries_at_once() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    h.gateway.register(
        "pm_soon_stolen",
        Behaviour::DeclineNth {
            n: 2,
            code: "stolen_card".into(),
        },
    );
    let subscription = h.subscribe(ana.id(), &pro, "pm_soon_stolen").await;
    h.advance_to(utc(2024, 2, 3)).await;
    let past_due = h.subscription(&subscription).await;
    let SubscriptionState::PastDue(state) = past_due.state() else {
        panic!("{past_due:?}")
    };
    assert_eq!(
        state.dunning.failed_attempts, 1,
        "a hard decline is not retried"
    );
    assert_eq!(state.dunning.next.retry_at(), None);
    let payment_failed = h
        .events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.envelope.event.kind() == EventKind::SubscriptionPaymentFailed)
        .unwrap();
    let json = payment_failed.envelope.to_json().unwrap();
    assert!(json.contains(r#""retryAt":null"#), "{json}");
    h.billing
        .customers()
        .set_payment_method(ana.id(), "pm_card_visa")
        .await
        .unwrap();
    let recovered = h.subscription(&subscription).await;
    assert_eq!(recovered.status(), SubscriptionStatus::Active);
    assert_eq!(
        recovered.current_period().unwrap().start(),
        utc(2024, 2, 1),
        "the anchor is kept"
    );
    assert!(
        h.kinds_after(0)
            .await
            .contains(&EventKind::PaymentRecovered)
    );
}

/// A keyed `set_payment_method` retries the past-due subscriptions under keys derived from its
/// own: repeating it replays those retries (the provider is not asked again), whatever they
/// answered; the same call without a key is a new request and retries again.
#[tokio::test]
async fn a_repeated_set_payment_method_with_one_key_retries_once() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    h.gateway.register(
        "pm_soon_stolen",
        Behaviour::DeclineNth {
            n: 2,
            code: "stolen_card".into(),
        },
    );
    let subscription = h.subscribe(ana.id(), &pro, "pm_soon_stolen").await;
    h.advance_to(utc(2024, 2, 3)).await;
    assert_eq!(
        h.subscription(&subscription).await.status(),
        SubscriptionStatus::PastDue
    );
    let charges_before = h.gateway.calls().len();
    // The new card is declined too: the subscription stays past due, open to another retry.
    for _ in 0..3 {
        h.billing
            .idempotent("new-card-1")
            .customers()
            .set_payment_method(ana.id(), "pm_card_declined")
            .await
            .unwrap();
    }
    let calls = h.gateway.calls();
    assert_eq!(
        calls.len() - charges_before,
        1,
        "one retry for three calls with one key: {calls:?}"
    );
    assert_eq!(
        h.subscription(&subscription).await.status(),
        SubscriptionStatus::PastDue
    );
    h.billing
        .customers()
        .set_payment_method(ana.id(), "pm_card_declined")
        .await
        .unwrap();
    assert_eq!(
        h.gateway.calls().len() - charges_before,
        2,
        "a call without a key retries again"
    );
}

#[tokio::test]
async fn an_unreachable_gateway_leaves_the_charge_pending_until_recovery_charges_it_once() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    h.gateway
        .register("pm_flaky_network", Behaviour::UnreachableFirst { times: 1 });
    let view = h.create(ana.id(), &pro).await;
    let id = view.subscription.id();
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    let error = h
        .billing
        .checkout()
        .complete(id, &token, "pm_flaky_network")
        .await
        .unwrap_err();
    assert!(matches!(error, BillingError::Gateway(_)), "{error:?}");
    let again = h
        .billing
        .checkout()
        .complete(id, &token, "pm_flaky_network")
        .await
        .unwrap_err();
    assert!(
        matches!(again, BillingError::PaymentInProgress { .. }),
        "{again:?}"
    );
    // Within the grace period nothing is recovered; after it, the same key is charged.
    assert_eq!(h.billing.run_due().await.unwrap().recovered, 0);
    h.clock.advance(TimeDelta::minutes(6)).unwrap();
    assert_eq!(h.billing.run_due().await.unwrap().recovered, 1);
    assert_eq!(
        h.subscription(&view.subscription).await.status(),
        SubscriptionStatus::Active
    );
    assert_eq!(h.gateway.ledger().len(), 1);
    let keys: Vec<String> = h
        .gateway
        .calls()
        .iter()
        .map(|c| c.request.idempotency_key.clone())
        .collect();
    assert_eq!(keys[0], keys[1], "the recovered charge reuses the key");
}

#[tokio::test]
async fn keeping_past_due_on_exhaustion_denies_access_until_a_new_method_pays() {
    let h = Harness::configured(store(), utc(2024, 1, 1), |config| {
        config.dunning = DunningPolicy::new(
            vec![TimeDelta::days(1), TimeDelta::days(2)],
            Exhaustion {
                subscription: SubscriptionOnExhaustion::KeepPastDue,
                ..Exhaustion::default()
            },
        )
        .unwrap();
    });
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    h.gateway.register(
        "pm_one_month",
        Behaviour::DeclineNth {
            n: 2,
            code: "card_declined".into(),
        },
    );
    let subscription = h.subscribe(ana.id(), &pro, "pm_one_month").await;
    h.gateway.register(
        "pm_one_month",
        Behaviour::Decline {
            code: "card_declined".into(),
        },
    );
    h.advance_to(utc(2024, 2, 2)).await;
    assert!(
        h.billing.access(ana.id()).await.unwrap().granted,
        "grace during dunning"
    );
    h.advance_to(utc(2024, 2, 10)).await;
    let kept = h.subscription(&subscription).await;
    assert_eq!(kept.status(), SubscriptionStatus::PastDue);
    let invoice = h.invoices(ana.id()).await.pop().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Uncollectible);
    let access = h.billing.access(ana.id()).await.unwrap();
    assert_eq!(
        (access.granted, access.reason),
        (false, AccessReason::PastDue)
    );
    h.billing
        .customers()
        .set_payment_method(ana.id(), "pm_card_visa")
        .await
        .unwrap();
    assert_eq!(
        h.subscription(&subscription).await.status(),
        SubscriptionStatus::Active
    );
    assert_eq!(
        h.invoices(ana.id()).await.pop().unwrap().status(),
        InvoiceStatus::Paid
    );
    assert!(h.billing.access(ana.id()).await.unwrap().granted);
}

#[tokio::test]
async fn access_answers_for_the_customer_across_their_subscriptions() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let nobody = h.customer(2).await;
    assert_eq!(
        h.billing.access(nobody.id()).await.unwrap().reason,
        AccessReason::NoSubscription
    );
    h.create(ana.id(), &pro).await;
    assert_eq!(
        h.billing.access(ana.id()).await.unwrap().reason,
        AccessReason::PendingPayment
    );
    let subscription = h.subscribe(ana.id(), &pro, "pm_card_visa").await;
    let access = h.billing.access(ana.id()).await.unwrap();
    assert!(access.granted);
    assert_eq!(access.until, Some(utc(2024, 2, 1)));
    h.billing
        .subscriptions()
        .cancel(subscription.id(), CancelRequest::default())
        .await
        .unwrap();
    assert!(!h.billing.access(ana.id()).await.unwrap().granted);
}

#[tokio::test]
async fn a_past_due_invoice_paid_out_of_band_recovers_and_cannot_be_voided_instead() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    h.gateway.register(
        "pm_once",
        Behaviour::DeclineNth {
            n: 2,
            code: "insufficient_funds".into(),
        },
    );
    let subscription = h.subscribe(ana.id(), &pro, "pm_once").await;
    h.advance_to(utc(2024, 2, 1)).await;
    assert_eq!(
        h.subscription(&subscription).await.status(),
        SubscriptionStatus::PastDue
    );
    let open = h.invoices(ana.id()).await.pop().unwrap();
    let refused = h.billing.invoices().void(open.id()).await.unwrap_err();
    assert!(
        matches!(refused, BillingError::Invalid(ref f) if f.field == "invoice"),
        "{refused:?}"
    );
    let paid = h
        .billing
        .invoices()
        .mark_paid_out_of_band(open.id())
        .await
        .unwrap();
    assert_eq!(paid.status(), InvoiceStatus::Paid);
    assert_eq!(
        h.subscription(&subscription).await.status(),
        SubscriptionStatus::Active
    );
    assert!(
        h.kinds_after(0)
            .await
            .contains(&EventKind::PaymentRecovered)
    );
}

#[tokio::test]
async fn an_expired_checkout_cancels_the_subscription_and_voids_its_open_invoice() {
    let h = Harness::configured(store(), utc(2024, 1, 1), |config| {
        config.checkout_expires_after = Some(TimeDelta::days(2));
    });
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let view = h.create(ana.id(), &pro).await;
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    let _ = h
        .billing
        .checkout()
        .complete(view.subscription.id(), &token, "pm_card_declined")
        .await;
    h.advance_to(utc(2024, 1, 4)).await;
    let expired = h.subscription(&view.subscription).await;
    let SubscriptionState::Canceled(canceled) = expired.state() else {
        panic!("{expired:?}")
    };
    assert_eq!(canceled.canceled_at, utc(2024, 1, 3));
    assert_eq!(h.invoices(ana.id()).await[0].status(), InvoiceStatus::Void);
    assert!(h.kinds_after(0).await.contains(&EventKind::InvoiceVoided));
}

#[tokio::test]
async fn a_surplus_credit_from_a_plan_change_pays_the_next_invoice() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let yearly = h.price("yearly", "1200 USD", Interval::YEARLY, 0).await;
    let monthly = h.price("monthly", "150 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &yearly, "pm_card_visa").await;
    h.advance_to(utc(2024, 1, 2)).await;
    // From 1,200.00 a year to 150.00 a month is dearer per day: an upgrade, now. On Jan 2, 365
    // of the year's 366 days are unused: 1200 x 365/366 = 1,196.72 is credited against the
    // 150.00 charge, so the total is -1,046.72 and 1,046.72 becomes the customer's credit.
    let ChangeResult::Changed {
        invoice: Some(invoice),
        ..
    } = h
        .billing
        .subscriptions()
        .change_plan(subscription.id(), vec![(monthly.id(), 1)])
        .await
        .unwrap()
    else {
        panic!("an upgrade")
    };
    assert_eq!(invoice.kind(), InvoiceKind::PlanChange);
    assert_eq!(invoice.total().to_string(), "-1046.72 USD");
    assert!(invoice.amount_due().is_zero());
    let credit = h
        .billing
        .customers()
        .get(ana.id())
        .await
        .unwrap()
        .credit(invoice.currency());
    assert_eq!(credit, invoice.total().checked_neg().unwrap());
    // The next renewal uses the credit instead of charging.
    h.advance_to(utc(2024, 2, 3)).await;
    let renewal = h.invoices(ana.id()).await.pop().unwrap();
    assert_eq!(renewal.credit_applied().to_string(), "150.00 USD");
    assert!(renewal.amount_due().is_zero());
    let left = h
        .billing
        .customers()
        .get(ana.id())
        .await
        .unwrap()
        .credit(renewal.currency());
    assert_eq!(left.to_string(), "896.72 USD");
    assert_eq!(
        h.gateway.ledger().len(),
        1,
        "only the yearly price was charged"
    );
}

#[tokio::test]
async fn events_carry_the_configured_organization_mode_and_version() {
    let h = Harness::configured(store(), utc(2024, 1, 1), |config| {
        config.organization_id = "org_acme".into();
        config.mode = Mode::Live;
        config.api_version = "2026-08-27".into();
    });
    h.customer(1).await;
    let event = h.events().await.remove(0);
    assert_eq!(event.seq, 1);
    let json = event.envelope.to_json().unwrap();
    assert!(json.starts_with(r#"{"id":"evt_"#), "{json}");
    assert!(json.contains(r#""event":"customer.created","timestamp":"2024-01-01T00:00:00.000Z","organizationId":"org_acme","mode":"live","apiVersion":"2026-08-27","data":{"#), "{json}");
}

#[tokio::test]
async fn a_trial_with_a_scheduled_cancellation_is_not_charged_for_an_upgrade() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let trial = h.price("trial", "50 USD", Interval::MONTHLY, 14).await;
    let pro = h.price("pro", "90 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &trial, "pm_card_visa").await;
    assert_eq!(subscription.status(), SubscriptionStatus::Trialing);
    h.billing
        .subscriptions()
        .cancel(
            subscription.id(),
            CancelRequest {
                at_period_end: true,
                comment: None,
            },
        )
        .await
        .unwrap();
    let refused = h
        .billing
        .subscriptions()
        .change_plan(subscription.id(), vec![(pro.id(), 1)])
        .await;
    assert!(
        matches!(
            refused,
            Err(BillingError::Subscription(
                commet_core::subscription::SubscriptionError::CancellationPending { .. }
            ))
        ),
        "{refused:?}"
    );
    assert!(h.gateway.ledger().is_empty(), "nothing was charged");
    assert!(
        h.invoices(ana.id()).await.is_empty(),
        "nothing was invoiced"
    );
    let after = h
        .billing
        .subscriptions()
        .get(subscription.id())
        .await
        .unwrap();
    assert_eq!(after.subscription.status(), SubscriptionStatus::Trialing);
}

#[tokio::test]
async fn a_price_too_large_ever_to_bill_is_refused_when_it_is_defined() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let plan = h
        .billing
        .catalog()
        .define_plan(commet_core::catalog::NewPlan {
            code: "huge".into(),
            name: "Huge".into(),
            description: None,
        })
        .await
        .unwrap();
    let error = h
        .billing
        .catalog()
        .define_price(commet_core::catalog::NewPrice {
            plan: plan.id(),
            unit_amount: "100000000000000000 USD".parse().unwrap(),
            interval: Interval::MONTHLY,
            trial_days: 0,
            model: commet_core::catalog::PricingModel::Flat,
        })
        .await
        .unwrap_err();
    let BillingError::Invalid(invalid) = error else {
        panic!("{error:?}")
    };
    assert_eq!(invalid.field, "unit_amount");
    assert!(h.billing.catalog().prices(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn checkout_redirects_must_be_absolute_http_urls() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let create = |success: &str, cancel: Option<&str>| commet_engine::CreateSubscription {
        customer: ana.id(),
        items: vec![(pro.id(), 1)],
        draft: false,
        success_url: Some(success.into()),
        cancel_url: cancel.map(str::to_owned),
        metadata: BTreeMap::new(),
    };
    for (success, cancel, field) in [
        ("javascript:alert(1)", None, "success_url"),
        (
            "https://app.example.com/ok",
            Some("/relative"),
            "cancel_url",
        ),
        ("data:text/html,hi", None, "success_url"),
    ] {
        let error = h
            .billing
            .subscriptions()
            .create(create(success, cancel))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, BillingError::Invalid(invalid) if invalid.field == field),
            "{success} {cancel:?}: {error:?}"
        );
    }
    assert!(
        h.kinds_after(0)
            .await
            .iter()
            .all(|kind| *kind == EventKind::CustomerCreated)
    );
    h.billing
        .subscriptions()
        .create(create("https://app.example.com/welcome", None))
        .await
        .unwrap();
}

#[tokio::test]
async fn only_an_engine_on_a_test_clock_can_advance_time() {
    let billing = commet_engine::Billing::new(
        store(),
        Arc::new(commet_engine::testkit::gateway::FakeGateway::new()),
        Arc::new(commet_core::clock::SystemClock),
        commet_engine::BillingConfig::new("org", SigningKey::generate().unwrap()),
    )
    .unwrap();
    let error = billing.advance_to(utc(2100, 1, 1)).await.unwrap_err();
    assert_eq!(
        error,
        BillingError::Clock(commet_core::clock::ClockError::NotSettable)
    );
}

#[tokio::test]
async fn a_repeated_plan_change_with_one_key_answers_the_first_result() {
    let h = Harness::new(store(), utc(2024, 1, 1));
    let basic = h.price("basic", "10 USD", Interval::MONTHLY, 0).await;
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &basic, "pm_card_visa").await;
    h.clock.advance(TimeDelta::days(10)).unwrap();
    let change = h.billing.idempotent("upgrade-ana").subscriptions();
    let first = change
        .change_plan(subscription.id(), vec![(pro.id(), 1)])
        .await
        .unwrap();
    let ChangeResult::Changed { invoice, .. } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(invoice.as_ref().unwrap().kind(), InvoiceKind::PlanChange);
    h.clock.advance(TimeDelta::minutes(1)).unwrap();
    let again = change
        .change_plan(subscription.id(), vec![(pro.id(), 1)])
        .await
        .unwrap();
    assert_eq!(again, first, "the first result, not NoChange");
    assert_eq!(
        h.gateway.ledger().len(),
        2,
        "the checkout and the upgrade, once"
    );
    // The same key for another request is refused; the same request without a key is
    // decided afresh (no change left to make).
    assert!(matches!(
        change
            .change_plan(subscription.id(), vec![(basic.id(), 1)])
            .await
            .unwrap_err(),
        BillingError::IdempotencyKeyReused { .. }
    ));
    assert!(matches!(
        h.billing
            .subscriptions()
            .change_plan(subscription.id(), vec![(pro.id(), 1)])
            .await
            .unwrap_err(),
        BillingError::Proration(commet_core::proration::ProrationError::NoChange)
    ));
    // A scheduled downgrade repeats the same way.
    let later = h.billing.idempotent("downgrade-ana").subscriptions();
    let scheduled = later
        .change_plan(subscription.id(), vec![(basic.id(), 1)])
        .await
        .unwrap();
    assert!(matches!(scheduled, ChangeResult::Scheduled { .. }));
    assert_eq!(
        later
            .change_plan(subscription.id(), vec![(basic.id(), 1)])
            .await
            .unwrap(),
        scheduled
    );
}

/// At the end of time (a test clock near the last instant chrono holds), what would overflow
/// is a typed error naming what overflowed, never a panic: a key kept for its TTL (24 hours), a
/// checkout link (24 hours), a trial's end (14 days). The due work still runs.
#[tokio::test]
async fn instants_past_the_end_of_time_are_typed_errors() {
    let last = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    let h = Harness::new(store(), last - TimeDelta::hours(1));
    let price = h.price("pro", "50 USD", Interval::MONTHLY, 14).await;
    let ana = h.customer(1).await;
    let keyed = h
        .billing
        .idempotent("late")
        .customers()
        .create(CustomerDetails {
            email: "late@example.com".into(),
            ..CustomerDetails::default()
        })
        .await;
    assert!(
        matches!(&keyed, Err(BillingError::Invalid(invalid)) if invalid.field == "idempotency_ttl"),
        "{keyed:?}"
    );
    let new = commet_engine::CreateSubscription {
        customer: ana.id(),
        items: vec![(price.id(), 1)],
        draft: false,
        success_url: None,
        cancel_url: None,
        metadata: BTreeMap::new(),
    };
    let linked = h.billing.subscriptions().create(new.clone()).await;
    assert!(
        matches!(&linked, Err(BillingError::Invalid(invalid)) if invalid.field == "ttl"),
        "{linked:?}"
    );
    h.billing.run_due().await.unwrap();

    let h = Harness::new(store(), last - TimeDelta::days(3));
    let price = h.price("pro", "50 USD", Interval::MONTHLY, 14).await;
    let ana = h.customer(1).await;
    let view = h
        .billing
        .subscriptions()
        .create(commet_engine::CreateSubscription {
            customer: ana.id(),
            items: vec![(price.id(), 1)],
            ..new
        })
        .await
        .unwrap();
    let token = view.checkout_url.unwrap().token().unwrap().to_owned();
    let opened = h
        .billing
        .checkout()
        .open(view.subscription.id(), &token)
        .await;
    assert!(
        matches!(&opened, Err(BillingError::Invalid(invalid)) if invalid.field == "trial_days"),
        "{opened:?}"
    );
    let completed = h
        .billing
        .checkout()
        .complete(view.subscription.id(), &token, "pm_card_visa")
        .await;
    assert!(
        matches!(&completed, Err(BillingError::Invalid(invalid)) if invalid.field == "trial_days"),
        "{completed:?}"
    );
    h.billing.run_due().await.unwrap();
}
