//! Webhook scenarios: deliveries driven through [`Billing::advance_to`] to a
//! [`FakeReceiver`], every request verified as a real receiver would (Commet's
//! `verify_and_parse` and Standard Webhooks' `verify_standard`). Each takes a fresh, empty
//! store; [`engine_scenario_tests!`](crate::engine_scenario_tests) stamps them into a store
//! crate.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::gateway::Behaviour;
use super::receiver::{FakeReceiver, Received, Reply};
use super::scenarios::Harness;
use crate::Billing;
use crate::store::{DeliveryQuery, Store, every_page};
use commet_core::calendar::Interval;
use commet_core::delivery::{
    AttemptOutcome, AttemptTrigger, Delivery, DeliveryFailure, DeliveryStatus, DisabledReason,
    EventFilter, NewEndpoint, WebhookEndpoint,
};
use commet_core::event::{Envelope, EventKind};
use commet_core::fixtures::utc;
use commet_core::ids::EndpointId;
use commet_core::webhook::signing::{COMMET_EVENT, COMMET_EVENT_ID, COMMET_SIGNATURE};
use commet_core::webhook::{WebhookError, WebhookSecret, verify_and_parse, verify_standard};

/// An engine with a [`FakeReceiver`] as its webhook transport.
#[derive(Debug)]
pub struct WebhookHarness {
    /// The engine, its clock and its payment provider.
    pub h: Harness,
    /// The receiver.
    pub receiver: Arc<FakeReceiver>,
}

impl WebhookHarness {
    /// An engine over `store` starting at `start`, delivering to a fake receiver.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, start: DateTime<Utc>) -> WebhookHarness {
        let Harness {
            billing,
            clock,
            gateway,
        } = Harness::new(store, start);
        let receiver = Arc::new(FakeReceiver::new(Arc::new(clock.clone())));
        WebhookHarness {
            h: Harness {
                billing: billing.with_transport(receiver.clone()),
                clock,
                gateway,
            },
            receiver,
        }
    }

    /// The engine.
    #[must_use]
    pub fn billing(&self) -> &Billing {
        &self.h.billing
    }

    /// Register an endpoint at `url` for `events`.
    pub async fn endpoint(&self, url: &str, events: EventFilter) -> WebhookEndpoint {
        self.billing()
            .webhooks()
            .create(NewEndpoint {
                url: url.into(),
                events,
                description: Some(format!("receiver at {url}")),
                enabled: true,
            })
            .await
            .unwrap()
    }

    /// Every delivery to `endpoint`, oldest first.
    pub async fn deliveries(&self, endpoint: EndpointId) -> Vec<Delivery> {
        let query = DeliveryQuery {
            endpoint: Some(endpoint),
            ..DeliveryQuery::default()
        };
        let webhooks = self.billing().webhooks();
        let mut all = every_page(|page| webhooks.deliveries(query, page))
            .await
            .unwrap();
        all.reverse();
        all
    }
}

/// Verify a request as a receiver holding `secrets` would, at the instant it arrived: Commet's
/// scheme with the first (current) secret, Standard Webhooks with any of them; both name the
/// same event. Answers the event.
#[must_use]
pub fn verify_received(received: &Received, secrets: &[&WebhookSecret]) -> Envelope {
    let signature = received
        .header(COMMET_SIGNATURE)
        .expect("X-Commet-Signature");
    let envelope = verify_and_parse(&received.body, signature, secrets[0].expose())
        .unwrap_or_else(|e| panic!("Commet's scheme does not verify: {e}"));
    let standard = verify_standard(&received.headers, &received.body, secrets, received.at)
        .unwrap_or_else(|e| panic!("Standard Webhooks does not verify: {e}"));
    assert_eq!(standard.id, envelope.id.to_string());
    assert_eq!(standard.timestamp, received.at, "signed when sent");
    assert_eq!(
        received.header(COMMET_EVENT_ID),
        Some(envelope.id.to_string().as_str())
    );
    assert_eq!(
        received.header(COMMET_EVENT),
        Some(envelope.event.kind().as_str())
    );
    envelope
}

/// The minutes after `start` at which each request arrived.
fn minutes_after(received: &[Received], start: DateTime<Utc>) -> Vec<i64> {
    received
        .iter()
        .map(|r| (r.at - start).num_minutes())
        .collect()
}

