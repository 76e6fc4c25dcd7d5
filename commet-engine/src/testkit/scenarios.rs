//! Engine scenarios: whole customer stories driven through [`Billing::advance_to`], with the
//! figures worked out by hand in the comments. Each takes a fresh, empty store and returns a
//! [`Transcript`] (every invoice and event), so the same scenario run on two stores can be
//! compared byte for byte. [`engine_scenario_tests!`](crate::engine_scenario_tests) stamps
//! them into a store crate.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::gateway::{Behaviour, FakeGateway};
use crate::store::{InvoiceQuery, PageRequest, Store, StoredEvent, every_page};
use crate::{
    Billing, BillingConfig, CancelRequest, ChangeResult, CreateSubscription, SubscriptionView,
};
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, Price, PricingModel};
use commet_core::clock::TestClock;
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::event::EventKind;
use commet_core::fixtures::utc;
use commet_core::ids::{CustomerId, IdGenerator};
use commet_core::invoice::{Invoice, InvoiceKind, InvoiceStatus, LineKind};
use commet_core::subscription::{
    AdminUpdate, CancelReason, Subscription, SubscriptionState, SubscriptionStatus,
};
use commet_core::token::SigningKey;

/// Everything a scenario produced: every invoice (oldest first) and every event, as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Every invoice, oldest first.
    pub invoices: Vec<String>,
    /// Every event envelope, in sequence order.
    pub events: Vec<String>,
}

/// An engine on a test clock, a fake gateway and a deterministic id generator.
#[derive(Debug)]
pub struct Harness {
    /// The engine.
    pub billing: Billing,
    /// Its clock.
    pub clock: TestClock,
    /// Its payment provider.
    pub gateway: Arc<FakeGateway>,
}

