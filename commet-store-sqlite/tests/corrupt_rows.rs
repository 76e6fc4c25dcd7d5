//! A stored row that does not make a valid object (edited by hand, or written by something
//! else) is `StoreError::Corrupt`, naming the row: aggregates are rebuilt through their
//! validating constructors, and derived columns are checked against what they derive from.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

use commet_core::fixtures::{Fixtures, utc};
use commet_engine::store::{
    ChangeSet, EntityKind, InvoiceWrite, PageRequest, Put, Store, StoreError, StoreExt,
};
use commet_store_sqlite::SqliteStore;

/// Store a customer, an active subscription and its invoice; corrupt them one SQL statement at
/// a time, and check what the store says.
#[tokio::test]
async fn rows_that_fail_validation_are_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let catalog = Fixtures::new();
    let customer = catalog.customer(1, utc(2024, 1, 1));
    let subscription = catalog.active_for(customer.id());
    let invoice = catalog.recurring_invoice(&subscription, subscription.current_period().unwrap());
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .commit(ChangeSet {
            customers: vec![Put::of(customer.clone())],
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            subscriptions: vec![Put::of(subscription.clone())],
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
            payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, utc(2024, 2, 1)))],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    store.close().await.unwrap();

    let corrupt = |sql: &str| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(sql).unwrap();
    };
    let expect_corrupt = |result: Result<_, StoreError>, kind: EntityKind, id: String| match result
    {
        Err(StoreError::Corrupt {
            kind: got,
            id: got_id,
            reason,
        }) => {
            assert_eq!((got, &got_id), (kind, &id), "{reason}");
            reason
        }
        other => panic!("expected a corrupt {kind} {id}, got {other:?}"),
    };

    // A customer whose e-mail the aggregate refuses.
    corrupt("UPDATE customers SET email = 'not an address'");
    let store = SqliteStore::open(&path).await.unwrap();
    let reason = expect_corrupt(
        store.customer(customer.id()).await.map(|_| ()),
        EntityKind::Customer,
        customer.id().to_string(),
    );
    assert!(reason.contains("email"), "{reason}");
    // Lists fail the same way rather than skipping the row.
    assert!(matches!(
        store.customers(PageRequest::first(10)).await,
        Err(StoreError::Corrupt { .. })
    ));
    store.close().await.unwrap();

    // An instant stored as text.
    corrupt("UPDATE customers SET email = 'ana@example.com', created_at = 'yesterday'");
    let store = SqliteStore::open(&path).await.unwrap();
    let reason = expect_corrupt(
        store.customer(customer.id()).await.map(|_| ()),
        EntityKind::Customer,
        customer.id().to_string(),
    );
    assert!(reason.contains("created_at"), "{reason}");
    store.close().await.unwrap();

    // A status column that disagrees with the state it is derived from.
    corrupt("UPDATE subscriptions SET status = 'canceled'");
    let store = SqliteStore::open(&path).await.unwrap();
    expect_corrupt(
        store.subscription(subscription.id()).await.map(|_| ()),
        EntityKind::Subscription,
        subscription.id().to_string(),
    );
    store.close().await.unwrap();

    // An invoice whose total is not the sum of its lines.
    corrupt("UPDATE invoices SET total = '1.00'");
    let store = SqliteStore::open(&path).await.unwrap();
    let reason = expect_corrupt(
        store.invoice(invoice.id()).await.map(|_| ()),
        EntityKind::Invoice,
        invoice.id().to_string(),
    );
    assert!(reason.contains("total"), "{reason}");
    store.close().await.unwrap();

    // An attempt whose stored key is not the one its invoice and number give.
    corrupt("UPDATE payment_attempts SET attempt = 2");
    let store = SqliteStore::open(&path).await.unwrap();
    let attempt = store.payment_attempts(invoice.id()).await;
    assert!(
        matches!(
            attempt,
            Err(StoreError::Corrupt {
                kind: EntityKind::PaymentAttempt,
                ..
            })
        ),
        "{attempt:?}"
    );
    store.close().await.unwrap();
}