/// A receiver that fails three times (500, 503, a timeout) and then answers 200 gets the
/// event at +0, then exactly +1 m, +5 m and +15 m after the first failure; the delivery log
/// holds the four attempts with what each came to; every request carries the same event id,
/// a fresh timestamp, and verifies.
pub async fn a_receiver_failing_three_times_gets_retries_at_1_5_and_15_minutes(
    store: Arc<dyn Store>,
) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let url = "https://hooks.example.com/flaky";
    let endpoint = w.endpoint(url, EventFilter::All).await;
    w.receiver.script(
        url,
        [Reply::Status(500), Reply::Status(503), Reply::Timeout],
    );
    w.h.customer(1).await;
    w.h.advance_to(start + TimeDelta::hours(1)).await;

    let got = w.receiver.received_by(url);
    assert_eq!(minutes_after(&got, start), [0, 1, 5, 15]);
    let envelopes: Vec<Envelope> = got
        .iter()
        .map(|r| verify_received(r, &[endpoint.secret()]))
        .collect();
    assert!(envelopes.iter().all(|e| e == &envelopes[0]), "one event");
    assert_eq!(envelopes[0].event.kind(), EventKind::CustomerCreated);
    let timestamps: BTreeSet<&str> = got
        .iter()
        .map(|r| r.header("webhook-timestamp").unwrap())
        .collect();
    assert_eq!(timestamps.len(), 4, "a fresh timestamp per attempt");

    let deliveries = w.deliveries(endpoint.id()).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.status(), DeliveryStatus::Succeeded);
    assert_eq!(delivery.event(), envelopes[0].id);
    let log: Vec<(u32, DateTime<Utc>, Option<u16>)> = delivery
        .attempts()
        .iter()
        .map(|a| {
            let status = match &a.outcome {
                Some(AttemptOutcome::Response { status, .. }) => Some(*status),
                _ => None,
            };
            (a.number, a.started_at, status)
        })
        .collect();
    assert_eq!(
        log,
        [
            (1, start, Some(500)),
            (2, start + TimeDelta::minutes(1), Some(503)),
            (3, start + TimeDelta::minutes(5), None),
            (4, start + TimeDelta::minutes(15), Some(200)),
        ]
    );
    assert!(matches!(
        &delivery.attempts()[2].outcome,
        Some(AttemptOutcome::NoResponse { error, .. }) if error == "timeout"
    ));
    assert!(delivery.attempts().iter().all(|a| a.latency_ms.is_some()));
    let endpoint = w.billing().webhooks().get(endpoint.id()).await.unwrap();
    assert_eq!(
        endpoint.failing_since(),
        None,
        "the success ends the streak"
    );
}

/// A receiver down for a day gets all 8 attempts (+0, 1 m, 5 m, 15 m, 30 m, 1 h, 2 h, 4 h) and
/// the delivery fails; once it is back, a redelivery by hand sends the same event id with a
/// fresh timestamp and signatures, and succeeds.
pub async fn a_receiver_down_for_a_day_exhausts_the_schedule_then_a_redelivery_succeeds(
    store: Arc<dyn Store>,
) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let url = "https://hooks.example.com/down";
    let endpoint = w.endpoint(url, EventFilter::All).await;
    w.receiver.answer(url, Reply::Status(503));
    w.h.customer(1).await;
    let report = w
        .billing()
        .advance_to(start + TimeDelta::days(1))
        .await
        .unwrap();
    let got = w.receiver.received_by(url);
    assert_eq!(minutes_after(&got, start), [0, 1, 5, 15, 30, 60, 120, 240]);
    assert_eq!(report.webhook_attempts, 8);
    assert_eq!(report.webhooks_failed, 1);
    let delivery = w.deliveries(endpoint.id()).await.remove(0);
    assert_eq!(delivery.status(), DeliveryStatus::Failed);
    assert_eq!(delivery.failure(), Some(DeliveryFailure::Exhausted));
    assert_eq!(delivery.attempts().len(), 8, "every attempt is in the log");
    let stored = w.billing().webhooks().get(endpoint.id()).await.unwrap();
    assert!(stored.enabled(), "a day of failures does not disable it");
    assert_eq!(stored.failing_since(), Some(start));

    w.receiver.answer(url, Reply::Status(204));
    let redelivered = w
        .billing()
        .webhooks()
        .redeliver(delivery.id())
        .await
        .unwrap();
    assert_eq!(redelivered.status(), DeliveryStatus::Succeeded);
    let last = redelivered.attempts().last().unwrap();
    assert_eq!((last.number, last.trigger), (9, AttemptTrigger::Manual));
    let got = w.receiver.received_by(url);
    let (first, again) = (&got[0], got.last().unwrap());
    assert_eq!(
        verify_received(first, &[endpoint.secret()]).id,
        verify_received(again, &[endpoint.secret()]).id,
        "the same event id"
    );
    assert_ne!(
        first.header("webhook-timestamp"),
        again.header("webhook-timestamp")
    );
    assert_ne!(first.header(COMMET_SIGNATURE).map(str::len), None);
    assert_ne!(
        first.header("webhook-signature"),
        again.header("webhook-signature")
    );
    let stored = w.billing().webhooks().get(endpoint.id()).await.unwrap();
    assert_eq!(stored.failing_since(), None);
}

