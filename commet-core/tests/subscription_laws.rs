//! Laws of the subscription state machine (DESIGN.md section 12), over thousands of random
//! command sequences at random times from every starting status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::catalog::Price;
use commet_core::dunning::{
    DunningStep, Exhaustion, InvoiceOnExhaustion, SubscriptionOnExhaustion,
};
use commet_core::event::{Event, EventKind};
use commet_core::fixtures::{Fixtures, assert_events_round_trip};
use commet_core::subscription::{
    AdminUpdate, ChargeOutcome, CheckoutCompletion, Command, OpenInvoicePolicy,
    ScheduledCancellation, Settlement, Subscription, SubscriptionError, SubscriptionState,
    SubscriptionStatus, Trigger, transition,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Failures are saved under `proptest-regressions/` (committed) and re-run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/subscription_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Paid,
    SoftDecline,
    HardDecline,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Submit,
    CheckoutPaid,
    CheckoutTrial(u8),
    ExpireCheckout,
    Reminder,
    EndTrial(Outcome),
    ConvertTrial(usize),
    Renew(Outcome),
    RetryFailed(bool),
    Recover,
    Exhaust(bool, bool),
    ScheduleCancel,
    RevokeCancel,
    ApplyCancel,
    CancelNow,
    Pause,
    Resume,
    Reactivate,
    Upgrade(usize),
    Downgrade(usize),
    RevokePlanChange,
    ApplyPlanChange,
    Override(usize, Option<bool>),
}

#[derive(Debug, Clone, Copy)]
enum Wait {
    None,
    Seconds(u32),
    UntilDue,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Paid),
        Just(Outcome::SoftDecline),
        Just(Outcome::HardDecline)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Submit),
        Just(Op::CheckoutPaid),
        (1u8..30).prop_map(Op::CheckoutTrial),
        Just(Op::ExpireCheckout),
        Just(Op::Reminder),
        outcome().prop_map(Op::EndTrial),
        (0usize..6).prop_map(Op::ConvertTrial),
        outcome().prop_map(Op::Renew),
        any::<bool>().prop_map(Op::RetryFailed),
        Just(Op::Recover),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Exhaust(a, b)),
        Just(Op::ScheduleCancel),
        Just(Op::RevokeCancel),
        Just(Op::ApplyCancel),
        Just(Op::CancelNow),
        Just(Op::Pause),
        Just(Op::Resume),
        Just(Op::Reactivate),
        (0usize..6).prop_map(Op::Upgrade),
        (0usize..6).prop_map(Op::Downgrade),
        Just(Op::RevokePlanChange),
        Just(Op::ApplyPlanChange),
        (0usize..7, proptest::option::weighted(0.3, any::<bool>()))
            .prop_map(|(s, p)| Op::Override(s, p)),
    ]
}

fn wait() -> impl Strategy<Value = Wait> {
    prop_oneof![
        1 => Just(Wait::None),
        2 => (0u32..86_400).prop_map(Wait::Seconds),
        2 => (0u32..40 * 86_400).prop_map(Wait::Seconds),
        3 => Just(Wait::UntilDue),
    ]
}

fn start(c: &Fixtures, index: usize) -> Subscription {
    match index {
        0 => c.draft(),
        1 => c.pending(),
        2 => c.trialing(),
        3 => c.active(),
        4 => c.past_due(),
        5 => c.paused(),
        6 => c.canceled(),
        7 => c.free(),
        8 => c.apply(
            &c.active(),
            &Command::ScheduleCancellation { comment: None },
            c.active().updated_at() + TimeDelta::days(5),
        ),
        9 => c.apply(
            &c.trialing(),
            &Command::ScheduleCancellation { comment: None },
            c.trialing().updated_at() + TimeDelta::days(2),
        ),
        _ => c.apply(
            &c.active(),
            &Command::ScheduleDowngrade {
                change: c.change(&c.basic),
            },
            c.active().updated_at() + TimeDelta::days(5),
        ),
    }
}

