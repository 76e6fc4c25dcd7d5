//! The conformance suite: one `pub async fn` per behaviour every [`Store`] must have.
//!
//! Each function takes a fresh, empty store, panics (with a message saying what broke) if the
//! store misbehaves, and returns otherwise. [`store_conformance_tests!`](crate::store_conformance_tests)
//! stamps one test per function into a store crate. When a store cannot pass, fix the store,
//! never the test.
//!
//! Concurrency is exercised with several futures on one task (`join_all`): each yields between
//! its read and its commit, so their reads and commits interleave even on a store whose calls
//! never wait, and a store that runs calls on other threads sees them truly in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::join_all;

use crate::idempotency::IdempotencyRecord;
use crate::store::{
    ChangeSet, EntityKind, ExpectedVersion, InvoiceQuery, InvoiceWrite, PageRequest, Put, Store,
    StoreError, SubscriptionQuery,
};
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, Plan, Price, PricingModel};
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::event::Event;
use commet_core::fixtures::{Catalog, utc};
use commet_core::ids::{CustomerId, SubscriptionId};
use commet_core::invoice::{
    Invoice, InvoiceKind, InvoiceStatus, LineItem, LineKind, NewInvoice, NewLineItem, NumberSeries,
};
use commet_core::money::{Currency, Money, RoundingPolicy, UnitAmount};
use commet_core::payment::AttemptStatus;
use commet_core::subscription::{Command, Subscription, SubscriptionStatus};

