//! Payment attempts: the recorded intent of every charge, its outcome, and the table between.
//!
//! A charge leaves the process, so it is recorded before it is made (DESIGN.md section 2): the
//! engine commits a `pending` attempt with its idempotency key, calls the gateway with that key,
//! and commits the outcome. A crash in between leaves a `pending` attempt that the next run finds
//! (the store lists pending attempts older than a cutoff) and completes by calling the gateway
//! again with the same key: the gateway answers with the first outcome and charges nothing twice.
//!
//! # The attempt's transition table
//!
//! | from | trigger | to |
//! |---|---|---|
//! | `pending` | `paid` | `succeeded` |
//! | `pending` | `declined` | `failed` |
//!
//! `succeeded` and `failed` are final: every other pair is [`IllegalAttemptTransition`]. An
//! attempt moves only through [`PaymentAttempt::complete`], which goes through [`transition`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::define_id;
use crate::dunning::{DeclineClass, classify};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::invoice::Invoice;
use crate::money::Money;
use crate::validation::check_text;

define_id! {
    /// A payment attempt, `pay_...`.
    pub struct PaymentAttemptId = "pay";
}

/// The decline code recorded when the customer has no payment method on file.
pub const NO_PAYMENT_METHOD: &str = "payment_method_missing";

/// Why a charge is made: what its outcome does to the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargePurpose {
    /// The first invoice, at checkout.
    Checkout,
    /// The first invoice, at the end of a trial.
    TrialEnd,
    /// A period's renewal.
    Renewal,
    /// A retry of a past-due invoice (scheduled, manual, or after a new payment method).
    DunningRetry,
    /// An immediate plan change (upgrade, or a trial converted).
    PlanChange,
    /// Resuming a paused subscription.
    Resume,
    /// Reactivating a canceled subscription.
    Reactivation,
}

impl ChargePurpose {
    /// How the charge is described to the payment provider, e.g. `renewal`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            ChargePurpose::Checkout => "checkout",
            ChargePurpose::TrialEnd => "first charge after the trial",
            ChargePurpose::Renewal => "renewal",
            ChargePurpose::DunningRetry => "retry",
            ChargePurpose::PlanChange => "plan change",
            ChargePurpose::Resume => "resume",
            ChargePurpose::Reactivation => "reactivation",
        }
    }

    /// True for the charges of an immediate change (a plan change, resume, reactivation): a
    /// decline means the change did not happen, and its invoice is voided.
    #[must_use]
    pub fn is_immediate_change(self) -> bool {
        match self {
            ChargePurpose::PlanChange | ChargePurpose::Resume | ChargePurpose::Reactivation => true,
            ChargePurpose::Checkout
            | ChargePurpose::TrialEnd
            | ChargePurpose::Renewal
            | ChargePurpose::DunningRetry => false,
        }
    }
}

/// What a charge came to: the payment provider's answer, or the answer without one (nothing
/// to charge, no payment method).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeResult {
    /// Paid; `payment_id` is `None` when nothing was charged (the amount was zero).
    Paid {
        /// The provider's payment id.
        payment_id: Option<String>,
    },
    /// Declined.
    Declined {
        /// The decline code, e.g. `card_declined`.
        code: String,
        /// A message fit to show the customer.
        message: String,
        /// Soft (worth retrying) or hard (not until the payment method changes).
        class: DeclineClass,
    },
}

impl ChargeResult {
    /// The trigger of the attempt's table this result fires.
    #[must_use]
    pub fn trigger(&self) -> AttemptTrigger {
        match self {
            ChargeResult::Paid { .. } => AttemptTrigger::Paid,
            ChargeResult::Declined { .. } => AttemptTrigger::Declined,
        }
    }
}

/// Where an attempt stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Recorded; the gateway's answer is not yet committed.
    Pending,
    /// Paid.
    Succeeded {
        /// The gateway's payment id; `None` when nothing was charged (the invoice was covered by
        /// credit, so the amount was zero).
        payment_id: Option<String>,
    },
    /// Declined or failed.
    Failed {
        /// The decline code, e.g. `card_declined`.
        code: String,
        /// The gateway's message.
        message: String,
    },
}

/// The name of an attempt's status, as the table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// `pending`.
    Pending,
    /// `succeeded`.
    Succeeded,
    /// `failed`.
    Failed,
}

impl AttemptState {
    /// Every state.
    pub const ALL: [AttemptState; 3] = [
        AttemptState::Pending,
        AttemptState::Succeeded,
        AttemptState::Failed,
    ];

    /// The wire name, e.g. `succeeded`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Pending => "pending",
            AttemptState::Succeeded => "succeeded",
            AttemptState::Failed => "failed",
        }
    }
}

impl fmt::Display for AttemptState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AttemptStatus {
    /// The state this status is in.
    #[must_use]
    pub fn state(&self) -> AttemptState {
        match self {
            AttemptStatus::Pending => AttemptState::Pending,
            AttemptStatus::Succeeded { .. } => AttemptState::Succeeded,
            AttemptStatus::Failed { .. } => AttemptState::Failed,
        }
    }
}