fn price(c: &Fixtures, index: usize) -> &Price {
    [&c.basic, &c.pro, &c.pro_yearly, &c.seats, &c.free, &c.euro][index]
}

fn settlement_for(c: &Fixtures, price: &Price, now: DateTime<Utc>) -> Settlement {
    if price.is_free() {
        Settlement::Free
    } else {
        Settlement::Invoice(c.invoice(now, 5_000, "paid"))
    }
}

fn charge(
    c: &Fixtures,
    subscription: &Subscription,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> ChargeOutcome {
    match outcome {
        Outcome::Paid => ChargeOutcome::Paid {
            settlement: c.settlement(subscription, now),
        },
        Outcome::SoftDecline => ChargeOutcome::Failed(c.failed(now, "card_declined")),
        Outcome::HardDecline => {
            let mut failed = c.failed(now, "stolen_card");
            failed.next = DunningStep::WaitForPaymentMethod {
                exhausts_at: now + TimeDelta::days(7),
            };
            ChargeOutcome::Failed(failed)
        }
    }
}

fn command(c: &Fixtures, subscription: &Subscription, op: Op, now: DateTime<Utc>) -> Command {
    match op {
        Op::Submit => Command::Submit {
            checkout: Fixtures::checkout(now, true),
        },
        Op::CheckoutPaid => Command::CompleteCheckout(CheckoutCompletion::Paid {
            invoice: c.invoice(now, 5_000, "paid"),
        }),
        Op::CheckoutTrial(days) => Command::CompleteCheckout(CheckoutCompletion::Trial {
            ends_at: now + TimeDelta::days(days.into()),
        }),
        Op::ExpireCheckout => Command::ExpireCheckout {
            open_invoices: vec![],
        },
        Op::Reminder => Command::SendTrialReminder,
        Op::EndTrial(outcome) => Command::EndTrial(charge(c, subscription, outcome, now)),
        Op::ConvertTrial(index) => Command::ConvertTrial {
            change: c.change(price(c, index)),
            settlement: settlement_for(c, price(c, index), now),
        },
        Op::Renew(outcome) => Command::Renew(charge(c, subscription, outcome, now)),
        Op::RetryFailed(hard) => {
            let mut failed = c.failed(now, if hard { "lost_card" } else { "card_declined" });
            if hard {
                failed.next = DunningStep::WaitForPaymentMethod {
                    exhausts_at: now + TimeDelta::days(3),
                };
            }
            Command::RetryFailed(failed)
        }
        Op::Recover => Command::Recover {
            invoice: c.invoice(now, 5_000, "paid"),
        },
        Op::Exhaust(cancel, uncollectible) => Command::ExhaustDunning {
            policy: Exhaustion {
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
            },
        },
        Op::ScheduleCancel => Command::ScheduleCancellation {
            comment: Some("leaving".into()),
        },
        Op::RevokeCancel => Command::RevokeCancellation,
        Op::ApplyCancel => Command::ApplyScheduledCancellation,
        Op::CancelNow => Command::CancelNow {
            comment: None,
            open_invoices: vec![],
        },
        Op::Pause => Command::Pause,
        Op::Resume => Command::Resume {
            settlement: c.settlement(subscription, now),
        },
        Op::Reactivate => Command::Reactivate {
            settlement: c.settlement(subscription, now),
        },
        Op::Upgrade(index) => Command::Upgrade {
            change: c.change(price(c, index)),
            settlement: settlement_for(c, price(c, index), now),
        },
        Op::Downgrade(index) => Command::ScheduleDowngrade {
            change: c.change(price(c, index)),
        },
        Op::RevokePlanChange => Command::RevokePlanChange,
        Op::ApplyPlanChange => Command::ApplyScheduledPlanChange,
        Op::Override(status, policy) => Command::Override(AdminUpdate {
            status: SubscriptionStatus::ALL[status],
            reason: "support".into(),
            actor: "ana".into(),
            invoice_policy: policy.map(|void| {
                if void {
                    OpenInvoicePolicy::Void
                } else {
                    OpenInvoicePolicy::MarkPaidOutOfBand
                }
            }),
        }),
    }
}

/// Does the command carry an invoice (so that the row's invoice events are emitted)?
fn carries_invoice(command: &Command) -> bool {
    let settled = |s: &Settlement| matches!(s, Settlement::Invoice(_));
    match command {
        Command::CompleteCheckout(CheckoutCompletion::Paid { .. })
        | Command::Recover { .. }
        | Command::EndTrial(ChargeOutcome::Failed(_))
        | Command::Renew(ChargeOutcome::Failed(_)) => true,
        Command::EndTrial(ChargeOutcome::Paid { settlement })
        | Command::Renew(ChargeOutcome::Paid { settlement })
        | Command::ConvertTrial { settlement, .. }
        | Command::Resume { settlement }
        | Command::Reactivate { settlement }
        | Command::Upgrade { settlement, .. } => settled(settlement),
        _ => false,
    }
}

fn scheduled_cancellation(subscription: &Subscription) -> Option<&ScheduledCancellation> {
    match subscription.state() {
        SubscriptionState::Active(active) => active.cancellation.as_ref(),
        SubscriptionState::Trialing(trialing) => trialing.cancellation.as_ref(),
        _ => None,
    }
}

/// Check every law for one step; returns the subscription after it.
fn step(
    c: &Fixtures,
    before: &Subscription,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Subscription, TestCaseError> {
    let table = transition(Some(before.status()), command.trigger());
    let result = before.decide(command, &c.context(now));
    let decision = match (result, table) {
        // An illegal command is refused as such, and (decide borrows) changes nothing.
        (Err(SubscriptionError::IllegalTransition(illegal)), Err(expected)) => {
            prop_assert_eq!(illegal, expected);
            return Ok(before.clone());
        }
        (Err(error), Err(expected)) => {
            return Err(TestCaseError::fail(format!(
                "{expected} was refused with {error} instead"
            )));
        }
        (Err(SubscriptionError::IllegalTransition(illegal)), Ok(_)) => {
            return Err(TestCaseError::fail(format!("the table allows {illegal}")));
        }
        (Err(SubscriptionError::Internal { reason }), Ok(_)) => {
            return Err(TestCaseError::fail(reason));
        }
        // A precondition (not due, something pending ...) refused a legal trigger.
        (Err(_), Ok(_)) => return Ok(before.clone()),
        (Ok(_), Err(illegal)) => {
            return Err(TestCaseError::fail(format!("{illegal} was accepted")));
        }
        (Ok(decision), Ok(row)) => {
            // Every status change is one the table allows, with exactly its events.
            prop_assert_eq!(decision.subscription.status(), row.to);
            let expected: Vec<EventKind> = row
                .events
                .iter()
                .copied()
                .filter(|kind| {
                    carries_invoice(command)
                        || !matches!(kind, EventKind::InvoiceCreated | EventKind::PaymentReceived)
                })
                .collect();
            let emitted: Vec<EventKind> = decision.events.iter().map(Event::kind).collect();
            prop_assert_eq!(emitted, expected);
            decision
        }
    };
    let after = &decision.subscription;
    prop_assert_eq!(after.updated_at(), now);
    prop_assert_eq!(after.version(), before.version());
    prop_assert_eq!(after.id(), before.id());
    // Every event round-trips through its JSON envelope; every state through its record.
    assert_events_round_trip(&decision, &c.ids, now);
    prop_assert_eq!(&Subscription::from_record(after.to_record())?, after);
    // `canceled` is left only by reactivation or the override.
    if before.status() == SubscriptionStatus::Canceled
        && after.status() != SubscriptionStatus::Canceled
    {
        prop_assert!(matches!(
            decision.trigger,
            Trigger::Reactivate | Trigger::Override(SubscriptionStatus::Active)
        ));
    }
    // A scheduled cancellation ends only by revocation in time, by taking effect at exactly its
    // instant, or by an explicit cancel-now or override.
    if let Some(scheduled) = scheduled_cancellation(before) {
        if scheduled_cancellation(after).is_none() {
            match decision.trigger {
                Trigger::RevokeCancellation => prop_assert!(now < scheduled.effective_at),
                Trigger::ScheduledCancellationTakesEffect => {
                    let SubscriptionState::Canceled(canceled) = after.state() else {
                        return Err(TestCaseError::fail("not canceled"));
                    };
                    prop_assert_eq!(canceled.canceled_at, scheduled.effective_at);
                }
                Trigger::CancelNow | Trigger::Override(_) => {}
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{other} dropped a scheduled cancellation"
                    )));
                }
            }
        } else {
            prop_assert_eq!(scheduled_cancellation(after), Some(scheduled));
        }
    }
    // A renewal's period starts where the previous one ended.
    if matches!(
        decision.trigger,
        Trigger::RenewalPaid | Trigger::RenewalFailed
    ) {
        prop_assert_eq!(
            after.current_period().map(|p| p.start()),
            before.current_period().map(|p| p.end())
        );
    }
    // An active subscription always has a period.
    if after.status() == SubscriptionStatus::Active {
        prop_assert!(after.current_period().is_some());
    }
    Ok(decision.subscription)
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn random_command_sequences_obey_the_table_and_the_lifecycle_laws(
        start_index in 0usize..11,
        steps in prop::collection::vec((wait(), op()), 1..40),
    ) {
        let c = Fixtures::new();
        let mut subscription = start(&c, start_index);
        let mut now = subscription.updated_at();
        for (wait, op) in steps {
            now = match wait {
                Wait::None => now,
                Wait::Seconds(seconds) => now + TimeDelta::seconds(seconds.into()),
                Wait::UntilDue => subscription.next_due_at().map_or(now, |due| due.max(now)),
            };
            let command = command(&c, &subscription, op, now);
            subscription = step(&c, &subscription, &command, now)?;
        }
        // Unless revoked, a scheduled cancellation ends in `canceled` at exactly its instant.
        if let Some(scheduled) = scheduled_cancellation(&subscription) {
            let at = scheduled.effective_at.max(now);
            let canceled = subscription
                .decide(&Command::ApplyScheduledCancellation, &c.context(at))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let SubscriptionState::Canceled(state) = canceled.subscription.state() else {
                return Err(TestCaseError::fail("not canceled"));
            };
            prop_assert_eq!(state.canceled_at, scheduled.effective_at);
        }
    }
}

