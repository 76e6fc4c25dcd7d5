//! Versions and atomicity: versions start at 1 and grow by one, stale writes conflict, racing
//! commits lose no update, a refused change set writes nothing, malformed change sets are
//! refused, a finalized invoice's lines are fixed, and the first broken rule is named.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use futures_util::future::join_all;

use super::{
    active_subscription, an_event, commit, idempotency_record, store_catalog, store_customer,
    yield_now,
};
use crate::store::{
    ChangeSet, EntityKind, ExpectedVersion, InvoiceWrite, Put, Store, StoreError, StoreExt,
};
use commet_core::catalog::{NewPlan, NewPrice, Plan, Price};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::invoice::{
    Invoice, InvoiceKind, InvoiceStatus, LineItem, LineKind, NewInvoice, NewLineItem,
};
use commet_core::money::{Currency, RoundingPolicy};

/// Whether an error is the one a broken rule is named by.
type Named = Box<dyn Fn(&StoreError) -> bool>;

/// Versions start at 1 and grow by one per write; `New` over an existing row, `Exactly` over a
/// missing one, and a stale `Exactly` are all [`StoreError::Conflict`].
pub async fn versions_start_at_one_and_stale_writes_conflict(store: &dyn Store) {
    let catalog = Fixtures::new();
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
    let catalog = Fixtures::new();
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
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
            events: vec![an_event(&catalog, now)],
            idempotency: vec![Put::of(idempotency_record("k1", now))],
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
    assert_eq!(
        store.idempotency_record("k1").await.unwrap(),
        None,
        "the idempotency record was written"
    );
    assert_eq!(
        store.subscription(subscription.id()).await.unwrap(),
        Some(subscription)
    );
    // The next good commit numbers from 1: the refused one used up no invoice number (the
    // series is not stored yet) and no sequence number.
    let receipt = store
        .commit(ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice, Fixtures::series())],
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
    let catalog = Fixtures::new();
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
    let catalog = Fixtures::new();
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

/// A change set that writes one object twice, or asks to number a draft, is refused as invalid
/// before anything is written.
pub async fn malformed_change_sets_are_refused(store: &dyn Store) {
    let catalog = Fixtures::new();
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
            invoices: vec![InvoiceWrite::numbered(draft, Fixtures::series())],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(numbered_draft, Err(StoreError::Invalid(_))),
        "{numbered_draft:?}"
    );
}

/// An invoice's lines are written while it is a draft and fixed once it is finalized: a later
/// write may change its status and amounts paid, but a write that changes its lines (or the
/// currency their amounts are in) is refused as `invoice.lines`, with nothing written.
pub async fn invoice_lines_change_only_while_draft(store: &dyn Store) {
    let catalog = Fixtures::new();
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
    finalized
        .finalize(now, now + TimeDelta::days(7), Fixtures::parties())
        .unwrap();
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(finalized, Fixtures::series())],
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

    // The currency is part of every line amount: the same figures in euros are other lines.
    let in_euros = serde_json::to_string(&stored.to_record())
        .unwrap()
        .replace("USD", "EUR");
    let in_euros = Invoice::from_record(serde_json::from_str(&in_euros).unwrap()).unwrap();
    assert_eq!(in_euros.currency(), Currency::EUR);
    let refused = store.commit(write(in_euros)).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "invoice.lines"),
        "{refused:?}"
    );
    assert_eq!(
        store.invoice(draft.id()).await.unwrap().as_ref(),
        Some(&stored),
        "a refused write changes nothing"
    );

    // Lines are compared as values: a quantity written `1.0` is the stored `1`, not a change.
    let mut record = stored.to_record();
    record.lines[0].quantity = "1.0".parse().unwrap();
    commit(store, write(Invoice::from_record(record).unwrap())).await;
    let stored = store.invoice(draft.id()).await.unwrap().unwrap();
    assert_eq!(stored.lines(), draft.lines());
}

