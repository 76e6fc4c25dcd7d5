//! Deciding: a command and the current subscription in, a [`Decision`] out.
//!
//! [`Subscription::decide`] consults the transition table first (a command it does not allow
//! is [`IllegalTransition`], whatever else is wrong), then runs the command's handler, which
//! checks the command's own preconditions (is it due? is something scheduled?) and builds the
//! new state. The events come from the table row, so they are exactly the row's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::admin;
use super::command::{
    ChargeOutcome, CheckoutCompletion, CheckoutOffer, Command, FailedCharge, InvoiceSummary,
    NewSubscription, PlanChange, Settlement, settled,
};
use super::events::{self, EventContext, FailureContext};
use super::state::{
    Active, CancelReason, Canceled, Dunning, PaidPeriod, PastDue, Paused, PaymentFailure,
    PendingPayment, ScheduledCancellation, ScheduledPlanChange, SubscriptionState, Trialing,
};
use super::transition::{IllegalTransition, Transition, Trigger, transition};
use super::{Subscription, SubscriptionItem};
use crate::InvalidField;
use crate::calendar::{BillingCycle, CalendarError, Interval, Period};
use crate::catalog::Plan;
use crate::dunning::{DunningStep, Exhaustion, InvoiceOnExhaustion, SubscriptionOnExhaustion};
use crate::ids::InvoiceId;
use crate::validation::{check_metadata, check_text};

/// Why a command was refused. The subscription is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The transition table has no row for this command from the current status (HTTP 409).
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// An input field is invalid (HTTP 400).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The work is not due yet (a renewal before the period end ...). Run it at `due_at`.
    #[error("not due until {due_at}")]
    NotDue {
        /// When it becomes due.
        due_at: DateTime<Utc>,
    },
    /// A cancellation is scheduled: revoke it first, or let it take effect (HTTP 409).
    #[error("a cancellation is scheduled for {effective_at}")]
    CancellationPending {
        /// When it takes effect.
        effective_at: DateTime<Utc>,
    },
    /// A plan change is scheduled: apply it before renewing, or revoke it before pausing.
    #[error("a plan change is scheduled for {effective_at}")]
    PlanChangePending {
        /// When it takes effect.
        effective_at: DateTime<Utc>,
    },
    /// There is nothing of that kind to do (HTTP 409).
    #[error("nothing to {what}")]
    NothingTo {
        /// What was asked, e.g. `revoke: no cancellation is scheduled`.
        what: &'static str,
    },
    /// The period end already passed at `effective_at`: a scheduled change can no longer be
    /// revoked, and a new one can no longer be scheduled for it (its renewal is pending).
    #[error("too late: the period ended at {effective_at}")]
    TooLate {
        /// When it took effect.
        effective_at: DateTime<Utc>,
    },
    /// A period boundary is beyond the representable dates.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// A bug in commet: a decision disagreed with the transition table. Nothing was changed;
    /// please report it.
    #[error("internal error: {reason}")]
    Internal {
        /// What disagreed.
        reason: String,
    },
}

/// What every decision needs besides the command: the instant, the plans the subscription's
/// items refer to (events name them), and the payment provider's name (events report it).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The instant of the decision.
    pub now: DateTime<Utc>,
    /// The plans of the items before and after the decision.
    pub plans: &'a [Plan],
    /// The payment gateway's name, e.g. `stripe`, for `provider` fields.
    pub provider: Option<&'a str>,
}

/// What to do with an invoice as part of a decision; the engine applies it in the same commit
/// (and emits `invoice.voided` for a voided one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "invoice", rename_all = "snake_case")]
pub enum InvoiceAction {
    /// Void it (it will never be collected).
    Void(InvoiceId),
    /// Mark it paid outside commet (cash, bank transfer, a refund settled by hand).
    MarkPaidOutOfBand(InvoiceId),
    /// Mark it uncollectible (dunning exhausted); it can still be paid or voided later.
    MarkUncollectible(InvoiceId),
}

