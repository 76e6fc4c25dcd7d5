//! Example tests: every row of the transition table, and every override pair.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::dunning::{
    DunningStep, Exhaustion, InvoiceOnExhaustion, SubscriptionOnExhaustion,
};
use commet_core::event::{Event, EventKind};
use commet_core::fixtures::{Fixtures, assert_events_round_trip, utc};
use commet_core::subscription::{
    AdminUpdate, CancelReason, ChargeOutcome, CheckoutCompletion, Command, OpenInvoicePolicy,
    Settlement, Subscription, SubscriptionError, SubscriptionState, SubscriptionStatus, Trigger,
    transition,
};

/// One example per row: a subscription, a command and the instant to run it.
type Case = (Subscription, Command, DateTime<Utc>);

fn cases(c: &Fixtures) -> Vec<(&'static str, Case)> {
    let failed = |at| ChargeOutcome::Failed(c.failed(at, "card_declined"));
    let paid = |at| ChargeOutcome::Paid {
        settlement: Settlement::Invoice(c.invoice(at, 5_000, "paid")),
    };
    let trialing = c.trialing();
    let trial_end = utc(2024, 2, 14);
    let scheduled_active = c.apply(
        &c.active(),
        &Command::ScheduleCancellation { comment: None },
        utc(2024, 2, 5),
    );
    let scheduled_trial = c.apply(
        &trialing,
        &Command::ScheduleCancellation { comment: None },
        utc(2024, 2, 5),
    );
    let downgrading = c.apply(
        &c.active(),
        &Command::ScheduleDowngrade {
            change: c.change(&c.basic),
        },
        utc(2024, 2, 5),
    );
    vec![
        (
            "submit",
            (
                c.draft(),
                Command::Submit {
                    checkout: Fixtures::checkout(utc(2024, 2, 1), false),
                },
                utc(2024, 2, 1),
            ),
        ),
        (
            "checkout paid",
            (
                c.pending(),
                Command::CompleteCheckout(CheckoutCompletion::Paid {
                    invoice: c.invoice(utc(2024, 2, 1), 5_000, "paid"),
                }),
                utc(2024, 2, 1),
            ),
        ),
        (
            "checkout trial",
            (
                c.create(&c.pro_trial, false, utc(2024, 1, 31)).subscription,
                Command::CompleteCheckout(CheckoutCompletion::Trial {
                    ends_at: utc(2024, 2, 14),
                }),
                utc(2024, 1, 31),
            ),
        ),
        (
            "checkout expired",
            (
                c.pending(),
                Command::ExpireCheckout {
                    open_invoices: vec![],
                },
                utc(2024, 2, 2),
            ),
        ),
        (
            "trial reminder",
            (
                trialing.clone(),
                Command::SendTrialReminder,
                utc(2024, 2, 11),
            ),
        ),
        (
            "trial end paid",
            (
                trialing.clone(),
                Command::EndTrial(paid(trial_end)),
                trial_end,
            ),
        ),
        (
            "trial end failed",
            (
                trialing.clone(),
                Command::EndTrial(failed(trial_end)),
                trial_end,
            ),
        ),
        (
            "trial converted",
            (
                trialing.clone(),
                Command::ConvertTrial {
                    change: c.change(&c.pro_yearly),
                    settlement: c.settlement(&trialing, utc(2024, 2, 3)),
                },
                utc(2024, 2, 3),
            ),
        ),
        (
            "renewal paid",
            (
                c.active(),
                Command::Renew(paid(utc(2024, 2, 29))),
                utc(2024, 2, 29),
            ),
        ),
        (
            "renewal failed",
            (
                c.active(),
                Command::Renew(failed(utc(2024, 2, 29))),
                utc(2024, 2, 29),
            ),
        ),
        (
            "retry failed",
            (
                c.past_due(),
                Command::RetryFailed(c.failed(utc(2024, 3, 1), "card_declined")),
                utc(2024, 3, 1),
            ),
        ),
        (
            "payment recovered",
            (
                c.past_due(),
                Command::Recover {
                    invoice: c.invoice(utc(2024, 3, 1), 5_000, "paid"),
                },
                utc(2024, 3, 1),
            ),
        ),
        (
            "dunning exhausted",
            (
                c.past_due(),
                Command::ExhaustDunning {
                    policy: Exhaustion {
                        subscription: SubscriptionOnExhaustion::Cancel,
                        invoice: InvoiceOnExhaustion::MarkUncollectible,
                    },
                },
                utc(2024, 3, 1),
            ),
        ),
        (
            "dunning exhausted, kept",
            (
                c.past_due(),
                Command::ExhaustDunning {
                    policy: Exhaustion {
                        subscription: SubscriptionOnExhaustion::KeepPastDue,
                        invoice: InvoiceOnExhaustion::LeaveOutstanding,
                    },
                },
                utc(2024, 3, 1),
            ),
        ),
        (
            "schedule cancellation (active)",
            (
                c.active(),
                Command::ScheduleCancellation {
                    comment: Some("moving on".into()),
                },
                utc(2024, 2, 5),
            ),
        ),
        (
            "schedule cancellation (trialing)",
            (
                trialing.clone(),
                Command::ScheduleCancellation { comment: None },
                utc(2024, 2, 5),
            ),
        ),
        (
            "revoke cancellation (active)",
            (
                scheduled_active.clone(),
                Command::RevokeCancellation,
                utc(2024, 2, 6),
            ),
        ),
        (
            "revoke cancellation (trialing)",
            (
                scheduled_trial.clone(),
                Command::RevokeCancellation,
                utc(2024, 2, 6),
            ),
        ),
        (
            "cancellation takes effect (active)",
            (
                scheduled_active,
                Command::ApplyScheduledCancellation,
                utc(2024, 3, 2),
            ),
        ),
        (
            "cancellation takes effect (trialing)",
            (
                scheduled_trial,
                Command::ApplyScheduledCancellation,
                trial_end,
            ),
        ),
        (
            "cancel now (draft)",
            (c.draft(), cancel_now(), utc(2024, 2, 1)),
        ),
        (
            "cancel now (pending)",
            (c.pending(), cancel_now(), utc(2024, 2, 1)),
        ),
        (
            "cancel now (trialing)",
            (trialing.clone(), cancel_now(), utc(2024, 2, 1)),
        ),
        (
            "cancel now (active)",
            (c.active(), cancel_now(), utc(2024, 2, 1)),
        ),
        (
            "cancel now (past due)",
            (c.past_due(), cancel_now(), utc(2024, 3, 1)),
        ),
        (
            "cancel now (paused)",
            (c.paused(), cancel_now(), utc(2024, 3, 1)),
        ),
        ("pause", (c.active(), Command::Pause, utc(2024, 2, 10))),
        (
            "resume",
            (
                c.paused(),
                Command::Resume {
                    settlement: Settlement::Invoice(c.invoice(utc(2024, 3, 1), 5_000, "paid")),
                },
                utc(2024, 3, 1),
            ),
        ),
        (
            "reactivate",
            (
                c.canceled(),
                Command::Reactivate {
                    settlement: Settlement::Invoice(c.invoice(utc(2024, 3, 1), 5_000, "paid")),
                },
                utc(2024, 3, 1),
            ),
        ),
        (
            "upgrade",
            (
                c.active(),
                Command::Upgrade {
                    change: c.change(&c.pro_yearly),
                    settlement: Settlement::Invoice(c.invoice(utc(2024, 2, 15), 47_500, "paid")),
                },
                utc(2024, 2, 15),
            ),
        ),
        (
            "schedule downgrade",
            (
                c.active(),
                Command::ScheduleDowngrade {
                    change: c.change(&c.basic),
                },
                utc(2024, 2, 5),
            ),
        ),
        (
            "revoke plan change",
            (
                downgrading.clone(),
                Command::RevokePlanChange,
                utc(2024, 2, 6),
            ),
        ),
        (
            "plan change takes effect",
            (
                downgrading,
                Command::ApplyScheduledPlanChange,
                utc(2024, 2, 29),
            ),
        ),
    ]
}

