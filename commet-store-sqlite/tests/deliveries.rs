//! Webhook endpoints, deliveries and the delivery cursor (schema version 3), on a file and
//! side by side with `MemoryStore` (the reference): every commit gives the same receipt or the
//! same error on both, and every read the same answer. Values are built through their public
//! constructors and commands (`WebhookEndpoint::new`, `Delivery::new`, `claim`, `complete`,
//! `redeliver` ...), so they are the values the engine writes.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::delivery::{
    AttemptOutcome, AttemptResult, AttemptTrigger, Delivery, DeliveryFailure, DeliveryStatus,
    DisabledReason, EndpointUpdate, EventFilter, NewEndpoint, RetrySchedule, UrlPolicy,
    WebhookEndpoint,
};
use commet_core::event::{Envelope, Event, EventKind, Mode};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::{EndpointId, EventId, IdGenerator};
use commet_core::webhook::WebhookSecret;
use commet_engine::store::{
    ChangeSet, CommitReceipt, Cursor, DeliveryCursor, DeliveryQuery, EntityKind, ExpectedVersion,
    PageRequest, Put, Store, StoreError,
};
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;

/// Live mode, `https` only, public hosts only: the strictest policy.
const POLICY: UrlPolicy = UrlPolicy {
    mode: Mode::Live,
    allow_http: false,
    allow_private_addresses: false,
};

/// `minutes` after the start of the test day, with a microsecond part (instants are stored to
/// the microsecond, and must come back exactly).
fn at(minutes: i64) -> DateTime<Utc> {
    utc(2026, 3, 1) + TimeDelta::minutes(minutes) + TimeDelta::microseconds(123_456)
}

fn secret(byte: u8) -> WebhookSecret {
    WebhookSecret::from_bytes(&[byte; 32]).unwrap()
}

fn endpoint(
    ids: &IdGenerator,
    url: &str,
    events: EventFilter,
    enabled: bool,
    now: DateTime<Utc>,
) -> WebhookEndpoint {
    let new = NewEndpoint {
        url: url.into(),
        events,
        description: None,
        enabled,
    };
    WebhookEndpoint::new(ids.next(now), new, secret(9), 0, POLICY, now).unwrap()
}

/// An endpoint with every optional field set: a description, a filter of named kinds, a
/// failure streak, disabled (`gone`), a retired secret still signing, deleted.
fn endpoint_with_every_field(ids: &IdGenerator, now: DateTime<Utc>) -> WebhookEndpoint {
    let new = NewEndpoint {
        url: "https://hooks.example.com/commet?tenant=7".into(),
        events: EventFilter::Only([EventKind::InvoiceCreated, EventKind::PaymentFailed].into()),
        description: Some("Ledger sync — billing team".into()),
        enabled: true,
    };
    let mut endpoint =
        WebhookEndpoint::new(ids.next(now), new, secret(1), 41, POLICY, now).unwrap();
    let three_days = TimeDelta::days(3);
    assert!(endpoint.record_failure(false, now + TimeDelta::minutes(1), three_days));
    assert!(endpoint.record_failure(true, now + TimeDelta::minutes(2), three_days));
    endpoint
        .rotate_secret(secret(2), TimeDelta::hours(24), now + TimeDelta::minutes(3))
        .unwrap();
    endpoint.delete(now + TimeDelta::minutes(4));
    assert!(endpoint.description().is_some());
    assert_eq!(endpoint.disabled_reason(), Some(DisabledReason::Gone));
    assert!(endpoint.failing_since().is_some());
    assert!(endpoint.retired_secret().is_some());
    assert!(endpoint.deleted_at().is_some());
    endpoint
}

fn result(outcome: AttemptOutcome, retry_after: Option<&str>) -> AttemptResult {
    AttemptResult {
        outcome,
        retry_after: retry_after.map(Into::into),
        latency: Duration::from_millis(250),
    }
}

fn response(status: u16, body: &str) -> AttemptOutcome {
    AttemptOutcome::Response {
        status,
        body: body.into(),
    }
}