/// An endpoint filtered to `payment.failed` receives only those; an endpoint for every event
/// receives each event committed after it was created exactly once, and none from before.
pub async fn an_endpoint_filtered_to_payment_failed_receives_only_those(store: Arc<dyn Store>) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let price = w.h.price("pro", "30 USD", Interval::MONTHLY, 0).await;
    w.h.customer(9).await; // before the endpoints: delivered to neither
    let (all_url, failed_url) = (
        "https://hooks.example.com/all",
        "https://hooks.example.com/failed",
    );
    let all = w.endpoint(all_url, EventFilter::All).await;
    let failed = w
        .endpoint(
            failed_url,
            EventFilter::Only([EventKind::PaymentFailed].into()),
        )
        .await;
    w.h.gateway.register(
        "pm_card_second_declined",
        Behaviour::DeclineNth {
            n: 2,
            code: "card_declined".into(),
        },
    );
    let customer = w.h.customer(1).await;
    w.h.subscribe(customer.id(), &price, "pm_card_second_declined")
        .await;
    w.h.advance_to(start + TimeDelta::days(45)).await;

    let events = w.h.events().await;
    let after: Vec<&Envelope> = events
        .iter()
        .filter(|e| e.seq > all.after_seq())
        .map(|e| &e.envelope)
        .collect();
    let failures: Vec<&Envelope> = after
        .iter()
        .copied()
        .filter(|e| e.event.kind() == EventKind::PaymentFailed)
        .collect();
    assert!(!failures.is_empty(), "the renewal was declined");
    assert!(
        after
            .iter()
            .any(|e| e.event.kind() == EventKind::PaymentRecovered),
        "and recovered on the retry"
    );
    let only_failed: Vec<Envelope> = w
        .receiver
        .received_by(failed_url)
        .iter()
        .map(|r| verify_received(r, &[failed.secret()]))
        .collect();
    assert_eq!(
        only_failed.iter().collect::<Vec<_>>(),
        failures,
        "only payment.failed, each once"
    );
    let mut everything: Vec<Envelope> = w
        .receiver
        .received_by(all_url)
        .iter()
        .map(|r| verify_received(r, &[all.secret()]))
        .collect();
    everything.sort_by_key(|e| e.id);
    let mut expected: Vec<Envelope> = after.into_iter().cloned().collect();
    expected.sort_by_key(|e| e.id);
    assert_eq!(everything, expected, "every later event, each once");
    let deliveries = w.deliveries(all.id()).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.status() == DeliveryStatus::Succeeded)
    );
    assert_eq!(deliveries.len(), expected.len());
    // Listed per event too: one delivery to each endpoint that took it.
    let webhooks = w.billing().webhooks();
    let per_event = every_page(|page| {
        webhooks.deliveries(
            DeliveryQuery {
                event: Some(failures[0].id),
                ..DeliveryQuery::default()
            },
            page,
        )
    })
    .await
    .unwrap();
    let endpoints: BTreeSet<EndpointId> = per_event
        .iter()
        .map(commet_core::delivery::Delivery::endpoint)
        .collect();
    assert_eq!(endpoints, [all.id(), failed.id()].into());
}