fn cancel_now() -> Command {
    Command::CancelNow {
        comment: None,
        open_invoices: vec![],
    }
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(Event::kind).collect()
}

#[test]
fn every_row_of_the_table_has_an_example_and_behaves_as_the_table_says() {
    let c = Fixtures::new();
    let mut covered = BTreeSet::new();
    for (name, (subscription, command, now)) in cases(&c) {
        let from = subscription.status();
        let decision = subscription
            .decide(&command, &c.context(now))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let row = transition(Some(from), command.trigger()).unwrap();
        assert_eq!(decision.trigger, command.trigger(), "{name}");
        assert_eq!(decision.subscription.status(), row.to, "{name}");
        assert_eq!(kinds(&decision.events), row.events, "{name}");
        assert_eq!(
            decision.subscription.version(),
            subscription.version(),
            "{name}"
        );
        // Every state a decision builds is one a store can read back.
        let record = decision.subscription.to_record();
        assert_eq!(
            Subscription::from_record(record).unwrap(),
            decision.subscription,
            "{name}"
        );
        assert_events_round_trip(&decision, &c.ids, now);
        covered.insert((Some(from), command.trigger().name().into_owned()));
    }
    let allowed: BTreeSet<_> = Trigger::all()
        .into_iter()
        .filter(|trigger| !matches!(trigger, Trigger::Override(_)))
        .flat_map(|trigger| {
            SubscriptionStatus::ALL
                .into_iter()
                .filter(move |&from| transition(Some(from), trigger).is_ok())
                .map(move |from| (Some(from), trigger.name().into_owned()))
        })
        .collect();
    let missing: Vec<_> = allowed.difference(&covered).collect();
    assert!(missing.is_empty(), "rows without an example: {missing:?}");
}

