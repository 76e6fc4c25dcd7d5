//! The charge rules, without a store: what a subscription charges for, and what the charge's
//! result does (DESIGN.md sections 5 and 8). Each test plays the engine's part by hand: it
//! builds the charge, numbers a new invoice as the intent commit would, and settles it.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::customer::Customer;
use commet_core::dunning::{DunningPolicy, DunningStep, Exhaustion, SubscriptionOnExhaustion};
use commet_core::event::EventKind;
use commet_core::fixtures::{Fixtures, utc};
use commet_core::invoice::{Invoice, InvoiceKind, InvoiceStatus, LineKind, NumberSeries};
use commet_core::money::Money;
use commet_core::payment::{AttemptStatus, ChargePurpose, ChargeResult, PaymentAttempt};
use commet_core::subscription::{
    CancelReason, Charge, Command, DueStep, Resolution, SettledCharge, Subscription,
    SubscriptionError, SubscriptionState, SubscriptionStatus, first_charge,
};

fn paid() -> ChargeResult {
    ChargeResult::Paid {
        payment_id: Some("pay_1".into()),
    }
}

fn declined(code: &str) -> ChargeResult {
    ChargeResult::Declined {
        code: code.into(),
        message: format!("declined ({code})"),
        class: commet_core::dunning::classify(code),
    }
}

/// The customer of `subscription`, with a card on file and `credit` USD of credit.
fn customer_of(c: &Fixtures, subscription: &Subscription, credit: i64) -> Customer {
    let now = utc(2024, 1, 1);
    let mut customer = c.customer_with_id(subscription.customer(), 1, now);
    customer.set_payment_method("pm_card_visa", now).unwrap();
    if credit > 0 {
        customer
            .adjust_credit(
                Money::from_minor(credit * 100, commet_core::money::Currency::USD),
                now,
            )
            .unwrap();
    }
    customer
}

/// What the intent commit stores: a new invoice gets its number.
fn recorded(mut charge: Charge, series: &mut NumberSeries) -> Charge {
    if charge.new_invoice {
        charge
            .invoice
            .assign_number(series.allocate().unwrap())
            .unwrap();
    }
    charge
}

/// Settle `charge` at `at` with `result`.
fn settle(
    c: &Fixtures,
    charge: &Charge,
    customer: &Customer,
    result: &ChargeResult,
    at: DateTime<Utc>,
) -> Result<SettledCharge, SubscriptionError> {
    let customer = charge.customer.as_ref().unwrap_or(customer);
    charge.subscription.settle(
        &charge.attempt,
        &charge.invoice,
        customer,
        result,
        &c.context(at),
    )
}

fn kinds(settled: &SettledCharge) -> Vec<EventKind> {
    settled
        .events
        .iter()
        .map(commet_core::event::Event::kind)
        .collect()
}

/// The renewal charge of an active subscription at its period end.
fn renewal(c: &Fixtures, active: &Subscription, customer: &Customer, at: DateTime<Utc>) -> Charge {
    let Some(DueStep::ChargePeriod { purpose, period }) = active.due_step(&c.context(at)).unwrap()
    else {
        panic!("a renewal is due at {at}");
    };
    assert_eq!(purpose, ChargePurpose::Renewal);
    active
        .charge_period(purpose, period, customer, &c.context(at))
        .unwrap()
}