/// `410 Gone` fails the delivery and disables the endpoint, which then gets no deliveries;
/// `Retry-After` pushes a retry back (within 4 hours); an endpoint every attempt to which
/// failed for 3 days is disabled.
pub async fn gone_disables_retry_after_is_honoured_and_three_failing_days_disable(
    store: Arc<dyn Store>,
) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let (gone_url, slow_url, broken_url) = (
        "https://hooks.example.com/gone",
        "https://hooks.example.com/slow",
        "https://hooks.example.com/broken",
    );
    let gone = w.endpoint(gone_url, EventFilter::All).await;
    let slow = w.endpoint(slow_url, EventFilter::All).await;
    let broken = w.endpoint(broken_url, EventFilter::All).await;
    w.receiver.script(gone_url, [Reply::Status(410)]);
    w.receiver
        .script(slow_url, [Reply::RetryAfter(429, "600".into())]);
    w.receiver.answer(broken_url, Reply::Refused);
    w.h.customer(1).await;
    w.h.advance_to(start + TimeDelta::hours(1)).await;

    assert_eq!(w.receiver.received_by(gone_url).len(), 1);
    let gone_now = w.billing().webhooks().get(gone.id()).await.unwrap();
    assert_eq!(gone_now.disabled_reason(), Some(DisabledReason::Gone));
    let delivery = w.deliveries(gone.id()).await.remove(0);
    assert_eq!(delivery.failure(), Some(DeliveryFailure::Gone));
    assert_eq!(
        minutes_after(&w.receiver.received_by(slow_url), start),
        [0, 10],
        "Retry-After: 600 puts the 1-minute retry back to 10 minutes"
    );

    // A new event every day: the broken endpoint fails every attempt, and is disabled once it
    // has failed for 3 days.
    for day in 1..=4 {
        w.h.advance_to(start + TimeDelta::days(day)).await;
        w.h.customer(u32::try_from(day).unwrap() + 1).await;
    }
    w.h.advance_to(start + TimeDelta::days(5)).await;
    let broken_now = w.billing().webhooks().get(broken.id()).await.unwrap();
    assert_eq!(broken_now.disabled_reason(), Some(DisabledReason::Failing));
    let last_attempt = w.receiver.received_by(broken_url).last().unwrap().at;
    assert!(last_attempt >= start + TimeDelta::days(3));
    assert!(last_attempt < start + TimeDelta::days(4));
    assert_eq!(
        w.receiver.received_by(gone_url).len(),
        1,
        "a disabled endpoint gets nothing more"
    );
    // The slow endpoint got every event.
    let slow_events: BTreeSet<_> = w
        .receiver
        .received_by(slow_url)
        .iter()
        .map(|r| verify_received(r, &[slow.secret()]).id)
        .collect();
    assert_eq!(slow_events.len(), 5);
    // Enabling it again clears the reason and the streak.
    let enabled = w
        .billing()
        .webhooks()
        .update(
            broken.id(),
            commet_core::delivery::EndpointUpdate {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(enabled.enabled());
    assert_eq!(enabled.failing_since(), None);
}

/// After a rotation, deliveries carry both signatures for the grace window (a receiver with
/// only the old secret still verifies), then only the new one (the old secret fails).
pub async fn a_rotated_secret_verifies_through_its_grace_and_fails_after(store: Arc<dyn Store>) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let url = "https://hooks.example.com/rotating";
    let endpoint = w.endpoint(url, EventFilter::All).await;
    let old = endpoint.secret().clone();
    let rotated = w
        .billing()
        .webhooks()
        .rotate_secret(endpoint.id())
        .await
        .unwrap();
    let new = rotated.secret().clone();
    assert_ne!(old, new);
    w.h.customer(1).await;
    w.h.advance_to(start + TimeDelta::hours(1)).await;
    let during = w.receiver.received_by(url).remove(0);
    let signatures = during.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert_eq!(
        verify_received(&during, &[&new]).event.kind(),
        EventKind::CustomerCreated
    );
    assert!(verify_standard(&during.headers, &during.body, &[&old], during.at).is_ok());

    w.h.advance_to(start + TimeDelta::hours(25)).await;
    w.h.customer(2).await;
    w.h.advance_to(start + TimeDelta::hours(26)).await;
    let after = w.receiver.received_by(url).remove(1);
    assert_eq!(
        verify_received(&after, &[&new]).event.kind(),
        EventKind::CustomerCreated
    );
    assert_eq!(
        verify_standard(&after.headers, &after.body, &[&old], after.at),
        Err(WebhookError::NoMatchingSignature)
    );
    // Too late: replayed outside the tolerance, the delivery is refused.
    assert!(
        verify_standard(
            &after.headers,
            &after.body,
            &[&new],
            after.at + TimeDelta::minutes(6)
        )
        .is_err()
    );
}