/// Yield to the executor once, so concurrent futures interleave.
fn yield_now() -> impl Future<Output = ()> {
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

async fn commit(store: &dyn Store, changes: ChangeSet) {
    store
        .commit(changes)
        .await
        .expect("the commit should succeed");
}

/// Store the catalog (plans and prices).
async fn store_catalog(store: &dyn Store, catalog: &Catalog) {
    commit(
        store,
        ChangeSet {
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            ..ChangeSet::default()
        },
    )
    .await;
}

async fn store_customer(store: &dyn Store, customer: Customer) -> Customer {
    let put = Put::of(customer);
    let stored = put.stored();
    commit(
        store,
        ChangeSet {
            customers: vec![put],
            ..ChangeSet::default()
        },
    )
    .await;
    stored
}

async fn store_subscription(store: &dyn Store, subscription: Subscription) -> Subscription {
    let put = Put::of(subscription);
    let stored = put.stored();
    commit(
        store,
        ChangeSet {
            subscriptions: vec![put],
            ..ChangeSet::default()
        },
    )
    .await;
    stored
}

/// A customer and an active subscription of theirs, stored.
async fn active_subscription(store: &dyn Store, catalog: &Catalog, n: u32) -> Subscription {
    let customer = store_customer(store, catalog.customer(n, utc(2024, 1, 1))).await;
    store_subscription(store, catalog.active_for(customer.id())).await
}

fn an_event(catalog: &Catalog, now: DateTime<Utc>) -> commet_core::event::Envelope {
    let customer = catalog.customer(0, now);
    catalog.envelope(Event::CustomerCreated(customer.event_data()), now)
}

/// Every entity is read back exactly as written: long and unicode strings, large and tiny
/// decimals, every subscription status, every invoice status, hundreds of lines, every
/// attempt status, events and idempotency records.
pub async fn every_entity_round_trips_exactly(store: &dyn Store) {
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    let long_plan = Plan::new(
        catalog.ids.next(now),
        NewPlan {
            code: "enterprise-🚀".replace('🚀', "x"),
            name: "Ünïcødé ✨ Enterprise — 企業 プラン".into(),
            description: Some("Ω≈ç√∫ ".repeat(300)),
        },
    )
    .unwrap();
    let tiny = Price::new(
        catalog.ids.next(now),
        NewPrice {
            plan: long_plan.id(),
            unit_amount: "0.000000000001 USD".parse::<UnitAmount>().unwrap(),
            interval: Interval::new(commet_core::calendar::Frequency::Weekly, 3).unwrap(),
            trial_days: 730,
            model: PricingModel::PerSeat,
        },
    )
    .unwrap();
    let huge = Price::new(
        catalog.ids.next(now),
        NewPrice {
            plan: long_plan.id(),
            unit_amount: "92233720368547.758 KWD".parse::<UnitAmount>().unwrap(),
            interval: Interval::YEARLY,
            trial_days: 0,
            model: PricingModel::Flat,
        },
    )
    .unwrap();
    let mut plans = catalog.plans.clone();
    plans.push(long_plan);
    let mut prices: Vec<Price> = catalog.prices().into_iter().cloned().collect();
    prices.extend([tiny, huge]);
    commit(
        store,
        ChangeSet {
            plans: plans.clone(),
            prices: prices.clone(),
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(store.plans().await.unwrap(), plans, "plans");
    assert_eq!(store.prices(None).await.unwrap(), prices, "prices");
    for price in &prices {
        assert_eq!(store.price(price.id()).await.unwrap().as_ref(), Some(price));
    }

    let mut customer = Customer::new(
        catalog.ids.next(now),
        CustomerDetails {
            external_id: Some("ext-ünïcødé-".repeat(15)),
            email: "ana.lima+billing@例え.jp".into(),
            full_name: Some("Ana Lima ☕ \"quoted\" 'name' \\ back".into()),
            metadata: (0..50)
                .map(|i| (format!("key{i}"), "v".repeat(500)))
                .collect(),
        },
        now,
    )
    .unwrap();
    customer.set_payment_method("pm_card_visa", now).unwrap();
    customer
        .adjust_credit(Money::from_minor(1, Currency::KWD), now)
        .unwrap();
    customer
        .adjust_credit(Money::from_minor(i64::MAX / 2, Currency::USD), now)
        .unwrap();
    let customer = store_customer(store, customer).await;
    assert_eq!(
        store.customer(customer.id()).await.unwrap().as_ref(),
        Some(&customer)
    );

    let subscriptions = [
        catalog.draft(),
        catalog.pending(),
        catalog.trialing(),
        catalog.active(),
        catalog.past_due(),
        catalog.paused(),
        catalog.canceled(),
        catalog.free(),
        catalog.apply(
            &catalog.trialing(),
            &Command::ScheduleCancellation {
                comment: Some("«moving» ☂".into()),
            },
            utc(2024, 2, 1),
        ),
        catalog.apply(
            &catalog.active(),
            &Command::ScheduleDowngrade {
                change: catalog.change(&catalog.seats),
            },
            utc(2024, 2, 1),
        ),
    ];
    for (n, subscription) in (100..).zip(subscriptions) {
        store_customer(
            store,
            catalog.customer_with_id(subscription.customer(), n, now),
        )
        .await;
        let stored = store_subscription(store, subscription).await;
        assert_eq!(
            store.subscription(stored.id()).await.unwrap().as_ref(),
            Some(&stored),
            "a {} subscription",
            stored.status()
        );
    }

    // Invoices in every status, one with many lines of every kind.
    let subscription = active_subscription(store, &catalog, 1).await;
    let period = subscription.current_period().unwrap();
    let mut many = Invoice::draft(NewInvoice {
        id: catalog.ids.next(now),
        customer: subscription.customer(),
        subscription: Some(subscription.id()),
        currency: Currency::USD,
        kind: InvoiceKind::Adjustment,
        period: Some(period),
        created_at: now,
        memo: Some("Mémo ✍️ ".repeat(100)),
        metadata: BTreeMap::from([("ünï".into(), "çødé".into())]),
    })
    .unwrap();
    let kinds = [
        LineKind::PlanBase,
        LineKind::Seats,
        LineKind::ProrationCredit,
        LineKind::ProrationCharge,
        LineKind::Discount,
        LineKind::Adjustment,
        LineKind::OneTime,
    ];
    for i in 0..210_i64 {
        let kind = kinds[usize::try_from(i).unwrap() % kinds.len()];
        let negative = matches!(kind, LineKind::ProrationCredit | LineKind::Discount);
        let unit = format!(
            "{}{}.{:04} USD",
            if negative { "-" } else { "" },
            i,
            i * 37 % 10_000
        );
        many.add_line(
            LineItem::new(
                NewLineItem {
                    kind,
                    description: format!("Line {i}: ☂ ünïcødé"),
                    quantity: (i % 7 + 1).into(),
                    unit_amount: unit.parse().unwrap(),
                    period: (i % 2 == 0).then_some(period),
                    price: (i % 3 == 0).then(|| catalog.pro.id()),
                },
                RoundingPolicy::HalfEven,
            )
            .unwrap(),
        )
        .unwrap();
    }
    let cycle = subscription.cycle().unwrap();
    let numbered = |n: u64| {
        let mut invoice = catalog.recurring_invoice(&subscription, cycle.period(n).unwrap());
        invoice
            .assign_number(NumberSeries::new("RT-", 4).unwrap().format(n + 1))
            .unwrap();
        invoice
    };
    let outstanding = numbered(0);
    let mut paid = numbered(1);
    paid.mark_paid(now, paid.amount_due()).unwrap();
    let mut void = numbered(2);
    void.void(now).unwrap();
    let mut uncollectible = numbered(3);
    uncollectible.mark_uncollectible(now).unwrap();
    let writes: Vec<InvoiceWrite> = [many, outstanding, paid, void, uncollectible]
        .into_iter()
        .map(InvoiceWrite::of)
        .collect();
    let stored: Vec<Invoice> = writes.iter().map(|w| w.put.stored()).collect();
    commit(
        store,
        ChangeSet {
            invoices: writes,
            ..ChangeSet::default()
        },
    )
    .await;
    for invoice in &stored {
        assert_eq!(
            store.invoice(invoice.id()).await.unwrap().as_ref(),
            Some(invoice),
            "a {} invoice",
            invoice.status()
        );
    }

    // Attempts in every status.
    let attempt_invoice = &stored[1];
    let pending = catalog.attempt(attempt_invoice, 1, now);
    let mut succeeded = catalog.attempt(attempt_invoice, 2, now);
    succeeded.status = AttemptStatus::Succeeded {
        payment_id: Some("ch_3Nx…ünï".into()),
    };
    succeeded.completed_at = Some(now + TimeDelta::seconds(2));
    let mut failed = catalog.attempt(attempt_invoice, 3, now);
    failed.status = AttemptStatus::Failed {
        code: "card_declined".into(),
        message: "Tarjeta rechazada — «fondos insuficientes»".into(),
    };
    failed.completed_at = Some(now + TimeDelta::seconds(3));
    let attempts = [pending, succeeded, failed];
    let puts: Vec<_> = attempts.iter().cloned().map(Put::of).collect();
    let expected: Vec<_> = puts.iter().map(Put::stored).collect();
    commit(
        store,
        ChangeSet {
            payment_attempts: puts,
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        store.payment_attempts(attempt_invoice.id()).await.unwrap(),
        expected
    );
    for attempt in &expected {
        assert_eq!(
            store
                .payment_attempt(&attempt.idempotency_key())
                .await
                .unwrap()
                .as_ref(),
            Some(attempt)
        );
    }

    // Events and idempotency records.
    let events: Vec<_> = (0..5).map(|_| an_event(&catalog, now)).collect();
    let record = idempotency_record("idem-ünï-☂", now);
    commit(
        store,
        ChangeSet {
            events: events.clone(),
            idempotency: vec![record.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    let read: Vec<_> = store
        .events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|stored| stored.envelope)
        .collect();
    assert_eq!(read, events);
    assert_eq!(
        store.idempotency_record(&record.key, now).await.unwrap(),
        Some(record)
    );
}

/// Versions start at 1 and grow by one per write; `New` over an existing row, `Exactly` over a
/// missing one, and a stale `Exactly` are all [`StoreError::Conflict`].
pub async fn versions_start_at_one_and_stale_writes_conflict(store: &dyn Store) {
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    let customer = store_customer(store, catalog.customer(1, now)).await;
    assert_eq!(customer.version(), 1);
    let stored = store.customer(customer.id()).await.unwrap().unwrap();
    assert_eq!(stored.version(), 1);
    let again = store
        .commit(ChangeSet {
            customers: vec![Put {
                value: customer.clone(),
                expected: ExpectedVersion::New,
            }],
            ..ChangeSet::default()
        })
        .await;
    assert_eq!(
        again.unwrap_err(),
        StoreError::Conflict {
            kind: EntityKind::Customer,
            id: customer.id().to_string(),
            expected: ExpectedVersion::New,
            actual: Some(1)
        }
    );
    let missing = catalog.customer(2, now);
    let result = store
        .commit(ChangeSet {
            customers: vec![Put {
                value: missing.clone(),
                expected: ExpectedVersion::Exactly(1),
            }],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict { actual: None, .. })),
        "{result:?}"
    );
    let updated = store_customer(store, stored.clone()).await;
    assert_eq!(updated.version(), 2);
    let stale = store
        .commit(ChangeSet {
            customers: vec![Put::of(stored)],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                expected: ExpectedVersion::Exactly(1),
                actual: Some(2),
                ..
            })
        ),
        "{stale:?}"
    );
}

/// A change set with one stale write writes nothing at all: not the other objects, not the
/// events, not the idempotency records, not the invoice numbers.
pub async fn stale_commit_is_rejected_atomically(store: &dyn Store) {
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    store_catalog(store, &catalog).await;
    let subscription = active_subscription(store, &catalog, 1).await;
    let fresh = catalog.customer(2, now);
    let invoice = catalog.recurring_invoice(&subscription, subscription.current_period().unwrap());
    let mut stale = subscription.clone();
    stale.set_version(subscription.version() + 7);
    let result = store
        .commit(ChangeSet {
            customers: vec![Put::of(fresh.clone())],
            subscriptions: vec![Put::of(stale)],
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Catalog::series())],
            events: vec![an_event(&catalog, now)],
            idempotency: vec![idempotency_record("k1", now)],
            ..ChangeSet::default()
        })
        .await;
    assert!(result.unwrap_err().is_conflict());
    assert_eq!(
        store.customer(fresh.id()).await.unwrap(),
        None,
        "the customer was written"
    );
    assert_eq!(
        store.invoice(invoice.id()).await.unwrap(),
        None,
        "the invoice was written"
    );
    assert!(
        store.events_after(0, 10).await.unwrap().is_empty(),
        "events were written"
    );
    assert_eq!(store.idempotency_record("k1", now).await.unwrap(), None);
    assert_eq!(
        store.number_series("INV-").await.unwrap(),
        None,
        "a number was used up"
    );
    assert_eq!(
        store.subscription(subscription.id()).await.unwrap(),
        Some(subscription)
    );
    // The next good commit numbers from 1: the refused one left no gap.
    let receipt = store
        .commit(ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice, Catalog::series())],
            events: vec![an_event(&catalog, now)],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    assert_eq!(receipt.event_seqs, [1]);
    assert_eq!(receipt.invoice_numbers[0].1.as_str(), "INV-000001");
}