/// The outcome of a command: the subscription after it, the events it emits (in order) and the
/// invoice actions to apply. Nothing is stored until the engine commits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The subscription after the command (same version: the store bumps it on commit).
    pub subscription: Subscription,
    /// The row of the table that was applied.
    pub trigger: Trigger,
    /// The events to publish, in order: exactly the row's events.
    pub events: Vec<crate::event::Event>,
    /// What to do with invoices.
    pub invoice_actions: Vec<InvoiceAction>,
}

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

    fn settled(mut self, settlement: &'a Settlement) -> Step<'a> {
        self.facts.settlement = settled(settlement);
        self
    }
}

impl Subscription {
    /// Create a subscription: `pending_payment` with a checkout for a paid price, `draft` if
    /// asked, `active` at once (period anchored now) for a free one.
    pub fn create(
        new: NewSubscription,
        context: &Context<'_>,
    ) -> Result<Decision, SubscriptionError> {
        let now = context.now;
        check_metadata(&new.metadata)?;
        let (trigger, state) = if new.items.free {
            (Trigger::CreateFree, fresh_period(new.items.interval, now)?)
        } else if new.draft {
            (Trigger::CreateDraft, SubscriptionState::Draft)
        } else {
            let checkout = new.checkout.as_ref().ok_or_else(|| {
                InvalidField::new("checkout", "a paid subscription needs a checkout link")
            })?;
            (Trigger::CreatePaid, pending(checkout, now)?)
        };
        let row = transition(None, trigger)?;
        if state.status() != row.to {
            return Err(inconsistent(trigger, &row, &state));
        }
        let subscription = Subscription {
            id: new.id,
            customer: new.customer,
            items: new.items.items,
            interval: new.items.interval,
            currency: new.items.currency,
            state,
            created_at: now,
            updated_at: now,
            metadata: new.metadata,
            version: 0,
        };
        let facts = EventContext {
            checkout: new.checkout.as_ref(),
            ..EventContext::default()
        };
        let events = events::build(&row, &subscription, None, &facts, context)?;
        Ok(Decision {
            subscription,
            trigger,
            events,
            invoice_actions: Vec::new(),
        })
    }

    /// May an immediate plan change (an upgrade, or a trial's conversion) be made now? The
    /// checks its decision makes once the change is paid: the transition, and no cancellation
    /// scheduled. The engine asks before charging, so it never takes money for a change the
    /// decision would then refuse.
    pub fn check_immediate_plan_change(&self) -> Result<(), SubscriptionError> {
        let (trigger, cancellation) = match &self.state {
            SubscriptionState::Trialing(trialing) => {
                (Trigger::TrialConverted, trialing.cancellation.as_ref())
            }
            SubscriptionState::Active(active) => (Trigger::Upgrade, active.cancellation.as_ref()),
            _ => (Trigger::Upgrade, None),
        };
        transition(Some(self.status()), trigger)?;
        no_cancellation_pending(cancellation)
    }

    /// Decide `command` at `context.now`. On error nothing changed.
    pub fn decide(
        &self,
        command: &Command,
        context: &Context<'_>,
    ) -> Result<Decision, SubscriptionError> {
        let now = context.now;
        let trigger = command.trigger();
        // The table first: a command it does not allow is `IllegalTransition`, whatever else.
        let row = transition(Some(self.status()), trigger)?;
        let step = match command {
            Command::Submit { checkout } => {
                let mut step = Step::new(pending(checkout, now)?);
                step.facts.checkout = Some(checkout);
                step
            }
            Command::CompleteCheckout(completion) => self.complete_checkout(completion, now)?,
            Command::ExpireCheckout => self.expire_checkout(now)?,
            Command::SendTrialReminder => self.send_trial_reminder(now)?,
            Command::EndTrial(outcome) => self.end_trial(outcome, now)?,
            Command::ConvertTrial { change, settlement } => {
                self.convert_trial(change, settlement, now)?
            }
            Command::Renew(outcome) => self.renew(outcome, now)?,
            Command::RetryFailed(failed) => self.retry_failed(failed, now)?,
            Command::Recover { invoice } => self.recover(invoice)?,
            Command::ExhaustDunning {
                final_failure,
                policy,
            } => self.exhaust_dunning(final_failure.as_ref(), *policy, now)?,
            Command::ScheduleCancellation { comment } => {
                self.schedule_cancellation(comment.as_deref(), now)?
            }
            Command::RevokeCancellation => self.revoke_cancellation(now)?,
            Command::ApplyScheduledCancellation => self.apply_scheduled_cancellation(now)?,
            Command::CancelNow {
                comment,
                open_invoices,
            } => self.cancel_now(comment.as_deref(), open_invoices, now)?,
            Command::Pause => self.pause(now)?,
            Command::Resume { settlement } | Command::Reactivate { settlement } => {
                self.restart(settlement, now)?
            }
            Command::Upgrade { change, settlement } => self.upgrade(change, settlement, now)?,
            Command::ScheduleDowngrade { change } => self.schedule_downgrade(change, now)?,
            Command::RevokePlanChange => self.revoke_plan_change(now)?,
            Command::ApplyScheduledPlanChange => self.apply_scheduled_plan_change(now)?,
            Command::Override(update) => admin::decide(self, update, now)?,
        };
        if step.state.status() != row.to {
            return Err(inconsistent(trigger, &row, &step.state));
        }
        let mut next = self.clone();
        if let Some((items, interval)) = step.items {
            next.items = items;
            next.interval = interval;
        }
        next.state = step.state;
        next.updated_at = now;
        let events = events::build(&row, &next, Some(self), &step.facts, context)?;
        Ok(Decision {
            subscription: next,
            trigger,
            events,
            invoice_actions: step.actions,
        })
    }

