//! The due index: subscriptions by deadline, the attempts of an invoice, and the pending
//! attempts a crash left, all following every rewrite.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{active_subscription, commit, store_catalog, store_customer, store_subscription};
use crate::store::{ChangeSet, InvoiceWrite, Put, Store, StoreExt};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::SubscriptionId;
use commet_core::payment::AttemptStatus;
use commet_core::subscription::{Command, Subscription, SubscriptionStatus};

/// `due` and `next_due_at` agree with the stored subscriptions' own deadlines, oldest first,
/// and follow every rewrite.
pub async fn due_work_index_agrees_with_the_stored_rows(store: &dyn Store) {
    let catalog = Fixtures::new();
    store_catalog(store, &catalog).await;
    assert_eq!(store.next_due_at().await.unwrap(), None);
    let mut stored: BTreeMap<SubscriptionId, Subscription> = BTreeMap::new();
    let builders: [fn(&Fixtures) -> Subscription; 8] = [
        Fixtures::draft,
        Fixtures::pending,
        Fixtures::trialing,
        Fixtures::active,
        Fixtures::past_due,
        Fixtures::paused,
        Fixtures::canceled,
        Fixtures::free,
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

/// Pending attempts older than a cutoff are listed oldest first (the charges a crash left
/// unfinished); completed ones never are.
pub async fn pending_payment_attempts_are_found_for_recovery(store: &dyn Store) {
    let catalog = Fixtures::new();
    store_catalog(store, &catalog).await;
    let subscription = active_subscription(store, &catalog, 1).await;
    let invoice = catalog.recurring_invoice(&subscription, subscription.current_period().unwrap());
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
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

/// The attempts of an invoice are listed in attempt order and follow every rewrite: a new
/// attempt, a completed one, one renumbered (its key moves with it), and attempts of other
/// invoices never mix in.
pub async fn payment_attempts_of_an_invoice_follow_every_rewrite(store: &dyn Store) {
    let catalog = Fixtures::new();
    store_catalog(store, &catalog).await;
    let subscription = active_subscription(store, &catalog, 1).await;
    let cycle = subscription.cycle().unwrap();
    let invoices: Vec<_> = (0..3)
        .map(|n| catalog.recurring_invoice(&subscription, cycle.period(n).unwrap()))
        .collect();
    commit(
        store,
        ChangeSet {
            invoices: invoices
                .iter()
                .map(|invoice| InvoiceWrite::numbered(invoice.clone(), Fixtures::series()))
                .collect(),
            ..ChangeSet::default()
        },
    )
    .await;
    let base = utc(2024, 3, 1);
    let numbers = |attempts: &[commet_core::payment::PaymentAttempt]| -> Vec<u32> {
        attempts.iter().map(|a| a.attempt).collect()
    };
    // Written out of order, over two invoices.
    let puts: Vec<_> = [(0, 3), (1, 1), (0, 1), (0, 2), (2, 1)]
        .into_iter()
        .map(|(invoice, n): (usize, u32)| {
            let at = base + TimeDelta::minutes(i64::from(n) + 10 * i64::try_from(invoice).unwrap());
            Put::of(catalog.attempt(&invoices[invoice], n, at))
        })
        .collect();
    commit(
        store,
        ChangeSet {
            payment_attempts: puts,
            ..ChangeSet::default()
        },
    )
    .await;
    let first = store.payment_attempts(invoices[0].id()).await.unwrap();
    assert_eq!(numbers(&first), [1, 2, 3]);
    assert!(first.iter().all(|a| a.invoice == invoices[0].id()));
    assert_eq!(
        numbers(&store.payment_attempts(invoices[1].id()).await.unwrap()),
        [1]
    );
    let unknown = catalog.recurring_invoice(&subscription, cycle.period(7).unwrap());
    assert!(
        store
            .payment_attempts(unknown.id())
            .await
            .unwrap()
            .is_empty()
    );

    // Renumber attempt 3 to 4 and complete attempt 1: the list and the keys follow.
    let mut renumbered = first[2].clone();
    renumbered.attempt = 4;
    let mut completed = first[0].clone();
    completed.status = AttemptStatus::Failed {
        code: "card_declined".into(),
        message: "declined".into(),
    };
    completed.completed_at = Some(base + TimeDelta::hours(1));
    commit(
        store,
        ChangeSet {
            payment_attempts: vec![Put::of(renumbered.clone()), Put::of(completed.clone())],
            ..ChangeSet::default()
        },
    )
    .await;
    let after = store.payment_attempts(invoices[0].id()).await.unwrap();
    assert_eq!(numbers(&after), [1, 2, 4]);
    assert_eq!(after[0].status, completed.status);
    assert_eq!(after[2].version, 2);
    let old_key = first[2].idempotency_key();
    assert_eq!(store.payment_attempt(&old_key).await.unwrap(), None);
    assert_eq!(
        store
            .payment_attempt(&renumbered.idempotency_key())
            .await
            .unwrap()
            .map(|a| a.id),
        Some(renumbered.id)
    );
    // The freed key can be taken again.
    commit(
        store,
        ChangeSet {
            payment_attempts: vec![Put::of(catalog.attempt(&invoices[0], 3, base))],
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        numbers(&store.payment_attempts(invoices[0].id()).await.unwrap()),
        [1, 2, 3, 4]
    );
    // Only the pending ones are left for recovery, oldest first.
    let pending: Vec<_> = store
        .pending_payment_attempts(base + TimeDelta::days(1), 10)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.invoice, a.attempt))
        .collect();
    assert_eq!(
        pending,
        [
            (invoices[0].id(), 3),
            (invoices[0].id(), 2),
            (invoices[0].id(), 4),
            (invoices[1].id(), 1),
            (invoices[2].id(), 1),
        ]
    );
}
