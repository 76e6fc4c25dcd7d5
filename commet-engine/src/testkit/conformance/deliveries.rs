//! Webhook endpoints, deliveries and the delivery cursor: stored as written, at versions, one
//! delivery per (endpoint, event), the due-delivery index and the delivery lists following
//! every rewrite.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{an_event, commit};
use crate::store::{
    ChangeSet, DeliveryCursor, DeliveryQuery, EntityKind, ExpectedVersion, PageRequest, Put, Store,
    StoreError, every_page,
};
use commet_core::delivery::{
    AttemptOutcome, AttemptResult, Delivery, DeliveryStatus, EventFilter, NewEndpoint,
    RetrySchedule, UrlPolicy, WebhookEndpoint,
};
use commet_core::event::{EventKind, Mode};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::webhook::WebhookSecret;

fn new_endpoint(catalog: &Fixtures, n: u32, after_seq: u64, now: DateTime<Utc>) -> WebhookEndpoint {
    WebhookEndpoint::new(
        catalog.ids.next(now),
        NewEndpoint {
            url: format!("https://hooks{n}.example.com/commet"),
            events: if n % 2 == 0 {
                EventFilter::All
            } else {
                EventFilter::Only([EventKind::PaymentFailed, EventKind::CustomerCreated].into())
            },
            description: Some(format!("endpoint {n} – Zoë")),
            enabled: true,
        },
        WebhookSecret::generate().unwrap(),
        after_seq,
        UrlPolicy {
            mode: Mode::Live,
            allow_http: false,
            allow_private_addresses: false,
        },
        now,
    )
    .unwrap()
}

async fn store_endpoint(store: &dyn Store, endpoint: WebhookEndpoint) -> WebhookEndpoint {
    let put = Put::of(endpoint);
    let stored = put.stored();
    commit(
        store,
        ChangeSet {
            endpoints: vec![put],
            ..ChangeSet::default()
        },
    )
    .await;
    stored
}

async fn store_delivery(store: &dyn Store, delivery: Delivery) -> Delivery {
    let put = Put::of(delivery);
    let stored = put.stored();
    commit(
        store,
        ChangeSet {
            deliveries: vec![put],
            ..ChangeSet::default()
        },
    )
    .await;
    stored
}

fn result(outcome: AttemptOutcome, retry_after: Option<&str>) -> AttemptResult {
    AttemptResult {
        outcome,
        retry_after: retry_after.map(str::to_owned),
        latency: Duration::from_millis(42),
    }
}