const LEASE: TimeDelta = TimeDelta::seconds(30);

/// A delivery whose log has an attempt of every outcome: a 500 with a `Retry-After`, no
/// response, one interrupted (its worker died), a 200; then redelivered by hand (a new, manual
/// round) and claimed again, so the last attempt is in flight.
fn delivery_with_every_outcome(
    ids: &IdGenerator,
    endpoint: EndpointId,
    event: EventId,
    now: DateTime<Utc>,
) -> Delivery {
    let schedule = RetrySchedule::default();
    let second = TimeDelta::seconds(1);
    let mut delivery = Delivery::new(
        ids.next(now),
        endpoint,
        event,
        12,
        EventKind::InvoiceCreated,
        now,
    );
    let n = delivery.claim(now, LEASE).unwrap();
    let failed = response(500, "upstream down: ünïcödé body");
    delivery
        .complete(n, result(failed, Some("120")), now + second, &schedule)
        .unwrap();
    let t = delivery.next_attempt_at().unwrap();
    let n = delivery.claim(t, LEASE).unwrap();
    let timeout = AttemptOutcome::NoResponse {
        error: "timeout".into(),
        message: "no answer within 10 s".into(),
    };
    delivery
        .complete(n, result(timeout, None), t + second, &schedule)
        .unwrap();
    let t = delivery.next_attempt_at().unwrap();
    delivery.claim(t, LEASE).unwrap(); // its worker dies
    let after_lease = delivery.next_attempt_at().unwrap();
    let n = delivery.claim(after_lease, LEASE).unwrap();
    delivery
        .complete(
            n,
            result(response(200, "ok"), None),
            after_lease + second,
            &schedule,
        )
        .unwrap();
    assert_eq!(delivery.status(), DeliveryStatus::Succeeded);
    let by_hand = after_lease + TimeDelta::hours(1);
    delivery.redeliver(by_hand).unwrap();
    delivery.claim(by_hand, LEASE).unwrap();
    let outcomes: Vec<_> = delivery
        .attempts()
        .iter()
        .map(|attempt| attempt.outcome.clone())
        .collect();
    assert!(matches!(
        outcomes.as_slice(),
        [
            Some(AttemptOutcome::Response { status: 500, .. }),
            Some(AttemptOutcome::NoResponse { .. }),
            Some(AttemptOutcome::Interrupted),
            Some(AttemptOutcome::Response { status: 200, .. }),
            None,
        ]
    ));
    assert_eq!(delivery.round_start(), 5);
    assert_eq!(delivery.round_trigger(), AttemptTrigger::Manual);
    assert_eq!(delivery.attempts()[4].trigger, AttemptTrigger::Manual);
    delivery
}

/// A delivery the receiver answered `410 Gone`: failed for good.
fn gone_delivery(
    ids: &IdGenerator,
    endpoint: EndpointId,
    event: EventId,
    now: DateTime<Utc>,
) -> Delivery {
    let mut delivery = Delivery::new(
        ids.next(now),
        endpoint,
        event,
        13,
        EventKind::PaymentFailed,
        now,
    );
    let n = delivery.claim(now, LEASE).unwrap();
    delivery
        .complete(
            n,
            result(response(410, "gone"), None),
            now + TimeDelta::seconds(2),
            &RetrySchedule::default(),
        )
        .unwrap();
    assert_eq!(delivery.failure(), Some(DeliveryFailure::Gone));
    delivery
}

/// `MemoryStore` and `SqliteStore` on a file, written and read alike.
struct Pair {
    memory: MemoryStore,
    sqlite: common::TempFileStore,
}

/// Run `$read` (an expression over `$s: &dyn Store`) on both stores: the same answer from
/// each, which it returns.
macro_rules! same {
    ($pair:expr, |$s:ident| $read:expr) => {{
        let expected = {
            let $s: &dyn Store = &$pair.memory;
            $read.await
        };
        let got = {
            let $s: &dyn Store = &$pair.sqlite;
            $read.await
        };
        assert_eq!(got, expected, "{}", stringify!($read));
        got
    }};
}