#[test]
fn creation_rows_pick_the_status_from_the_price() {
    let c = Fixtures::new();
    let now = utc(2024, 1, 31);
    let paid = c.create(&c.pro, false, now);
    assert_eq!(paid.trigger, Trigger::CreatePaid);
    assert_eq!(
        kinds(&paid.events),
        [EventKind::SubscriptionCreated, EventKind::CheckoutReady]
    );
    let Event::CheckoutReady(ready) = &paid.events[1] else {
        panic!()
    };
    assert_eq!(
        ready.checkout_url.as_str(),
        "https://billing.example.com/checkout/sub?token=t"
    );
    assert_eq!(ready.invoice_total, 5_000);

    let draft = c.create(&c.pro, true, now);
    assert_eq!(draft.subscription.status(), SubscriptionStatus::Draft);
    assert_eq!(kinds(&draft.events), [EventKind::SubscriptionCreated]);

    // A free plan is active at once, with a period anchored now and no invoice.
    let free = c.create(&c.free, false, now);
    assert_eq!(free.subscription.status(), SubscriptionStatus::Active);
    assert_eq!(
        kinds(&free.events),
        [
            EventKind::SubscriptionCreated,
            EventKind::SubscriptionActivated
        ]
    );
    let period = free.subscription.current_period().unwrap();
    assert_eq!((period.start(), period.end()), (now, utc(2024, 2, 29)));
    let Event::SubscriptionActivated(activated) = &free.events[1] else {
        panic!()
    };
    assert_eq!(activated.invoice_id, None);
    for decision in [paid, draft, free] {
        assert_events_round_trip(&decision, &c.ids, now);
    }
}

#[test]
fn a_renewal_starts_where_the_previous_period_ended_even_when_run_late() {
    let c = Fixtures::new();
    let active = c.active();
    let late = utc(2024, 3, 3);
    let renewed = c.apply(
        &active,
        &Command::Renew(ChargeOutcome::Paid {
            settlement: c.settlement(&active, late),
        }),
        late,
    );
    let period = renewed.current_period().unwrap();
    // Anchor Jan 31: Feb 29 -> Mar 31, whenever the job ran.
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 2, 29), utc(2024, 3, 31))
    );
}