impl Harness {
    /// An engine over `store` starting at `start`, with seeded ids and a fixed signing key.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, start: DateTime<Utc>) -> Harness {
        Harness::configured(store, start, |_| {})
    }

    /// The same, with the configuration adjusted by `configure`.
    #[must_use]
    pub fn configured(
        store: Arc<dyn Store>,
        start: DateTime<Utc>,
        configure: impl FnOnce(&mut BillingConfig),
    ) -> Harness {
        let clock = TestClock::new(start);
        let gateway = Arc::new(FakeGateway::new());
        let mut config = BillingConfig::new("org_test", SigningKey::from_bytes(&[42; 32]).unwrap());
        config.checkout_base_url = "https://billing.example.com/checkout".into();
        configure(&mut config);
        let billing = Billing::new(store, gateway.clone(), Arc::new(clock.clone()), config)
            .unwrap()
            .with_ids(IdGenerator::seeded(7));
        Harness {
            billing,
            clock,
            gateway,
        }
    }

    /// Define a plan with one flat price.
    pub async fn price(
        &self,
        code: &str,
        amount: &str,
        interval: Interval,
        trial_days: u32,
    ) -> Price {
        let plan = self
            .billing
            .catalog()
            .define_plan(NewPlan {
                code: code.into(),
                name: code.to_uppercase(),
                description: None,
            })
            .await
            .unwrap();
        self.billing
            .catalog()
            .define_price(NewPrice {
                plan: plan.id(),
                unit_amount: amount.parse().unwrap(),
                interval,
                trial_days,
                model: PricingModel::Flat,
            })
            .await
            .unwrap()
    }

    /// A customer numbered `n`.
    pub async fn customer(&self, n: u32) -> Customer {
        self.billing
            .customers()
            .create(CustomerDetails {
                external_id: Some(format!("user_{n}")),
                email: format!("user{n}@example.com"),
                full_name: Some(format!("User {n}")),
                metadata: BTreeMap::new(),
            })
            .await
            .unwrap()
    }

    /// Create a subscription to `price` (pending checkout).
    pub async fn create(&self, customer: CustomerId, price: &Price) -> SubscriptionView {
        self.billing
            .subscriptions()
            .create(CreateSubscription {
                customer,
                items: vec![(price.id(), 1)],
                draft: false,
                success_url: Some("https://app.example.com/welcome".into()),
                cancel_url: None,
                metadata: BTreeMap::new(),
            })
            .await
            .unwrap()
    }

    /// Create a subscription and complete its checkout with `payment_method`.
    pub async fn subscribe(
        &self,
        customer: CustomerId,
        price: &Price,
        payment_method: &str,
    ) -> Subscription {
        let view = self.create(customer, price).await;
        let token = view
            .checkout_url
            .as_ref()
            .and_then(|url| url.token())
            .unwrap()
            .to_owned();
        self.billing
            .checkout()
            .complete(view.subscription.id(), &token, payment_method)
            .await
            .unwrap()
            .subscription
    }

    /// Move the clock to `until`, running every deadline on the way.
    pub async fn advance_to(&self, until: DateTime<Utc>) {
        self.billing.advance_to(until).await.unwrap();
    }

    /// The subscription now.
    pub async fn subscription(&self, subscription: &Subscription) -> Subscription {
        self.billing
            .subscriptions()
            .get(subscription.id())
            .await
            .unwrap()
            .subscription
    }

    /// A customer's invoices, oldest first.
    pub async fn invoices(&self, customer: CustomerId) -> Vec<Invoice> {
        let mut page = self
            .billing
            .invoices()
            .list(
                InvoiceQuery {
                    customer: Some(customer),
                    ..InvoiceQuery::default()
                },
                PageRequest::first(100),
            )
            .await
            .unwrap()
            .items;
        page.reverse();
        page
    }

    /// Every event, in order.
    pub async fn events(&self) -> Vec<StoredEvent> {
        self.billing.events_after(0, 100_000).await.unwrap()
    }

    /// The event kinds after sequence number `seq`.
    pub async fn kinds_after(&self, seq: usize) -> Vec<EventKind> {
        self.events()
            .await
            .iter()
            .skip(seq)
            .map(|e| e.envelope.event.kind())
            .collect()
    }

    /// Everything the scenario produced.
    pub async fn transcript(&self) -> Transcript {
        let list = self.billing.invoices();
        let mut invoices: Vec<String> = every_page(|page| list.list(InvoiceQuery::default(), page))
            .await
            .unwrap()
            .iter()
            .map(|i| serde_json::to_string(i).unwrap())
            .collect();
        invoices.reverse();
        let events = self
            .events()
            .await
            .iter()
            .map(|e| e.envelope.to_json().unwrap())
            .collect();
        Transcript { invoices, events }
    }
}

fn periods(invoices: &[Invoice]) -> Vec<(String, String)> {
    invoices
        .iter()
        .filter_map(Invoice::period)
        .map(|p| {
            (
                p.start().format("%Y-%m-%d").to_string(),
                p.end().format("%Y-%m-%d").to_string(),
            )
        })
        .collect()
}

fn amounts(invoice: &Invoice) -> Vec<String> {
    invoice
        .lines()
        .iter()
        .map(|line| line.amount().to_string())
        .collect()
}