/// Two commits at one version, racing: exactly one wins, the other is a conflict.
pub async fn two_concurrent_commits_at_one_version_exactly_one_wins(store: &dyn Store) {
    let catalog = Catalog::new();
    let customer = store_customer(store, catalog.customer(1, utc(2024, 1, 1))).await;
    let racers = (0..2).map(|n| {
        let mut copy = customer.clone();
        async move {
            let mut details = copy.to_record().details;
            details.full_name = Some(format!("Racer {n}"));
            copy.update(details, utc(2024, 1, 2)).unwrap();
            yield_now().await;
            store
                .commit(ChangeSet {
                    customers: vec![Put::of(copy)],
                    ..ChangeSet::default()
                })
                .await
        }
    });
    let results = join_all(racers).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_conflict()))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{results:?}");
    assert_eq!(
        store
            .customer(customer.id())
            .await
            .unwrap()
            .unwrap()
            .version(),
        2
    );
}

/// N tasks each run M read-modify-commit loops (retrying on conflict) on one customer: no
/// update is lost, so it ends at version 1 + N x M and its counter at N x M.
pub async fn read_modify_commit_loops_lose_no_update(store: &dyn Store) {
    const TASKS: u32 = 8;
    const LOOPS: u32 = 12;
    let catalog = Catalog::new();
    let customer = store_customer(store, catalog.customer(1, utc(2024, 1, 1))).await;
    let id = customer.id();
    let workers = (0..TASKS).map(|_| async move {
        for _ in 0..LOOPS {
            loop {
                let mut current = store.customer(id).await.unwrap().unwrap();
                let count: u32 = current
                    .metadata()
                    .get("count")
                    .map_or(0, |c| c.parse().unwrap());
                let mut details = current.to_record().details;
                details
                    .metadata
                    .insert("count".into(), (count + 1).to_string());
                current.update(details, utc(2024, 1, 2)).unwrap();
                yield_now().await;
                match store
                    .commit(ChangeSet {
                        customers: vec![Put::of(current)],
                        ..ChangeSet::default()
                    })
                    .await
                {
                    Ok(_) => break,
                    Err(error) if error.is_conflict() => {}
                    Err(error) => panic!("{error}"),
                }
            }
        }
    });
    join_all(workers).await;
    let last = store.customer(id).await.unwrap().unwrap();
    assert_eq!(last.version(), u64::from(1 + TASKS * LOOPS));
    assert_eq!(last.metadata()["count"], (TASKS * LOOPS).to_string());
}