/// A change set that breaks many rules is refused with the first one, in the order of
/// [`check`](crate::store::check): the change set itself, customers (version, external id),
/// plans (id, code), prices (id, plan), subscriptions (version, customer), invoices' customers,
/// invoices (version, fixed lines, recurring period), attempts (version, invoice, key),
/// events, idempotency records. Removing the first broken rule names the next, and nothing is
/// ever written.
pub async fn the_first_broken_rule_in_rule_order_is_named(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 1, 1);
    store_catalog(store, &catalog).await;
    let subscription = active_subscription(store, &catalog, 1).await;
    let cycle = subscription.cycle().unwrap();
    let first = catalog.recurring_invoice(&subscription, cycle.period(0).unwrap());
    let second = catalog.recurring_invoice(&subscription, cycle.period(1).unwrap());
    let attempt = catalog.attempt(&first, 1, now);
    let event = an_event(&catalog, now);
    let record = idempotency_record("rules", now);
    commit(
        store,
        ChangeSet {
            invoices: vec![
                InvoiceWrite::numbered(first.clone(), Fixtures::series()),
                InvoiceWrite::numbered(second.clone(), Fixtures::series()),
            ],
            payment_attempts: vec![Put::of(attempt.clone())],
            events: vec![event.clone()],
            idempotency: vec![Put::of(record.clone())],
            ..ChangeSet::default()
        },
    )
    .await;
    let owner = store.get_customer(subscription.customer()).await.unwrap();
    let first = store.get_invoice(first.id()).await.unwrap();
    let second = store.get_invoice(second.id()).await.unwrap();
    let attempt = store
        .payment_attempt(&attempt.idempotency_key())
        .await
        .unwrap()
        .unwrap();

    let nobody = catalog.customer(7, now).id();
    let unknown_plan = catalog.ids.next(now);
    let orphan_invoice = Invoice::draft(NewInvoice {
        id: catalog.ids.next(now),
        customer: nobody,
        subscription: None,
        currency: Currency::USD,
        kind: InvoiceKind::OneTime,
        period: None,
        created_at: now,
        memo: None,
        metadata: BTreeMap::new(),
    })
    .unwrap();
    let stale = |version: u64| ExpectedVersion::Exactly(version + 3);
    let invalid = |field: &'static str| move |error: &StoreError| matches!(error, StoreError::Invalid(e) if e.field == field);
    let conflict = |kind: EntityKind| move |error: &StoreError| matches!(error, StoreError::Conflict { kind: k, .. } if *k == kind);
    let taken = |kind: EntityKind, key: String| {
        move |error: &StoreError| {
            *error
                == StoreError::AlreadyExists {
                    kind,
                    key: key.clone(),
                }
        }
    };
    let mut lines_changed = second.to_record();
    lines_changed.lines[0].description = "Rewritten".into();
    let mut stale_first = first.clone();
    stale_first.set_version(first.version() + 3);
    let mut stale_attempt = attempt.clone();
    stale_attempt.version += 3;
    let retaken_period = catalog.recurring_invoice(&subscription, cycle.period(0).unwrap());

    let twice = catalog.customer(20, now);
    let breaks: Vec<(&str, ChangeSet, Named)> = vec![
        (
            "a customer written twice",
            ChangeSet {
                customers: vec![Put::of(twice.clone()), Put::of(twice)],
                ..ChangeSet::default()
            },
            Box::new(invalid("customer")),
        ),
        (
            "a stale customer",
            ChangeSet {
                customers: vec![Put {
                    value: owner.clone(),
                    expected: stale(owner.version()),
                }],
                ..ChangeSet::default()
            },
            Box::new(conflict(EntityKind::Customer)),
        ),
        (
            "a taken external id",
            ChangeSet {
                customers: vec![Put::of(catalog.customer(1, now))],
                ..ChangeSet::default()
            },
            Box::new(taken(EntityKind::Customer, "external_id=user_1".into())),
        ),
        (
            "a stored plan",
            ChangeSet {
                plans: vec![catalog.plans[0].clone()],
                ..ChangeSet::default()
            },
            Box::new(taken(
                EntityKind::Plan,
                format!("id={}", catalog.plans[0].id()),
            )),
        ),
        (
            "a taken plan code",
            ChangeSet {
                plans: vec![
                    Plan::new(
                        catalog.ids.next(now),
                        NewPlan {
                            code: catalog.plans[0].code().to_owned(),
                            name: "Again".into(),
                            description: None,
                        },
                    )
                    .unwrap(),
                ],
                ..ChangeSet::default()
            },
            Box::new(taken(
                EntityKind::Plan,
                format!("code={}", catalog.plans[0].code()),
            )),
        ),
        (
            "a stored price",
            ChangeSet {
                prices: vec![catalog.pro.clone()],
                ..ChangeSet::default()
            },
            Box::new(taken(EntityKind::Price, format!("id={}", catalog.pro.id()))),
        ),
        (
            "a price of an unknown plan",
            ChangeSet {
                prices: vec![
                    Price::new(
                        catalog.ids.next(now),
                        NewPrice {
                            plan: unknown_plan,
                            unit_amount: "5 USD".parse().unwrap(),
                            interval: catalog.pro.interval(),
                            trial_days: 0,
                            model: catalog.pro.model(),
                        },
                    )
                    .unwrap(),
                ],
                ..ChangeSet::default()
            },
            Box::new(invalid("price.plan")),
        ),
        (
            "a stale subscription",
            ChangeSet {
                subscriptions: vec![Put {
                    value: subscription.clone(),
                    expected: stale(subscription.version()),
                }],
                ..ChangeSet::default()
            },
            Box::new(conflict(EntityKind::Subscription)),
        ),
        (
            "a subscription of an unknown customer",
            ChangeSet {
                subscriptions: vec![Put::of(catalog.active_for(nobody))],
                ..ChangeSet::default()
            },
            Box::new(invalid("subscription.customer")),
        ),
        (
            "an invoice of an unknown customer (checked for every invoice first)",
            ChangeSet {
                invoices: vec![InvoiceWrite::of(orphan_invoice.clone())],
                ..ChangeSet::default()
            },
            Box::new(invalid("invoice.customer")),
        ),
        (
            "a stale invoice",
            ChangeSet {
                invoices: vec![InvoiceWrite::of(stale_first.clone())],
                ..ChangeSet::default()
            },
            Box::new(conflict(EntityKind::Invoice)),
        ),
        (
            "a finalized invoice's lines changed",
            ChangeSet {
                invoices: vec![InvoiceWrite::of(
                    Invoice::from_record(lines_changed).unwrap(),
                )],
                ..ChangeSet::default()
            },
            Box::new(invalid("invoice.lines")),
        ),
        (
            "a taken recurring period",
            ChangeSet {
                invoices: vec![InvoiceWrite::numbered(retaken_period, Fixtures::series())],
                ..ChangeSet::default()
            },
            Box::new(taken(
                EntityKind::Invoice,
                format!(
                    "subscription={} period_start={}",
                    subscription.id(),
                    cycle.period(0).unwrap().start()
                ),
            )),
        ),
        (
            "a stale attempt",
            ChangeSet {
                payment_attempts: vec![Put {
                    value: stale_attempt,
                    expected: stale(attempt.version),
                }],
                ..ChangeSet::default()
            },
            Box::new(conflict(EntityKind::PaymentAttempt)),
        ),
        (
            "an attempt of an unknown invoice",
            ChangeSet {
                payment_attempts: vec![Put::of(catalog.attempt(
                    &catalog.recurring_invoice(&subscription, cycle.period(5).unwrap()),
                    1,
                    now,
                ))],
                ..ChangeSet::default()
            },
            Box::new(invalid("payment_attempt.invoice")),
        ),
        (
            "a taken attempt key",
            ChangeSet {
                payment_attempts: vec![Put::of(catalog.attempt(&first, 1, now))],
                ..ChangeSet::default()
            },
            Box::new(taken(
                EntityKind::PaymentAttempt,
                format!("idempotency_key={}", attempt.idempotency_key()),
            )),
        ),
        (
            "an event in the outbox",
            ChangeSet {
                events: vec![event.clone()],
                ..ChangeSet::default()
            },
            Box::new(taken(EntityKind::Event, format!("id={}", event.id))),
        ),
        (
            "a live idempotency key",
            ChangeSet {
                idempotency: vec![Put::of(idempotency_record("rules", now))],
                ..ChangeSet::default()
            },
            Box::new(taken(EntityKind::IdempotencyRecord, "key=rules".into())),
        ),
    ];
    for k in 0..breaks.len() {
        let mut changes = ChangeSet::default();
        for (_, part, _) in &breaks[k..] {
            changes.extend(part.clone());
        }
        let (label, _, named) = &breaks[k];
        let refused = store.commit(changes).await;
        match &refused {
            Err(error) if named(error) => {}
            other => panic!("with {label} and every later rule broken, got {other:?}"),
        }
    }
    // Every invoice's customer is checked before any invoice's own rules: an orphan after a
    // stale invoice in the change set is still named first.
    let refused = store
        .commit(ChangeSet {
            invoices: vec![
                InvoiceWrite::of(stale_first),
                InvoiceWrite::of(orphan_invoice),
            ],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(e)) if e.field == "invoice.customer"),
        "{refused:?}"
    );
    assert_eq!(
        store.events_after(0, 10).await.unwrap().len(),
        1,
        "nothing was written"
    );
    assert_eq!(store.get_customer(owner.id()).await.unwrap(), owner);
    assert_eq!(store.get_invoice(second.id()).await.unwrap(), second);
}