#[test]
fn renewing_before_the_period_end_is_not_due() {
    let c = Fixtures::new();
    let active = c.active();
    let early = utc(2024, 2, 28);
    let result = active.decide(
        &Command::Renew(ChargeOutcome::Paid {
            settlement: c.settlement(&active, early),
        }),
        &c.context(early),
    );
    assert_eq!(
        result.unwrap_err(),
        SubscriptionError::NotDue {
            due_at: utc(2024, 2, 29)
        }
    );
}

#[test]
fn a_scheduled_cancellation_takes_effect_at_exactly_the_period_end() {
    let c = Fixtures::new();
    let scheduled = c.apply(
        &c.active(),
        &Command::ScheduleCancellation {
            comment: Some("switching".into()),
        },
        utc(2024, 2, 5),
    );
    // Renewal is refused while it is pending; the work that runs late still cancels at Feb 29.
    let renew = scheduled.decide(
        &Command::Renew(ChargeOutcome::Paid {
            settlement: Settlement::Free,
        }),
        &c.context(utc(2024, 3, 2)),
    );
    assert!(matches!(
        renew,
        Err(SubscriptionError::CancellationPending { .. })
    ));
    let canceled = c.apply(
        &scheduled,
        &Command::ApplyScheduledCancellation,
        utc(2024, 3, 2),
    );
    let SubscriptionState::Canceled(state) = canceled.state() else {
        panic!()
    };
    assert_eq!(state.canceled_at, utc(2024, 2, 29));
    assert_eq!(state.reason, CancelReason::Requested);
    assert_eq!(state.comment.as_deref(), Some("switching"));
}

#[test]
fn revoking_after_the_cancellation_took_effect_is_too_late() {
    let c = Fixtures::new();
    let scheduled = c.apply(
        &c.active(),
        &Command::ScheduleCancellation { comment: None },
        utc(2024, 2, 5),
    );
    let result = scheduled.decide(&Command::RevokeCancellation, &c.context(utc(2024, 2, 29)));
    assert_eq!(
        result.unwrap_err(),
        SubscriptionError::TooLate {
            effective_at: utc(2024, 2, 29)
        }
    );
    let nothing = c
        .active()
        .decide(&Command::RevokeCancellation, &c.context(utc(2024, 2, 5)));
    assert!(matches!(nothing, Err(SubscriptionError::NothingTo { .. })));
}

#[test]
fn a_failed_renewal_starts_dunning_and_reports_the_retry_date() {
    let c = Fixtures::new();
    let at = utc(2024, 2, 29);
    let decision = c
        .active()
        .decide(
            &Command::Renew(ChargeOutcome::Failed(c.failed(at, "insufficient_funds"))),
            &c.context(at),
        )
        .unwrap();
    let SubscriptionState::PastDue(past_due) = decision.subscription.state() else {
        panic!()
    };
    assert_eq!(past_due.dunning.failed_attempts, 1);
    assert_eq!(past_due.dunning.first_failed_at, at);
    assert_eq!(past_due.period.start(), at);
    let payment_failed = decision
        .events
        .iter()
        .find_map(|e| match e {
            Event::SubscriptionPaymentFailed(data) => Some(data),
            _ => None,
        })
        .unwrap();
    assert_eq!(payment_failed.error_code, "insufficient_funds");
    assert_eq!(payment_failed.retry_at, Some(at + TimeDelta::days(1)));
    let payment_failed = decision
        .events
        .iter()
        .find(|e| e.kind() == EventKind::PaymentFailed)
        .unwrap();
    let json = serde_json::to_value(payment_failed).unwrap();
    assert_eq!(
        json["data"]["recoveryUrl"],
        "https://billing.example.com/recover/sub?token=r"
    );
    assert_eq!(json["data"]["attempt"], 1);
}

#[test]
fn recovery_keeps_the_anchor_and_the_period() {
    let c = Fixtures::new();
    let past_due = c.past_due();
    let recovered = c.apply(
        &past_due,
        &Command::Recover {
            invoice: c.invoice(utc(2024, 3, 3), 5_000, "paid"),
        },
        utc(2024, 3, 3),
    );
    assert_eq!(recovered.cycle(), past_due.cycle());
    assert_eq!(recovered.current_period(), past_due.current_period());
}