#[test]
fn a_renewal_charge_is_recorded_on_the_subscription_and_blocks_every_other_command() {
    let c = Fixtures::new();
    let active = c.active();
    let customer = customer_of(&c, &active, 0);
    let at = utc(2024, 2, 29);
    let charge = renewal(&c, &active, &customer, at);
    assert!(charge.new_invoice);
    assert_eq!(charge.invoice.status(), InvoiceStatus::Outstanding);
    assert_eq!(charge.invoice.kind(), InvoiceKind::Recurring);
    // The period after Jan 31 - Feb 29 (a leap year), anchored on the 31st.
    assert_eq!(charge.invoice.period().unwrap().end(), utc(2024, 3, 31));
    assert_eq!(charge.attempt.attempt, 1);
    assert_eq!(charge.attempt.amount.to_string(), "50.00 USD");
    assert_eq!(
        charge.attempt.payment_method.as_deref(),
        Some("pm_card_visa")
    );
    let in_flight = charge.subscription.charging().unwrap();
    assert_eq!(in_flight.attempt, charge.attempt.idempotency_key());
    // No work is due while the charge is in flight, and nothing else may happen.
    assert_eq!(charge.subscription.due_work(), None);
    assert_eq!(charge.subscription.due_step(&c.context(at)).unwrap(), None);
    let refused = charge
        .subscription
        .decide(&Command::Pause, &c.context(at))
        .unwrap_err();
    assert_eq!(
        refused,
        SubscriptionError::ChargeInFlight {
            attempt: charge.attempt.idempotency_key()
        }
    );
    assert!(matches!(
        charge.subscription.charge_period(
            ChargePurpose::Renewal,
            charge.invoice.period().unwrap(),
            &customer,
            &c.context(at)
        ),
        Err(SubscriptionError::ChargeInFlight { .. })
    ));
}

#[test]
fn a_paid_renewal_moves_to_the_next_period_and_clears_the_charge() {
    let c = Fixtures::new();
    let mut series = NumberSeries::default();
    let active = c.active();
    let customer = customer_of(&c, &active, 0);
    let at = utc(2024, 2, 29);
    let charge = recorded(renewal(&c, &active, &customer, at), &mut series);
    let settled = settle(&c, &charge, &customer, &paid(), at).unwrap();
    assert!(settled.is_paid());
    assert_eq!(settled.invoice.status(), InvoiceStatus::Paid);
    assert_eq!(settled.invoice.amount_paid().to_string(), "50.00 USD");
    assert_eq!(
        settled.attempt.status,
        AttemptStatus::Succeeded {
            payment_id: Some("pay_1".into())
        }
    );
    assert_eq!(settled.subscription.charging(), None);
    assert_eq!(
        settled.subscription.current_period(),
        charge.invoice.period()
    );
    assert_eq!(
        kinds(&settled),
        [EventKind::InvoiceCreated, EventKind::PaymentReceived]
    );
    assert_eq!(settled.refused, None);
    // Settling again is refused: the attempt is no longer the charge in flight.
    assert!(matches!(
        settled.subscription.settle(
            &settled.attempt,
            &settled.invoice,
            &customer,
            &paid(),
            &c.context(at)
        ),
        Err(SubscriptionError::NothingTo { .. })
    ));
    // And an attempt that was completed cannot complete again, through its own table.
    let mut completed = settled.attempt.clone();
    assert!(completed.complete(&declined("card_declined"), at).is_err());
}

#[test]
fn a_declined_renewal_starts_dunning_with_the_policy_and_a_recovery_link() {
    let c = Fixtures::new();
    let mut series = NumberSeries::default();
    let active = c.active();
    let customer = customer_of(&c, &active, 0);
    let at = utc(2024, 2, 29);
    let charge = recorded(renewal(&c, &active, &customer, at), &mut series);
    let settled = settle(&c, &charge, &customer, &declined("card_declined"), at).unwrap();
    assert_eq!(settled.invoice.status(), InvoiceStatus::Outstanding);
    let SubscriptionState::PastDue(past_due) = settled.subscription.state() else {
        panic!("{}", settled.subscription.status());
    };
    assert_eq!(past_due.dunning.invoice, charge.invoice.id());
    assert_eq!(past_due.dunning.first_failed_at, at);
    assert_eq!(
        past_due.dunning.next,
        DunningStep::RetryAt {
            at: at + TimeDelta::days(1),
            attempt: 2,
            last: false
        }
    );
    assert_eq!(
        kinds(&settled),
        [
            EventKind::InvoiceCreated,
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::SubscriptionPastDue
        ]
    );
    let json = serde_json::to_value(&settled.events[1]).unwrap();
    let recovery = json["data"]["recoveryUrl"].as_str().unwrap();
    assert!(
        recovery.starts_with(&format!(
            "https://billing.example.com/recover/{}?token=",
            active.id()
        )),
        "{recovery}"
    );
}