/// A subscription started on Jan 31 renews on Feb 29, Mar 31 and Apr 30 (2024 is a leap year),
/// each period invoiced once, numbered in order, charged 50.00 USD.
pub async fn jan_31_anchor_renews_on_feb_29_mar_31_apr_30(store: Arc<dyn Store>) -> Transcript {
    let h = Harness::new(store, utc(2024, 1, 31));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &pro, "pm_card_visa").await;
    h.advance_to(utc(2024, 5, 1)).await;
    let invoices = h.invoices(ana.id()).await;
    assert_eq!(
        periods(&invoices),
        [
            ("2024-01-31".into(), "2024-02-29".into()),
            ("2024-02-29".into(), "2024-03-31".into()),
            ("2024-03-31".into(), "2024-04-30".into()),
            ("2024-04-30".into(), "2024-05-31".into()),
        ]
    );
    let numbers: Vec<&str> = invoices
        .iter()
        .filter_map(|i| i.number().map(commet_core::invoice::InvoiceNumber::as_str))
        .collect();
    assert_eq!(
        numbers,
        ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]
    );
    for invoice in &invoices {
        assert_eq!(invoice.status(), InvoiceStatus::Paid);
        assert_eq!(invoice.amount_paid().to_string(), "50.00 USD");
    }
    assert_eq!(h.gateway.ledger().len(), 4, "one charge per period");
    let now = h.subscription(&subscription).await;
    assert_eq!(now.status(), SubscriptionStatus::Active);
    assert_eq!(now.cycle().map(|c| c.anchor()), Some(utc(2024, 1, 31)));
    h.transcript().await
}

/// 50.00 USD monthly from Jan 1, upgraded to 100.00 USD on Jan 16: Jan has 31 days and 16 are
/// unused (Jan 16 to Feb 1), so the credit is 50 x 16/31 = 25.806... = 25.81; the new plan is
/// charged in full for a new period Jan 16 to Feb 16, so 100.00 - 25.81 = 74.19 is due. The
/// next renewal, on Feb 16, charges 100.00.
pub async fn upgrade_mid_period_prorates_to_the_cent(store: Arc<dyn Store>) -> Transcript {
    let h = Harness::new(store, utc(2024, 1, 1));
    let basic = h.price("basic", "50 USD", Interval::MONTHLY, 0).await;
    let pro = h.price("pro", "100 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &basic, "pm_card_visa").await;
    h.advance_to(utc(2024, 1, 16)).await;
    let preview = h
        .billing
        .subscriptions()
        .preview_change(subscription.id(), vec![(pro.id(), 1)])
        .await
        .unwrap();
    assert_eq!(amounts_of(preview.lines()), ["-25.81 USD", "100.00 USD"]);
    let result = h
        .billing
        .subscriptions()
        .change_plan(subscription.id(), vec![(pro.id(), 1)])
        .await
        .unwrap();
    let ChangeResult::Changed {
        subscription: upgraded,
        invoice: Some(invoice),
    } = result
    else {
        panic!("an upgrade is immediate: {result:?}");
    };
    assert_eq!(invoice.kind(), InvoiceKind::PlanChange);
    assert_eq!(amounts(&invoice), ["-25.81 USD", "100.00 USD"]);
    assert_eq!(invoice.lines()[0].kind(), LineKind::ProrationCredit);
    assert_eq!(invoice.amount_due().to_string(), "74.19 USD");
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    let period = upgraded.current_period().unwrap();
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 1, 16), utc(2024, 2, 16))
    );
    h.advance_to(utc(2024, 2, 17)).await;
    let invoices = h.invoices(ana.id()).await;
    assert_eq!(invoices.len(), 3);
    assert_eq!(invoices[2].amount_paid().to_string(), "100.00 USD");
    assert_eq!(
        periods(&invoices[2..]),
        [("2024-02-16".into(), "2024-03-16".into())]
    );
    let charged: Vec<String> = h
        .gateway
        .ledger()
        .iter()
        .map(|c| c.amount.to_string())
        .collect();
    assert_eq!(charged, ["50.00 USD", "74.19 USD", "100.00 USD"]);
    h.transcript().await
}

fn amounts_of(lines: &[commet_core::invoice::LineItem]) -> Vec<String> {
    lines.iter().map(|line| line.amount().to_string()).collect()
}

