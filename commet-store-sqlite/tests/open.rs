//! Opening: a new file is created and migrated, also by several openers at once; what is not a
//! commet database (not SQLite, or another application's tables) is refused with
//! `StoreError::Backend` and left alone; in-memory stores are private; rows written by an
//! older schema are read and rewritten correctly.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

use commet_core::delivery::{Delivery, EventFilter, NewEndpoint, UrlPolicy, WebhookEndpoint};
use commet_core::event::{Envelope, Event, Mode};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::IdGenerator;
use commet_core::invoice::Invoice;
use commet_core::webhook::WebhookSecret;
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, DeliveryCursor, ExpectedVersion, InvoiceWrite, Put, Store, StoreError, StoreExt,
    StoredEvent,
};
use commet_store_sqlite::{Durability, SCHEMA_VERSION, SqliteOptions, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openers_racing_on_a_new_file_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let openers = (0..6).map(|_| {
        let path = path.clone();
        tokio::spawn(async move { SqliteStore::open(&path).await })
    });
    let mut stores = Vec::new();
    for opener in openers {
        stores.push(opener.await.unwrap().unwrap());
    }
    for store in &stores {
        assert_eq!(
            store.schema_version().await.unwrap(),
            i64::from(SCHEMA_VERSION)
        );
    }
    // They all see one database.
    let customer = Fixtures::new().customer(1, utc(2024, 1, 1));
    stores[0]
        .commit(ChangeSet {
            customers: vec![Put::of(customer.clone())],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    for store in &stores {
        assert_eq!(
            store.customer(customer.id()).await.unwrap().unwrap().id(),
            customer.id()
        );
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the rows you are looking for ".repeat(100),
    )
    .unwrap();
    let refused = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(refused, StoreError::Backend { .. }), "{refused:?}");
    let missing_dir = dir.path().join("no/such/dir/billing.db");
    let refused = SqliteStore::open(&missing_dir).await.unwrap_err();
    assert!(matches!(refused, StoreError::Backend { .. }), "{refused:?}");
}

#[tokio::test]
async fn another_applications_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .unwrap();
    drop(other);
    let refused = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Backend { message } if message.contains("not a commet database")),
        "{refused:?}"
    );
    let other = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = other
        .prepare("SELECT name FROM sqlite_schema ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["notes"]);
}