/// Dunning from a renewal declined on Feb 29 under `policy`, retried until it ends. Returns the
/// settled charges, in order.
fn dunning_to_the_end(c: &Fixtures, method: &str) -> Vec<SettledCharge> {
    let mut series = NumberSeries::default();
    let active = c.active();
    let mut customer = customer_of(c, &active, 0);
    customer
        .set_payment_method(method, utc(2024, 1, 1))
        .unwrap();
    let at = utc(2024, 2, 29);
    let charge = recorded(renewal(c, &active, &customer, at), &mut series);
    let mut settled = vec![settle(c, &charge, &customer, &declined(method), at).unwrap()];
    let mut attempts = vec![settled[0].attempt.clone()];
    loop {
        let last = settled.last().unwrap();
        let Some((due_at, _)) = last.subscription.due_work() else {
            return settled;
        };
        let context = c.context(due_at);
        match last.subscription.due_step(&context).unwrap().unwrap() {
            DueStep::RetryInvoice { invoice } => {
                assert_eq!(invoice, last.invoice.id());
                let charge = last
                    .subscription
                    .retry(&last.invoice, &attempts, &customer, &context)
                    .unwrap();
                assert_eq!(
                    charge.attempt.attempt,
                    u32::try_from(attempts.len()).unwrap() + 1
                );
                assert!(!charge.new_invoice);
                let next = settle(c, &charge, &customer, &declined(method), due_at).unwrap();
                attempts.push(next.attempt.clone());
                settled.push(next);
            }
            DueStep::Decide(command) => {
                // A hard decline's deadline: dunning exhausted without a charge.
                let decision = last.subscription.decide(&command, &context).unwrap();
                let mut invoice = last.invoice.clone();
                let mut payer = customer.clone();
                let mut events = decision.events.clone();
                for action in &decision.invoice_actions {
                    events.extend(action.apply(&mut invoice, &mut payer, due_at).unwrap());
                }
                settled.push(SettledCharge {
                    subscription: decision.subscription,
                    attempt: last.attempt.clone(),
                    invoice,
                    customer: None,
                    triggers: vec![decision.trigger],
                    events,
                    refused: None,
                });
                return settled;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn every_failed_charge_emits_payment_failed_the_last_with_retry_at_null_before_exhaustion() {
    let c = Fixtures::new();
    let settled = dunning_to_the_end(&c, "card_declined");
    // The first failure and the retries 1, 3, 5 and 7 days after it: five failed charges.
    assert_eq!(settled.len(), 5);
    let failed: Vec<serde_json::Value> = settled
        .iter()
        .flat_map(|s| &s.events)
        .filter(|e| e.kind() == EventKind::PaymentFailed)
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(failed.len(), 5, "one payment.failed per failed charge");
    let retry_ats: Vec<&serde_json::Value> = failed.iter().map(|e| &e["data"]["retryAt"]).collect();
    assert!(
        retry_ats[..4].iter().all(|at| at.is_string()),
        "{retry_ats:?}"
    );
    assert!(retry_ats[4].is_null(), "the last failure has no retry");
    let subscription_failed = settled
        .iter()
        .flat_map(|s| &s.events)
        .filter(|e| e.kind() == EventKind::SubscriptionPaymentFailed)
        .count();
    assert_eq!(subscription_failed, 5);
    let last = settled.last().unwrap();
    assert_eq!(
        kinds(last),
        [
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::PaymentRetryFailed,
            EventKind::SubscriptionCanceled
        ]
    );
    let json = serde_json::to_value(&last.events[2]).unwrap();
    assert_eq!(json["data"]["failedAttempts"], 5);
    let SubscriptionState::Canceled(canceled) = last.subscription.state() else {
        panic!()
    };
    assert_eq!(canceled.reason, CancelReason::DunningExhausted);
    assert_eq!(last.invoice.status(), InvoiceStatus::Uncollectible);
    assert_eq!(last.triggers.len(), 2, "the failure, then the exhaustion");
}

#[test]
fn under_the_keep_past_due_policy_the_last_failure_is_reported_too() {
    let mut c = Fixtures::new();
    c.policy.dunning = DunningPolicy::new(
        DunningPolicy::default().retry_offsets().to_vec(),
        Exhaustion {
            subscription: SubscriptionOnExhaustion::KeepPastDue,
            ..Exhaustion::default()
        },
    )
    .unwrap();
    let settled = dunning_to_the_end(&c, "card_declined");
    let last = settled.last().unwrap();
    assert_eq!(
        kinds(last),
        [
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::PaymentRetryFailed
        ]
    );
    assert_eq!(last.subscription.status(), SubscriptionStatus::PastDue);
    // A new payment method still retries the written-off invoice; another decline leaves it
    // written off and reports the failure again.
    let customer = customer_of(&c, &last.subscription, 0);
    let at = utc(2024, 4, 1);
    let attempts: Vec<PaymentAttempt> = settled.iter().map(|s| s.attempt.clone()).collect();
    let charge = last
        .subscription
        .retry(&last.invoice, &attempts, &customer, &c.context(at))
        .unwrap();
    let again = settle(&c, &charge, &customer, &declined("card_declined"), at).unwrap();
    assert_eq!(again.invoice.status(), InvoiceStatus::Uncollectible);
    assert_eq!(
        kinds(&again),
        [
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::PaymentRetryFailed
        ]
    );
}

#[test]
fn an_empty_schedule_exhausts_dunning_with_the_first_failure() {
    let mut c = Fixtures::new();
    c.policy.dunning = DunningPolicy::new(Vec::new(), Exhaustion::default()).unwrap();
    let settled = dunning_to_the_end(&c, "card_declined");
    assert_eq!(settled.len(), 1);
    assert_eq!(
        kinds(&settled[0]),
        [
            EventKind::InvoiceCreated,
            EventKind::PaymentFailed,
            EventKind::SubscriptionPaymentFailed,
            EventKind::SubscriptionPastDue,
            EventKind::PaymentRetryFailed,
            EventKind::SubscriptionCanceled
        ]
    );
}

#[test]
fn a_hard_decline_waits_for_a_new_method_until_the_last_retry_then_exhausts() {
    let c = Fixtures::new();
    let settled = dunning_to_the_end(&c, "stolen_card");
    // The first failure, then nothing until the deadline 7 days later.
    assert_eq!(settled.len(), 2);
    let SubscriptionState::PastDue(past_due) = settled[0].subscription.state() else {
        panic!()
    };
    assert_eq!(
        past_due.dunning.next,
        DunningStep::WaitForPaymentMethod {
            exhausts_at: utc(2024, 3, 7)
        }
    );
    assert_eq!(
        kinds(&settled[1]),
        [
            EventKind::PaymentRetryFailed,
            EventKind::SubscriptionCanceled
        ]
    );
    assert_eq!(settled[1].invoice.status(), InvoiceStatus::Uncollectible);
}

#[test]
fn a_declined_upgrade_voids_its_invoice_and_gives_the_credit_back() {
    let c = Fixtures::new();
    let mut series = NumberSeries::default();
    let active = c.active();
    // 20 USD of credit: applied to the upgrade's invoice, and returned when it is declined.
    let customer = customer_of(&c, &active, 20);
    let at = utc(2024, 2, 15);
    // Five seats at 12.50 USD cost more per month than Pro at 50 USD: an upgrade.
    let seats = [(c.seats.clone(), 5)];
    let Resolution::ChargeFirst(charge) = active
        .change_plan(&seats, &customer, &c.context(at))
        .unwrap()
    else {
        panic!("an upgrade is charged first");
    };
    let charge = recorded(charge, &mut series);
    assert_eq!(charge.invoice.kind(), InvoiceKind::PlanChange);
    assert_eq!(charge.invoice.credit_applied().to_string(), "20.00 USD");
    let debited = charge.customer.clone().unwrap();
    assert_eq!(
        debited.credit(commet_core::money::Currency::USD),
        Money::zero(commet_core::money::Currency::USD)
    );
    assert!(
        charge
            .invoice
            .lines()
            .iter()
            .any(|line| line.kind() == LineKind::ProrationCredit)
    );
    let settled = settle(&c, &charge, &customer, &declined("card_declined"), at).unwrap();
    assert_eq!(settled.invoice.status(), InvoiceStatus::Void);
    assert_eq!(kinds(&settled), [EventKind::InvoiceVoided]);
    assert_eq!(
        settled
            .customer
            .unwrap()
            .credit(commet_core::money::Currency::USD)
            .to_string(),
        "20.00 USD"
    );
    // The subscription is as it was: Pro, monthly, the same period, nothing in flight.
    assert_eq!(settled.subscription.items(), active.items());
    assert_eq!(
        settled.subscription.current_period(),
        active.current_period()
    );
    assert_eq!(settled.subscription.charging(), None);
    assert!(settled.triggers.is_empty());
}

#[test]
fn a_paid_upgrade_changes_the_items_and_starts_a_new_period_now() {
    let c = Fixtures::new();
    let mut series = NumberSeries::default();
    let active = c.active();
    let customer = customer_of(&c, &active, 0);
    let at = utc(2024, 2, 15);
    let Resolution::ChargeFirst(charge) = active
        .change_plan(&[(c.seats.clone(), 5)], &customer, &c.context(at))
        .unwrap()
    else {
        panic!()
    };
    let settled = settle(&c, &recorded(charge, &mut series), &customer, &paid(), at).unwrap();
    assert_eq!(settled.subscription.items()[0].price, c.seats.id());
    assert_eq!(settled.subscription.items()[0].quantity, 5);
    assert_eq!(settled.subscription.current_period().unwrap().start(), at);
    assert_eq!(
        kinds(&settled),
        [
            EventKind::SubscriptionPlanChanged,
            EventKind::InvoiceCreated,
            EventKind::PaymentReceived
        ]
    );
}

#[test]
fn a_downgrade_is_decided_now_and_charged_nothing() {
    let c = Fixtures::new();
    let active = c.active();
    let customer = customer_of(&c, &active, 0);
    let resolution = active
        .change_plan(
            &[(c.basic.clone(), 1)],
            &customer,
            &c.context(utc(2024, 2, 15)),
        )
        .unwrap();
    let Resolution::Decided(decision) = resolution else {
        panic!("a downgrade is scheduled, not charged")
    };
    let SubscriptionState::Active(state) = decision.subscription.state() else {
        panic!()
    };
    assert_eq!(
        state.plan_change.as_ref().unwrap().effective_at,
        utc(2024, 2, 29)
    );
}

#[test]
fn checkout_charges_the_first_period_and_a_declined_attempt_keeps_its_invoice_for_the_next() {
    let c = Fixtures::new();
    let mut series = NumberSeries::default();
    let pending = c.pending();
    let customer = customer_of(&c, &pending, 0);
    let at = utc(2024, 1, 31);
    let terms = pending
        .checkout_terms(&customer, None, &c.context(at))
        .unwrap();
    assert_eq!(terms.amount_due_now.to_string(), "50.00 USD");
    assert_eq!(terms.trial_ends_at, None);
    let Resolution::ChargeFirst(first) = pending
        .complete_checkout(&customer, None, &c.context(at))
        .unwrap()
    else {
        panic!()
    };
    let first = recorded(first, &mut series);
    let declined_first = settle(&c, &first, &customer, &declined("card_declined"), at).unwrap();
    assert_eq!(
        declined_first.subscription.status(),
        SubscriptionStatus::PendingPayment
    );
    assert_eq!(declined_first.invoice.status(), InvoiceStatus::Outstanding);
    assert!(declined_first.events.is_empty());
    // Three minutes later another card: the same invoice, attempt 2, its period kept.
    let later = at + TimeDelta::minutes(3);
    let open: &Invoice = &declined_first.invoice;
    let terms = declined_first
        .subscription
        .checkout_terms(&customer, Some(open), &c.context(later))
        .unwrap();
    assert_eq!(terms.amount_due_now, open.amount_due());
    let Resolution::ChargeFirst(second) = declined_first
        .subscription
        .complete_checkout(
            &customer,
            Some((open, std::slice::from_ref(&declined_first.attempt))),
            &c.context(later),
        )
        .unwrap()
    else {
        panic!()
    };
    assert!(!second.new_invoice);
    assert_eq!(second.invoice.id(), open.id());
    assert_eq!(second.attempt.attempt, 2);
    let active = settle(&c, &second, &customer, &paid(), later).unwrap();
    assert_eq!(active.subscription.status(), SubscriptionStatus::Active);
    assert_eq!(
        active.subscription.current_period().unwrap().start(),
        at,
        "the period is the invoice's: it started at the first attempt"
    );
    assert_eq!(
        kinds(&active),
        [
            EventKind::InvoiceCreated,
            EventKind::PaymentReceived,
            EventKind::SubscriptionActivated
        ]
    );
}

#[test]
fn a_trial_checkout_is_decided_without_a_charge() {
    let c = Fixtures::new();
    let pending = c.create(&c.pro_trial, false, utc(2024, 1, 31)).subscription;
    let customer = customer_of(&c, &pending, 0);
    let at = utc(2024, 1, 31);
    let terms = pending
        .checkout_terms(&customer, None, &c.context(at))
        .unwrap();
    assert!(terms.amount_due_now.is_zero());
    assert_eq!(terms.trial_ends_at, Some(at + TimeDelta::days(14)));
    let Resolution::Decided(decision) = pending
        .complete_checkout(&customer, None, &c.context(at))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(decision.subscription.status(), SubscriptionStatus::Trialing);
}

#[test]
fn what_checkout_charges_is_one_answer_with_credit_applied() {
    let c = Fixtures::new();
    let pending = c.pending();
    let at = utc(2024, 1, 31);
    let rich = customer_of(&c, &pending, 20);
    let items = [(c.pro.clone(), 1)];
    assert_eq!(
        first_charge(&items, &rich, None, &c.context(at))
            .unwrap()
            .to_string(),
        "30.00 USD"
    );
    let terms = pending.checkout_terms(&rich, None, &c.context(at)).unwrap();
    assert_eq!(terms.amount_due_now.to_string(), "30.00 USD");
    // The charge takes exactly that.
    let Resolution::ChargeFirst(charge) = pending
        .complete_checkout(&rich, None, &c.context(at))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(charge.attempt.amount.to_string(), "30.00 USD");
}

#[test]
fn restarting_inside_the_paid_period_is_free_and_after_it_is_charged() {
    let c = Fixtures::new();
    let paused = c.paused();
    let customer = customer_of(&c, &paused, 0);
    let inside = paused
        .restart(
            ChargePurpose::Resume,
            &customer,
            &c.context(utc(2024, 2, 20)),
        )
        .unwrap();
    let Resolution::Decided(decision) = inside else {
        panic!("inside the paid period nothing is charged")
    };
    assert_eq!(decision.subscription.status(), SubscriptionStatus::Active);
    assert_eq!(
        decision.subscription.current_period(),
        paused.state().paid_period().map(|p| p.period)
    );
    let after = paused
        .restart(
            ChargePurpose::Resume,
            &customer,
            &c.context(utc(2024, 4, 2)),
        )
        .unwrap();
    let Resolution::ChargeFirst(charge) = after else {
        panic!("after the paid period a new one is charged")
    };
    assert_eq!(charge.invoice.kind(), InvoiceKind::Reactivation);
    assert_eq!(charge.invoice.period().unwrap().start(), utc(2024, 4, 2));
    assert_eq!(charge.attempt.purpose, ChargePurpose::Resume);
    // Reactivating is not resuming.
    assert!(matches!(
        paused.restart(
            ChargePurpose::Reactivation,
            &customer,
            &c.context(utc(2024, 4, 2))
        ),
        Err(SubscriptionError::IllegalTransition(_))
    ));
}

#[test]
fn voiding_an_invoice_returns_its_credit_and_announces_it() {
    let c = Fixtures::new();
    let mut series = NumberSeries::default();
    let active = c.active();
    let customer = customer_of(&c, &active, 10);
    let at = utc(2024, 2, 29);
    let charge = recorded(renewal(&c, &active, &customer, at), &mut series);
    let mut invoice = charge.invoice.clone();
    let mut payer = charge.customer.clone().unwrap();
    assert!(payer.credit(commet_core::money::Currency::USD).is_zero());
    let event = commet_core::subscription::void(&mut invoice, &mut payer, at).unwrap();
    assert_eq!(event.kind(), EventKind::InvoiceVoided);
    assert_eq!(invoice.status(), InvoiceStatus::Void);
    assert_eq!(
        payer.credit(commet_core::money::Currency::USD).to_string(),
        "10.00 USD"
    );
}