/// The generator must reach every row of the table, or the laws above prove little: sample
/// sequences deterministically and check that every non-creation trigger was accepted.
#[test]
fn the_random_sequences_reach_every_row_of_the_table() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::HashSet;

    let mut runner = TestRunner::deterministic();
    let strategy = (0usize..11, prop::collection::vec((wait(), op()), 1..40));
    let mut reached = HashSet::new();
    for _ in 0..3_000 {
        let (start_index, steps) = strategy.new_tree(&mut runner).unwrap().current();
        let c = Fixtures::new();
        let mut subscription = start(&c, start_index);
        let mut now = subscription.updated_at();
        for (wait, op) in steps {
            now = match wait {
                Wait::None => now,
                Wait::Seconds(seconds) => now + TimeDelta::seconds(seconds.into()),
                Wait::UntilDue => subscription.next_due_at().map_or(now, |due| due.max(now)),
            };
            let command = command(&c, &subscription, op, now);
            if let Ok(decision) = subscription.decide(&command, &c.context(now)) {
                reached.insert((subscription.status(), decision.trigger));
                subscription = decision.subscription;
            }
        }
    }
    let missing: Vec<String> = Trigger::all()
        .into_iter()
        .flat_map(|trigger| SubscriptionStatus::ALL.map(move |from| (from, trigger)))
        .filter(|&(from, trigger)| transition(Some(from), trigger).is_ok())
        .filter(|row| !reached.contains(row))
        .map(|(from, trigger)| format!("{from} --{trigger}-->"))
        .collect();
    assert!(missing.is_empty(), "rows never reached: {missing:?}");
}
