//! Laws of webhook delivery (DESIGN.md section 9): whatever a receiver answers, a delivery is
//! tried at most once per schedule step plus the first attempt, never before its time, never
//! more than 4 hours after it for a `Retry-After`, and ends delivered on the first 2xx, failed
//! on a 410 or once the schedule is used up; its attempt log numbers every attempt once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // strategies build values known valid

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::delivery::{
    AttemptOutcome, AttemptResult, Delivery, DeliveryFailure, DeliveryStatus, EventFilter,
    MAX_RETRY_AFTER, NewEndpoint, RetrySchedule, UrlPolicy, WebhookEndpoint,
};
use commet_core::event::EventKind;
use commet_core::event::Mode;
use commet_core::ids::{DeliveryId, EndpointId, EventId, TypedId};
use commet_core::webhook::{WebhookSecret, sign_delivery, verify_standard};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// What a receiver may answer: a status (2xx, 3xx, 4xx, 410, 5xx) with or without a
/// `Retry-After` in seconds, or no answer.
fn answer() -> impl Strategy<Value = AttemptResult> {
    let status = prop_oneof![
        Just(200u16),
        Just(204),
        Just(301),
        Just(400),
        Just(410),
        Just(429),
        Just(500),
        Just(503),
    ];
    let retry_after = proptest::option::of(0u64..50_000).prop_map(|s| s.map(|s| s.to_string()));
    prop_oneof![
        (status, retry_after).prop_map(|(status, retry_after)| AttemptResult {
            outcome: AttemptOutcome::Response {
                status,
                body: "x".repeat(usize::from(status) * 5),
            },
            retry_after,
            latency: Duration::from_millis(u64::from(status)),
        }),
        Just(AttemptResult {
            outcome: AttemptOutcome::NoResponse {
                error: "timeout".into(),
                message: "no answer".into(),
            },
            retry_after: None,
            latency: Duration::from_secs(10),
        }),
    ]
}

fn delivery(now: DateTime<Utc>) -> Delivery {
    Delivery::new(
        DeliveryId::from_uuid(uuid_of(1)),
        EndpointId::from_uuid(uuid_of(2)),
        EventId::from_uuid(uuid_of(3)),
        1,
        EventKind::CustomerCreated,
        now,
    )
}