    /// The handler met a state its row does not start from: impossible after the table check.
    fn unexpected(&self) -> SubscriptionError {
        SubscriptionError::Internal {
            reason: format!("a handler was called in status {}", self.status()),
        }
    }

    fn complete_checkout<'a>(
        &self,
        completion: &'a CheckoutCompletion,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        match completion {
            CheckoutCompletion::Paid { invoice } => {
                let mut step = Step::new(period_settled(Some(invoice), self.interval, now)?);
                step.facts.settlement = Some(invoice);
                Ok(step)
            }
            CheckoutCompletion::Trial { ends_at } => {
                let trial = Period::new(now, *ends_at)
                    .map_err(|_| InvalidField::new("trial_end", "must be after now"))?;
                Ok(Step::new(SubscriptionState::Trialing(Trialing {
                    trial,
                    reminder_sent: false,
                    cancellation: None,
                })))
            }
        }
    }

    fn expire_checkout<'a>(&self, now: DateTime<Utc>) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::PendingPayment(pending) = &self.state else {
            return Err(self.unexpected());
        };
        let expires_at = pending.expires_at.ok_or(SubscriptionError::NothingTo {
            what: "expire: the checkout has no time to live",
        })?;
        due(expires_at, now)?;
        Ok(Step::new(canceled(
            expires_at,
            CancelReason::CheckoutExpired,
            None,
            None,
        )))
    }

    fn send_trial_reminder<'a>(&self, now: DateTime<Utc>) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Trialing(trialing) = &self.state else {
            return Err(self.unexpected());
        };
        if trialing.reminder_sent {
            return Err(SubscriptionError::NothingTo {
                what: "send: the trial reminder was sent",
            });
        }
        due(trialing.reminder_at(), now)?;
        Ok(Step::new(SubscriptionState::Trialing(Trialing {
            reminder_sent: true,
            ..trialing.clone()
        })))
    }

    fn end_trial<'a>(
        &self,
        outcome: &'a ChargeOutcome,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Trialing(trialing) = &self.state else {
            return Err(self.unexpected());
        };
        no_cancellation_pending(trialing.cancellation.as_ref())?;
        due(trialing.trial.end(), now)?;
        // The anchor is the end of the trial, whenever the work runs.
        let anchor = trialing.trial.end();
        let period = BillingCycle::new(anchor, self.interval).period(0)?;
        bill_period(outcome, anchor, period, now)
    }

    fn convert_trial<'a>(
        &self,
        change: &PlanChange,
        settlement: &'a Settlement,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Trialing(_) = &self.state else {
            return Err(self.unexpected());
        };
        self.check_immediate_plan_change()?;
        self.check_currency(change)?;
        let mut step = Step::new(period_settled(
            settled(settlement),
            change.items.interval,
            now,
        )?)
        .settled(settlement);
        step.items = Some((change.items.items.clone(), change.items.interval));
        Ok(step)
    }

    fn renew<'a>(
        &self,
        outcome: &'a ChargeOutcome,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Active(active) = &self.state else {
            return Err(self.unexpected());
        };
        no_cancellation_pending(active.cancellation.as_ref())?;
        if let Some(change) = &active.plan_change {
            return Err(SubscriptionError::PlanChangePending {
                effective_at: change.effective_at,
            });
        }
        due(active.period.end(), now)?;
        // The next period starts where this one ended, never at "when the job ran".
        let period = active
            .cycle(self.interval)
            .period_containing(active.period.end())?;
        bill_period(outcome, active.anchor, period, now)
    }

    fn retry_failed<'a>(
        &self,
        failed: &'a FailedCharge,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::PastDue(past_due) = &self.state else {
            return Err(self.unexpected());
        };
        check_next(failed.next, now)?;
        let attempt = past_due.dunning.failed_attempts.saturating_add(1);
        let mut step = Step::new(SubscriptionState::PastDue(PastDue {
            dunning: Dunning {
                failed_attempts: attempt,
                last_failure: failed.failure.clone(),
                next: failed.next,
                ..past_due.dunning.clone()
            },
            ..past_due.clone()
        }));
        step.facts.failure = Some(FailureContext {
            charge: failed,
            attempt,
        });
        Ok(step)
    }

    fn recover<'a>(&self, invoice: &'a InvoiceSummary) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::PastDue(past_due) = &self.state else {
            return Err(self.unexpected());
        };
        // Paid late, but for the same period: the anchor and the period are unchanged.
        let mut step = Step::new(SubscriptionState::Active(Active {
            anchor: past_due.anchor,
            period: past_due.period,
            cancellation: None,
            plan_change: None,
        }));
        step.facts.settlement = Some(invoice);
        step.facts.recovered_after = Some(past_due.dunning.failed_attempts);
        Ok(step)
    }

    fn exhaust_dunning<'a>(
        &self,
        final_failure: Option<&PaymentFailure>,
        policy: Exhaustion,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::PastDue(past_due) = &self.state else {
            return Err(self.unexpected());
        };
        let due_at = past_due
            .dunning
            .next
            .due_at()
            .ok_or(SubscriptionError::NothingTo {
                what: "exhaust: dunning is already exhausted",
            })?;
        due(due_at, now)?;
        let mut dunning = past_due.dunning.clone();
        if let Some(failure) = final_failure {
            dunning.failed_attempts = dunning.failed_attempts.saturating_add(1);
            dunning.last_failure = failure.clone();
        }
        dunning.next = DunningStep::Exhausted(policy);
        let mut step = Step::new(match policy.subscription {
            SubscriptionOnExhaustion::Cancel => {
                canceled(now, CancelReason::DunningExhausted, None, None)
            }
            SubscriptionOnExhaustion::KeepPastDue => SubscriptionState::PastDue(PastDue {
                dunning: dunning.clone(),
                ..past_due.clone()
            }),
        });
        match policy.invoice {
            InvoiceOnExhaustion::MarkUncollectible => {
                step.actions
                    .push(InvoiceAction::MarkUncollectible(dunning.invoice));
            }
            InvoiceOnExhaustion::LeaveOutstanding => {}
        }
        step.facts.exhausted = Some(dunning);
        Ok(step)
    }

    fn schedule_cancellation<'a>(
        &self,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        check_comment(comment)?;
        let scheduled = |effective_at| ScheduledCancellation {
            requested_at: now,
            effective_at,
            comment: comment.map(str::to_owned),
        };
        let state = match &self.state {
            SubscriptionState::Active(active) => {
                no_cancellation_pending(active.cancellation.as_ref())?;
                not_yet_effective(active.period.end(), now)?;
                SubscriptionState::Active(Active {
                    cancellation: Some(scheduled(active.period.end())),
                    ..active.clone()
                })
            }
            SubscriptionState::Trialing(trialing) => {
                no_cancellation_pending(trialing.cancellation.as_ref())?;
                not_yet_effective(trialing.trial.end(), now)?;
                SubscriptionState::Trialing(Trialing {
                    cancellation: Some(scheduled(trialing.trial.end())),
                    ..trialing.clone()
                })
            }
            _ => return Err(self.unexpected()),
        };
        Ok(Step::new(state))
    }

    fn revoke_cancellation<'a>(&self, now: DateTime<Utc>) -> Result<Step<'a>, SubscriptionError> {
        let (cancellation, state) = match &self.state {
            SubscriptionState::Active(active) => (
                active.cancellation.as_ref(),
                SubscriptionState::Active(Active {
                    cancellation: None,
                    ..active.clone()
                }),
            ),
            SubscriptionState::Trialing(trialing) => (
                trialing.cancellation.as_ref(),
                SubscriptionState::Trialing(Trialing {
                    cancellation: None,
                    ..trialing.clone()
                }),
            ),
            _ => return Err(self.unexpected()),
        };
        let cancellation = cancellation.ok_or(SubscriptionError::NothingTo {
            what: "revoke: no cancellation is scheduled",
        })?;
        not_yet_effective(cancellation.effective_at, now)?;
        let mut step = Step::new(state);
        step.facts.revoked_cancellation = Some(cancellation.clone());
        Ok(step)
    }

    fn apply_scheduled_cancellation<'a>(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let cancellation = match &self.state {
            SubscriptionState::Active(active) => active.cancellation.as_ref(),
            SubscriptionState::Trialing(trialing) => trialing.cancellation.as_ref(),
            _ => return Err(self.unexpected()),
        }
        .ok_or(SubscriptionError::NothingTo {
            what: "cancel: no cancellation is scheduled",
        })?;
        due(cancellation.effective_at, now)?;
        // Canceled at exactly the end of the period, whenever the work runs.
        Ok(Step::new(canceled(
            cancellation.effective_at,
            CancelReason::Requested,
            cancellation.comment.clone(),
            self.state.paid_period(),
        )))
    }

    fn cancel_now<'a>(
        &self,
        comment: Option<&str>,
        open_invoices: &[InvoiceId],
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        check_comment(comment)?;
        let mut step = Step::new(canceled(
            now,
            CancelReason::Requested,
            comment.map(str::to_owned),
            self.state.paid_period(),
        ));
        let dunning_invoice = match &self.state {
            SubscriptionState::PastDue(past_due) => Some(past_due.dunning.invoice),
            _ => None,
        };
        for &invoice in dunning_invoice.iter().chain(open_invoices) {
            let action = InvoiceAction::Void(invoice);
            if !step.actions.contains(&action) {
                step.actions.push(action);
            }
        }
        Ok(step)
    }

    fn pause<'a>(&self, now: DateTime<Utc>) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Active(active) = &self.state else {
            return Err(self.unexpected());
        };
        no_cancellation_pending(active.cancellation.as_ref())?;
        if let Some(change) = &active.plan_change {
            return Err(SubscriptionError::PlanChangePending {
                effective_at: change.effective_at,
            });
        }
        Ok(Step::new(SubscriptionState::Paused(Paused {
            paused_at: now,
            anchor: active.anchor,
            period: active.period,
        })))
    }

    /// Resume or reactivate: continue the period already paid for if it has not ended
    /// (nothing to bill), otherwise start a new one now, billed by the settlement's invoice.
    fn restart<'a>(
        &self,
        settlement: &'a Settlement,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let invoice = settled(settlement);
        let state = match self.state.paid_period() {
            Some(paid) if invoice.is_none() && now < paid.period.end() => {
                SubscriptionState::Active(Active {
                    anchor: paid.anchor,
                    period: paid.period,
                    cancellation: None,
                    plan_change: None,
                })
            }
            _ => period_settled(invoice, self.interval, now)?,
        };
        Ok(Step::new(state).settled(settlement))
    }

    fn upgrade<'a>(
        &self,
        change: &PlanChange,
        settlement: &'a Settlement,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Active(_) = &self.state else {
            return Err(self.unexpected());
        };
        self.check_immediate_plan_change()?;
        self.check_currency(change)?;
        // Immediate: the period resets to now; any scheduled downgrade is superseded.
        let mut step = Step::new(period_settled(
            settled(settlement),
            change.items.interval,
            now,
        )?)
        .settled(settlement);
        step.items = Some((change.items.items.clone(), change.items.interval));
        Ok(step)
    }

    fn schedule_downgrade<'a>(
        &self,
        change: &PlanChange,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Active(active) = &self.state else {
            return Err(self.unexpected());
        };
        no_cancellation_pending(active.cancellation.as_ref())?;
        self.check_currency(change)?;
        // The period already ended (its renewal is pending): too late to change it at its end.
        not_yet_effective(active.period.end(), now)?;
        // Replaces any earlier scheduled change.
        Ok(Step::new(SubscriptionState::Active(Active {
            plan_change: Some(ScheduledPlanChange {
                requested_at: now,
                effective_at: active.period.end(),
                items: change.items.items.clone(),
                interval: change.items.interval,
            }),
            ..active.clone()
        })))
    }

    fn revoke_plan_change<'a>(&self, now: DateTime<Utc>) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Active(active) = &self.state else {
            return Err(self.unexpected());
        };
        let change = active
            .plan_change
            .as_ref()
            .ok_or(SubscriptionError::NothingTo {
                what: "revoke: no plan change is scheduled",
            })?;
        not_yet_effective(change.effective_at, now)?;
        let mut step = Step::new(SubscriptionState::Active(Active {
            plan_change: None,
            ..active.clone()
        }));
        step.facts.revoked_plan_change = Some(change.clone());
        Ok(step)
    }

    fn apply_scheduled_plan_change<'a>(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::Active(active) = &self.state else {
            return Err(self.unexpected());
        };
        let change = active
            .plan_change
            .as_ref()
            .ok_or(SubscriptionError::NothingTo {
                what: "apply: no plan change is scheduled",
            })?;
        due(change.effective_at, now)?;
        // The current period ends at the new anchor; the renewal that follows bills the first
        // period of the new cycle.
        let mut step = Step::new(SubscriptionState::Active(Active {
            anchor: change.effective_at,
            plan_change: None,
            ..active.clone()
        }));
        step.items = Some((change.items.clone(), change.interval));
        Ok(step)
    }

    fn check_currency(&self, change: &PlanChange) -> Result<(), SubscriptionError> {
        if change.items.currency == self.currency {
            Ok(())
        } else {
            Err(InvalidField::new(
                "items",
                format_args!(
                    "are in {}, but the subscription is in {}: a subscription's currency never changes",
                    change.items.currency, self.currency
                ),
            )
            .into())
        }
    }
}