/// A 14-day trial from Jan 1: `trial.will_end` on Jan 12 (three days before the end, Jan 15);
/// the first charge on Jan 15 is declined, the first retry (Jan 16, a day later) too, and the
/// second retry (Jan 18, three days after the first failure) is paid: the subscription
/// recovers, anchored on the trial's end.
pub async fn trial_reminder_then_declined_first_charge_recovers_on_second_retry(
    store: Arc<dyn Store>,
) -> Transcript {
    let h = Harness::new(store, utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 14).await;
    h.gateway.register(
        "pm_flaky",
        Behaviour::DeclineFirst {
            times: 2,
            code: "insufficient_funds".into(),
        },
    );
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &pro, "pm_flaky").await;
    assert_eq!(subscription.status(), SubscriptionStatus::Trialing);
    let mark = h.events().await.len();
    h.advance_to(utc(2024, 1, 12)).await;
    assert_eq!(h.kinds_after(mark).await, [EventKind::TrialWillEnd]);
    h.advance_to(utc(2024, 1, 15)).await;
    let past_due = h.subscription(&subscription).await;
    assert_eq!(past_due.status(), SubscriptionStatus::PastDue);
    h.advance_to(utc(2024, 1, 16)).await;
    assert_eq!(
        h.subscription(&subscription).await.status(),
        SubscriptionStatus::PastDue
    );
    h.advance_to(utc(2024, 1, 18)).await;
    let recovered = h.subscription(&subscription).await;
    assert_eq!(recovered.status(), SubscriptionStatus::Active);
    let period = recovered.current_period().unwrap();
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 1, 15), utc(2024, 2, 15))
    );
    assert_eq!(
        h.kinds_after(mark).await,
        [
            EventKind::TrialWillEnd,
            // Jan 15: the trial ends, its first invoice fails.
            EventKind::TrialExpired,
            EventKind::InvoiceCreated,
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::SubscriptionPastDue,
            // Jan 16: the first retry fails.
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            // Jan 18: the second retry is paid.
            EventKind::PaymentRecovered,
            EventKind::PaymentReceived,
        ]
    );
    let invoices = h.invoices(ana.id()).await;
    assert_eq!(invoices.len(), 1, "the retries charge the same invoice");
    assert_eq!(invoices[0].status(), InvoiceStatus::Paid);
    assert_eq!(h.gateway.ledger().len(), 1);
    h.transcript().await
}

/// A renewal on Feb 1 is declined, and so are the retries 1, 3 and 5 days later (Feb 2, 4, 6);
/// the last retry, 7 days after the first failure (Feb 8), fails too: dunning is exhausted, the
/// subscription canceled (`dunning_exhausted`) and the invoice marked uncollectible.
pub async fn dunning_exhausted_on_day_7_marks_the_invoice_uncollectible(
    store: Arc<dyn Store>,
) -> Transcript {
    let h = Harness::new(store, utc(2024, 1, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    h.gateway.register(
        "pm_first_only",
        Behaviour::DeclineFirst {
            times: 0,
            code: "card_declined".into(),
        },
    );
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &pro, "pm_first_only").await;
    h.gateway.register(
        "pm_first_only",
        Behaviour::Decline {
            code: "card_declined".into(),
        },
    );
    h.advance_to(utc(2024, 2, 7)).await;
    let dunning = h.subscription(&subscription).await;
    let SubscriptionState::PastDue(past_due) = dunning.state() else {
        panic!("still past due on Feb 7: {dunning:?}");
    };
    assert_eq!(past_due.dunning.failed_attempts, 4, "Feb 1, 2, 4 and 6");
    h.advance_to(utc(2024, 2, 9)).await;
    let ended = h.subscription(&subscription).await;
    let SubscriptionState::Canceled(canceled) = ended.state() else {
        panic!("canceled by Feb 9: {ended:?}");
    };
    assert_eq!(canceled.reason, CancelReason::DunningExhausted);
    assert_eq!(canceled.canceled_at, utc(2024, 2, 8));
    let invoices = h.invoices(ana.id()).await;
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[1].status(), InvoiceStatus::Uncollectible);
    assert_eq!(invoices[1].marked_uncollectible_at(), Some(utc(2024, 2, 8)));
    // Five failed charges (Feb 1, 2, 4, 6 and 8), each reported; the last, with no retry
    // left, is reported before dunning is exhausted.
    let kinds = h.kinds_after(0).await;
    for failed in [
        EventKind::PaymentFailed,
        EventKind::SubscriptionPaymentFailed,
    ] {
        assert_eq!(
            kinds.iter().filter(|k| **k == failed).count(),
            5,
            "{failed}"
        );
    }
    assert_eq!(
        kinds
            .iter()
            .rev()
            .take(4)
            .rev()
            .copied()
            .collect::<Vec<_>>(),
        [
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::PaymentRetryFailed,
            EventKind::SubscriptionCanceled
        ]
    );
    h.transcript().await
}