impl Pair {
    async fn new() -> Pair {
        Pair {
            memory: MemoryStore::new(),
            sqlite: common::TempFileStore::new().await,
        }
    }

    /// Commit to both: the same receipt or error from each.
    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt, StoreError> {
        let expected = self.memory.commit(changes.clone()).await;
        let got = self.sqlite.commit(changes).await;
        assert_eq!(got, expected, "the stores disagree on a commit");
        got
    }

    /// Everything the webhook reads say, the same on both (each delivery by id, the
    /// unfiltered list, the due ones, the cursor, the endpoints, the outbox's last number).
    async fn check_reads(&self) {
        same!(self, |s| s.webhook_endpoints()).unwrap();
        same!(self, |s| s.delivery_cursor()).unwrap();
        same!(self, |s| s.last_event_seq()).unwrap();
        same!(self, |s| s.due_deliveries(DateTime::<Utc>::MAX_UTC, 1000)).unwrap();
        let all = same!(self, |s| s
            .deliveries(DeliveryQuery::default(), PageRequest::first(100)))
        .unwrap();
        for delivery in &all.items {
            same!(self, |s| s.delivery(delivery.id())).unwrap();
        }
    }
}

fn endpoints(puts: Vec<Put<WebhookEndpoint>>) -> ChangeSet {
    ChangeSet {
        endpoints: puts,
        ..ChangeSet::default()
    }
}

fn deliveries(puts: Vec<Put<Delivery>>) -> ChangeSet {
    ChangeSet {
        deliveries: puts,
        ..ChangeSet::default()
    }
}

/// Endpoints read back exactly (every field, the retired secret, deleted ones), in creation
/// order; they are rewritten at their version, and a stale or duplicate write conflicts with
/// nothing written; everything survives closing and reopening the file.
#[tokio::test]
async fn endpoints_round_trip_exactly_and_are_rewritten_at_their_version() {
    let pair = Pair::new().await;
    let ids = IdGenerator::seeded(1);
    let full = endpoint_with_every_field(&ids, at(0));
    let plain = endpoint(
        &ids,
        "https://hooks.example.com/all",
        EventFilter::All,
        true,
        at(10),
    );
    let off = endpoint(
        &ids,
        "https://hooks.example.com/off",
        EventFilter::Only([EventKind::CustomerCreated].into()),
        false,
        at(20),
    );
    // Written out of creation order; read in it.
    let puts = vec![
        Put::of(off.clone()),
        Put::of(full.clone()),
        Put::of(plain.clone()),
    ];
    let stored: Vec<WebhookEndpoint> = [&puts[1], &puts[2], &puts[0]]
        .iter()
        .map(|put| put.stored())
        .collect();
    pair.commit(endpoints(puts)).await.unwrap();
    let read = pair.sqlite.webhook_endpoints().await.unwrap();
    assert_eq!(read, stored);
    assert_eq!(read[0].version(), 1);
    let retired = read[0].retired_secret().unwrap();
    assert_eq!(retired.secret, secret(1));
    assert_eq!(read[0].secret(), &secret(2));
    assert_eq!(read[2].disabled_reason(), Some(DisabledReason::Manual));
    pair.check_reads().await;

    // A rewrite at version 1: every field may change.
    let mut updated = stored[1].clone();
    updated
        .update(
            EndpointUpdate {
                url: Some("https://hooks.example.com/v2".into()),
                events: Some(EventFilter::Only([EventKind::InvoiceVoided].into())),
                description: Some(Some("moved".into())),
                enabled: Some(false),
            },
            POLICY,
            0,
        )
        .unwrap();
    let put = Put::of(updated);
    let updated = put.stored();
    pair.commit(endpoints(vec![put])).await.unwrap();
    assert_eq!(updated.version(), 2);

    // The version-1 copy again, with a new endpoint: a conflict, and nothing written.
    let extra = endpoint(
        &ids,
        "https://hooks.example.com/extra",
        EventFilter::All,
        true,
        at(30),
    );
    let stale = pair
        .commit(endpoints(vec![
            Put::of(extra.clone()),
            Put::of(stored[1].clone()),
        ]))
        .await;
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            kind: EntityKind::WebhookEndpoint,
            id: plain.id().to_string(),
            expected: ExpectedVersion::Exactly(1),
            actual: Some(2),
        })
    );
    // A new endpoint over a stored one: a conflict.
    let mut again = stored[0].clone();
    again.set_version(0);
    let duplicate = pair.commit(endpoints(vec![Put::of(again)])).await;
    assert_eq!(
        duplicate,
        Err(StoreError::Conflict {
            kind: EntityKind::WebhookEndpoint,
            id: full.id().to_string(),
            expected: ExpectedVersion::New,
            actual: Some(1),
        })
    );
    // A rewrite of an endpoint that was never stored: a conflict.
    let mut missing = extra.clone();
    missing.set_version(3);
    let missing = pair.commit(endpoints(vec![Put::of(missing)])).await;
    assert!(
        matches!(missing, Err(StoreError::Conflict { actual: None, .. })),
        "{missing:?}"
    );
    let expected = vec![stored[0].clone(), updated, stored[2].clone()];
    assert_eq!(pair.sqlite.webhook_endpoints().await.unwrap(), expected);
    pair.check_reads().await;

    // Closed and reopened, the file says the same.
    let reopened = SqliteStore::open(pair.sqlite.path()).await.unwrap();
    assert_eq!(reopened.webhook_endpoints().await.unwrap(), expected);
}