/// Bill `period` (at the trial end or a renewal): paid -> active; failed -> past due.
fn bill_period(
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

fn due(due_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), SubscriptionError> {
    if now >= due_at {
        Ok(())
    } else {
        Err(SubscriptionError::NotDue { due_at })
    }
}

fn not_yet_effective(
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
/// at or after now (at now when the policy has no retry left: exhausted in the same commit).
fn check_next(next: DunningStep, now: DateTime<Utc>) -> Result<(), SubscriptionError> {
    let invalid = |reason| Err(InvalidField::new("next", reason).into());
    match next {
        DunningStep::RetryAt { at, .. } if at <= now => {
            invalid("the retry must be after the failure")
        }
        DunningStep::WaitForPaymentMethod { exhausts_at } if exhausts_at < now => {
            invalid("the deadline must not be before the failure")
        }
        DunningStep::Exhausted(_) => invalid(
            "an exhausted step is applied with ExhaustDunning; record the failure with \
             WaitForPaymentMethod at now first",
        ),
        DunningStep::RetryAt { .. } | DunningStep::WaitForPaymentMethod { .. } => Ok(()),
    }
}

fn check_comment(comment: Option<&str>) -> Result<(), SubscriptionError> {
    if let Some(comment) = comment {
        check_text("comment", comment, false, 500)?;
    }
    Ok(())
}

fn no_cancellation_pending(
    cancellation: Option<&ScheduledCancellation>,
) -> Result<(), SubscriptionError> {
    match cancellation {
        Some(cancellation) => Err(SubscriptionError::CancellationPending {
            effective_at: cancellation.effective_at,
        }),
        None => Ok(()),
    }
}

fn pending(
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
            check_text(field, url, true, 2_048)?;
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
fn period_settled(
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

fn inconsistent(
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
