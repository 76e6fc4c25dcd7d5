//! What is due: the subscription's own answer to "what must happen now, and does it need a
//! charge?".
//!
//! [`Subscription::due_work`] names the next deadline (stores index it); [`Subscription::due_step`]
//! says what to do about it at an instant: a decision to make now, or a charge to make first.
//! The due runner of the engine only asks, and does what the answer says.

use super::command::{ChargeOutcome, Command, Settlement};
use super::decision::{Context, SubscriptionError};
use super::state::SubscriptionState;
use super::{DueWork, Subscription};
use crate::calendar::Period;
use crate::ids::InvoiceId;
use crate::payment::ChargePurpose;

/// What a subscription's due work comes to at an instant.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // an answer, built and used once
pub enum DueStep {
    /// Decide this command now; nothing is charged: the trial reminder, a scheduled
    /// cancellation or plan change taking effect (before the period's renewal), the renewal or
    /// trial end of a free subscription, dunning exhausted at a hard decline's deadline.
    Decide(Command),
    /// Checkout was not completed in time: decide [`Command::ExpireCheckout`] with the
    /// subscription's outstanding invoices (they are voided).
    ExpireCheckout,
    /// Charge the period after the current one (or after the trial): build the charge with
    /// [`Subscription::charge_period`].
    ChargePeriod {
        /// [`ChargePurpose::TrialEnd`] or [`ChargePurpose::Renewal`].
        purpose: ChargePurpose,
        /// The period billed.
        period: Period,
    },
    /// Charge the unpaid invoice again (a scheduled dunning retry): build the charge with
    /// [`Subscription::retry`].
    RetryInvoice {
        /// The invoice dunning collects.
        invoice: InvoiceId,
    },
}

impl Subscription {
    /// What to do now (`context.now`) about this subscription's due work, or `None` if nothing
    /// is due (or a charge is in flight). Scheduled cancellations and plan changes take effect
    /// at the period end before its renewal; a free subscription renews without a charge.
    pub fn due_step(&self, context: &Context<'_>) -> Result<Option<DueStep>, SubscriptionError> {
        let Some((at, work)) = self.due_work() else {
            return Ok(None);
        };
        if at > context.now {
            return Ok(None);
        }
        let step = match work {
            DueWork::CheckoutExpiry => DueStep::ExpireCheckout,
            DueWork::TrialReminder => DueStep::Decide(Command::SendTrialReminder),
            DueWork::TrialEnd | DueWork::PeriodEnd if self.cancellation_scheduled() => {
                DueStep::Decide(Command::ApplyScheduledCancellation)
            }
            DueWork::PeriodEnd if self.plan_change_scheduled() => {
                DueStep::Decide(Command::ApplyScheduledPlanChange)
            }
            DueWork::TrialEnd | DueWork::PeriodEnd => {
                let trial = work == DueWork::TrialEnd;
                if self.is_free(context)? {
                    let paid = ChargeOutcome::Paid {
                        settlement: Settlement::Free,
                    };
                    DueStep::Decide(if trial {
                        Command::EndTrial(paid)
                    } else {
                        Command::Renew(paid)
                    })
                } else {
                    let (_, period) =
                        self.next_period()?
                            .ok_or_else(|| SubscriptionError::Internal {
                                reason: format!(
                                    "a {} subscription has no next period",
                                    self.status()
                                ),
                            })?;
                    DueStep::ChargePeriod {
                        purpose: if trial {
                            ChargePurpose::TrialEnd
                        } else {
                            ChargePurpose::Renewal
                        },
                        period,
                    }
                }
            }
            DueWork::DunningRetry => match &self.state {
                SubscriptionState::PastDue(past_due) => DueStep::RetryInvoice {
                    invoice: past_due.dunning.invoice,
                },
                _ => {
                    return Err(SubscriptionError::Internal {
                        reason: format!("a dunning retry is due in status {}", self.status()),
                    });
                }
            },
            DueWork::DunningExhaustion => DueStep::Decide(Command::ExhaustDunning {
                policy: context.policy.dunning.on_exhaustion(),
            }),
        };
        Ok(Some(step))
    }

    /// True if every item's price is zero (such a subscription is never invoiced).
    pub fn is_free(&self, context: &Context<'_>) -> Result<bool, SubscriptionError> {
        for item in &self.items {
            if !context.catalog.price(item.price)?.is_free() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A cancellation is scheduled (active or trialing).
    pub(super) fn cancellation_scheduled(&self) -> bool {
        match &self.state {
            SubscriptionState::Active(active) => active.cancellation.is_some(),
            SubscriptionState::Trialing(trialing) => trialing.cancellation.is_some(),
            SubscriptionState::Draft
            | SubscriptionState::PendingPayment(_)
            | SubscriptionState::PastDue(_)
            | SubscriptionState::Paused(_)
            | SubscriptionState::Canceled(_) => false,
        }
    }

    /// A plan change is scheduled (active).
    pub(super) fn plan_change_scheduled(&self) -> bool {
        matches!(&self.state, SubscriptionState::Active(active) if active.plan_change.is_some())
    }
}