/// Endpoints: list, get, update, delete, and the URL rules; a test event arrives signed and
/// is not in the outbox.
pub async fn endpoints_are_managed_and_a_test_event_is_signed(store: Arc<dyn Store>) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let webhooks = w.billing().webhooks();
    let refused = webhooks
        .create(NewEndpoint {
            url: "http://hooks.example.com/plain".into(),
            events: EventFilter::All,
            description: None,
            enabled: true,
        })
        .await;
    assert!(
        matches!(&refused, Err(crate::BillingError::Invalid(e)) if e.field == "url"),
        "{refused:?}"
    );
    let empty = webhooks
        .create(NewEndpoint {
            url: "https://hooks.example.com/none".into(),
            events: EventFilter::Only(BTreeSet::new()),
            description: None,
            enabled: true,
        })
        .await;
    assert!(matches!(&empty, Err(crate::BillingError::Invalid(e)) if e.field == "events"));
    let a = w
        .endpoint("https://hooks.example.com/a", EventFilter::All)
        .await;
    let b = w
        .endpoint("https://hooks.example.com/b", EventFilter::All)
        .await;
    assert_eq!(
        webhooks
            .list()
            .await
            .unwrap()
            .iter()
            .map(WebhookEndpoint::id)
            .collect::<Vec<_>>(),
        [a.id(), b.id()]
    );
    let test = webhooks.send_test(a.id()).await.unwrap();
    assert_eq!(test.envelope.event.kind(), EventKind::WebhookTest);
    assert!(test.result.outcome.is_success());
    assert_eq!(
        verify_received(&w.receiver.received()[0], &[a.secret()]).id,
        test.envelope.id
    );
    assert!(
        w.h.events().await.is_empty(),
        "a test event is not in the outbox"
    );

    let updated = webhooks
        .update(
            b.id(),
            commet_core::delivery::EndpointUpdate {
                url: Some("https://hooks.example.com/b2".into()),
                description: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.url(), updated.description()),
        ("https://hooks.example.com/b2", None)
    );
    webhooks.delete(a.id()).await.unwrap();
    assert!(matches!(
        webhooks.get(a.id()).await,
        Err(crate::BillingError::NotFound { .. })
    ));
    assert_eq!(webhooks.list().await.unwrap().len(), 1);
    w.h.customer(1).await;
    w.h.advance_to(start + TimeDelta::minutes(1)).await;
    assert_eq!(
        w.receiver.received_by("https://hooks.example.com/a").len(),
        1,
        "a deleted endpoint got only the test"
    );
    assert_eq!(
        w.receiver.received_by("https://hooks.example.com/b2").len(),
        1
    );
    // A range redelivery queues the endpoint's events again, with the same ids.
    let seq = w.h.events().await.last().unwrap().seq;
    assert_eq!(webhooks.redeliver_range(b.id(), 1, seq).await.unwrap(), 1);
    w.h.advance_to(start + TimeDelta::minutes(2)).await;
    let got = w.receiver.received_by("https://hooks.example.com/b2");
    assert_eq!(got.len(), 2);
    assert_eq!(
        verify_received(&got[0], &[b.secret()]).id,
        verify_received(&got[1], &[b.secret()]).id
    );
    let by_status: BTreeMap<DeliveryStatus, usize> =
        w.deliveries(b.id())
            .await
            .iter()
            .fold(BTreeMap::new(), |mut m, d| {
                *m.entry(d.status()).or_default() += 1;
                m
            });
    assert_eq!(by_status, [(DeliveryStatus::Succeeded, 1)].into());
}

