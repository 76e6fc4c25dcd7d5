//! A stored row that does not make a valid object (edited by hand, or written by something
//! else) is `StoreError::Corrupt`, naming the row: aggregates are rebuilt through their
//! validating constructors, and derived columns are checked against what they derive from.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic, clippy::too_many_lines)]

use chrono::TimeDelta;
use commet_core::delivery::{Delivery, EventFilter, NewEndpoint, UrlPolicy, WebhookEndpoint};
use commet_core::event::{EventKind, Mode};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::{EventId, IdGenerator};
use commet_core::webhook::WebhookSecret;
use commet_engine::store::{
    ChangeSet, DeliveryCursor, DeliveryQuery, EntityKind, InvoiceWrite, PageRequest, Put, Store,
    StoreError, StoreExt,
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

/// Webhook rows (schema version 3) edited into nonsense: an endpoint's secret that does not
/// parse (the error never repeats it), an endpoint the constructor refuses, half a retired
/// secret, a delivery's status or attempt log that does not decode, a negative cursor.
#[tokio::test]
async fn webhook_rows_that_fail_validation_are_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let now = utc(2026, 1, 1);
    let ids = IdGenerator::seeded(3);
    let policy = UrlPolicy {
        mode: Mode::Live,
        allow_http: false,
        allow_private_addresses: false,
    };
    let new = NewEndpoint {
        url: "https://hooks.example.com/commet".into(),
        events: EventFilter::All,
        description: None,
        enabled: true,
    };
    let secret = WebhookSecret::from_bytes(&[4; 32]).unwrap();
    let mut endpoint = WebhookEndpoint::new(ids.next(now), new, secret, 0, policy, now).unwrap();
    endpoint
        .rotate_secret(
            WebhookSecret::from_bytes(&[5; 32]).unwrap(),
            TimeDelta::days(1),
            now,
        )
        .unwrap();
    let event: EventId = ids.next(now);
    let delivery = Delivery::new(
        ids.next(now),
        endpoint.id(),
        event,
        1,
        EventKind::CustomerCreated,
        now,
    );
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .commit(ChangeSet {
            endpoints: vec![Put::of(endpoint.clone())],
            deliveries: vec![Put::of(delivery.clone())],
            delivery_cursor: Some(Put::of(DeliveryCursor { seq: 1, version: 0 })),
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    store.close().await.unwrap();

    let secrets: Vec<String> = [
        endpoint.secret(),
        &endpoint.retired_secret().unwrap().secret,
    ]
    .iter()
    .map(|secret| secret.expose().to_owned())
    .collect();
    let endpoint_id = endpoint.id().to_string();
    let delivery_id = delivery.id().to_string();
    let cases: [(&str, EntityKind, &str, &str); 7] = [
        (
            "UPDATE webhook_endpoints SET secret = 'whsec_not-base64-at-all'",
            EntityKind::WebhookEndpoint,
            &endpoint_id,
            "webhook_secret",
        ),
        (
            "UPDATE webhook_endpoints SET disabled_reason = 'manual'",
            EntityKind::WebhookEndpoint,
            &endpoint_id,
            "disabled_reason",
        ),
        (
            "UPDATE webhook_endpoints SET retired_until = NULL",
            EntityKind::WebhookEndpoint,
            &endpoint_id,
            "retired",
        ),
        (
            "UPDATE webhook_endpoints SET enabled = 2",
            EntityKind::WebhookEndpoint,
            &endpoint_id,
            "enabled",
        ),
        (
            "UPDATE deliveries SET status = 'lost'",
            EntityKind::Delivery,
            &delivery_id,
            "status",
        ),
        (
            "UPDATE deliveries SET attempts = '[{\"number\":'",
            EntityKind::Delivery,
            &delivery_id,
            "attempts",
        ),
        (
            "UPDATE delivery_cursor SET seq = -1",
            EntityKind::DeliveryCursor,
            "delivery_cursor",
            "seq",
        ),
    ];
    for (sql, kind, id, named) in cases {
        // Each case edits its own copy of the good file.
        let copy = dir.path().join("case.db");
        std::fs::copy(&path, &copy).unwrap();
        rusqlite::Connection::open(&copy)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let store = SqliteStore::open(&copy).await.unwrap();
        let read = match kind {
            EntityKind::WebhookEndpoint => store.webhook_endpoints().await.map(|_| ()),
            EntityKind::Delivery => store.delivery(delivery.id()).await.map(|_| ()),
            _ => store.delivery_cursor().await.map(|_| ()),
        };
        match read {
            Err(StoreError::Corrupt {
                kind: got,
                id: got_id,
                reason,
            }) => {
                assert_eq!((got, got_id.as_str()), (kind, id), "{sql}: {reason}");
                assert!(reason.contains(named), "{sql}: {reason}");
                for shown in secrets.iter().map(String::as_str).chain(["not-base64"]) {
                    assert!(!reason.contains(shown), "{sql}: {reason} shows a secret");
                }
            }
            other => panic!("{sql}: expected a corrupt {kind} {id}, got {other:?}"),
        }
        if kind == EntityKind::Delivery {
            // Lists and the due index fail the same way rather than skipping the row.
            let listed = store
                .deliveries(DeliveryQuery::default(), PageRequest::first(10))
                .await;
            assert!(
                matches!(listed, Err(StoreError::Corrupt { .. })),
                "{listed:?}"
            );
            if !sql.contains("status") {
                // A pending one is due: the due index fails the same way too.
                let due = store.due_deliveries(now, 10).await;
                assert!(matches!(due, Err(StoreError::Corrupt { .. })), "{due:?}");
            }
        }
        store.close().await.unwrap();
    }
}
