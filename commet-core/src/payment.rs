//! Payment attempts: the recorded intent of every charge, and its outcome.
//!
//! A charge leaves the process, so it is recorded before it is made (DESIGN.md section 2): the
//! engine commits a `pending` attempt with its idempotency key, calls the gateway with that key,
//! and commits the outcome. A crash in between leaves a `pending` attempt that the next run finds
//! (the store lists pending attempts older than a cutoff) and completes by calling the gateway
//! again with the same key: the gateway answers with the first outcome and charges nothing twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::define_id;
use crate::dunning::{DeclineClass, classify};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::money::Money;
use crate::validation::check_text;

define_id! {
    /// A payment attempt, `pay_...`.
    pub struct PaymentAttemptId = "pay";
}

/// Why a charge is made: what the engine does once its outcome is known.
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
    /// The outcome so far.
    pub status: AttemptStatus,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When its outcome was recorded.
    pub completed_at: Option<DateTime<Utc>>,
    /// The stored version: 0 before the first write.
    pub version: u64,
}

impl PaymentAttempt {
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