/// Endpoints (every field: a filter, a retired secret, a failure streak, deleted) and
/// deliveries (attempts of every outcome, in flight, failed) read back exactly as written, at
/// versions that start at 1; the cursor and `last_event_seq` too.
pub async fn endpoints_deliveries_and_the_cursor_round_trip(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 3, 1);
    assert_eq!(store.last_event_seq().await.unwrap(), 0);
    assert_eq!(
        store.delivery_cursor().await.unwrap(),
        DeliveryCursor::default()
    );
    assert!(store.webhook_endpoints().await.unwrap().is_empty());

    let events: Vec<_> = (0..3).map(|_| an_event(&catalog, now)).collect();
    commit(
        store,
        ChangeSet {
            events: events.clone(),
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(store.last_event_seq().await.unwrap(), 3);

    let plain = store_endpoint(store, new_endpoint(&catalog, 0, 1, now)).await;
    let mut rich = new_endpoint(&catalog, 1, 2, now);
    rich.rotate_secret(
        WebhookSecret::generate().unwrap(),
        TimeDelta::hours(24),
        now,
    )
    .unwrap();
    rich.record_failure(false, now, TimeDelta::days(3));
    let rich = store_endpoint(store, rich).await;
    let mut deleted = new_endpoint(&catalog, 2, 3, now);
    deleted.delete(now + TimeDelta::hours(1));
    let deleted = store_endpoint(store, deleted).await;
    assert_eq!(plain.version(), 1);
    assert_eq!(
        store.webhook_endpoints().await.unwrap(),
        [plain.clone(), rich.clone(), deleted.clone()],
        "every endpoint, deleted ones too, in creation order"
    );

    let schedule = RetrySchedule::default();
    let mut busy = Delivery::new(
        catalog.ids.next(now),
        plain.id(),
        events[0].id,
        1,
        EventKind::CustomerCreated,
        now,
    );
    let first = busy.claim(now, TimeDelta::seconds(70)).unwrap();
    busy.complete(
        first,
        result(
            AttemptOutcome::Response {
                status: 503,
                body: "down – später".into(),
            },
            Some("120"),
        ),
        now,
        &schedule,
    )
    .unwrap();
    let later = busy.next_attempt_at().unwrap();
    let second = busy.claim(later, TimeDelta::seconds(70)).unwrap();
    busy.complete(
        second,
        result(
            AttemptOutcome::NoResponse {
                error: "timeout".into(),
                message: "no answer".into(),
            },
            None,
        ),
        later,
        &schedule,
    )
    .unwrap();
    let retry = busy.next_attempt_at().unwrap();
    busy.claim(retry, TimeDelta::seconds(70)).unwrap(); // in flight
    let busy = store_delivery(store, busy).await;
    let mut failed = Delivery::new(
        catalog.ids.next(now),
        rich.id(),
        events[1].id,
        2,
        EventKind::CustomerCreated,
        now,
    );
    failed.cancel_for_endpoint().unwrap();
    let failed = store_delivery(store, failed).await;
    assert_eq!(busy.version(), 1);
    assert_eq!(store.delivery(busy.id()).await.unwrap(), Some(busy.clone()));
    assert_eq!(
        store.delivery(failed.id()).await.unwrap(),
        Some(failed.clone())
    );
    assert_eq!(
        store.delivery(catalog.ids.next(now)).await.unwrap(),
        None,
        "a missing id is None"
    );

    let cursor = Put::of(DeliveryCursor { seq: 2, version: 0 });
    commit(
        store,
        ChangeSet {
            delivery_cursor: Some(cursor.clone()),
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(
        store.delivery_cursor().await.unwrap(),
        DeliveryCursor { seq: 2, version: 1 }
    );
}

/// Endpoints, deliveries and the cursor are written at their versions: a stale one is a
/// `Conflict` and the change set writes nothing.
pub async fn stale_endpoints_deliveries_and_cursors_conflict(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 3, 1);
    let event = an_event(&catalog, now);
    commit(
        store,
        ChangeSet {
            events: vec![event.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    let endpoint = store_endpoint(store, new_endpoint(&catalog, 0, 0, now)).await;
    let delivery = store_delivery(
        store,
        Delivery::new(
            catalog.ids.next(now),
            endpoint.id(),
            event.id,
            1,
            EventKind::CustomerCreated,
            now,
        ),
    )
    .await;
    commit(
        store,
        ChangeSet {
            delivery_cursor: Some(Put::of(DeliveryCursor { seq: 1, version: 0 })),
            ..ChangeSet::default()
        },
    )
    .await;

    // Each stale write alone, then beside a good one: refused, nothing written.
    let mut claimed = delivery.clone();
    claimed.claim(now, TimeDelta::minutes(1)).unwrap();
    let stale_delivery = Put {
        value: claimed.clone(),
        expected: ExpectedVersion::Exactly(7),
    };
    let stale_endpoint = Put {
        value: endpoint.clone(),
        expected: ExpectedVersion::New,
    };
    let stale_cursor = Put {
        value: DeliveryCursor { seq: 9, version: 0 },
        expected: ExpectedVersion::New,
    };
    for changes in [
        ChangeSet {
            deliveries: vec![stale_delivery],
            ..ChangeSet::default()
        },
        ChangeSet {
            endpoints: vec![stale_endpoint],
            deliveries: vec![Put::of(claimed.clone())],
            ..ChangeSet::default()
        },
        ChangeSet {
            deliveries: vec![Put::of(claimed.clone())],
            delivery_cursor: Some(stale_cursor),
            ..ChangeSet::default()
        },
    ] {
        let refused = store.commit(changes).await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict { .. })),
            "{refused:?}"
        );
        assert_eq!(
            store.delivery(delivery.id()).await.unwrap(),
            Some(delivery.clone())
        );
        assert_eq!(store.delivery_cursor().await.unwrap().seq, 1);
    }
    // At the right versions it goes through.
    commit(
        store,
        ChangeSet {
            deliveries: vec![Put::of(claimed.clone())],
            delivery_cursor: Some(Put::of(DeliveryCursor { seq: 1, version: 1 })),
            ..ChangeSet::default()
        },
    )
    .await;
    let stored = store.delivery(delivery.id()).await.unwrap().unwrap();
    assert_eq!(stored.version(), 2);
    assert!(stored.in_flight().is_some());
}

/// One delivery per (endpoint, event): a second is `AlreadyExists` (stored or in the same
/// change set) and nothing is written; a delivery's endpoint must exist, stored or written in
/// the same change set.
pub async fn one_delivery_per_endpoint_and_event_of_a_known_endpoint(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 3, 1);
    let event = an_event(&catalog, now);
    commit(
        store,
        ChangeSet {
            events: vec![event.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    let endpoint = store_endpoint(store, new_endpoint(&catalog, 0, 0, now)).await;
    let delivery = |endpoint| {
        Delivery::new(
            catalog.ids.next(now),
            endpoint,
            event.id,
            1,
            EventKind::CustomerCreated,
            now,
        )
    };
    store_delivery(store, delivery(endpoint.id())).await;
    let twice = ChangeSet {
        deliveries: vec![Put::of(delivery(endpoint.id()))],
        ..ChangeSet::default()
    };
    let refused = store.commit(twice).await;
    assert!(
        matches!(&refused, Err(StoreError::AlreadyExists { kind: EntityKind::Delivery, key })
            if key == &format!("endpoint={} event={}", endpoint.id(), event.id)),
        "{refused:?}"
    );
    let other = new_endpoint(&catalog, 1, 0, now);
    let in_one = ChangeSet {
        deliveries: vec![Put::of(delivery(other.id())), Put::of(delivery(other.id()))],
        endpoints: vec![Put::of(other.clone())],
        ..ChangeSet::default()
    };
    assert!(matches!(
        store.commit(in_one).await,
        Err(StoreError::AlreadyExists {
            kind: EntityKind::Delivery,
            ..
        })
    ));
    assert_eq!(
        store.webhook_endpoints().await.unwrap().len(),
        1,
        "nothing written"
    );
    let unknown = ChangeSet {
        deliveries: vec![Put::of(delivery(other.id()))],
        ..ChangeSet::default()
    };
    let refused = store.commit(unknown).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "delivery.endpoint"),
        "{refused:?}"
    );
    // With its endpoint in the same change set, it is known.
    commit(
        store,
        ChangeSet {
            endpoints: vec![Put::of(other.clone())],
            deliveries: vec![Put::of(delivery(other.id()))],
            ..ChangeSet::default()
        },
    )
    .await;
    let all = every_page(|page| store.deliveries(DeliveryQuery::default(), page))
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

/// `due_deliveries` lists the pending deliveries due by `now`, soonest first (ties by id), and
/// follows every rewrite (claimed, retried, succeeded, failed); the lists by endpoint, event
/// and status are newest first and page without repeats.
pub async fn due_deliveries_and_delivery_lists_follow_every_rewrite(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 3, 1);
    let events: Vec<_> = (0..4).map(|_| an_event(&catalog, now)).collect();
    commit(
        store,
        ChangeSet {
            events: events.clone(),
            ..ChangeSet::default()
        },
    )
    .await;
    let a = store_endpoint(store, new_endpoint(&catalog, 0, 0, now)).await;
    let b = store_endpoint(store, new_endpoint(&catalog, 2, 0, now)).await;
    let mut stored = Vec::new();
    for (seq, event) in (1u64..).zip(&events) {
        for endpoint in [&a, &b] {
            let at = now + TimeDelta::minutes(i64::try_from(seq).unwrap());
            let delivery = Delivery::new(
                catalog.ids.next(at),
                endpoint.id(),
                event.id,
                seq,
                EventKind::CustomerCreated,
                at,
            );
            stored.push(store_delivery(store, delivery).await);
        }
    }
    let ids = |deliveries: Vec<Delivery>| {
        deliveries
            .iter()
            .map(commet_core::delivery::Delivery::id)
            .collect::<Vec<_>>()
    };
    let far = now + TimeDelta::days(1);
    let mut expected: Vec<&Delivery> = stored.iter().collect();
    expected.sort_by_key(|d| (d.next_attempt_at(), d.id()));
    assert_eq!(
        ids(store.due_deliveries(far, 100).await.unwrap()),
        expected.iter().map(|d| d.id()).collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .due_deliveries(now + TimeDelta::minutes(2), 100)
            .await
            .unwrap()
            .len(),
        4,
        "only those due by then"
    );
    assert_eq!(store.due_deliveries(far, 3).await.unwrap().len(), 3);

    // Claimed: due again only when its lease runs out. Succeeded or failed: never.
    let schedule = RetrySchedule::default();
    let mut claimed = stored[0].clone();
    let lease = TimeDelta::minutes(70);
    claimed.claim(now + TimeDelta::minutes(1), lease).unwrap();
    let mut succeeded = stored[1].clone();
    let number = succeeded.claim(now + TimeDelta::minutes(1), lease).unwrap();
    succeeded
        .complete(
            number,
            result(
                AttemptOutcome::Response {
                    status: 204,
                    body: String::new(),
                },
                None,
            ),
            now + TimeDelta::minutes(1),
            &schedule,
        )
        .unwrap();
    let mut failed = stored[2].clone();
    failed.cancel_for_endpoint().unwrap();
    commit(
        store,
        ChangeSet {
            deliveries: vec![
                Put::of(claimed.clone()),
                Put::of(succeeded.clone()),
                Put::of(failed.clone()),
            ],
            ..ChangeSet::default()
        },
    )
    .await;
    let due_now = ids(store.due_deliveries(far, 100).await.unwrap());
    assert_eq!(due_now.len(), 6);
    assert!(!due_now.contains(&succeeded.id()) && !due_now.contains(&failed.id()));
    assert_eq!(
        due_now.last(),
        Some(&claimed.id()),
        "due again at the lease's end"
    );
    assert!(
        !ids(store
            .due_deliveries(now + TimeDelta::minutes(30), 100)
            .await
            .unwrap())
        .contains(&claimed.id())
    );

    // Lists: by endpoint, by event, by status, newest first, paged without repeats.
    let list = |query: DeliveryQuery| async move {
        let mut seen = Vec::new();
        let mut page = PageRequest::first(3);
        loop {
            let got = store.deliveries(query, page.clone()).await.unwrap();
            seen.extend(got.items.iter().map(commet_core::delivery::Delivery::id));
            match got.next {
                Some(next) => page.after = Some(next),
                None => return seen,
            }
        }
    };
    let newest_first = |filter: &dyn Fn(&Delivery) -> bool| {
        let mut ids: Vec<_> = stored
            .iter()
            .filter(|d| filter(d))
            .map(commet_core::delivery::Delivery::id)
            .collect();
        ids.sort();
        ids.reverse();
        ids
    };
    assert_eq!(
        list(DeliveryQuery {
            endpoint: Some(a.id()),
            ..DeliveryQuery::default()
        })
        .await,
        newest_first(&|d| d.endpoint() == a.id())
    );
    assert_eq!(
        list(DeliveryQuery {
            event: Some(events[1].id),
            ..DeliveryQuery::default()
        })
        .await,
        newest_first(&|d| d.event() == events[1].id)
    );
    assert_eq!(
        list(DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            ..DeliveryQuery::default()
        })
        .await,
        [failed.id()]
    );
    assert_eq!(
        list(DeliveryQuery {
            endpoint: Some(b.id()),
            status: Some(DeliveryStatus::Pending),
            event: None,
        })
        .await,
        newest_first(&|d| d.endpoint() == b.id()
            && d.id() != succeeded.id()
            && d.id() != failed.id())
    );
    assert_eq!(
        list(DeliveryQuery::default()).await,
        newest_first(&|_| true)
    );
}