/// What moves an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptTrigger {
    /// The charge was paid.
    Paid,
    /// The charge was declined.
    Declined,
}

impl AttemptTrigger {
    /// Every trigger.
    pub const ALL: [AttemptTrigger; 2] = [AttemptTrigger::Paid, AttemptTrigger::Declined];

    /// The wire name, e.g. `paid`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptTrigger::Paid => "paid",
            AttemptTrigger::Declined => "declined",
        }
    }
}

impl fmt::Display for AttemptTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trigger the attempt's table does not allow: the attempt was already completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment attempt cannot be {trigger} once {from}")]
pub struct IllegalAttemptTransition {
    /// The state the attempt was in.
    pub from: AttemptState,
    /// What was attempted.
    pub trigger: AttemptTrigger,
}

/// The attempt's transition table (see the [module docs](self)).
pub fn transition(
    from: AttemptState,
    trigger: AttemptTrigger,
) -> Result<AttemptState, IllegalAttemptTransition> {
    match (from, trigger) {
        (AttemptState::Pending, AttemptTrigger::Paid) => Ok(AttemptState::Succeeded),
        (AttemptState::Pending, AttemptTrigger::Declined) => Ok(AttemptState::Failed),
        (AttemptState::Succeeded | AttemptState::Failed, _) => {
            Err(IllegalAttemptTransition { from, trigger })
        }
    }
}

/// One charge of one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    /// The id.
    pub id: PaymentAttemptId,
    /// The invoice charged.
    pub invoice: InvoiceId,
    /// Who pays.
    pub customer: CustomerId,
    /// The subscription, if the invoice bills one.
    pub subscription: Option<SubscriptionId>,
    /// Why the charge is made.
    pub purpose: ChargePurpose,
    /// The attempt number for this invoice: 1 for the first charge.
    pub attempt: u32,
    /// The amount charged.
    pub amount: Money,
    /// The gateway's reference to the payment method charged, if any.
    pub payment_method: Option<String>,
    /// The outcome so far. Changes only through [`PaymentAttempt::complete`].
    pub status: AttemptStatus,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When its outcome was recorded.
    pub completed_at: Option<DateTime<Utc>>,
    /// The stored version: 0 before the first write.
    pub version: u64,
}

impl PaymentAttempt {
    /// A pending attempt to charge what `invoice` has due, with `payment_method` (the one on
    /// file, if any), numbered after `earlier` (the invoice's attempts so far).
    #[must_use]
    pub fn pending(
        id: PaymentAttemptId,
        invoice: &Invoice,
        payment_method: Option<&str>,
        purpose: ChargePurpose,
        earlier: &[PaymentAttempt],
        now: DateTime<Utc>,
    ) -> PaymentAttempt {
        PaymentAttempt {
            id,
            invoice: invoice.id(),
            customer: invoice.customer(),
            subscription: invoice.subscription(),
            purpose,
            attempt: PaymentAttempt::next_number(earlier),
            amount: invoice.amount_due(),
            payment_method: payment_method.map(str::to_owned),
            status: AttemptStatus::Pending,
            created_at: now,
            completed_at: None,
            version: 0,
        }
    }

    /// The number of the next attempt on an invoice: one more than the attempts recorded.
    #[must_use]
    pub fn next_number(earlier: &[PaymentAttempt]) -> u32 {
        earlier
            .iter()
            .map(|attempt| attempt.attempt)
            .max()
            .map_or(1, |last| last.saturating_add(1))
    }

    /// The idempotency key of a charge, derived from (invoice, attempt): a retried or
    /// recovered call never charges twice, and two attempts never share a key.
    #[must_use]
    pub fn key_for(invoice: InvoiceId, attempt: u32) -> String {
        format!("{invoice}:{attempt}")
    }

