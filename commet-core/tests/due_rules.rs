//! What is due, without a store: the subscription answers what its due work comes to at an
//! instant (DESIGN.md sections 5 and 6), and the engine's due runner only does what it says.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use chrono::TimeDelta;
use commet_core::catalog::{Catalog, NewPrice, Price, PricingModel};
use commet_core::dunning::{DunningStep, Exhaustion};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::payment::ChargePurpose;
use commet_core::subscription::{
    ChargeOutcome, CheckoutCompletion, Command, DueStep, InvoiceAction, Settlement,
    SubscriptionError, SubscriptionState,
};

#[test]
fn a_renewal_is_due_at_the_period_end_for_the_next_period_of_the_cycle() {
    let c = Fixtures::new();
    let active = c.active();
    assert_eq!(active.due_step(&c.context(utc(2024, 2, 28))).unwrap(), None);
    let step = active.due_step(&c.context(utc(2024, 2, 29))).unwrap();
    let Some(DueStep::ChargePeriod { purpose, period }) = step else {
        panic!("{step:?}")
    };
    assert_eq!(purpose, ChargePurpose::Renewal);
    // Anchored on Jan 31: Feb 29 (leap year) to Mar 31, whenever the work runs.
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 2, 29), utc(2024, 3, 31))
    );
    let late = active.due_step(&c.context(utc(2024, 3, 5))).unwrap();
    assert_eq!(late, step, "a late run bills the same period");
}

#[test]
fn scheduled_changes_take_effect_before_the_renewal() {
    let c = Fixtures::new();
    let at = utc(2024, 2, 29);
    let canceling = c.apply(
        &c.active(),
        &Command::ScheduleCancellation { comment: None },
        utc(2024, 2, 10),
    );
    assert_eq!(
        canceling.due_step(&c.context(at)).unwrap(),
        Some(DueStep::Decide(Command::ApplyScheduledCancellation))
    );
    let downgrading = c.apply(
        &c.active(),
        &Command::ScheduleDowngrade {
            change: c.change(&c.basic),
        },
        utc(2024, 2, 10),
    );
    assert_eq!(
        downgrading.due_step(&c.context(at)).unwrap(),
        Some(DueStep::Decide(Command::ApplyScheduledPlanChange))
    );
    // Once applied, the renewal of the new cycle is due at once.
    let changed = c.apply(&downgrading, &Command::ApplyScheduledPlanChange, at);
    let Some(DueStep::ChargePeriod { period, .. }) = changed.due_step(&c.context(at)).unwrap()
    else {
        panic!()
    };
    assert_eq!(period.start(), at);
}

#[test]
fn a_free_subscription_renews_and_ends_its_trial_without_a_charge() {
    let mut c = Fixtures::new();
    let free = c.free();
    assert_eq!(
        free.due_step(&c.context(utc(2024, 2, 29))).unwrap(),
        Some(DueStep::Decide(Command::Renew(ChargeOutcome::Paid {
            settlement: Settlement::Free
        })))
    );
    // A free price with a trial: its end ends the trial (not a renewal, which the table would
    // refuse from trialing).
    let free_trial = Price::new(
        c.ids.next(utc(2023, 1, 1)),
        NewPrice {
            plan: c.free.plan(),
            unit_amount: "0 USD".parse().unwrap(),
            interval: commet_core::calendar::Interval::MONTHLY,
            trial_days: 7,
            model: PricingModel::Flat,
        },
    )
    .unwrap();
    c.catalog = Catalog::new(
        c.plans.clone(),
        c.prices().into_iter().cloned().chain([free_trial.clone()]),
    );
    let now = utc(2024, 1, 31);
    let pending = c
        .create_for(c.ids.next(now), &free_trial, false, now)
        .subscription;
    // Free items are active at once; for the trial's sake, start one by hand.
    assert_eq!(
        pending.status(),
        commet_core::subscription::SubscriptionStatus::Active
    );
    let trialing = c
        .create_for(c.ids.next(now), &c.pro_trial, false, now)
        .subscription;
    let trialing = c.apply(
        &trialing,
        &Command::CompleteCheckout(CheckoutCompletion::Trial {
            ends_at: now + TimeDelta::days(7),
        }),
        now,
    );
    let reminded = c.apply(
        &trialing,
        &Command::SendTrialReminder,
        now + TimeDelta::days(4),
    );
    let mut record = reminded.to_record();
    record.items[0].plan = free_trial.plan();
    record.items[0].price = free_trial.id();
    let free_trialing = commet_core::subscription::Subscription::from_record(record).unwrap();
    let step = free_trialing
        .due_step(&c.context(now + TimeDelta::days(7)))
        .unwrap();
    let Some(DueStep::Decide(command)) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        command,
        Command::EndTrial(ChargeOutcome::Paid {
            settlement: Settlement::Free
        })
    );
    let active = c.apply(&free_trialing, &command, now + TimeDelta::days(7));
    assert!(matches!(active.state(), SubscriptionState::Active(_)));
}