/// A delivery reads back exactly with its whole attempt log (every outcome, an attempt in
/// flight, a manual round), and a failed one with its failure; rewrites go at their version
/// and a stale one conflicts; nothing of a refused change set is written.
#[tokio::test]
async fn deliveries_round_trip_with_their_attempt_logs() {
    let pair = Pair::new().await;
    let ids = IdGenerator::seeded(2);
    let hooks = endpoint(
        &ids,
        "https://hooks.example.com/a",
        EventFilter::All,
        true,
        at(0),
    );
    let (first, second): (EventId, EventId) = (ids.next(at(1)), ids.next(at(1)));
    let busy = delivery_with_every_outcome(&ids, hooks.id(), first, at(2));
    let gone = gone_delivery(&ids, hooks.id(), second, at(3));
    // The endpoint and its deliveries in one change set: the endpoint is written first.
    let puts = vec![Put::of(busy.clone()), Put::of(gone.clone())];
    let stored: Vec<Delivery> = puts.iter().map(Put::stored).collect();
    pair.commit(ChangeSet {
        endpoints: vec![Put::of(hooks.clone())],
        deliveries: puts,
        ..ChangeSet::default()
    })
    .await
    .unwrap();
    assert_eq!(
        pair.sqlite.delivery(busy.id()).await.unwrap(),
        Some(stored[0].clone())
    );
    assert_eq!(
        pair.sqlite.delivery(gone.id()).await.unwrap(),
        Some(stored[1].clone())
    );
    pair.check_reads().await;

    // The attempt in flight completes (a 503): a rewrite at version 1.
    let mut completed = stored[0].clone();
    let n = completed.in_flight().unwrap().number;
    let now = completed.attempts()[4].started_at + TimeDelta::seconds(1);
    completed
        .complete(
            n,
            result(response(503, "busy"), Some("Wed, 21 Oct 2099 07:28:00 GMT")),
            now,
            &RetrySchedule::default(),
        )
        .unwrap();
    let put = Put::of(completed);
    let completed = put.stored();
    pair.commit(deliveries(vec![put])).await.unwrap();
    assert_eq!(
        pair.sqlite.delivery(busy.id()).await.unwrap(),
        Some(completed.clone())
    );

    // The version-1 copy again: a conflict naming it, and the other write of the change set
    // (a redelivery of the failed one) is not written.
    let mut redelivered = stored[1].clone();
    redelivered.redeliver(at(60)).unwrap();
    let stale = pair
        .commit(deliveries(vec![
            Put::of(redelivered),
            Put::of(stored[0].clone()),
        ]))
        .await;
    assert_eq!(
        stale,
        Err(StoreError::Conflict {
            kind: EntityKind::Delivery,
            id: busy.id().to_string(),
            expected: ExpectedVersion::Exactly(1),
            actual: Some(2),
        })
    );
    assert_eq!(
        pair.sqlite.delivery(gone.id()).await.unwrap(),
        Some(stored[1].clone())
    );
    assert_eq!(pair.sqlite.delivery(ids.next(at(70))).await.unwrap(), None);
    pair.check_reads().await;
}