/// Invoices numbered by concurrent commits get every number of the series exactly once, and a
/// series keeps its own prefix, padding and start.
pub async fn invoice_numbers_stay_gap_free_and_unique_under_concurrent_commits(store: &dyn Store) {
    const COMMITS: u32 = 24;
    let catalog = Catalog::new();
    store_catalog(store, &catalog).await;
    let mut subscriptions = Vec::new();
    for n in 0..COMMITS {
        subscriptions.push(active_subscription(store, &catalog, n).await);
    }
    let writers = subscriptions.iter().map(|subscription| {
        let invoice =
            catalog.recurring_invoice(subscription, subscription.current_period().unwrap());
        async move {
            yield_now().await;
            store
                .commit(ChangeSet {
                    invoices: vec![InvoiceWrite::numbered(invoice, Catalog::series())],
                    ..ChangeSet::default()
                })
                .await
                .unwrap()
        }
    });
    let receipts = join_all(writers).await;
    let numbers: BTreeSet<String> = receipts
        .iter()
        .flat_map(|r| r.invoice_numbers.iter().map(|(_, n)| n.as_str().to_owned()))
        .collect();
    let expected: BTreeSet<String> = (1..=u64::from(COMMITS))
        .map(|n| Catalog::series().format(n).as_str().to_owned())
        .collect();
    assert_eq!(numbers, expected);
    for receipt in &receipts {
        let (id, number) = &receipt.invoice_numbers[0];
        let stored = store.invoice(*id).await.unwrap().unwrap();
        assert_eq!(
            stored.number(),
            Some(number),
            "the stored invoice carries its number"
        );
    }
    let stored = store.number_series("INV-").await.unwrap().unwrap();
    assert_eq!(stored.next_value(), u64::from(COMMITS) + 1);

    // Another series starts where its first request says, with its own padding.
    let subscription = &subscriptions[0];
    let next = subscription.cycle().unwrap().period(1).unwrap();
    let custom = NumberSeries::resume("ACME/", 3, 1_000).unwrap();
    let receipt = store
        .commit(ChangeSet {
            invoices: vec![InvoiceWrite::numbered(
                catalog.recurring_invoice(subscription, next),
                custom,
            )],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    assert_eq!(receipt.invoice_numbers[0].1.as_str(), "ACME/1000");
}

/// Events committed concurrently get sequence numbers 1, 2, 3 ... without gaps; each commit's
/// events are consecutive and in their order; `events_after` reads them back in order.
pub async fn event_sequence_is_gap_free_and_ordered_under_concurrency(store: &dyn Store) {
    const COMMITS: usize = 20;
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    let batches: Vec<Vec<_>> = (0..COMMITS)
        .map(|i| (0..=i % 4).map(|_| an_event(&catalog, now)).collect())
        .collect();
    let writers = batches.iter().map(|events| async move {
        yield_now().await;
        let receipt = store
            .commit(ChangeSet {
                events: events.clone(),
                ..ChangeSet::default()
            })
            .await
            .unwrap();
        (receipt.event_seqs, events.clone())
    });
    let results = join_all(writers).await;
    let total: usize = batches.iter().map(Vec::len).sum();
    let mut all = Vec::new();
    for (seqs, events) in &results {
        assert_eq!(seqs.len(), events.len());
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "a commit's events are consecutive"
        );
        all.extend(seqs.iter().copied().zip(events.iter().cloned()));
    }
    all.sort_by_key(|(seq, _)| *seq);
    let seqs: Vec<u64> = all.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        read.extend(page);
    }
    assert_eq!(
        read.iter()
            .map(|e| (e.seq, e.envelope.clone()))
            .collect::<Vec<_>>(),
        all
    );
}