#[tokio::test]
async fn in_memory_stores_are_private_and_options_apply() {
    let a = SqliteStore::in_memory().await.unwrap();
    let b = SqliteStore::in_memory().await.unwrap();
    let customer = Fixtures::new().customer(1, utc(2024, 1, 1));
    a.commit(ChangeSet {
        customers: vec![Put::of(customer.clone())],
        ..ChangeSet::default()
    })
    .await
    .unwrap();
    assert!(a.customer(customer.id()).await.unwrap().is_some());
    assert!(b.customer(customer.id()).await.unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let fast = SqliteStore::open_with(
        dir.path().join("normal.db"),
        SqliteOptions::default().with_durability(Durability::Normal),
    )
    .await
    .unwrap();
    fast.commit(ChangeSet {
        customers: vec![Put::of(customer.clone())],
        ..ChangeSet::default()
    })
    .await
    .unwrap();
    fast.close().await.unwrap();
    let reopened = SqliteStore::open(dir.path().join("normal.db"))
        .await
        .unwrap();
    assert!(reopened.customer(customer.id()).await.unwrap().is_some());
}

/// A database written by schema version 1 (the exact DDL that version ran, and a row in its
/// idempotency table) opens, is migrated to the current version once, and reads its records at
/// version 1, which the engine can then replace at that version.
#[tokio::test]
async fn a_version_1_database_is_migrated_and_keeps_its_idempotency_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let now = utc(2024, 1, 1);
    let record = commet_engine::testkit::conformance::idempotency_record("from-v1", now);
    {
        let v1 = rusqlite::Connection::open(&path).unwrap();
        v1.execute_batch(include_str!("../src/migrations/v1.sql"))
            .unwrap();
        v1.pragma_update(None, "user_version", 1).unwrap();
        v1.execute(
            "INSERT INTO idempotency_records (idempotency_key, fingerprint, response, \
             created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                record.key,
                record.fingerprint,
                record.response,
                record.created_at.timestamp_micros(),
                record.expires_at.timestamp_micros(),
            ],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        i64::from(SCHEMA_VERSION)
    );
    let stored = store.idempotency_record("from-v1").await.unwrap();
    assert_eq!(
        stored,
        Some(IdempotencyRecord {
            version: 1,
            ..record.clone()
        })
    );
    // Replaced at its version; a new record over it (still live) is refused.
    store
        .commit(ChangeSet {
            idempotency: vec![Put {
                value: IdempotencyRecord {
                    response: "{}".into(),
                    ..record.clone()
                },
                expected: ExpectedVersion::Exactly(1),
            }],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_record("from-v1")
            .await
            .unwrap()
            .map(|r| r.version),
        Some(2)
    );
    let again = store
        .commit(ChangeSet {
            idempotency: vec![Put::of(record)],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    store.close().await.unwrap();
    // Reopening does not migrate again.
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened.schema_version().await.unwrap(),
        i64::from(SCHEMA_VERSION)
    );
    assert_eq!(
        reopened
            .idempotency_record("from-v1")
            .await
            .unwrap()
            .map(|r| r.version),
        Some(2)
    );
}

/// A database written by schema version 2 (the exact DDL of versions 1 and 2, with rows in it)
/// opens, is migrated to version 3 in place, keeps its rows, and then stores webhook endpoints,
/// deliveries and the delivery cursor.
#[tokio::test]
async fn a_version_2_database_is_migrated_to_the_current_version_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let now = utc(2024, 1, 1);
    let record = IdempotencyRecord {
        version: 3,
        ..commet_engine::testkit::conformance::idempotency_record("from-v2", now)
    };
    let catalog = Fixtures::new();
    let customer = catalog.customer(1, now);
    let envelope = catalog.envelope(Event::CustomerCreated(customer.event_data()), now);
    write_version_2_database(&path, &record, &envelope);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(SCHEMA_VERSION, 4);
    assert_eq!(
        store.schema_version().await.unwrap(),
        i64::from(SCHEMA_VERSION)
    );
    assert_eq!(
        store.idempotency_record("from-v2").await.unwrap(),
        Some(record)
    );
    assert_eq!(store.last_event_seq().await.unwrap(), 1);
    assert_eq!(
        store.events_after(0, 10).await.unwrap(),
        vec![StoredEvent {
            seq: 1,
            envelope: envelope.clone()
        }]
    );
    assert_eq!(store.webhook_endpoints().await.unwrap(), Vec::new());
    assert_eq!(
        store.delivery_cursor().await.unwrap(),
        DeliveryCursor::default()
    );

    // The new tables take their rows.
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
    let secret = WebhookSecret::from_bytes(&[5; 32]).unwrap();
    let ids = IdGenerator::seeded(2);
    let endpoint = WebhookEndpoint::new(ids.next(now), new, secret, 0, policy, now).unwrap();
    let delivery = Delivery::new(
        ids.next(now),
        endpoint.id(),
        envelope.id,
        1,
        envelope.event.kind(),
        now,
    );
    let changes = ChangeSet {
        endpoints: vec![Put::of(endpoint)],
        deliveries: vec![Put::of(delivery)],
        delivery_cursor: Some(Put::of(DeliveryCursor { seq: 1, version: 0 })),
        ..ChangeSet::default()
    };
    let endpoint = changes.endpoints[0].stored();
    let delivery = changes.deliveries[0].stored();
    store.commit(changes).await.unwrap();
    store.close().await.unwrap();

    // Reopened: not migrated again, everything there.
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened.schema_version().await.unwrap(),
        i64::from(SCHEMA_VERSION)
    );
    assert_eq!(reopened.webhook_endpoints().await.unwrap(), vec![endpoint]);
    assert_eq!(
        reopened.due_deliveries(now, 10).await.unwrap(),
        vec![delivery]
    );
    assert_eq!(
        reopened.delivery_cursor().await.unwrap(),
        DeliveryCursor { seq: 1, version: 1 }
    );
    assert_eq!(reopened.last_event_seq().await.unwrap(), 1);
}

