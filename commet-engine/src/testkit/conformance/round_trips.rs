//! Round trips: every entity reads back exactly as written, by id and by its keys, and
//! [`StoreExt`] answers from the primitive reads.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::{
    active_subscription, an_event, commit, idempotency_record, store_customer, store_subscription,
};
use crate::store::{ChangeSet, EntityKind, InvoiceWrite, Put, Store, StoreError, StoreExt};
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, Plan, Price, PricingModel};
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::CustomerId;
use commet_core::invoice::{
    Invoice, InvoiceKind, LineItem, LineKind, NewInvoice, NewLineItem, NumberSeries,
};
use commet_core::money::{Currency, Money, RoundingPolicy, UnitAmount};
use commet_core::payment::AttemptStatus;
use commet_core::subscription::Command;

/// Every entity is read back exactly as written: long and unicode strings, large and tiny
/// decimals, every subscription status, every invoice status, hundreds of lines, every
/// attempt status, events and idempotency records.
pub async fn every_entity_round_trips_exactly(store: &dyn Store) {
    let catalog = Fixtures::new();
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
            unit_amount: "999999999999.999 KWD" /* the largest billable flat price */
                .parse::<UnitAmount>()
                .unwrap(),
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
    assert_eq!(store.prices().await.unwrap(), prices, "prices");
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
    let record = Put::of(idempotency_record("idem-ünï-☂", now));
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
        store.idempotency_record(&record.value.key).await.unwrap(),
        Some(record.stored()),
        "stored at version 1"
    );
}

/// Customers are found by external id (which follows updates) and by e-mail, ignoring ASCII
/// case.
pub async fn customers_are_found_by_id_external_id_and_email(store: &dyn Store) {
    let catalog = Fixtures::new();
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

/// [`StoreExt`] answers from the primitive reads: a customer, plan and price by id, the prices
/// of one plan, an attempt by its idempotency key (and `None` for a key of another shape), the
/// next deadline, getters that answer [`StoreError::NotFound`].
pub async fn store_ext_answers_from_the_primitive_reads(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 1, 1);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    let missing = catalog.customer(9, now).id();
    assert_eq!(store.customer(missing).await.unwrap(), None);
    assert_eq!(
        store.get_customer(missing).await.unwrap_err(),
        StoreError::NotFound {
            kind: EntityKind::Customer,
            id: missing.to_string(),
        }
    );
    assert_eq!(store.plan(catalog.plans[0].id()).await.unwrap(), None);
    assert!(matches!(
        store.get_plan(catalog.plans[0].id()).await,
        Err(StoreError::NotFound {
            kind: EntityKind::Plan,
            ..
        })
    ));
    assert!(matches!(
        store.get_price(catalog.pro.id()).await,
        Err(StoreError::NotFound {
            kind: EntityKind::Price,
            ..
        })
    ));

    super::store_catalog(store, &catalog).await;
    for plan in &catalog.plans {
        assert_eq!(store.plan(plan.id()).await.unwrap().as_ref(), Some(plan));
        assert_eq!(store.get_plan(plan.id()).await.unwrap(), *plan);
        let of_plan: Vec<Price> = catalog
            .prices()
            .into_iter()
            .filter(|price| price.plan() == plan.id())
            .cloned()
            .collect();
        assert_eq!(store.prices_of(plan.id()).await.unwrap(), of_plan);
    }
    for price in catalog.prices() {
        assert_eq!(store.get_price(price.id()).await.unwrap(), *price);
    }

    let subscription = active_subscription(store, &catalog, 1).await;
    assert_eq!(
        store
            .get_customer(subscription.customer())
            .await
            .unwrap()
            .id(),
        subscription.customer()
    );
    assert_eq!(
        store.get_subscription(subscription.id()).await.unwrap(),
        subscription
    );
    assert_eq!(
        store.next_due_at().await.unwrap(),
        subscription.next_due_at()
    );
    let invoice = catalog.recurring_invoice(&subscription, subscription.current_period().unwrap());
    assert!(matches!(
        store.get_invoice(invoice.id()).await,
        Err(StoreError::NotFound {
            kind: EntityKind::Invoice,
            ..
        })
    ));
    let attempts: Vec<_> = (1..=2)
        .map(|n| Put::of(catalog.attempt(&invoice, n, now)))
        .collect();
    let stored: Vec<_> = attempts.iter().map(Put::stored).collect();
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
            payment_attempts: attempts,
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        store.get_invoice(invoice.id()).await.unwrap().id(),
        invoice.id()
    );
    for attempt in &stored {
        assert_eq!(
            store
                .payment_attempt(&attempt.idempotency_key())
                .await
                .unwrap()
                .as_ref(),
            Some(attempt)
        );
    }
    for key in [
        "no key".to_owned(),
        format!("{}:3", invoice.id()),
        format!("{}:01", invoice.id()),
        format!("{}:1", subscription.id()),
        ":1".to_owned(),
    ] {
        assert_eq!(store.payment_attempt(&key).await.unwrap(), None, "{key}");
    }

    let record = idempotency_record("ext", now);
    commit(
        store,
        ChangeSet {
            idempotency: vec![Put::of(record.clone())],
            ..ChangeSet::default()
        },
    )
    .await;
    let live = store
        .live_idempotency_record("ext", record.expires_at - TimeDelta::microseconds(1))
        .await
        .unwrap();
    assert_eq!(live.map(|r| r.version), Some(1));
    assert_eq!(
        store
            .live_idempotency_record("ext", record.expires_at)
            .await
            .unwrap(),
        None,
        "expired at expires_at"
    );
}
