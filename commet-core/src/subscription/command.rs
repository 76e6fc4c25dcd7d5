//! Commands: everything a subscription can be asked to do, with the facts each one carries.
//!
//! A command is one row of the transition table with the facts it needs (the charged invoice,
//! the decline and the next dunning step, the checkout offered). The engine never builds the
//! charge commands itself: [`Subscription::settle`](super::Subscription::settle) turns a
//! charge's result into them, with the dunning policy, so the facts are the domain's own.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PricedItems;
use super::SubscriptionStatus;
use super::state::PaymentFailure;
use super::transition::Trigger;
use crate::InvalidField;
use crate::dunning::{DunningStep, Exhaustion, SubscriptionOnExhaustion};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::invoice::InvoiceSummary;
use crate::money::Money;
use crate::token::SignedUrl;
use crate::validation::check_url;

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

/// What a checkout link offers, for `checkout.ready` and the pending state. Build it with
/// [`CheckoutOffer::new`], which checks the redirect URLs.
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

impl CheckoutOffer {
    /// An offer of checkout at `url` for `amount` (what completing it charges: see
    /// [`first_charge`](super::first_charge)), made now, expiring after the policy's
    /// `checkout_expires_after` if set. `success_url` and `cancel_url` must be absolute http(s)
    /// URLs (a `javascript:` URL would run in the customer's browser): the error names the field.
    pub fn new(
        url: SignedUrl,
        amount: Money,
        success_url: Option<String>,
        cancel_url: Option<String>,
        context: &super::Context<'_>,
    ) -> Result<CheckoutOffer, InvalidField> {
        let expires_at = match context.policy.checkout_expires_after {
            Some(ttl) => Some(context.now.checked_add_signed(ttl).ok_or_else(|| {
                InvalidField::new("checkout_expires_after", "expires out of range")
            })?),
            None => None,
        };
        for (field, redirect) in [("success_url", &success_url), ("cancel_url", &cancel_url)] {
            if let Some(redirect) = redirect {
                check_url(field, redirect, true)?;
            }
        }
        Ok(CheckoutOffer {
            url,
            amount,
            expires_at,
            success_url,
            cancel_url,
        })
    }
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
    /// Checkout was not completed in time: canceled, and the open first invoice of an
    /// earlier, declined attempt (if any) voided.
    ExpireCheckout {
        /// The subscription's outstanding invoices, to void.
        open_invoices: Vec<InvoiceId>,
    },
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
    /// Dunning's last deadline passed: the last retry failed (that failure is recorded first,
    /// with `RetryFailed` or the period's failed charge, in the same decision), or a hard
    /// decline waited for a new payment method in vain.
    ExhaustDunning {
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
            Command::ExpireCheckout { .. } => Trigger::CheckoutExpired,
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

/// What to do with the open invoice of a past-due subscription when an override moves it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenInvoicePolicy {
    /// Void it: the customer owes nothing for it.
    Void,
    /// Mark it paid outside commet (cash, bank transfer).
    MarkPaidOutOfBand,
}

/// An admin override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUpdate {
    /// The status to set; must be allowed by [`override_allowed`](super::override_allowed).
    pub status: SubscriptionStatus,
    /// Why (required, shown in `subscription.updated`): 1 to 500 characters.
    pub reason: String,
    /// Who (required): a support agent's name or id, a migration script ...
    pub actor: String,
    /// Required when the subscription is past due: what to do with its open invoice.
    pub invoice_policy: Option<OpenInvoicePolicy>,
}