/// A cancellation scheduled for the period end is revoked before it: the subscription renews
/// as if nothing happened. Scheduled again, it takes effect at exactly the period end.
pub async fn cancel_at_period_end_then_uncancel(store: Arc<dyn Store>) -> Transcript {
    let h = Harness::new(store, utc(2024, 3, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &pro, "pm_card_visa").await;
    let cancel = CancelRequest {
        at_period_end: true,
        comment: Some("too expensive".into()),
    };
    h.advance_to(utc(2024, 3, 10)).await;
    h.billing
        .subscriptions()
        .cancel(subscription.id(), cancel.clone())
        .await
        .unwrap();
    h.advance_to(utc(2024, 3, 20)).await;
    h.billing
        .subscriptions()
        .uncancel(subscription.id())
        .await
        .unwrap();
    h.advance_to(utc(2024, 4, 2)).await;
    let renewed = h.subscription(&subscription).await;
    assert_eq!(renewed.status(), SubscriptionStatus::Active);
    assert_eq!(renewed.current_period().unwrap().start(), utc(2024, 4, 1));
    h.billing
        .subscriptions()
        .cancel(subscription.id(), cancel)
        .await
        .unwrap();
    h.advance_to(utc(2024, 5, 3)).await;
    let ended = h.subscription(&subscription).await;
    let SubscriptionState::Canceled(canceled) = ended.state() else {
        panic!("canceled at the period end: {ended:?}");
    };
    assert_eq!(canceled.canceled_at, utc(2024, 5, 1));
    assert_eq!(canceled.comment.as_deref(), Some("too expensive"));
    assert_eq!(h.invoices(ana.id()).await.len(), 2, "March and April only");
    h.transcript().await
}

/// Canceled now on Mar 10, reactivated on Apr 5: a new period starts at the reactivation and
/// is charged at once.
pub async fn reactivate_after_cancel(store: Arc<dyn Store>) -> Transcript {
    let h = Harness::new(store, utc(2024, 3, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let subscription = h.subscribe(ana.id(), &pro, "pm_card_visa").await;
    h.advance_to(utc(2024, 3, 10)).await;
    let canceled = h
        .billing
        .subscriptions()
        .cancel(subscription.id(), CancelRequest::default())
        .await
        .unwrap();
    assert_eq!(canceled.status(), SubscriptionStatus::Canceled);
    h.advance_to(utc(2024, 4, 5)).await;
    assert_eq!(
        h.invoices(ana.id()).await.len(),
        1,
        "no renewal while canceled"
    );
    let back = h
        .billing
        .subscriptions()
        .reactivate(subscription.id())
        .await
        .unwrap();
    let period = back.current_period().unwrap();
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 4, 5), utc(2024, 5, 5))
    );
    let invoices = h.invoices(ana.id()).await;
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[1].kind(), InvoiceKind::Reactivation);
    assert_eq!(invoices[1].status(), InvoiceStatus::Paid);
    let kinds = h.kinds_after(0).await;
    assert!(kinds.contains(&EventKind::SubscriptionReactivated));
    h.transcript().await
}

