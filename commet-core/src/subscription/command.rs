//! Commands: everything a subscription can be asked to do, with the facts each one carries.
//!
//! The engine gathers the facts (the charged invoice, the gateway's decline, the next retry from
//! the dunning policy) and hands them over in a command; the decision stays pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PricedItems;
use super::admin::AdminUpdate;
use super::state::PaymentFailure;
use super::transition::Trigger;
use crate::InvalidField;
use crate::calendar::Period;
use crate::dunning::{DunningStep, Exhaustion, SubscriptionOnExhaustion};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::invoice::LineKind;
use crate::invoice::{Invoice, InvoiceStatus};
use crate::money::Money;
use crate::token::SignedUrl;

/// The invoice a transition settles or fails to collect, as events report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSummary {
    /// The invoice.
    pub id: InvoiceId,
    /// Its number, e.g. `INV-000042`.
    pub number: String,
    /// Its status.
    pub status: InvoiceStatus,
    /// The sum of its lines.
    pub subtotal: Money,
    /// Its total.
    pub total: Money,
    /// Proration credit on it, as a positive amount.
    pub credited: Money,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// What was to be charged after credit.
    pub amount_due: Money,
    /// What was paid (zero for a failed charge).
    pub amount_paid: Money,
    /// The period it bills, if any.
    pub period: Option<Period>,
    /// The gateway's payment id, for a paid invoice.
    pub payment_id: Option<String>,
}

impl InvoiceSummary {
    /// The summary of a numbered invoice (and the gateway's payment id, if it was charged). The
    /// engine numbers an invoice in the commit that records the charge intent, before the
    /// decision whose events name it, so events always carry real numbers.
    pub fn of(
        invoice: &Invoice,
        payment_id: Option<String>,
    ) -> Result<InvoiceSummary, InvalidField> {
        let number = invoice.number().ok_or_else(|| {
            InvalidField::new("invoice", "must be numbered before events can name it")
        })?;
        let credited = invoice
            .lines()
            .iter()
            .filter(|line| line.kind() == LineKind::ProrationCredit)
            .try_fold(Money::zero(invoice.currency()), |sum, line| {
                sum.checked_sub(line.amount())
            })
            .map_err(|e| InvalidField::new("invoice", e))?;
        Ok(InvoiceSummary {
            id: invoice.id(),
            number: number.as_str().to_owned(),
            status: invoice.status(),
            subtotal: invoice.subtotal(),
            total: invoice.total(),
            credited,
            issued_at: invoice.issued_at().unwrap_or(invoice.created_at()),
            due_at: invoice.due_at().unwrap_or(invoice.created_at()),
            amount_due: invoice.amount_due(),
            amount_paid: invoice.amount_paid(),
            period: invoice.period(),
            payment_id,
        })
    }
}

/// How a transition that bills a period is settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "invoice", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a short-lived command value
pub enum Settlement {
    /// An invoice was paid (or needed no charge: covered by credit).
    Invoice(InvoiceSummary),
    /// Nothing to bill: every price is zero.
    Free,
}

/// A charge that failed, and what dunning does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCharge {
    /// The invoice that was not paid.
    pub invoice: InvoiceSummary,
    /// Why.
    pub failure: PaymentFailure,
    /// The next step, from the engine's dunning policy: a retry or waiting for a new payment
    /// method (when the policy says exhausted, pass `WaitForPaymentMethod` with the deadline
    /// `now` and exhaust dunning in the same commit).
    pub next: DunningStep,
    /// Where the customer can pay or update the payment method.
    pub recovery_url: Option<SignedUrl>,
}

/// The result of a charge at a period boundary (trial end, renewal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    /// Paid (or free).
    Paid {
        /// How.
        settlement: Settlement,
    },
    /// Failed.
    Failed(FailedCharge),
}

/// How a checkout was completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a short-lived command value
pub enum CheckoutCompletion {
    /// The first invoice was paid: active from now.
    Paid {
        /// The paid invoice.
        invoice: InvoiceSummary,
    },
    /// The price has a trial: the payment method was saved and the trial runs until `ends_at`.
    Trial {
        /// When the trial ends.
        ends_at: DateTime<Utc>,
    },
}

/// A change of the subscription's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    /// The items after the change, checked against their prices.
    pub items: PricedItems,
}

/// What a checkout link offers, for `checkout.ready` and the pending state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutOffer {
    /// The checkout URL (signed, expiring).
    pub url: SignedUrl,
    /// What checkout will charge (zero for a trial).
    pub amount: Money,
    /// When the subscription is canceled if checkout is not completed (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Where checkout sends the customer after success.
    pub success_url: Option<String>,
    /// Where checkout sends the customer if they leave.
    pub cancel_url: Option<String>,
}

/// A subscription to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Its id.
    pub id: SubscriptionId,
    /// The customer.
    pub customer: CustomerId,
    /// The items, checked against their prices.
    pub items: PricedItems,
    /// Create as a draft, to be submitted later.
    pub draft: bool,
    /// The checkout to offer (required for a paid subscription that is not a draft).
    pub checkout: Option<CheckoutOffer>,
    /// Free-form key/value pairs.
    pub metadata: BTreeMap<String, String>,
}

