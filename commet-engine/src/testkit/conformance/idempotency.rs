//! Idempotency records: stored as written, live until they expire, replaced at their version
//! or once expired (see [`crate::idempotency`]).

use chrono::TimeDelta;

use super::{commit, idempotency_record};
use crate::idempotency::IdempotencyRecord;
use crate::store::{ChangeSet, EntityKind, ExpectedVersion, Put, Store, StoreError, StoreExt};
use commet_core::fixtures::utc;

fn write(record: IdempotencyRecord, expected: ExpectedVersion) -> ChangeSet {
    ChangeSet {
        idempotency: vec![Put {
            value: record,
            expected,
        }],
        ..ChangeSet::default()
    }
}

/// Idempotency records round-trip while live, disappear once expired (they are still stored,
/// and read as stored), and an expired key may be used again.
pub async fn idempotency_records_round_trip_and_expire(store: &dyn Store) {
    let now = utc(2024, 1, 1);
    let record = Put::of(idempotency_record("order-42", now));
    commit(
        store,
        ChangeSet {
            idempotency: vec![record.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    let stored = record.stored();
    assert_eq!(stored.version, 1);
    assert_eq!(
        store
            .live_idempotency_record("order-42", now + TimeDelta::hours(23))
            .await
            .unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store
            .live_idempotency_record("order-43", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.idempotency_record("order-43").await.unwrap(), None);
    let later = stored.expires_at;
    assert_eq!(
        store
            .live_idempotency_record("order-42", later)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.idempotency_record("order-42").await.unwrap(),
        Some(stored),
        "an expired record is read as stored"
    );
    let reused = Put::of(IdempotencyRecord {
        fingerprint: "another request".into(),
        ..idempotency_record("order-42", later)
    });
    commit(
        store,
        ChangeSet {
            idempotency: vec![reused.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        store
            .live_idempotency_record("order-42", later)
            .await
            .unwrap(),
        Some(reused.stored())
    );
}

/// A live record is replaced by a write at its stored version (the engine's "in progress"
/// record replaced by the final answer): the new fields are kept, at the next version, and
/// the record stays live until its new expiry.
pub async fn a_live_idempotency_record_is_replaced_at_its_version(store: &dyn Store) {
    let now = utc(2024, 1, 1);
    commit(
        store,
        write(idempotency_record("charge-1", now), ExpectedVersion::New),
    )
    .await;
    let stored = store.idempotency_record("charge-1").await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    let answer = IdempotencyRecord {
        response: r#"{"status":"paid"}"#.into(),
        created_at: now + TimeDelta::seconds(3),
        expires_at: now + TimeDelta::days(2),
        ..stored.clone()
    };
    commit(store, write(answer.clone(), ExpectedVersion::Exactly(1))).await;
    let replaced = store.idempotency_record("charge-1").await.unwrap().unwrap();
    assert_eq!(
        replaced,
        IdempotencyRecord {
            version: 2,
            ..answer.clone()
        }
    );
    assert_eq!(
        store
            .live_idempotency_record("charge-1", now + TimeDelta::hours(36))
            .await
            .unwrap(),
        Some(replaced.clone()),
        "live until the new expiry"
    );
    // And again, at version 2.
    commit(
        store,
        write(
            IdempotencyRecord {
                response: r#"{"status":"refunded"}"#.into(),
                ..replaced
            },
            ExpectedVersion::Exactly(2),
        ),
    )
    .await;
    let again = store.idempotency_record("charge-1").await.unwrap().unwrap();
    assert_eq!(
        (again.version, again.response.as_str()),
        (3, r#"{"status":"refunded"}"#)
    );
}

/// A replacement at another version than the stored one, or of a record that does not exist,
/// is a [`StoreError::Conflict`] naming the key, and writes nothing (not even the rest of its
/// change set).
pub async fn a_stale_idempotency_record_version_conflicts(store: &dyn Store) {
    let now = utc(2024, 1, 1);
    let record = idempotency_record("charge-2", now);
    commit(store, write(record.clone(), ExpectedVersion::New)).await;
    commit(store, write(record.clone(), ExpectedVersion::Exactly(1))).await;
    let stored = store.idempotency_record("charge-2").await.unwrap().unwrap();
    assert_eq!(stored.version, 2);

    let stale = IdempotencyRecord {
        response: r#"{"late":true}"#.into(),
        ..record.clone()
    };
    let mut changes = write(stale, ExpectedVersion::Exactly(1));
    changes
        .idempotency
        .push(Put::of(idempotency_record("charge-2b", now)));
    assert_eq!(
        store.commit(changes).await.unwrap_err(),
        StoreError::Conflict {
            kind: EntityKind::IdempotencyRecord,
            id: "charge-2".into(),
            expected: ExpectedVersion::Exactly(1),
            actual: Some(2),
        }
    );
    assert_eq!(
        store.idempotency_record("charge-2").await.unwrap(),
        Some(stored)
    );
    assert_eq!(
        store.idempotency_record("charge-2b").await.unwrap(),
        None,
        "the rest of the change set was written"
    );

    let missing = store
        .commit(write(
            idempotency_record("charge-3", now),
            ExpectedVersion::Exactly(1),
        ))
        .await;
    assert_eq!(
        missing.unwrap_err(),
        StoreError::Conflict {
            kind: EntityKind::IdempotencyRecord,
            id: "charge-3".into(),
            expected: ExpectedVersion::Exactly(1),
            actual: None,
        }
    );
    assert_eq!(store.idempotency_record("charge-3").await.unwrap(), None);
}

/// A new record (`ExpectedVersion::New`) over one still live at the new record's `created_at`
/// is [`StoreError::AlreadyExists`] `key=...`; over one expired by then it replaces it, at
/// version 1. Two records with one key in a change set are refused the same way.
pub async fn a_new_idempotency_record_is_refused_over_a_live_one_and_replaces_an_expired_one(
    store: &dyn Store,
) {
    let now = utc(2024, 1, 1);
    let first = idempotency_record("charge-4", now);
    commit(store, write(first.clone(), ExpectedVersion::New)).await;
    commit(store, write(first.clone(), ExpectedVersion::Exactly(1))).await;
    let stored = store.idempotency_record("charge-4").await.unwrap().unwrap();
    let taken = StoreError::AlreadyExists {
        kind: EntityKind::IdempotencyRecord,
        key: "key=charge-4".into(),
    };

    // Live: made a microsecond before the stored one expires.
    let early = idempotency_record("charge-4", first.expires_at - TimeDelta::microseconds(1));
    assert_eq!(
        store
            .commit(write(early, ExpectedVersion::New))
            .await
            .unwrap_err(),
        taken
    );
    assert_eq!(
        store.idempotency_record("charge-4").await.unwrap(),
        Some(stored)
    );

    // Expired: made when the stored one expires.
    let reused = IdempotencyRecord {
        fingerprint: "another request".into(),
        ..idempotency_record("charge-4", first.expires_at)
    };
    commit(store, write(reused.clone(), ExpectedVersion::New)).await;
    assert_eq!(
        store.idempotency_record("charge-4").await.unwrap(),
        Some(IdempotencyRecord {
            version: 1,
            ..reused.clone()
        }),
        "replaced, at version 1"
    );

    // One key twice in a change set, even where nothing is stored.
    let twice = idempotency_record("charge-5", now);
    let doubled = store
        .commit(ChangeSet {
            idempotency: vec![Put::of(twice.clone()), Put::of(twice)],
            ..ChangeSet::default()
        })
        .await;
    assert_eq!(
        doubled.unwrap_err(),
        StoreError::AlreadyExists {
            kind: EntityKind::IdempotencyRecord,
            key: "key=charge-5".into(),
        }
    );
    assert_eq!(store.idempotency_record("charge-5").await.unwrap(), None);
}