/// One delivery per (endpoint, event): a second one is `AlreadyExists` with the rule's key,
/// whether the first is stored or in the same change set, and nothing of the change set is
/// written (not its endpoint, its other deliveries, its cursor or its events). A delivery to
/// an endpoint that does not exist is `Invalid` (`delivery.endpoint`).
#[tokio::test]
async fn one_delivery_per_endpoint_and_event_and_endpoints_must_exist() {
    let pair = Pair::new().await;
    let ids = IdGenerator::seeded(3);
    let catalog = Fixtures::new();
    let hooks = endpoint(
        &ids,
        "https://hooks.example.com/a",
        EventFilter::All,
        true,
        at(0),
    );
    let event: EventId = ids.next(at(1));
    let first = Delivery::new(
        ids.next(at(2)),
        hooks.id(),
        event,
        1,
        EventKind::CustomerCreated,
        at(2),
    );
    pair.commit(ChangeSet {
        endpoints: vec![Put::of(hooks.clone())],
        deliveries: vec![Put::of(first.clone())],
        ..ChangeSet::default()
    })
    .await
    .unwrap();
    let taken = StoreError::AlreadyExists {
        kind: EntityKind::Delivery,
        key: format!("endpoint={} event={event}", hooks.id()),
    };

    // A second delivery of the event to the endpoint, among other writes.
    let other = endpoint(
        &ids,
        "https://hooks.example.com/b",
        EventFilter::All,
        true,
        at(3),
    );
    let fine = Delivery::new(
        ids.next(at(4)),
        other.id(),
        event,
        1,
        EventKind::CustomerCreated,
        at(4),
    );
    let second = Delivery::new(
        ids.next(at(5)),
        hooks.id(),
        event,
        1,
        EventKind::CustomerCreated,
        at(5),
    );
    let customer = catalog.customer(1, at(5));
    let envelope = catalog.envelope(Event::CustomerCreated(customer.event_data()), at(5));
    let refused = pair
        .commit(ChangeSet {
            events: vec![envelope.clone()],
            endpoints: vec![Put::of(other.clone())],
            deliveries: vec![Put::of(fine.clone()), Put::of(second.clone())],
            delivery_cursor: Some(Put::of(DeliveryCursor { seq: 1, version: 0 })),
            ..ChangeSet::default()
        })
        .await;
    assert_eq!(refused, Err(taken.clone()));
    assert_eq!(
        pair.sqlite.webhook_endpoints().await.unwrap(),
        vec![Put::of(hooks.clone()).stored()]
    );
    assert_eq!(pair.sqlite.delivery(fine.id()).await.unwrap(), None);
    assert_eq!(pair.sqlite.delivery(second.id()).await.unwrap(), None);
    assert_eq!(
        pair.sqlite.delivery_cursor().await.unwrap(),
        DeliveryCursor::default()
    );
    assert_eq!(pair.sqlite.last_event_seq().await.unwrap(), 0);

    // Two of them in one change set, neither stored.
    let fresh: EventId = ids.next(at(6));
    let twins: Vec<Put<Delivery>> = (0..2)
        .map(|n| {
            Put::of(Delivery::new(
                ids.next(at(7 + n)),
                hooks.id(),
                fresh,
                2,
                EventKind::CustomerCreated,
                at(7),
            ))
        })
        .collect();
    assert_eq!(
        pair.commit(deliveries(twins)).await,
        Err(StoreError::AlreadyExists {
            kind: EntityKind::Delivery,
            key: format!("endpoint={} event={fresh}", hooks.id()),
        })
    );

    // An endpoint that does not exist.
    let nowhere: EndpointId = ids.next(at(8));
    let lost = Delivery::new(
        ids.next(at(8)),
        nowhere,
        fresh,
        2,
        EventKind::CustomerCreated,
        at(8),
    );
    let refused = pair.commit(deliveries(vec![Put::of(lost.clone())])).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "delivery.endpoint"),
        "{refused:?}"
    );
    assert_eq!(pair.sqlite.delivery(lost.id()).await.unwrap(), None);

    // The rules are named in their order: a stale version of a delivery before its key.
    let mut stale_and_taken = second.clone();
    stale_and_taken.set_version(4);
    let refused = pair
        .commit(deliveries(vec![Put::of(stale_and_taken)]))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                kind: EntityKind::Delivery,
                actual: None,
                ..
            })
        ),
        "{refused:?}"
    );

    // The same writes without the duplicate go through; the stored delivery is rewritten
    // under its own key.
    let mut claimed = Put::of(first.clone()).stored();
    claimed.claim(at(9), LEASE).unwrap();
    pair.commit(ChangeSet {
        events: vec![envelope],
        endpoints: vec![Put::of(other)],
        deliveries: vec![Put::of(fine.clone()), Put::of(claimed)],
        delivery_cursor: Some(Put::of(DeliveryCursor { seq: 1, version: 0 })),
        ..ChangeSet::default()
    })
    .await
    .unwrap();
    assert_eq!(pair.sqlite.last_event_seq().await.unwrap(), 1);
    pair.check_reads().await;
}