/// The unique keys are typed [`StoreError::AlreadyExists`] errors and write nothing: external
/// ids, recurring periods, attempt keys, plan codes, event ids, live idempotency keys.
pub async fn uniqueness_constraints_are_typed_errors(store: &dyn Store) {
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    store_catalog(store, &catalog).await;
    let exists = |result: Result<_, StoreError>, kind: EntityKind| match result {
        Err(StoreError::AlreadyExists { kind: got, .. }) => assert_eq!(got, kind),
        other => panic!("expected {kind} to already exist, got {other:?}"),
    };
    // External id.
    let first = store_customer(store, catalog.customer(1, now)).await;
    let twin = catalog.customer(1, now);
    exists(
        store
            .commit(ChangeSet {
                customers: vec![Put::of(twin.clone())],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Customer,
    );
    assert_eq!(store.customer(twin.id()).await.unwrap(), None);
    assert_eq!(
        store
            .customer_by_external_id("user_1")
            .await
            .unwrap()
            .map(|c| c.id()),
        Some(first.id())
    );
    // Plan code.
    let same_code = Plan::new(
        catalog.ids.next(now),
        NewPlan {
            code: "pro".into(),
            name: "Pro again".into(),
            description: None,
        },
    )
    .unwrap();
    exists(
        store
            .commit(ChangeSet {
                plans: vec![same_code],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Plan,
    );
    // Recurring period.
    let subscription = store_subscription(store, catalog.active_for(first.id())).await;
    let period = subscription.current_period().unwrap();
    let invoice = catalog.recurring_invoice(&subscription, period);
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Catalog::series())],
            ..ChangeSet::default()
        },
    )
    .await;
    let second = catalog.recurring_invoice(&subscription, period);
    exists(
        store
            .commit(ChangeSet {
                invoices: vec![InvoiceWrite::numbered(second.clone(), Catalog::series())],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Invoice,
    );
    assert_eq!(store.invoice(second.id()).await.unwrap(), None);
    assert_eq!(
        store
            .recurring_invoice(subscription.id(), period.start())
            .await
            .unwrap()
            .map(|i| i.id()),
        Some(invoice.id())
    );
    // Attempt key.
    commit(
        store,
        ChangeSet {
            payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, now))],
            ..ChangeSet::default()
        },
    )
    .await;
    exists(
        store
            .commit(ChangeSet {
                payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, now))],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::PaymentAttempt,
    );
    // Event id.
    let event = an_event(&catalog, now);
    commit(
        store,
        ChangeSet {
            events: vec![event.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    exists(
        store
            .commit(ChangeSet {
                events: vec![event],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Event,
    );
    // Live idempotency key.
    commit(
        store,
        ChangeSet {
            idempotency: vec![idempotency_record("once", now)],
            ..ChangeSet::default()
        },
    )
    .await;
    exists(
        store
            .commit(ChangeSet {
                idempotency: vec![idempotency_record("once", now + TimeDelta::hours(1))],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::IdempotencyRecord,
    );
}

/// Writes that name objects the store does not have (a subscription's customer, a price's
/// plan, an attempt's invoice) are refused as invalid and write nothing.
pub async fn references_to_missing_objects_are_refused(store: &dyn Store) {
    let catalog = Catalog::new();
    let invalid = |result: Result<_, StoreError>| {
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    };
    let orphan = catalog.active();
    invalid(
        store
            .commit(ChangeSet {
                subscriptions: vec![Put::of(orphan.clone())],
                ..ChangeSet::default()
            })
            .await,
    );
    invalid(
        store
            .commit(ChangeSet {
                prices: vec![catalog.pro.clone()],
                ..ChangeSet::default()
            })
            .await,
    );
    let invoice = catalog.recurring_invoice(&orphan, orphan.current_period().unwrap());
    invalid(
        store
            .commit(ChangeSet {
                payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, utc(2024, 1, 1)))],
                ..ChangeSet::default()
            })
            .await,
    );
    assert_eq!(store.subscription(orphan.id()).await.unwrap(), None);
    assert!(store.prices(None).await.unwrap().is_empty());
    // In one change set with what they refer to, they are fine.
    let owner = catalog.customer_with_id(orphan.customer(), 1, utc(2024, 1, 1));
    commit(
        store,
        ChangeSet {
            customers: vec![Put::of(owner)],
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            subscriptions: vec![Put::of(orphan)],
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Catalog::series())],
            payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, utc(2024, 1, 1)))],
            ..ChangeSet::default()
        },
    )
    .await;
}