    /// This attempt's idempotency key; stores keep it unique.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        PaymentAttempt::key_for(self.invoice, self.attempt)
    }

    /// The answer when no payment provider needs to be asked: paid for a zero amount (all
    /// covered by credit), a hard decline [`NO_PAYMENT_METHOD`] without a payment method.
    /// `None`: ask the provider.
    #[must_use]
    pub fn result_without_gateway(&self) -> Option<ChargeResult> {
        if self.amount.is_zero() {
            return Some(ChargeResult::Paid { payment_id: None });
        }
        if self.payment_method.is_none() {
            return Some(ChargeResult::Declined {
                code: NO_PAYMENT_METHOD.into(),
                message: "No payment method is on file.".into(),
                class: DeclineClass::Hard,
            });
        }
        None
    }

    /// Record the charge's result at `now`, through the attempt's table: a completed attempt
    /// is [`IllegalAttemptTransition`] and unchanged.
    pub fn complete(
        &mut self,
        result: &ChargeResult,
        now: DateTime<Utc>,
    ) -> Result<(), IllegalAttemptTransition> {
        transition(self.status.state(), result.trigger())?;
        self.status = match result {
            ChargeResult::Paid { payment_id } => AttemptStatus::Succeeded {
                payment_id: payment_id.clone(),
            },
            ChargeResult::Declined { code, message, .. } => AttemptStatus::Failed {
                code: code.clone(),
                message: message.clone(),
            },
        };
        self.completed_at = Some(now);
        Ok(())
    }

    /// Check the fields a store persists: a positive attempt number, a completion time exactly
    /// when the attempt is no longer pending, sensible texts.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.attempt == 0 {
            return Err(InvalidField::new("attempt", "attempts are numbered from 1"));
        }
        if self.amount.is_negative() {
            return Err(InvalidField::new("amount", "must not be negative"));
        }
        if let Some(method) = &self.payment_method {
            check_text("payment_method", method, true, 255)?;
        }
        match (&self.status, self.completed_at) {
            (AttemptStatus::Pending, None)
            | (AttemptStatus::Succeeded { .. } | AttemptStatus::Failed { .. }, Some(_)) => {}
            (AttemptStatus::Pending, Some(_)) => {
                return Err(InvalidField::new(
                    "completed_at",
                    "a pending attempt is not completed",
                ));
            }
            (_, None) => {
                return Err(InvalidField::new(
                    "completed_at",
                    "a completed attempt needs it",
                ));
            }
        }
        match &self.status {
            AttemptStatus::Pending | AttemptStatus::Succeeded { payment_id: None } => Ok(()),
            AttemptStatus::Succeeded {
                payment_id: Some(payment_id),
            } => check_text("payment_id", payment_id, true, 255),
            AttemptStatus::Failed { code, message } => {
                check_text("code", code, true, 100)?;
                check_text("message", message, false, 1_000)
            }
        }
    }

    /// When a charge still pending is taken to be abandoned (its process died) and is completed
    /// by the due work with the same key: `grace` after it was recorded.
    #[must_use]
    pub fn abandoned_at(&self, grace: chrono::TimeDelta) -> Option<DateTime<Utc>> {
        self.created_at.checked_add_signed(grace)
    }

    /// True while the gateway's answer is not committed.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        matches!(self.status, AttemptStatus::Pending)
    }

    /// The class of a failed attempt's decline (soft for anything else).
    #[must_use]
    pub fn decline_class(&self) -> DeclineClass {
        match &self.status {
            AttemptStatus::Failed { code, .. } => classify(code),
            AttemptStatus::Pending | AttemptStatus::Succeeded { .. } => DeclineClass::Soft,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::IdGenerator;

    #[test]
    fn the_table_in_the_docs_is_the_table_in_the_code() {
        let mut rows = Vec::new();
        for from in AttemptState::ALL {
            for trigger in AttemptTrigger::ALL {
                if let Ok(to) = transition(from, trigger) {
                    rows.push(format!("//! | `{from}` | `{trigger}` | `{to}` |"));
                }
            }
        }
        let source = include_str!("payment.rs");
        let documented: Vec<&str> = source
            .lines()
            .filter(|line| line.starts_with("//! | `"))
            .collect();
        assert_eq!(documented, rows);
    }

    #[test]
    fn a_completed_attempt_cannot_be_completed_again() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let ids = IdGenerator::seeded(3);
        let invoice = crate::invoice::__doc_invoice().unwrap();
        let mut attempt = PaymentAttempt::pending(
            ids.next(now),
            &invoice,
            Some("pm_card_visa"),
            ChargePurpose::Renewal,
            &[],
            now,
        );
        assert_eq!(attempt.attempt, 1);
        let paid = ChargeResult::Paid {
            payment_id: Some("pay_1".into()),
        };
        attempt.complete(&paid, now).unwrap();
        assert_eq!(
            attempt.status,
            AttemptStatus::Succeeded {
                payment_id: Some("pay_1".into())
            }
        );
        let before = attempt.clone();
        let declined = ChargeResult::Declined {
            code: "card_declined".into(),
            message: "no".into(),
            class: DeclineClass::Soft,
        };
        assert_eq!(
            attempt.complete(&declined, now),
            Err(IllegalAttemptTransition {
                from: AttemptState::Succeeded,
                trigger: AttemptTrigger::Declined
            })
        );
        assert_eq!(attempt, before, "a refused trigger changes nothing");
        assert_eq!(PaymentAttempt::next_number(&[before]), 2);
    }

    #[test]
    fn no_provider_is_asked_for_nothing_or_without_a_method() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let ids = IdGenerator::seeded(4);
        let invoice = crate::invoice::__doc_invoice().unwrap();
        let with = PaymentAttempt::pending(
            ids.next(now),
            &invoice,
            Some("pm_card_visa"),
            ChargePurpose::Renewal,
            &[],
            now,
        );
        assert_eq!(with.result_without_gateway(), None);
        let without = PaymentAttempt {
            payment_method: None,
            ..with.clone()
        };
        assert!(matches!(
            without.result_without_gateway(),
            Some(ChargeResult::Declined { code, class: DeclineClass::Hard, .. }) if code == NO_PAYMENT_METHOD
        ));
        let free = PaymentAttempt {
            amount: Money::zero(with.amount.currency()),
            payment_method: None,
            ..with
        };
        assert_eq!(
            free.result_without_gateway(),
            Some(ChargeResult::Paid { payment_id: None })
        );
    }
}
