//! Numbering and sequence: invoice numbers and the outbox sequence stay gap-free and unique
//! under concurrent commits.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::{active_subscription, an_event, store_catalog, yield_now};
use crate::store::{ChangeSet, InvoiceWrite, Store};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::invoice::NumberSeries;

/// Invoices numbered by concurrent commits get every number of the series exactly once, and a
/// series keeps its own prefix, padding and start.
pub async fn invoice_numbers_stay_gap_free_and_unique_under_concurrent_commits(store: &dyn Store) {
    const COMMITS: u32 = 24;
    let catalog = Fixtures::new();
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
                    invoices: vec![InvoiceWrite::numbered(invoice, Fixtures::series())],
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
        .map(|n| Fixtures::series().format(n).as_str().to_owned())
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
    // The series goes on from where they left it.
    let next = &subscriptions[1];
    let receipt = store
        .commit(ChangeSet {
            invoices: vec![InvoiceWrite::numbered(
                catalog.recurring_invoice(next, next.cycle().unwrap().period(1).unwrap()),
                Fixtures::series(),
            )],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    assert_eq!(
        receipt.invoice_numbers[0].1,
        Fixtures::series().format(u64::from(COMMITS) + 1)
    );

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
    let catalog = Fixtures::new();
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