#[test]
fn exhaustion_cancels_with_its_reason_and_marks_the_invoice_uncollectible() {
    let c = Fixtures::new();
    let past_due = c.past_due();
    let SubscriptionState::PastDue(state) = past_due.state() else {
        panic!()
    };
    let invoice = state.dunning.invoice;
    let decision = past_due
        .decide(
            &Command::ExhaustDunning {
                policy: Exhaustion {
                    subscription: SubscriptionOnExhaustion::Cancel,
                    invoice: InvoiceOnExhaustion::MarkUncollectible,
                },
            },
            &c.context(utc(2024, 3, 7)),
        )
        .unwrap();
    let SubscriptionState::Canceled(canceled) = decision.subscription.state() else {
        panic!()
    };
    assert_eq!(canceled.reason, CancelReason::DunningExhausted);
    assert_eq!(
        decision.invoice_actions,
        [commet_core::subscription::InvoiceAction::MarkUncollectible(
            invoice
        )]
    );
    let Event::SubscriptionCanceled(data) = &decision.events[1] else {
        panic!()
    };
    assert_eq!(data.cancel_reason.as_deref(), Some("dunning_exhausted"));
}

#[test]
fn a_hard_decline_awaits_a_new_payment_method_until_its_deadline() {
    let c = Fixtures::new();
    let at = utc(2024, 2, 29);
    let mut failed = c.failed(at, "stolen_card");
    failed.next = DunningStep::WaitForPaymentMethod {
        exhausts_at: at + TimeDelta::days(7),
    };
    let past_due = c.apply(
        &c.active(),
        &Command::Renew(ChargeOutcome::Failed(failed)),
        at,
    );
    assert_eq!(past_due.next_due_at(), Some(at + TimeDelta::days(7)));
    let early = past_due.decide(
        &Command::ExhaustDunning {
            policy: Exhaustion {
                subscription: SubscriptionOnExhaustion::Cancel,
                invoice: InvoiceOnExhaustion::MarkUncollectible,
            },
        },
        &c.context(at + TimeDelta::days(6)),
    );
    assert!(matches!(early, Err(SubscriptionError::NotDue { .. })));
}

#[test]
fn a_downgrade_takes_effect_at_the_period_end_and_the_renewal_bills_the_new_cycle() {
    let c = Fixtures::new();
    let downgrading = c.apply(
        &c.active(),
        &Command::ScheduleDowngrade {
            change: c.change(&c.basic),
        },
        utc(2024, 2, 5),
    );
    let renew = downgrading.decide(
        &Command::Renew(ChargeOutcome::Paid {
            settlement: Settlement::Free,
        }),
        &c.context(utc(2024, 2, 29)),
    );
    assert!(matches!(
        renew,
        Err(SubscriptionError::PlanChangePending { .. })
    ));
    let changed = c.apply(
        &downgrading,
        &Command::ApplyScheduledPlanChange,
        utc(2024, 2, 29),
    );
    assert_eq!(changed.items()[0].price, c.basic.id());
    let renewed = c.apply(
        &changed,
        &Command::Renew(ChargeOutcome::Paid {
            settlement: c.settlement(&changed, utc(2024, 2, 29)),
        }),
        utc(2024, 2, 29),
    );
    let period = renewed.current_period().unwrap();
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 2, 29), utc(2024, 3, 29))
    );
}

#[test]
fn an_upgrade_resets_the_period_to_now_and_refuses_another_currency() {
    let c = Fixtures::new();
    let now = utc(2024, 2, 15);
    let upgraded = c.apply(
        &c.active(),
        &Command::Upgrade {
            change: c.change(&c.pro_yearly),
            settlement: Settlement::Invoice(c.invoice(now, 47_500, "paid")),
        },
        now,
    );
    let period = upgraded.current_period().unwrap();
    assert_eq!((period.start(), period.end()), (now, utc(2025, 2, 15)));
    let euro = c.active().decide(
        &Command::Upgrade {
            change: c.change(&c.euro),
            settlement: Settlement::Free,
        },
        &c.context(now),
    );
    assert!(matches!(euro, Err(SubscriptionError::Invalid(f)) if f.field == "items"));
}

