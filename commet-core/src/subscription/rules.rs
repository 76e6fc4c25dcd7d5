//! The building blocks the handlers share: [`Step`] (what a handler decided), the
//! preconditions they check, and the states they build. Shared by the command handlers
//! ([`decide`](super::decide)), the admin override ([`admin`](super::admin)) and the charge
//! outcomes ([`charge`](super::charge)).

use chrono::{DateTime, Utc};

use super::SubscriptionItem;
use super::command::{ChargeOutcome, CheckoutOffer, Settlement, settled};
use super::decision::{InvoiceAction, SubscriptionError};
use super::events::{EventContext, FailureContext};
use super::state::{
    Active, CancelReason, Canceled, Dunning, PaidPeriod, PastDue, PendingPayment,
    ScheduledCancellation, SubscriptionState,
};
use super::transition::{Transition, Trigger};
use crate::InvalidField;
use crate::calendar::{BillingCycle, Interval, Period};
use crate::dunning::DunningStep;
use crate::invoice::InvoiceSummary;
use crate::validation::{check_text, check_url};

/// What a handler decided: the new state and what else changes.
#[derive(Debug)]
pub(super) struct Step<'a> {
    pub state: SubscriptionState,
    /// New items and interval (plan changes).
    pub items: Option<(Vec<SubscriptionItem>, Interval)>,
    pub facts: EventContext<'a>,
    pub actions: Vec<InvoiceAction>,
}

impl<'a> Step<'a> {
    pub(super) fn new(state: SubscriptionState) -> Step<'a> {
        Step {
            state,
            items: None,
            facts: EventContext::default(),
            actions: Vec::new(),
        }
    }

    pub(super) fn settled(mut self, settlement: &'a Settlement) -> Step<'a> {
        self.facts.settlement = settled(settlement);
        self
    }
}

/// Bill `period` (at the trial end or a renewal): paid -> active; failed -> past due.
pub(super) fn bill_period(
    outcome: &ChargeOutcome,
    anchor: DateTime<Utc>,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Step<'_>, SubscriptionError> {
    match outcome {
        ChargeOutcome::Paid { settlement } => Ok(Step::new(SubscriptionState::Active(Active {
            anchor,
            period,
            cancellation: None,
            plan_change: None,
        }))
        .settled(settlement)),
        ChargeOutcome::Failed(charge) => {
            check_next(charge.next, now)?;
            let mut step = Step::new(SubscriptionState::PastDue(PastDue {
                anchor,
                period,
                dunning: Dunning {
                    invoice: charge.invoice.id,
                    first_failed_at: now,
                    failed_attempts: 1,
                    last_failure: charge.failure.clone(),
                    next: charge.next,
                },
            }));
            step.facts.settlement = Some(&charge.invoice);
            step.facts.failure = Some(FailureContext { charge, attempt: 1 });
            Ok(step)
        }
    }
}

pub(super) fn due(due_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), SubscriptionError> {
    if now >= due_at {
        Ok(())
    } else {
        Err(SubscriptionError::NotDue { due_at })
    }
}

pub(super) fn not_yet_effective(
    effective_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SubscriptionError> {
    if now < effective_at {
        Ok(())
    } else {
        Err(SubscriptionError::TooLate { effective_at })
    }
}

/// The step recorded after a failed charge must lie ahead: a retry after now, or a deadline
/// at or after now (at now when the policy has no retry left: the charge's outcome then
/// exhausts dunning in the same decision, see [`charge`](super::charge)).
pub(super) fn check_next(next: DunningStep, now: DateTime<Utc>) -> Result<(), SubscriptionError> {
    let invalid = |reason| Err(InvalidField::new("next", reason).into());
    match next {
        DunningStep::RetryAt { at, .. } if at <= now => {
            invalid("the retry must be after the failure")
        }
        DunningStep::WaitForPaymentMethod { exhausts_at } if exhausts_at < now => {
            invalid("the deadline must not be before the failure")
        }
        DunningStep::Exhausted(_) => {
            invalid("exhaustion is not a next step: it is its own command")
        }
        DunningStep::RetryAt { .. } | DunningStep::WaitForPaymentMethod { .. } => Ok(()),
    }
}

pub(super) fn check_comment(comment: Option<&str>) -> Result<(), SubscriptionError> {
    if let Some(comment) = comment {
        check_text("comment", comment, false, 500)?;
    }
    Ok(())
}

pub(super) fn no_cancellation_pending(
    cancellation: Option<&ScheduledCancellation>,
) -> Result<(), SubscriptionError> {
    match cancellation {
        Some(cancellation) => Err(SubscriptionError::CancellationPending {
            effective_at: cancellation.effective_at,
        }),
        None => Ok(()),
    }
}

pub(super) fn pending(
    checkout: &CheckoutOffer,
    now: DateTime<Utc>,
) -> Result<SubscriptionState, SubscriptionError> {
    check_text("checkout.url", checkout.url.as_str(), true, 4_096)?;
    if let Some(expires_at) = checkout.expires_at
        && expires_at <= now
    {
        return Err(InvalidField::new("checkout.expires_at", "must be in the future").into());
    }
    for (field, url) in [
        ("checkout.success_url", &checkout.success_url),
        ("checkout.cancel_url", &checkout.cancel_url),
    ] {
        if let Some(url) = url {
            check_url(field, url, true)?;
        }
    }
    Ok(SubscriptionState::PendingPayment(PendingPayment {
        since: now,
        expires_at: checkout.expires_at,
        success_url: checkout.success_url.clone(),
        cancel_url: checkout.cancel_url.clone(),
    }))
}

/// Active for the period a settled invoice billed (a checkout retried after a decline bills
/// the period of its first attempt), or a new cycle anchored at `now` when nothing was billed.
pub(super) fn period_settled(
    invoice: Option<&InvoiceSummary>,
    interval: Interval,
    now: DateTime<Utc>,
) -> Result<SubscriptionState, SubscriptionError> {
    match invoice.and_then(|invoice| invoice.period) {
        Some(period) if period.start() <= now => Ok(SubscriptionState::Active(Active {
            anchor: period.start(),
            period,
            cancellation: None,
            plan_change: None,
        })),
        Some(_) => Err(InvalidField::new("invoice.period", "must not start after now").into()),
        None => fresh_period(interval, now),
    }
}

/// Active with a new cycle anchored at `now`.
pub(super) fn fresh_period(
    interval: Interval,
    now: DateTime<Utc>,
) -> Result<SubscriptionState, SubscriptionError> {
    Ok(SubscriptionState::Active(Active {
        anchor: now,
        period: BillingCycle::new(now, interval).period(0)?,
        cancellation: None,
        plan_change: None,
    }))
}

pub(super) fn canceled(
    at: DateTime<Utc>,
    reason: CancelReason,
    comment: Option<String>,
    paid_period: Option<PaidPeriod>,
) -> SubscriptionState {
    SubscriptionState::Canceled(Canceled {
        canceled_at: at,
        reason,
        comment,
        paid_period,
    })
}

pub(super) fn inconsistent(
    trigger: Trigger,
    row: &Transition,
    built: &SubscriptionState,
) -> SubscriptionError {
    // Unreachable while the handlers agree with the table; reported, never a panic.
    SubscriptionError::Internal {
        reason: format!(
            "{trigger} leads to {}, but the decision built {}",
            row.to,
            built.status()
        ),
    }
}
