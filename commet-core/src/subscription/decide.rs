//! Deciding: a command and the current subscription in, a [`Decision`] out.
//!
//! [`Subscription::decide`] consults the transition table first (a command it does not allow
//! is [`IllegalTransition`](super::IllegalTransition), whatever else is wrong), then refuses any
//! command while a charge is in flight, then runs the command's handler, which checks the
//! command's own preconditions (is it due? is something scheduled?) and builds the new state.
//! The events come from the table row, so they are exactly the row's.

use chrono::{DateTime, Utc};

use super::Subscription;
use super::admin;
use super::command::{
    ChargeOutcome, CheckoutCompletion, Command, FailedCharge, NewSubscription, PlanChange,
    Settlement, settled,
};
use super::decision::{Context, Decision, InvoiceAction, SubscriptionError};
use super::events::{self, EventContext, FailureContext};
use super::rules::{
    Step, bill_period, canceled, check_comment, check_next, due, fresh_period, inconsistent,
    no_cancellation_pending, not_yet_effective, pending, period_settled,
};
use super::state::{
    Active, CancelReason, Dunning, PastDue, Paused, ScheduledCancellation, ScheduledPlanChange,
    SubscriptionState, Trialing,
};
use super::transition::{Trigger, transition};
use crate::InvalidField;
use crate::calendar::Period;
use crate::dunning::{DunningStep, Exhaustion, InvoiceOnExhaustion, SubscriptionOnExhaustion};
use crate::ids::InvoiceId;
use crate::invoice::InvoiceSummary;
use crate::validation::check_metadata;

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
            charging: None,
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
        // Then the charge in flight: its outcome decides what happens next, nothing else may.
        if let Some(charge) = &self.charging {
            return Err(SubscriptionError::ChargeInFlight {
                attempt: charge.attempt.clone(),
            });
        }
        let step = match command {
            Command::Submit { checkout } => {
                let mut step = Step::new(pending(checkout, now)?);
                step.facts.checkout = Some(checkout);
                step
            }
            Command::CompleteCheckout(completion) => self.checkout_completion(completion, now)?,
            Command::ExpireCheckout { open_invoices } => {
                self.expire_checkout(open_invoices, now)?
            }
            Command::SendTrialReminder => self.send_trial_reminder(now)?,
            Command::EndTrial(outcome) => self.end_trial(outcome, now)?,
            Command::ConvertTrial { change, settlement } => {
                self.convert_trial(change, settlement, now)?
            }
            Command::Renew(outcome) => self.renew(outcome, now)?,
            Command::RetryFailed(failed) => self.retry_failed(failed, now)?,
            Command::Recover { invoice } => self.recover(invoice)?,
            Command::ExhaustDunning { policy } => self.exhaust_dunning(*policy, now)?,
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
                self.resume_or_reactivate(settlement, now)?
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

    fn checkout_completion<'a>(
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

    fn expire_checkout<'a>(
        &self,
        open_invoices: &[InvoiceId],
        now: DateTime<Utc>,
    ) -> Result<Step<'a>, SubscriptionError> {
        let SubscriptionState::PendingPayment(pending) = &self.state else {
            return Err(self.unexpected());
        };
        let expires_at = pending.expires_at.ok_or(SubscriptionError::NothingTo {
            what: "expire: the checkout has no time to live",
        })?;
        due(expires_at, now)?;
        let mut step = Step::new(canceled(
            expires_at,
            CancelReason::CheckoutExpired,
            None,
            None,
        ));
        // The open first invoice of an earlier, declined attempt will never be paid.
        step.actions = open_invoices
            .iter()
            .copied()
            .map(InvoiceAction::Void)
            .collect();
        Ok(step)
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
        let (anchor, period) = self.next_period()?.ok_or_else(|| self.unexpected())?;
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
        let (anchor, period) = self.next_period()?.ok_or_else(|| self.unexpected())?;
        bill_period(outcome, anchor, period, now)
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
    fn resume_or_reactivate<'a>(
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