/// Everything a subscription can be asked to do after creation.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Offer a draft to the customer.
    Submit {
        /// The checkout link.
        checkout: CheckoutOffer,
    },
    /// The customer completed checkout.
    CompleteCheckout(CheckoutCompletion),
    /// Checkout was not completed in time.
    ExpireCheckout,
    /// Send `trial.will_end`.
    SendTrialReminder,
    /// The trial ended; the first charge was attempted.
    EndTrial(ChargeOutcome),
    /// The plan changed during the trial: converted to a paid period now.
    ConvertTrial {
        /// The new items.
        change: PlanChange,
        /// The paid first invoice of the new plan.
        settlement: Settlement,
    },
    /// The period ended; the renewal was attempted.
    Renew(ChargeOutcome),
    /// A dunning retry failed (not the last).
    RetryFailed(FailedCharge),
    /// A retry was paid.
    Recover {
        /// The paid invoice.
        invoice: InvoiceSummary,
    },
    /// The last retry failed, or a hard decline's deadline passed.
    ExhaustDunning {
        /// The failure of the last retry, if exhaustion follows one (`None`: a hard decline
        /// waited for a new payment method until the deadline).
        final_failure: Option<PaymentFailure>,
        /// What the dunning policy does on exhaustion.
        policy: Exhaustion,
    },
    /// Cancel at the end of the period (or trial).
    ScheduleCancellation {
        /// A note.
        comment: Option<String>,
    },
    /// Revoke a scheduled cancellation.
    RevokeCancellation,
    /// The period (or trial) ended with a cancellation scheduled.
    ApplyScheduledCancellation,
    /// Cancel now, voiding open invoices.
    CancelNow {
        /// A note.
        comment: Option<String>,
        /// Outstanding invoices to void (a past-due subscription's invoice is always voided).
        open_invoices: Vec<InvoiceId>,
    },
    /// Pause.
    Pause,
    /// Resume, billing a new period from now.
    Resume {
        /// The paid invoice of the new period.
        settlement: Settlement,
    },
    /// Reactivate a canceled subscription, billing a new period from now.
    Reactivate {
        /// The paid invoice of the new period.
        settlement: Settlement,
    },
    /// Upgrade now, with proration; the period resets to now.
    Upgrade {
        /// The new items.
        change: PlanChange,
        /// The paid proration invoice.
        settlement: Settlement,
    },
    /// Downgrade at the end of the period.
    ScheduleDowngrade {
        /// The new items.
        change: PlanChange,
    },
    /// Revoke a scheduled plan change.
    RevokePlanChange,
    /// The period ended with a plan change scheduled.
    ApplyScheduledPlanChange,
    /// The admin override.
    Override(AdminUpdate),
}

impl Command {
    /// The row of the transition table this command asks for.
    #[must_use]
    pub fn trigger(&self) -> Trigger {
        match self {
            Command::Submit { .. } => Trigger::Submit,
            Command::CompleteCheckout(CheckoutCompletion::Paid { .. }) => Trigger::CheckoutPaid,
            Command::CompleteCheckout(CheckoutCompletion::Trial { .. }) => Trigger::CheckoutTrial,
            Command::ExpireCheckout => Trigger::CheckoutExpired,
            Command::SendTrialReminder => Trigger::TrialReminder,
            Command::EndTrial(ChargeOutcome::Paid { .. }) => Trigger::TrialEndPaid,
            Command::EndTrial(ChargeOutcome::Failed(_)) => Trigger::TrialEndFailed,
            Command::ConvertTrial { .. } => Trigger::TrialConverted,
            Command::Renew(ChargeOutcome::Paid { .. }) => Trigger::RenewalPaid,
            Command::Renew(ChargeOutcome::Failed(_)) => Trigger::RenewalFailed,
            Command::RetryFailed(_) => Trigger::RetryFailed,
            Command::Recover { .. } => Trigger::PaymentRecovered,
            Command::ExhaustDunning { policy, .. } => match policy.subscription {
                SubscriptionOnExhaustion::Cancel => Trigger::DunningExhausted,
                SubscriptionOnExhaustion::KeepPastDue => Trigger::DunningExhaustedKeptPastDue,
            },
            Command::ScheduleCancellation { .. } => Trigger::ScheduleCancellation,
            Command::RevokeCancellation => Trigger::RevokeCancellation,
            Command::ApplyScheduledCancellation => Trigger::ScheduledCancellationTakesEffect,
            Command::CancelNow { .. } => Trigger::CancelNow,
            Command::Pause => Trigger::Pause,
            Command::Resume { .. } => Trigger::Resume,
            Command::Reactivate { .. } => Trigger::Reactivate,
            Command::Upgrade { .. } => Trigger::Upgrade,
            Command::ScheduleDowngrade { .. } => Trigger::ScheduleDowngrade,
            Command::RevokePlanChange => Trigger::RevokePlanChange,
            Command::ApplyScheduledPlanChange => Trigger::ScheduledPlanChangeTakesEffect,
            Command::Override(update) => Trigger::Override(update.status),
        }
    }
}

/// The invoice a settlement names, if any.
pub(super) fn settled(settlement: &Settlement) -> Option<&InvoiceSummary> {
    match settlement {
        Settlement::Invoice(invoice) => Some(invoice),
        Settlement::Free => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::invoice::NumberSeries;

    #[test]
    fn a_summary_needs_a_numbered_invoice_and_copies_its_figures() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut invoice = crate::invoice::__doc_invoice().unwrap();
        assert_eq!(
            InvoiceSummary::of(&invoice, None).unwrap_err().field,
            "invoice"
        );
        invoice.finalize(now, now).unwrap();
        invoice
            .assign_number(NumberSeries::default().allocate().unwrap())
            .unwrap();
        invoice.mark_paid(now, invoice.amount_due()).unwrap();
        let summary = InvoiceSummary::of(&invoice, Some("pay_1".into())).unwrap();
        assert_eq!(summary.number, "INV-000001");
        assert_eq!(summary.status, InvoiceStatus::Paid);
        assert_eq!(summary.total, invoice.total());
        assert_eq!(summary.amount_paid, invoice.amount_due());
        assert_eq!(summary.credited, Money::zero(invoice.currency()));
        assert_eq!(summary.issued_at, now);
    }
}