/// The cursor: the default until written, then written at its version; a stale version or a
/// second `New` conflicts.
#[tokio::test]
async fn the_delivery_cursor_is_written_at_its_version() {
    let pair = Pair::new().await;
    let cursor = |seq, version| ChangeSet {
        delivery_cursor: Some(Put::of(DeliveryCursor { seq, version })),
        ..ChangeSet::default()
    };
    assert_eq!(
        pair.sqlite.delivery_cursor().await.unwrap(),
        DeliveryCursor::default()
    );
    let conflict = |expected, actual| {
        Err(StoreError::Conflict {
            kind: EntityKind::DeliveryCursor,
            id: "delivery_cursor".into(),
            expected,
            actual,
        })
    };
    assert_eq!(
        pair.commit(cursor(3, 1)).await,
        conflict(ExpectedVersion::Exactly(1), None)
    );
    pair.commit(cursor(5, 0)).await.unwrap();
    assert_eq!(
        pair.sqlite.delivery_cursor().await.unwrap(),
        DeliveryCursor { seq: 5, version: 1 }
    );
    pair.commit(cursor(9, 1)).await.unwrap();
    assert_eq!(
        pair.sqlite.delivery_cursor().await.unwrap(),
        DeliveryCursor { seq: 9, version: 2 }
    );
    assert_eq!(
        pair.commit(cursor(12, 1)).await,
        conflict(ExpectedVersion::Exactly(1), Some(2))
    );
    assert_eq!(
        pair.commit(cursor(12, 0)).await,
        conflict(ExpectedVersion::New, Some(2))
    );
    pair.check_reads().await;
}