/// Two workers on one store run the due work at once: each delivery attempt is claimed by
/// one of them and sent once, and every event arrives exactly once.
pub async fn two_workers_never_send_one_attempt_twice(store: Arc<dyn Store>) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store.clone(), start);
    let url = "https://hooks.example.com/shared";
    let endpoint = w.endpoint(url, EventFilter::All).await;
    for n in 0..60 {
        w.h.customer(n).await;
    }
    // A second worker: the same store, clock and receiver, its own engine.
    let second = Harness::new(store, start);
    let second = second.billing.with_transport(w.receiver.clone());
    let (a, b) = futures_util::future::join(w.billing().run_due(), second.run_due()).await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.webhook_attempts + b.webhook_attempts, 60, "{a:?} {b:?}");
    let got = w.receiver.received_by(url);
    let ids: BTreeSet<_> = got
        .iter()
        .map(|r| verify_received(r, &[endpoint.secret()]).id)
        .collect();
    assert_eq!((got.len(), ids.len()), (60, 60), "each event once");
    let deliveries = w.deliveries(endpoint.id()).await;
    assert_eq!(deliveries.len(), 60);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status() == DeliveryStatus::Succeeded && d.attempts().len() == 1)
    );
}

/// Webhook work never holds the clock back or lets it skip: with an endpoint that takes only
/// `payment.failed` (so most events fan out to nobody), `advance_to` still renews every period
/// on its day.
pub async fn advance_to_keeps_every_deadline_while_webhooks_run(store: Arc<dyn Store>) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let price = w.h.price("pro", "30 USD", Interval::MONTHLY, 0).await;
    w.endpoint(
        "https://hooks.example.com/failures",
        EventFilter::Only([EventKind::PaymentFailed].into()),
    )
    .await;
    let customer = w.h.customer(1).await;
    w.h.subscribe(customer.id(), &price, "pm_card_visa").await;
    w.h.advance_to(utc(2026, 4, 15)).await;
    let starts: Vec<DateTime<Utc>> =
        w.h.invoices(customer.id())
            .await
            .iter()
            .filter_map(|invoice| invoice.period().map(|p| p.start()))
            .collect();
    assert_eq!(
        starts,
        [
            utc(2026, 1, 1),
            utc(2026, 2, 1),
            utc(2026, 3, 1),
            utc(2026, 4, 1)
        ]
    );
    let renewed_at: Vec<DateTime<Utc>> =
        w.h.events()
            .await
            .iter()
            .filter(|e| e.envelope.event.kind() == EventKind::InvoiceCreated)
            .map(|e| e.envelope.timestamp)
            .collect();
    assert_eq!(
        renewed_at, starts,
        "each invoice issued on its period's first day"
    );
    assert!(w.receiver.received().is_empty(), "no payment failed");
}

/// Events queued by hand (`redeliver_range`) before the fan-out reached them are delivered
/// once, and the fan-out goes on past them.
pub async fn a_range_queued_before_fan_out_is_delivered_once(store: Arc<dyn Store>) {
    let start = utc(2026, 1, 1);
    let w = WebhookHarness::new(store, start);
    let url = "https://hooks.example.com/range";
    let endpoint = w.endpoint(url, EventFilter::All).await;
    for n in 0..4 {
        w.h.customer(n).await;
    }
    let last = w.h.events().await.last().unwrap().seq;
    let webhooks = w.billing().webhooks();
    assert_eq!(
        webhooks.redeliver_range(endpoint.id(), 1, 2).await.unwrap(),
        2
    );
    w.h.advance_to(start + TimeDelta::minutes(1)).await;
    w.h.customer(9).await;
    w.h.advance_to(start + TimeDelta::minutes(2)).await;
    let ids: Vec<_> = w
        .receiver
        .received_by(url)
        .iter()
        .map(|r| verify_received(r, &[endpoint.secret()]).id)
        .collect();
    let unique: BTreeSet<_> = ids.iter().copied().collect();
    assert_eq!((ids.len(), unique.len()), (5, 5), "every event once");
    assert_eq!(w.deliveries(endpoint.id()).await.len(), 5);
    assert!(last >= 4);
    // A disabled endpoint takes no redelivery.
    webhooks
        .update(
            endpoint.id(),
            commet_core::delivery::EndpointUpdate {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        webhooks.redeliver_range(endpoint.id(), 1, last).await,
        Err(crate::BillingError::Invalid(e)) if e.field == "endpoint"
    ));
}
