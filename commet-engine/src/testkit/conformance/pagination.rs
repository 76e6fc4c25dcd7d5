//! Pagination: newest-first pages list every row once while rows are added; filters select.

use std::collections::BTreeSet;

use super::{active_subscription, commit, store_catalog, store_customer, store_subscription};
use crate::store::{
    ChangeSet, InvoiceQuery, InvoiceWrite, PageRequest, Store, StoreError, SubscriptionQuery,
};
use commet_core::customer::Customer;
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::CustomerId;
use commet_core::invoice::{Invoice, InvoiceStatus};
use commet_core::subscription::{Command, SubscriptionStatus};

/// Pages list every row exactly once, newest first, even while rows are being added between
/// pages; filters select by customer and status.
pub async fn pagination_returns_every_row_exactly_once_while_rows_are_added(store: &dyn Store) {
    let catalog = Fixtures::new();
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
            invoice
                .assign_number(Fixtures::series().format(99))
                .unwrap();
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
                    InvoiceWrite::numbered(invoice, Fixtures::series())
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