#[test]
fn the_trial_reminder_is_sent_once_three_days_before_the_end() {
    let c = Fixtures::new();
    let trialing = c.trialing();
    assert_eq!(trialing.next_due_at(), Some(utc(2024, 2, 11)));
    let early = trialing.decide(&Command::SendTrialReminder, &c.context(utc(2024, 2, 10)));
    assert_eq!(
        early.unwrap_err(),
        SubscriptionError::NotDue {
            due_at: utc(2024, 2, 11)
        }
    );
    let reminded = c.apply(&trialing, &Command::SendTrialReminder, utc(2024, 2, 11));
    assert_eq!(reminded.next_due_at(), Some(utc(2024, 2, 14)));
    let again = reminded.decide(&Command::SendTrialReminder, &c.context(utc(2024, 2, 12)));
    assert!(matches!(again, Err(SubscriptionError::NothingTo { .. })));
}

#[test]
fn the_trial_end_anchors_the_first_paid_period() {
    let c = Fixtures::new();
    let trial_end = utc(2024, 2, 14);
    let late = trial_end + TimeDelta::hours(5);
    let active = c.apply(
        &c.trialing(),
        &Command::EndTrial(ChargeOutcome::Paid {
            settlement: Settlement::Invoice(c.invoice(late, 5_000, "paid")),
        }),
        late,
    );
    let period = active.current_period().unwrap();
    assert_eq!(
        (period.start(), period.end()),
        (trial_end, utc(2024, 3, 14))
    );
}

fn in_status(c: &Fixtures, status: SubscriptionStatus) -> Subscription {
    match status {
        SubscriptionStatus::Draft => c.draft(),
        SubscriptionStatus::PendingPayment => c.pending(),
        SubscriptionStatus::Trialing => c.trialing(),
        SubscriptionStatus::Active => c.active(),
        SubscriptionStatus::PastDue => c.past_due(),
        SubscriptionStatus::Paused => c.paused(),
        SubscriptionStatus::Canceled => c.canceled(),
    }
}