/// `due_deliveries`: pending ones due at or before `now` (inclusive), soonest first, ties by
/// id, at most `limit`; the index follows every rewrite; a delivery that is not pending is
/// never due, whatever its deadline says.
#[tokio::test]
async fn due_deliveries_are_pending_ones_soonest_first_ties_by_id() {
    let pair = Pair::new().await;
    let ids = IdGenerator::seeded(4);
    let hooks = endpoint(
        &ids,
        "https://hooks.example.com/a",
        EventFilter::All,
        true,
        at(0),
    );
    pair.commit(endpoints(vec![Put::of(hooks.clone())]))
        .await
        .unwrap();
    let mut made = Vec::new();
    for due in [5, 1, 5, 60, 3, 2] {
        let event: EventId = ids.next(at(1));
        // Created (so due) at `due`; ids increase in the order made.
        made.push(Delivery::new(
            ids.next(at(1)),
            hooks.id(),
            event,
            1,
            EventKind::CustomerCreated,
            at(due),
        ));
    }
    // The fifth succeeds; the sixth failed but kept a deadline (not due either way).
    let n = made[4].claim(at(3), LEASE).unwrap();
    made[4]
        .complete(
            n,
            result(response(204, ""), None),
            at(3),
            &RetrySchedule::default(),
        )
        .unwrap();
    made[5].cancel_for_endpoint().unwrap();
    let puts: Vec<Put<Delivery>> = made.iter().cloned().map(Put::of).collect();
    let stored: Vec<Delivery> = puts.iter().map(Put::stored).collect();
    pair.commit(deliveries(puts)).await.unwrap();

    let shared = &pair;
    let due = |now, limit| async move {
        same!(shared, |s| s.due_deliveries(now, limit))
            .unwrap()
            .into_iter()
            .map(|d| d.id())
            .collect::<Vec<_>>()
    };
    let id = |n: usize| stored[n].id();
    assert_eq!(due(at(0), 10).await, vec![]);
    assert_eq!(due(at(1), 10).await, vec![id(1)]);
    assert_eq!(due(at(5), 10).await, vec![id(1), id(0), id(2)]);
    assert_eq!(due(at(5), 2).await, vec![id(1), id(0)]);
    assert_eq!(due(at(5), 0).await, vec![]);
    assert_eq!(
        due(DateTime::<Utc>::MAX_UTC, 100).await,
        vec![id(1), id(0), id(2), id(3)]
    );

    // Claimed: due again when its lease runs out.
    let mut claimed = stored[1].clone();
    claimed.claim(at(5), LEASE).unwrap();
    pair.commit(deliveries(vec![Put::of(claimed)]))
        .await
        .unwrap();
    assert_eq!(due(at(5), 10).await, vec![id(0), id(2)]);
    assert_eq!(due(at(6), 10).await, vec![id(0), id(2), id(1)]);
    // Succeeded: never due again.
    let mut done = stored[0].clone();
    let n = done.claim(at(6), LEASE).unwrap();
    done.complete(
        n,
        result(response(200, "ok"), None),
        at(6),
        &RetrySchedule::default(),
    )
    .unwrap();
    pair.commit(deliveries(vec![Put::of(done)])).await.unwrap();
    assert_eq!(due(at(6), 10).await, vec![id(2), id(1)]);
    pair.check_reads().await;
}

