//! Laws of dunning (DESIGN.md sections 8 and 12): the retry schedule is strictly increasing and
//! ends exactly at its last configured attempt, whatever declines and new payment methods
//! happen along the way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // strategies build values known valid

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::dunning::{
    DeclineClass, DunningPolicy, DunningStep, Exhaustion, FailureHistory, HARD_DECLINE_CODES,
    InvoiceOnExhaustion, SubscriptionOnExhaustion, classify,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Instants between 1970 and 2200, to the microsecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..7_258_118_400, 0u32..1_000_000).prop_map(|(secs, micros)| {
        DateTime::from_timestamp(secs, micros * 1_000).expect("in range")
    })
}

fn exhaustion() -> impl Strategy<Value = Exhaustion> {
    (any::<bool>(), any::<bool>()).prop_map(|(cancel, uncollectible)| Exhaustion {
        subscription: if cancel {
            SubscriptionOnExhaustion::Cancel
        } else {
            SubscriptionOnExhaustion::KeepPastDue
        },
        invoice: if uncollectible {
            InvoiceOnExhaustion::MarkUncollectible
        } else {
            InvoiceOnExhaustion::LeaveOutstanding
        },
    })
}

/// Valid policies by construction: 0 to 12 positive gaps that add up to at most 90 days.
fn policy() -> impl Strategy<Value = DunningPolicy> {
    (
        prop::collection::vec(1i64..=7 * 86_400, 0..12),
        exhaustion(),
    )
        .prop_map(|(gaps, exhaustion)| {
            let mut total = 0;
            let offsets = gaps
                .into_iter()
                .map(|gap| {
                    total += gap;
                    TimeDelta::seconds(total)
                })
                .collect();
            DunningPolicy::new(offsets, exhaustion).unwrap()
        })
}

fn class() -> impl Strategy<Value = DeclineClass> {
    prop_oneof![Just(DeclineClass::Soft), Just(DeclineClass::Hard)]
}

/// Something that happens during dunning: a decline of the scheduled retry, or a new payment
/// method some seconds after the last event, followed by a decline of its own class.
#[derive(Debug, Clone, Copy)]
enum Event {
    Declined(DeclineClass),
    NewMethod {
        after_seconds: i64,
        then: DeclineClass,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        class().prop_map(Event::Declined),
        (0i64..3 * 86_400, class()).prop_map(|(after_seconds, then)| Event::NewMethod {
            after_seconds,
            then
        }),
    ]
}

/// Failures are saved under `proptest-regressions/` (committed) and re-run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/dunning_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn soft_declines_follow_the_schedule_strictly_increasing_to_its_last_offset(
        policy in policy(), first in instant(),
    ) {
        let mut history = FailureHistory {
            first_failed_at: first,
            failed_attempts: 1,
            last_decline: DeclineClass::Soft,
        };
        let mut now = first;
        let mut retries = Vec::new();
        loop {
            match policy.next_step(&history, now) {
                DunningStep::RetryAt { at, attempt, last } => {
                    prop_assert!(at > now, "retries move forward");
                    prop_assert_eq!(attempt, history.failed_attempts + 1);
                    retries.push(at);
                    prop_assert_eq!(last, retries.len() == policy.retry_offsets().len());
                    now = at;
                    history.failed_attempts += 1;
                }
                DunningStep::Exhausted(action) => {
                    prop_assert_eq!(action, policy.on_exhaustion());
                    break;
                }
                step @ DunningStep::WaitForPaymentMethod { .. } => {
                    prop_assert!(false, "a soft decline waited: {:?}", step);
                }
            }
        }
        prop_assert!(retries.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(&retries, &policy.retry_times(first));
        // It ends exactly at the last configured attempt.
        prop_assert_eq!(now, policy.exhausts_at(first));
        let last_offset = policy.retry_offsets().last().copied().unwrap_or_default();
        prop_assert_eq!(now, first + last_offset);
    }

    #[test]
    fn declines_and_new_methods_never_move_exhaustion(
        policy in policy(),
        first in instant(),
        first_class in class(),
        events in prop::collection::vec(event(), 0..20),
    ) {
        let deadline = policy.exhausts_at(first);
        let mut history = FailureHistory {
            first_failed_at: first,
            failed_attempts: 1,
            last_decline: first_class,
        };
        let mut now = first;
        let mut step = policy.next_step(&history, now);
        for event in events {
            // Check the step just taken.
            match step {
                DunningStep::RetryAt { at, last, .. } => {
                    prop_assert!(at >= now && at <= deadline.max(now));
                    prop_assert_eq!(last, !policy.retry_times(first).iter().any(|&t| t > at));
                }
                DunningStep::WaitForPaymentMethod { exhausts_at } => {
                    prop_assert_eq!(history.last_decline, DeclineClass::Hard);
                    prop_assert_eq!(exhausts_at, deadline);
                    prop_assert!(now < deadline);
                }
                DunningStep::Exhausted(action) => {
                    prop_assert!(now >= deadline);
                    prop_assert_eq!(action, policy.on_exhaustion());
                    break;
                }
            }
            // Then let something happen.
            match (step, event) {
                (DunningStep::RetryAt { at, .. }, Event::Declined(class)) => {
                    now = at;
                    history.failed_attempts += 1;
                    history.last_decline = class;
                    step = policy.next_step(&history, now);
                }
                (DunningStep::WaitForPaymentMethod { exhausts_at }, Event::Declined(_)) => {
                    // Nobody changed the method: the deadline passes.
                    now = exhausts_at;
                    step = policy.next_step(&history, now);
                    prop_assert_eq!(step, DunningStep::Exhausted(policy.on_exhaustion()));
                }
                (_, Event::NewMethod { after_seconds, then }) => {
                    let at = now + TimeDelta::seconds(after_seconds);
                    if at >= deadline {
                        continue;
                    }
                    now = at;
                    let retry = policy.on_new_payment_method(&history, now);
                    prop_assert!(
                        matches!(retry, DunningStep::RetryAt { at, .. } if at == now),
                        "a new method retries at once"
                    );
                    history.failed_attempts += 1;
                    history.last_decline = then;
                    step = policy.next_step(&history, now);
                }
                (DunningStep::Exhausted(_), Event::Declined(_)) => break,
            }
        }
    }

    #[test]
    fn policies_round_trip_through_json(policy in policy()) {
        let json = serde_json::to_string(&policy).unwrap();
        prop_assert_eq!(serde_json::from_str::<DunningPolicy>(&json).unwrap(), policy);
    }

    #[test]
    fn codes_outside_the_hard_list_are_soft(code in "[a-z_]{0,30}") {
        let expected = if HARD_DECLINE_CODES.contains(&code.as_str()) {
            DeclineClass::Hard
        } else {
            DeclineClass::Soft
        };
        prop_assert_eq!(classify(&code), expected);
        prop_assert_eq!(classify(&code.to_uppercase()), expected);
    }
}