/// Support activates a subscription still waiting for checkout (a migration): active at once,
/// with a period from now and no invoice, `subscription.updated` naming the actor and reason.
pub async fn admin_override_activates_a_pending_subscription(store: Arc<dyn Store>) -> Transcript {
    let h = Harness::new(store, utc(2024, 6, 1));
    let pro = h.price("pro", "50 USD", Interval::MONTHLY, 0).await;
    let ana = h.customer(1).await;
    let view = h.create(ana.id(), &pro).await;
    assert_eq!(
        view.subscription.status(),
        SubscriptionStatus::PendingPayment
    );
    let mark = h.events().await.len();
    h.clock.advance(TimeDelta::hours(2)).unwrap();
    let active = h
        .billing
        .subscriptions()
        .update(
            view.subscription.id(),
            AdminUpdate {
                status: SubscriptionStatus::Active,
                reason: "migrated from the old billing system, paid there".into(),
                actor: "support:ana".into(),
                invoice_policy: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(active.status(), SubscriptionStatus::Active);
    let period = active.current_period().unwrap();
    assert_eq!(period.start(), utc(2024, 6, 1) + TimeDelta::hours(2));
    assert_eq!(
        h.kinds_after(mark).await,
        [
            EventKind::SubscriptionUpdated,
            EventKind::SubscriptionActivated
        ]
    );
    let json = h.events().await[mark].envelope.to_json().unwrap();
    assert!(json.contains(r#""actor":"support:ana""#), "{json}");
    assert!(
        json.contains(r#""previousStatus":"pending_payment""#),
        "{json}"
    );
    assert!(h.invoices(ana.id()).await.is_empty());
    h.transcript().await
}

/// Stamp one `#[tokio::test]` per engine scenario (and per webhook scenario of
/// [`webhooks`](super::webhooks)) into a store crate's tests.
///
/// `$make` is callable with no arguments and returns a future of an `Arc<dyn Store>`.
#[macro_export]
macro_rules! engine_scenario_tests {
    ($make:expr) => {
        $crate::__stamp_engine_scenarios!(
            $make;
            jan_31_anchor_renews_on_feb_29_mar_31_apr_30,
            upgrade_mid_period_prorates_to_the_cent,
            trial_reminder_then_declined_first_charge_recovers_on_second_retry,
            dunning_exhausted_on_day_7_marks_the_invoice_uncollectible,
            cancel_at_period_end_then_uncancel,
            reactivate_after_cancel,
            admin_override_activates_a_pending_subscription,
        );
        $crate::__stamp_webhook_scenarios!(
            $make;
            a_receiver_failing_three_times_gets_retries_at_1_5_and_15_minutes,
            a_receiver_down_for_a_day_exhausts_the_schedule_then_a_redelivery_succeeds,
            an_endpoint_filtered_to_payment_failed_receives_only_those,
            gone_disables_retry_after_is_honoured_and_three_failing_days_disable,
            a_rotated_secret_verifies_through_its_grace_and_fails_after,
            endpoints_are_managed_and_a_test_event_is_signed,
            two_workers_never_send_one_attempt_twice,
            advance_to_keeps_every_deadline_while_webhooks_run,
            a_range_queued_before_fan_out_is_delivered_once,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_webhook_scenarios {
    ($make:expr; $($name:ident),* $(,)?) => {
        /// The webhook scenarios ([`commet_engine::testkit::webhooks`]), each on a fresh store.
        mod webhook_scenarios {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store: ::std::sync::Arc<dyn $crate::store::Store> = ($make)().await;
                    $crate::testkit::webhooks::$name(store).await;
                }
            )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_engine_scenarios {
    ($make:expr; $($name:ident),* $(,)?) => {
        /// The engine scenarios, each on a fresh store.
        mod engine_scenarios {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store: ::std::sync::Arc<dyn $crate::store::Store> = ($make)().await;
                    $crate::testkit::scenarios::$name(store).await;
                }
            )*
        }
    };
}