/// A database file at `path` as schema version 2 left it (the DDL of versions 1 and 2), with
/// an idempotency record and an event in the outbox.
fn write_version_2_database(
    path: &std::path::Path,
    record: &IdempotencyRecord,
    envelope: &Envelope,
) {
    let v2 = rusqlite::Connection::open(path).unwrap();
    v2.execute_batch(include_str!("../src/migrations/v1.sql"))
        .unwrap();
    v2.execute_batch(include_str!("../src/migrations/v2.sql"))
        .unwrap();
    v2.pragma_update(None, "user_version", 2).unwrap();
    v2.execute(
        "INSERT INTO idempotency_records (idempotency_key, fingerprint, response, \
         created_at, expires_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            record.key,
            record.fingerprint,
            record.response,
            record.created_at.timestamp_micros(),
            record.expires_at.timestamp_micros(),
            3,
        ],
    )
    .unwrap();
    v2.execute(
        "INSERT INTO events (seq, id, kind, timestamp, envelope) VALUES (1, ?1, ?2, ?3, ?4)",
        rusqlite::params![
            envelope.id.to_string(),
            envelope.event.kind().as_str(),
            envelope.timestamp.timestamp_micros(),
            envelope.to_json().unwrap(),
        ],
    )
    .unwrap();
}

/// Invoices written before schema version 2 have no lines digest (and a digest may not match
/// for any other reason): their rewrite compares the stored lines instead, so a changed line is
/// still refused with nothing written, an unchanged one is accepted, and the row then has the
/// digest of its lines.
#[tokio::test]
async fn an_invoice_without_its_lines_digest_is_checked_against_its_stored_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billing.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let catalog = Fixtures::new();
    let customer = catalog.customer(1, utc(2024, 1, 1));
    let subscription = catalog.active_for(customer.id());
    let invoice = catalog.recurring_invoice(&subscription, subscription.current_period().unwrap());
    store
        .commit(ChangeSet {
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            customers: vec![Put::of(customer)],
            subscriptions: vec![Put::of(subscription)],
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
            ..ChangeSet::default()
        })
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let digest = |raw: &rusqlite::Connection| -> Option<Vec<u8>> {
        raw.query_row(
            "SELECT lines_digest FROM invoices WHERE id = ?1",
            [invoice.id().to_string()],
            |row| row.get(0),
        )
        .unwrap()
    };
    let written = digest(&raw).expect("a new row has the digest of its lines");
    assert_eq!(written.len(), 16);

    for stale in [None, Some(vec![0_u8; 16])] {
        raw.execute(
            "UPDATE invoices SET lines_digest = ?1 WHERE id = ?2",
            rusqlite::params![stale, invoice.id().to_string()],
        )
        .unwrap();
        let stored = store.invoice(invoice.id()).await.unwrap().unwrap();
        let mut record = stored.to_record();
        record.lines[0].description = "Rewritten".into();
        let refused = store
            .commit(ChangeSet {
                invoices: vec![InvoiceWrite::of(Invoice::from_record(record).unwrap())],
                ..ChangeSet::default()
            })
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "invoice.lines"),
            "{refused:?}"
        );
        assert_eq!(
            store.invoice(invoice.id()).await.unwrap(),
            Some(stored.clone())
        );

        let mut tagged = stored.clone();
        tagged.set_metadata("checked", "against its lines").unwrap();
        store
            .commit(ChangeSet {
                invoices: vec![InvoiceWrite::of(tagged)],
                ..ChangeSet::default()
            })
            .await
            .unwrap();
        assert_eq!(
            digest(&raw),
            Some(written.clone()),
            "the rewrite restores the digest"
        );
    }
}

/// Without a Tokio runtime, calls run on the calling thread instead of failing.
#[test]
fn calls_work_without_a_tokio_runtime() {
    let store = block_on_without_tokio(SqliteStore::in_memory()).unwrap();
    assert_eq!(block_on_without_tokio(store.next_due_at()).unwrap(), None);
}

/// A minimal executor for a future that never waits (no Tokio here on purpose).
fn block_on_without_tokio<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