#[test]
fn every_override_pair_is_allowed_or_refused_as_its_table_says() {
    let c = Fixtures::new();
    let now = utc(2024, 3, 2);
    for from in SubscriptionStatus::ALL {
        for to in SubscriptionStatus::ALL {
            let subscription = in_status(&c, from);
            let update = AdminUpdate {
                status: to,
                reason: "migration from the old billing system".into(),
                actor: "support:ana".into(),
                invoice_policy: (from == SubscriptionStatus::PastDue)
                    .then_some(OpenInvoicePolicy::Void),
            };
            let result = subscription.decide(&Command::Override(update), &c.context(now));
            let allowed = commet_core::subscription::override_allowed(from, to);
            match result {
                Ok(decision) => {
                    assert!(allowed, "{from} -> {to} should be refused");
                    assert_eq!(decision.subscription.status(), to);
                    let Event::SubscriptionUpdated(data) = &decision.events[0] else {
                        panic!()
                    };
                    assert_eq!(data.previous_status, Some(from));
                    assert_eq!(data.actor.as_deref(), Some("support:ana"));
                    assert_eq!(
                        data.reason.as_deref(),
                        Some("migration from the old billing system")
                    );
                    // An active subscription always has a period.
                    if to == SubscriptionStatus::Active {
                        assert!(decision.subscription.current_period().is_some());
                    }
                    if from == SubscriptionStatus::PastDue {
                        assert_eq!(decision.invoice_actions.len(), 1);
                    }
                    assert_events_round_trip(&decision, &c.ids, now);
                }
                Err(error) => {
                    assert!(!allowed, "{from} -> {to} should be allowed: {error}");
                    assert!(
                        matches!(error, SubscriptionError::IllegalTransition(_)),
                        "{error}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_override_needs_a_reason_an_actor_and_for_past_due_an_invoice_policy() {
    let c = Fixtures::new();
    let now = utc(2024, 3, 2);
    let update = |reason: &str, actor: &str, policy| {
        Command::Override(AdminUpdate {
            status: SubscriptionStatus::Active,
            reason: reason.into(),
            actor: actor.into(),
            invoice_policy: policy,
        })
    };
    let field = |result: Result<_, SubscriptionError>| match result {
        Err(SubscriptionError::Invalid(invalid)) => invalid.field,
        other => panic!("{other:?}"),
    };
    let pending = c.pending();
    assert_eq!(
        field(pending.decide(&update(" ", "ana", None), &c.context(now))),
        "reason"
    );
    assert_eq!(
        field(pending.decide(&update("refund", "", None), &c.context(now))),
        "actor"
    );
    assert_eq!(
        field(pending.decide(
            &update("refund", "ana", Some(OpenInvoicePolicy::Void)),
            &c.context(now)
        )),
        "invoice_policy"
    );
    let past_due = c.past_due();
    assert_eq!(
        field(past_due.decide(&update("forgive", "ana", None), &c.context(now))),
        "invoice_policy"
    );
    // Forgiving a past-due subscription keeps its period and marks the invoice paid out of band.
    let forgiven = past_due
        .decide(
            &update("forgive", "ana", Some(OpenInvoicePolicy::MarkPaidOutOfBand)),
            &c.context(now),
        )
        .unwrap();
    assert_eq!(
        forgiven.subscription.current_period(),
        past_due.current_period()
    );
    assert!(matches!(
        forgiven.invoice_actions[..],
        [commet_core::subscription::InvoiceAction::MarkPaidOutOfBand(
            _
        )]
    ));
}

#[test]
fn illegal_commands_name_the_status_and_the_trigger() {
    let c = Fixtures::new();
    let canceled = c.canceled();
    let error = canceled
        .decide(&Command::Pause, &c.context(utc(2024, 3, 1)))
        .unwrap_err();
    assert_eq!(error.to_string(), "pause is not allowed from canceled");
}

#[test]
fn resuming_within_the_paid_period_continues_it_and_after_it_starts_a_new_one() {
    let c = Fixtures::new();
    let paused = c.paused();
    let within = c.apply(
        &paused,
        &Command::Resume {
            settlement: Settlement::Free,
        },
        utc(2024, 2, 20),
    );
    let period = within.current_period().unwrap();
    // The paid period Jan 31 to Feb 29 continues; nothing is billed twice.
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 1, 31), utc(2024, 2, 29))
    );
    let after = c.apply(
        &paused,
        &Command::Resume {
            settlement: Settlement::Invoice(c.invoice(utc(2024, 3, 5), 5_000, "paid")),
        },
        utc(2024, 3, 5),
    );
    let period = after.current_period().unwrap();
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 3, 5), utc(2024, 4, 5))
    );
}

#[test]
fn reactivating_within_the_period_paid_before_canceling_continues_it() {
    let c = Fixtures::new();
    // Canceled now on Feb 10, in the period Jan 31 to Feb 29 it had paid for.
    let canceled = c.canceled();
    let SubscriptionState::Canceled(state) = canceled.state() else {
        panic!()
    };
    assert_eq!(
        state.paid_period.map(|paid| paid.period.end()),
        Some(utc(2024, 2, 29))
    );
    let back = c.apply(
        &canceled,
        &Command::Reactivate {
            settlement: Settlement::Free,
        },
        utc(2024, 2, 15),
    );
    assert_eq!(back.current_period().unwrap().end(), utc(2024, 2, 29));
    // A subscription canceled by dunning had not paid its period: a new one starts.
    let exhausted = c.apply(
        &c.past_due(),
        &Command::ExhaustDunning {
            policy: Exhaustion::default(),
        },
        utc(2024, 3, 1),
    );
    let SubscriptionState::Canceled(state) = exhausted.state() else {
        panic!()
    };
    assert_eq!(state.paid_period, None);
}