#[test]
fn a_trial_reminds_then_charges_its_first_period_anchored_at_its_end() {
    let c = Fixtures::new();
    let trialing = c.trialing();
    assert_eq!(
        trialing.due_step(&c.context(utc(2024, 2, 11))).unwrap(),
        Some(DueStep::Decide(Command::SendTrialReminder))
    );
    let reminded = c.apply(&trialing, &Command::SendTrialReminder, utc(2024, 2, 11));
    assert_eq!(
        reminded.due_step(&c.context(utc(2024, 2, 13))).unwrap(),
        None
    );
    let Some(DueStep::ChargePeriod { purpose, period }) =
        reminded.due_step(&c.context(utc(2024, 2, 15))).unwrap()
    else {
        panic!()
    };
    assert_eq!(purpose, ChargePurpose::TrialEnd);
    assert_eq!(
        (period.start(), period.end()),
        (utc(2024, 2, 14), utc(2024, 3, 14))
    );
}

#[test]
fn dunning_retries_the_unpaid_invoice_and_exhausts_with_the_configured_policy() {
    let mut c = Fixtures::new();
    let past_due = c.past_due();
    let SubscriptionState::PastDue(state) = past_due.state() else {
        panic!()
    };
    let DunningStep::RetryAt { at, .. } = state.dunning.next else {
        panic!()
    };
    assert_eq!(
        past_due.due_step(&c.context(at)).unwrap(),
        Some(DueStep::RetryInvoice {
            invoice: state.dunning.invoice
        })
    );
    // A hard decline waits for a new payment method until a deadline: then exhaustion, with the
    // policy the engine is configured with.
    let mut record = past_due.to_record();
    let SubscriptionState::PastDue(ref mut waiting) = record.state else {
        panic!()
    };
    waiting.dunning.next = DunningStep::WaitForPaymentMethod {
        exhausts_at: utc(2024, 3, 7),
    };
    let waiting = commet_core::subscription::Subscription::from_record(record).unwrap();
    let keep = Exhaustion {
        subscription: commet_core::dunning::SubscriptionOnExhaustion::KeepPastDue,
        ..Exhaustion::default()
    };
    c.policy.dunning =
        commet_core::dunning::DunningPolicy::new(c.policy.dunning.retry_offsets().to_vec(), keep)
            .unwrap();
    assert_eq!(
        waiting.due_step(&c.context(utc(2024, 3, 7))).unwrap(),
        Some(DueStep::Decide(Command::ExhaustDunning { policy: keep }))
    );
}

#[test]
fn an_expired_checkout_is_canceled_and_its_open_invoices_voided_by_one_command() {
    let c = Fixtures::new();
    let pending = c.pending();
    assert_eq!(pending.due_step(&c.context(utc(2024, 2, 1))).unwrap(), None);
    assert_eq!(
        pending.due_step(&c.context(utc(2024, 2, 2))).unwrap(),
        Some(DueStep::ExpireCheckout)
    );
    let open = c.ids.next(utc(2024, 1, 31));
    let decision = pending
        .decide(
            &Command::ExpireCheckout {
                open_invoices: vec![open],
            },
            &c.context(utc(2024, 2, 2)),
        )
        .unwrap();
    assert_eq!(decision.invoice_actions, [InvoiceAction::Void(open)]);
    let SubscriptionState::Canceled(canceled) = decision.subscription.state() else {
        panic!()
    };
    assert_eq!(canceled.canceled_at, utc(2024, 2, 2));
}

#[test]
fn a_price_missing_from_the_catalog_asks_for_the_catalog_again() {
    let mut c = Fixtures::new();
    let active = c.active();
    c.catalog = Catalog::new(c.plans.clone(), Vec::new());
    assert!(matches!(
        active.due_step(&c.context(utc(2024, 2, 29))),
        Err(SubscriptionError::NotInCatalog(_))
    ));
}