fn uuid_of(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Failures are saved under `proptest-regressions/` (committed) and re-run first.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/delivery_laws.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Drive a delivery through whatever the receiver answers, each attempt at the instant it
    /// is due (plus a random delay for a slow worker).
    #[test]
    fn a_delivery_follows_its_schedule_whatever_the_receiver_answers(
        answers in proptest::collection::vec(answer(), 1..12),
        delays in proptest::collection::vec(0i64..120, 12),
    ) {
        let schedule = RetrySchedule::default();
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut delivery = delivery(start);
        let mut first_failure = None;
        let mut previous_at = None;
        for (k, (answer, delay)) in answers.iter().zip(&delays).enumerate() {
            if delivery.status() != DeliveryStatus::Pending {
                break;
            }
            let due = delivery.next_attempt_at().unwrap();
            // Never before its time.
            if let Some(early) = due.checked_sub_signed(TimeDelta::seconds(1)) {
                prop_assert!(delivery.clone().claim(early, TimeDelta::minutes(1)).is_err());
            }
            let now = due + TimeDelta::seconds(*delay);
            let number = delivery.claim(now, TimeDelta::minutes(1)).unwrap();
            prop_assert_eq!(number as usize, k + 1, "attempts numbered once each");
            prop_assert!(delivery.in_flight().is_some());
            delivery.complete(number, answer.clone(), now, &schedule).unwrap();
            prop_assert!(delivery.in_flight().is_none());
            let logged = delivery.attempts().last().unwrap();
            let cut = matches!(&answer.outcome, AttemptOutcome::Response { body, .. } if body.len() > 1024);
            prop_assert!(
                cut || logged.outcome.as_ref() == Some(&answer.outcome),
                "the log holds what came back"
            );
            if let Some(AttemptOutcome::Response { body, .. }) = &logged.outcome {
                prop_assert!(body.len() <= 1024);
            }
            let success = answer.outcome.is_success();
            let gone = matches!(answer.outcome, AttemptOutcome::Response { status: 410, .. });
            if success {
                prop_assert_eq!(delivery.status(), DeliveryStatus::Succeeded);
                prop_assert_eq!(delivery.next_attempt_at(), None);
                break;
            }
            if gone {
                prop_assert_eq!(delivery.status(), DeliveryStatus::Failed);
                prop_assert_eq!(delivery.failure(), Some(DeliveryFailure::Gone));
                break;
            }
            let first = *first_failure.get_or_insert(now);
            match delivery.status() {
                DeliveryStatus::Pending => {
                    let next = delivery.next_attempt_at().unwrap();
                    let scheduled = first + schedule.offsets()[k];
                    let before = if k == 0 { TimeDelta::zero() } else { schedule.offsets()[k - 1] };
                    let step = schedule.offsets()[k] - before;
                    prop_assert!(next >= scheduled, "never before the schedule");
                    prop_assert!(next >= now + step, "never sooner than the schedule's step after the last");
                    prop_assert!(
                        next <= scheduled.max(now + MAX_RETRY_AFTER.max(step)),
                        "Retry-After is capped"
                    );
                    if let Some(previous) = previous_at {
                        prop_assert!(next > previous, "retries move forward");
                    }
                    previous_at = Some(next);
                }
                DeliveryStatus::Failed => {
                    prop_assert_eq!(k + 1, schedule.offsets().len() + 1, "8 attempts, then failed");
                    prop_assert_eq!(delivery.failure(), Some(DeliveryFailure::Exhausted));
                }
                DeliveryStatus::Succeeded => prop_assert!(false, "succeeded without a 2xx"),
            }
        }
        prop_assert!(delivery.attempts().len() <= schedule.offsets().len() + 1);
    }

    /// A redelivery by hand starts a new round with the whole schedule, whatever the delivery
    /// was; an attempt whose worker died is logged as interrupted by the next claim.
    #[test]
    fn a_redelivery_starts_a_round_and_interrupted_attempts_are_logged(
        answers in proptest::collection::vec(answer(), 1..9),
        die in any::<bool>(),
    ) {
        let schedule = RetrySchedule::default();
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut delivery = delivery(start);
        for answer in &answers {
            let Some(due) = delivery.next_attempt_at().filter(|_| delivery.status() == DeliveryStatus::Pending) else {
                break;
            };
            let number = delivery.claim(due, TimeDelta::minutes(1)).unwrap();
            delivery.complete(number, answer.clone(), due, &schedule).unwrap();
        }
        let before = delivery.attempts().len();
        let now = start + TimeDelta::days(2);
        delivery.redeliver(now).unwrap();
        prop_assert_eq!(delivery.status(), DeliveryStatus::Pending);
        prop_assert_eq!(delivery.failure(), None);
        prop_assert_eq!(delivery.next_attempt_at(), Some(now));
        let number = delivery.claim(now, TimeDelta::minutes(1)).unwrap();
        prop_assert_eq!(number as usize, before + 1);
        if die {
            // The worker dies; after the lease another claims it.
            let later = now + TimeDelta::minutes(1);
            let again = delivery.claim(later, TimeDelta::minutes(1)).unwrap();
            prop_assert_eq!(again, number + 1);
            prop_assert_eq!(
                delivery.attempts()[before].outcome.clone(),
                Some(AttemptOutcome::Interrupted)
            );
            prop_assert!(delivery.complete(number, answers[0].clone(), later, &schedule).is_err(),
                "the dead worker's attempt is not in flight any more");
        }
    }

    /// A rotated-out secret keeps verifying deliveries signed during its grace window and
    /// stops at its end; the new secret verifies throughout.
    #[test]
    fn a_rotated_out_secret_fails_after_its_grace_window(
        grace_minutes in 1i64..(72 * 60),
        sent_after_minutes in 0i64..(96 * 60),
        old_key in proptest::collection::vec(any::<u8>(), 24..=64),
        new_key in proptest::collection::vec(any::<u8>(), 24..=64),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let rotated_at = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let old = WebhookSecret::from_bytes(&old_key).unwrap();
        let new = WebhookSecret::from_bytes(&new_key).unwrap();
        let mut endpoint = WebhookEndpoint::new(
            EndpointId::from_uuid(uuid_of(9)),
            NewEndpoint {
                url: "https://hooks.example.com/commet".into(),
                events: EventFilter::All,
                description: None,
                enabled: true,
            },
            old.clone(),
            0,
            UrlPolicy { mode: Mode::Live, allow_http: false, allow_private_addresses: false },
            rotated_at,
        )
        .unwrap();
        let grace = TimeDelta::minutes(grace_minutes);
        endpoint.rotate_secret(new.clone(), grace, rotated_at).unwrap();
        let sent = rotated_at + TimeDelta::minutes(sent_after_minutes);
        let headers = sign_delivery(
            "evt_1", "customer.created", rotated_at, &body, sent, &endpoint.signing_secrets(sent),
        )
        .unwrap();
        prop_assert!(verify_standard(&headers, &body, &[&new], sent).is_ok());
        let old_verifies = verify_standard(&headers, &body, &[&old], sent).is_ok();
        let within_grace = sent < rotated_at + grace;
        // Equal keys are one secret: it always verifies.
        prop_assert_eq!(old_verifies, within_grace || old_key == new_key);
    }

    /// A redelivery asked for while an attempt is in flight is not lost: if that attempt
    /// fails, the new round (with the whole schedule) starts at once.
    #[test]
    fn a_redelivery_during_an_attempt_starts_its_round_after_it(
        failures in 0usize..8,
        last in answer(),
    ) {
        let schedule = RetrySchedule::default();
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let mut delivery = delivery(start);
        let failed = AttemptResult {
            outcome: AttemptOutcome::Response { status: 500, body: String::new() },
            retry_after: None,
            latency: Duration::from_millis(1),
        };
        for _ in 0..failures {
            let Some(due) = delivery.next_attempt_at().filter(|_| delivery.status() == DeliveryStatus::Pending) else {
                break;
            };
            let number = delivery.claim(due, TimeDelta::minutes(1)).unwrap();
            delivery.complete(number, failed.clone(), due, &schedule).unwrap();
        }
        if delivery.status() != DeliveryStatus::Pending {
            delivery.redeliver(start + TimeDelta::days(1)).unwrap();
        }
        let due = delivery.next_attempt_at().unwrap();
        let in_flight = delivery.claim(due, TimeDelta::minutes(1)).unwrap();
        delivery.redeliver(due).unwrap();
        prop_assert_eq!(delivery.round_start(), in_flight + 1);
        let now = due + TimeDelta::seconds(5);
        delivery.complete(in_flight, last.clone(), now, &schedule).unwrap();
        if last.outcome.is_success() {
            prop_assert_eq!(delivery.status(), DeliveryStatus::Succeeded);
        } else if matches!(last.outcome, AttemptOutcome::Response { status: 410, .. }) {
            prop_assert_eq!(delivery.failure(), Some(DeliveryFailure::Gone));
        } else {
            prop_assert_eq!(delivery.status(), DeliveryStatus::Pending);
            prop_assert_eq!(delivery.next_attempt_at(), Some(now), "the new round starts at once");
            let number = delivery.claim(now, TimeDelta::minutes(1)).unwrap();
            prop_assert_eq!(delivery.attempts().last().unwrap().trigger, commet_core::delivery::AttemptTrigger::Manual);
            // The whole schedule is available again: 7 more failures keep it pending.
            let mut number = number;
            let mut at = now;
            for _ in 0..7 {
                delivery.complete(number, failed.clone(), at, &schedule).unwrap();
                prop_assert_eq!(delivery.status(), DeliveryStatus::Pending);
                at = delivery.next_attempt_at().unwrap();
                number = delivery.claim(at, TimeDelta::minutes(1)).unwrap();
            }
            delivery.complete(number, failed.clone(), at, &schedule).unwrap();
            prop_assert_eq!(delivery.failure(), Some(DeliveryFailure::Exhausted));
        }
        prop_assert!(Delivery::from_record(delivery.to_record()).is_ok(), "a legal state is a legal record");
    }
}