/// `deliveries`: newest first (by id), filtered by endpoint, event and status in every
/// combination, paged with cursors at every page size; the same pages as `MemoryStore`, and
/// bad requests refused alike.
#[tokio::test]
async fn deliveries_page_newest_first_by_endpoint_by_event_and_by_status() {
    let pair = Pair::new().await;
    let ids = IdGenerator::seeded(5);
    let a = endpoint(
        &ids,
        "https://hooks.example.com/a",
        EventFilter::All,
        true,
        at(0),
    );
    let b = endpoint(
        &ids,
        "https://hooks.example.com/b",
        EventFilter::All,
        true,
        at(0),
    );
    pair.commit(endpoints(vec![Put::of(a.clone()), Put::of(b.clone())]))
        .await
        .unwrap();
    let events: Vec<EventId> = (0..4).map(|n| ids.next(at(n))).collect();
    let mut all = Vec::new();
    for (n, event) in (0_i64..).zip(&events) {
        for endpoint in [&a, &b] {
            let mut delivery = Delivery::new(
                ids.next(at(n)),
                endpoint.id(),
                *event,
                u64::try_from(n).unwrap() + 1,
                EventKind::CustomerCreated,
                at(n),
            );
            if endpoint.id() == b.id() && n % 2 == 0 {
                let number = delivery.claim(at(n), LEASE).unwrap();
                delivery
                    .complete(
                        number,
                        result(response(200, "ok"), None),
                        at(n),
                        &RetrySchedule::default(),
                    )
                    .unwrap();
            }
            all.push(Put::of(delivery));
        }
    }
    let stored: Vec<Delivery> = all.iter().map(Put::stored).collect();
    // Two commits, the second's rows first in the change set.
    let later = all.split_off(4);
    pair.commit(deliveries(all)).await.unwrap();
    pair.commit(deliveries(later.into_iter().rev().collect()))
        .await
        .unwrap();

    let mut queries = vec![DeliveryQuery::default()];
    for endpoint in [None, Some(a.id()), Some(b.id()), Some(ids.next(at(9)))] {
        for event in [
            None,
            Some(events[1]),
            Some(events[2]),
            Some(ids.next(at(9))),
        ] {
            for status in [
                None,
                Some(DeliveryStatus::Pending),
                Some(DeliveryStatus::Succeeded),
                Some(DeliveryStatus::Failed),
            ] {
                queries.push(DeliveryQuery {
                    endpoint,
                    event,
                    status,
                });
            }
        }
    }
    for query in queries {
        let mut expected: Vec<Delivery> = stored
            .iter()
            .filter(|delivery| query.matches(delivery))
            .cloned()
            .collect();
        expected.sort_by_key(|delivery| std::cmp::Reverse(delivery.id()));
        for limit in [1, 2, 3, 100] {
            let mut request = PageRequest::first(limit);
            let mut read = Vec::new();
            loop {
                let page = same!(pair, |s| s.deliveries(query, request.clone())).unwrap();
                assert!(page.items.len() <= limit as usize);
                read.extend(page.items);
                match page.next {
                    Some(next) => request.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(read, expected, "{query:?}, pages of {limit}");
        }
    }

    // A cursor of another list, a limit out of range: refused alike.
    let foreign = PageRequest {
        limit: 10,
        after: Some(Cursor::after(a.id())),
    };
    let refused = same!(pair, |s| s
        .deliveries(DeliveryQuery::default(), foreign.clone()));
    assert!(
        matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "after"),
        "{refused:?}"
    );
    let refused = same!(pair, |s| s
        .deliveries(DeliveryQuery::default(), PageRequest::first(0)));
    assert!(
        matches!(&refused, Err(StoreError::Invalid(invalid)) if invalid.field == "limit"),
        "{refused:?}"
    );
    pair.check_reads().await;
}

/// `last_event_seq` is the outbox's highest sequence number: 0 when empty, unchanged by a
/// refused commit.
#[tokio::test]
async fn last_event_seq_follows_the_outbox() {
    let pair = Pair::new().await;
    let catalog = Fixtures::new();
    let envelope = |n: u32| -> Envelope {
        let customer = catalog.customer(n, at(i64::from(n)));
        catalog.envelope(
            Event::CustomerCreated(customer.event_data()),
            at(i64::from(n)),
        )
    };
    assert_eq!(same!(pair, |s| s.last_event_seq()), Ok(0));
    let first = envelope(1);
    pair.commit(ChangeSet {
        events: vec![first.clone(), envelope(2), envelope(3)],
        ..ChangeSet::default()
    })
    .await
    .unwrap();
    assert_eq!(same!(pair, |s| s.last_event_seq()), Ok(3));
    let refused = pair
        .commit(ChangeSet {
            events: vec![envelope(4), first],
            ..ChangeSet::default()
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::AlreadyExists {
                kind: EntityKind::Event,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(same!(pair, |s| s.last_event_seq()), Ok(3));
}