/// Pages list every row exactly once, newest first, even while rows are being added between
/// pages; filters select by customer and status.
pub async fn pagination_returns_every_row_exactly_once_while_rows_are_added(store: &dyn Store) {
    let catalog = Catalog::new();
    let mut created = Vec::new();
    for n in 0..23 {
        created.push(
            store_customer(store, catalog.customer(n, utc(2024, 1, 1)))
                .await
                .id(),
        );
    }
    let mut seen: Vec<CustomerId> = Vec::new();
    let mut request = PageRequest::first(5);
    let mut extra = 100;
    loop {
        let page = store.customers(request.clone()).await.unwrap();
        seen.extend(page.items.iter().map(Customer::id));
        // Newer rows appear meanwhile; they must not disturb the walk.
        store_customer(store, catalog.customer(extra, utc(2024, 1, 1))).await;
        extra += 1;
        match page.next {
            Some(cursor) => request.after = Some(cursor),
            None => break,
        }
    }
    let unique: BTreeSet<CustomerId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a row was listed twice");
    for id in &created {
        assert!(unique.contains(id), "{id} was never listed");
    }
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(&seen[..created.len()], &newest_first[..], "newest first");
    let too_big = store.customers(PageRequest::first(101)).await;
    assert!(
        matches!(too_big, Err(StoreError::Invalid(_))),
        "{too_big:?}"
    );

    // Filters.
    store_catalog(store, &catalog).await;
    let subscription = active_subscription(store, &catalog, 500).await;
    let canceled = catalog.apply(
        &subscription,
        &Command::CancelNow {
            comment: None,
            open_invoices: vec![],
        },
        utc(2024, 2, 2),
    );
    let canceled = store_subscription(store, canceled).await;
    let other = active_subscription(store, &catalog, 501).await;
    let by_customer = store
        .subscriptions(
            SubscriptionQuery {
                customer: Some(other.customer()),
                status: None,
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(by_customer.items, std::slice::from_ref(&other));
    let by_status = store
        .subscriptions(
            SubscriptionQuery {
                customer: None,
                status: Some(SubscriptionStatus::Canceled),
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(by_status.items, [canceled]);
    let mut outstanding = Vec::new();
    for n in 0..4 {
        let period = other.cycle().unwrap().period(n).unwrap();
        let mut invoice = catalog.recurring_invoice(&other, period);
        if n == 2 {
            invoice.assign_number(Catalog::series().format(99)).unwrap();
            invoice
                .mark_paid(period.start(), invoice.amount_due())
                .unwrap();
        } else {
            outstanding.push(invoice.id());
        }
        commit(
            store,
            ChangeSet {
                invoices: vec![if n == 2 {
                    InvoiceWrite::of(invoice)
                } else {
                    InvoiceWrite::numbered(invoice, Catalog::series())
                }],
                ..ChangeSet::default()
            },
        )
        .await;
    }
    let open = store
        .invoices(
            InvoiceQuery {
                customer: Some(other.customer()),
                subscription: None,
                status: Some(InvoiceStatus::Outstanding),
            },
            PageRequest::first(2),
        )
        .await
        .unwrap();
    outstanding.reverse();
    assert_eq!(
        open.items.iter().map(Invoice::id).collect::<Vec<_>>(),
        outstanding[..2]
    );
    let rest = store
        .invoices(
            InvoiceQuery {
                customer: Some(other.customer()),
                subscription: Some(other.id()),
                status: Some(InvoiceStatus::Outstanding),
            },
            PageRequest {
                limit: 2,
                after: open.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(Invoice::id).collect::<Vec<_>>(),
        outstanding[2..]
    );
    assert_eq!(rest.next, None);
}

/// `due` and `next_due_at` agree with the stored subscriptions' own deadlines, oldest first,
/// and follow every rewrite.
pub async fn due_work_index_agrees_with_the_stored_rows(store: &dyn Store) {
    let catalog = Catalog::new();
    store_catalog(store, &catalog).await;
    assert_eq!(store.next_due_at().await.unwrap(), None);
    let mut stored: BTreeMap<SubscriptionId, Subscription> = BTreeMap::new();
    let builders: [fn(&Catalog) -> Subscription; 8] = [
        Catalog::draft,
        Catalog::pending,
        Catalog::trialing,
        Catalog::active,
        Catalog::past_due,
        Catalog::paused,
        Catalog::canceled,
        Catalog::free,
    ];
    for (n, build) in (0u32..).zip(builders) {
        let subscription = build(&catalog);
        store_customer(
            store,
            catalog.customer_with_id(subscription.customer(), n, utc(2024, 1, 1)),
        )
        .await;
        let subscription = store_subscription(store, subscription).await;
        stored.insert(subscription.id(), subscription);
    }
    let check = |stored: &BTreeMap<SubscriptionId, Subscription>| {
        let stored = stored.clone();
        async move {
            let mut expected: Vec<(DateTime<Utc>, SubscriptionId)> = stored
                .values()
                .filter_map(|s| s.next_due_at().map(|due| (due, s.id())))
                .collect();
            expected.sort();
            assert_eq!(
                store.next_due_at().await.unwrap(),
                expected.first().map(|(due, _)| *due)
            );
            for (now, limit) in [
                (utc(2024, 1, 1), 100),
                (utc(2024, 2, 11), 100),
                (utc(2024, 2, 29), 2),
                (utc(2024, 3, 1), 100),
                (utc(2030, 1, 1), 3),
            ] {
                let want: Vec<SubscriptionId> = expected
                    .iter()
                    .filter(|(due, _)| *due <= now)
                    .take(limit)
                    .map(|(_, id)| *id)
                    .collect();
                let got: Vec<SubscriptionId> = store
                    .due(now, limit)
                    .await
                    .unwrap()
                    .iter()
                    .map(Subscription::id)
                    .collect();
                assert_eq!(got, want, "due at {now} (limit {limit})");
            }
        }
    };
    check(&stored).await;
    // Renew the active one; cancel the trial: the index follows.
    let active = stored
        .values()
        .find(|s| s.status() == SubscriptionStatus::Active && !catalog.is_free(s))
        .unwrap()
        .clone();
    let renewed = catalog.apply(
        &active,
        &Command::Renew(commet_core::subscription::ChargeOutcome::Paid {
            settlement: catalog.settlement(&active, utc(2024, 2, 29)),
        }),
        utc(2024, 2, 29),
    );
    let renewed = store_subscription(store, renewed).await;
    stored.insert(renewed.id(), renewed);
    let trial = stored
        .values()
        .find(|s| s.status() == SubscriptionStatus::Trialing)
        .unwrap()
        .clone();
    let ended = catalog.apply(
        &trial,
        &Command::CancelNow {
            comment: None,
            open_invoices: vec![],
        },
        utc(2024, 2, 1),
    );
    let ended = store_subscription(store, ended).await;
    stored.insert(ended.id(), ended);
    check(&stored).await;
}

/// Idempotency records round-trip while live, disappear once expired, and an expired key may
/// be used again.
pub async fn idempotency_records_round_trip_and_expire(store: &dyn Store) {
    let now = utc(2024, 1, 1);
    let record = idempotency_record("order-42", now);
    commit(
        store,
        ChangeSet {
            idempotency: vec![record.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        store
            .idempotency_record("order-42", now + TimeDelta::hours(23))
            .await
            .unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store.idempotency_record("order-43", now).await.unwrap(),
        None
    );
    let later = record.expires_at;
    assert_eq!(
        store.idempotency_record("order-42", later).await.unwrap(),
        None
    );
    let reused = crate::idempotency::IdempotencyRecord {
        fingerprint: "another request".into(),
        ..idempotency_record("order-42", later)
    };
    commit(
        store,
        ChangeSet {
            idempotency: vec![reused.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        store.idempotency_record("order-42", later).await.unwrap(),
        Some(reused)
    );
}

/// Pending attempts older than a cutoff are listed oldest first (the charges a crash left
/// unfinished); completed ones never are.
pub async fn pending_payment_attempts_are_found_for_recovery(store: &dyn Store) {
    let catalog = Catalog::new();
    store_catalog(store, &catalog).await;
    let subscription = active_subscription(store, &catalog, 1).await;
    let invoice = catalog.recurring_invoice(&subscription, subscription.current_period().unwrap());
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Catalog::series())],
            ..ChangeSet::default()
        },
    )
    .await;
    let base = utc(2024, 3, 1);
    let attempts: Vec<_> = (1..=4)
        .map(|n| catalog.attempt(&invoice, n, base + TimeDelta::minutes(i64::from(5 - n))))
        .collect();
    let mut done = attempts[3].clone();
    done.status = AttemptStatus::Failed {
        code: "card_declined".into(),
        message: "declined".into(),
    };
    done.completed_at = Some(base);
    commit(
        store,
        ChangeSet {
            payment_attempts: attempts[..3]
                .iter()
                .cloned()
                .chain([done])
                .map(Put::of)
                .collect(),
            ..ChangeSet::default()
        },
    )
    .await;
    let pending = store
        .pending_payment_attempts(base + TimeDelta::minutes(4), 10)
        .await
        .unwrap();
    let attempt_numbers: Vec<u32> = pending.iter().map(|a| a.attempt).collect();
    assert_eq!(
        attempt_numbers,
        [3, 2],
        "oldest first, before the cutoff, pending only"
    );
    assert_eq!(
        store
            .pending_payment_attempts(base + TimeDelta::hours(1), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // Completing one takes it off the list.
    let mut completed = pending[0].clone();
    completed.status = AttemptStatus::Succeeded { payment_id: None };
    completed.completed_at = Some(base + TimeDelta::hours(1));
    commit(
        store,
        ChangeSet {
            payment_attempts: vec![Put::of(completed)],
            ..ChangeSet::default()
        },
    )
    .await;
    let left: Vec<u32> = store
        .pending_payment_attempts(base + TimeDelta::hours(2), 10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.attempt)
        .collect();
    assert_eq!(left, [2, 1]);
}

/// Customers are found by external id (which follows updates) and by e-mail, ignoring ASCII
/// case.
pub async fn customers_are_found_by_id_external_id_and_email(store: &dyn Store) {
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    let ana = store_customer(store, catalog.customer(1, now)).await;
    let twin = {
        let mut twin = catalog.customer(2, now);
        let mut details = twin.to_record().details;
        details.email = "USER1@Example.COM".into();
        twin.update(details, now).unwrap();
        store_customer(store, twin).await
    };
    let by_email: Vec<CustomerId> = store
        .customers_by_email("user1@example.com")
        .await
        .unwrap()
        .iter()
        .map(Customer::id)
        .collect();
    assert_eq!(
        by_email,
        [twin.id(), ana.id()],
        "newest first, case-insensitive"
    );
    let mut renamed = ana.clone();
    let mut details = renamed.to_record().details;
    details.external_id = Some("user_1_renamed".into());
    renamed.update(details, now).unwrap();
    store_customer(store, renamed).await;
    assert_eq!(store.customer_by_external_id("user_1").await.unwrap(), None);
    assert_eq!(
        store
            .customer_by_external_id("user_1_renamed")
            .await
            .unwrap()
            .map(|c| c.id()),
        Some(ana.id())
    );
    // The old external id is free again.
    let again = store_customer(store, catalog.customer(1, now)).await;
    // By ids, in the order asked, skipping unknown ones.
    let unknown = catalog.customer(9, now).id();
    let by_id: Vec<CustomerId> = store
        .customers_by_id(&[twin.id(), unknown, ana.id(), again.id(), twin.id()])
        .await
        .unwrap()
        .iter()
        .map(Customer::id)
        .collect();
    assert_eq!(by_id, [twin.id(), ana.id(), again.id(), twin.id()]);
    assert!(store.customers_by_id(&[]).await.unwrap().is_empty());
}

/// A change set that writes one object twice, or asks to number a draft, is refused as invalid
/// before anything is written.
pub async fn malformed_change_sets_are_refused(store: &dyn Store) {
    let catalog = Catalog::new();
    let customer = catalog.customer(1, utc(2024, 1, 1));
    let twice = store
        .commit(ChangeSet {
            customers: vec![Put::of(customer.clone()), Put::of(customer.clone())],
            ..ChangeSet::default()
        })
        .await;
    assert!(matches!(twice, Err(StoreError::Invalid(_))), "{twice:?}");
    assert_eq!(store.customer(customer.id()).await.unwrap(), None);
    let draft = Invoice::draft(NewInvoice {
        id: catalog.ids.next(utc(2024, 1, 1)),
        customer: customer.id(),
        subscription: None,
        currency: Currency::USD,
        kind: InvoiceKind::OneTime,
        period: None,
        created_at: utc(2024, 1, 1),
        memo: None,
        metadata: BTreeMap::new(),
    })
    .unwrap();
    let numbered_draft = store
        .commit(ChangeSet {
            customers: vec![Put::of(customer)],
            invoices: vec![InvoiceWrite::numbered(draft, Catalog::series())],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(numbered_draft, Err(StoreError::Invalid(_))),
        "{numbered_draft:?}"
    );
}

/// An invoice's lines are written while it is a draft and fixed once it is finalized: a later
/// write may change its status and amounts paid, but a write that changes its lines is refused
/// as `invoice.lines`, with nothing written.
pub async fn invoice_lines_change_only_while_draft(store: &dyn Store) {
    let catalog = Catalog::new();
    let now = utc(2024, 1, 1);
    let customer = store_customer(store, catalog.customer(1, now)).await;
    let line = |description: &str, unit: &str| {
        LineItem::new(
            NewLineItem {
                kind: LineKind::OneTime,
                description: description.into(),
                quantity: 1.into(),
                unit_amount: unit.parse().unwrap(),
                period: None,
                price: None,
            },
            RoundingPolicy::default(),
        )
        .unwrap()
    };
    let mut draft = Invoice::draft(NewInvoice {
        id: catalog.ids.next(now),
        customer: customer.id(),
        subscription: None,
        currency: Currency::USD,
        kind: InvoiceKind::OneTime,
        period: None,
        created_at: now,
        memo: None,
        metadata: BTreeMap::new(),
    })
    .unwrap();
    draft.add_line(line("Setup", "20 USD")).unwrap();
    let write = |invoice: Invoice| ChangeSet {
        invoices: vec![InvoiceWrite::of(invoice)],
        ..ChangeSet::default()
    };
    commit(store, write(draft.clone())).await;

    // A draft's lines may change.
    let mut draft = store.invoice(draft.id()).await.unwrap().unwrap();
    draft.add_line(line("Onboarding", "30 USD")).unwrap();
    commit(store, write(draft.clone())).await;
    let stored = store.invoice(draft.id()).await.unwrap().unwrap();
    assert_eq!(
        stored.lines(),
        draft.lines(),
        "a draft's new lines are kept"
    );

    // Finalized, its lines are fixed; its status may still move.
    let mut finalized = stored;
    finalized.finalize(now, now + TimeDelta::days(7)).unwrap();
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(finalized, Catalog::series())],
            ..ChangeSet::default()
        },
    )
    .await;
    let finalized = store.invoice(draft.id()).await.unwrap().unwrap();
    let mut record = finalized.to_record();
    record.lines[1].description = "Onboarding (rewritten)".into();
    let rewritten = Invoice::from_record(record).unwrap();
    let refused = store.commit(write(rewritten)).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "invoice.lines"),
        "{refused:?}"
    );
    assert_eq!(
        store.invoice(draft.id()).await.unwrap().as_ref(),
        Some(&finalized),
        "a refused write changes nothing"
    );
    let mut paid = finalized.clone();
    paid.mark_paid(now, paid.amount_due()).unwrap();
    commit(store, write(paid.clone())).await;
    let stored = store.invoice(draft.id()).await.unwrap().unwrap();
    assert_eq!(stored.status(), InvoiceStatus::Paid);
    assert_eq!(stored.lines(), draft.lines());

    // Lines are compared as values: a quantity written `1.0` is the stored `1`, not a change.
    let mut record = stored.to_record();
    record.lines[0].quantity = "1.0".parse().unwrap();
    commit(store, write(Invoice::from_record(record).unwrap())).await;
    let stored = store.invoice(draft.id()).await.unwrap().unwrap();
    assert_eq!(stored.lines(), draft.lines());
}

/// Stamp one `#[tokio::test]` per conformance behaviour into a store crate's tests.
///
/// `$make` is an expression callable with no arguments that returns a future of an
/// `Arc<dyn Store>`: a fresh, empty store for each test.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::__stamp_conformance_tests!(
            $make;
            every_entity_round_trips_exactly,
            versions_start_at_one_and_stale_writes_conflict,
            stale_commit_is_rejected_atomically,
            two_concurrent_commits_at_one_version_exactly_one_wins,
            read_modify_commit_loops_lose_no_update,
            invoice_numbers_stay_gap_free_and_unique_under_concurrent_commits,
            event_sequence_is_gap_free_and_ordered_under_concurrency,
            uniqueness_constraints_are_typed_errors,
            references_to_missing_objects_are_refused,
            pagination_returns_every_row_exactly_once_while_rows_are_added,
            due_work_index_agrees_with_the_stored_rows,
            idempotency_records_round_trip_and_expire,
            pending_payment_attempts_are_found_for_recovery,
            customers_are_found_by_id_external_id_and_email,
            malformed_change_sets_are_refused,
            invoice_lines_change_only_while_draft,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_conformance_tests {
    ($make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let store: ::std::sync::Arc<dyn $crate::store::Store> = ($make)().await;
                $crate::testkit::conformance::$name(&*store).await;
            }
        )*
    };
}

/// An idempotency record for `key`, live for a day from `now`.
#[must_use]
pub fn idempotency_record(key: &str, now: DateTime<Utc>) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.into(),
        fingerprint: "create_customer:9f86d081".into(),
        response: r#"{"id":"cus_01h455vb4pex5vsknk084sn02q"}"#.into(),
        created_at: now,
        expires_at: now + TimeDelta::days(1),
    }
}
