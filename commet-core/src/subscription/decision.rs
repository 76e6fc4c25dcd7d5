//! What a decision needs and what it returns: [`Context`] in, [`Decision`] (or a
//! [`SubscriptionError`]) out, and the [`InvoiceAction`]s a decision asks for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Subscription;
use super::transition::{IllegalTransition, Trigger};
use crate::InvalidField;
use crate::calendar::CalendarError;
use crate::catalog::{Catalog, NotInCatalog};
use crate::customer::Customer;
use crate::event::Event;
use crate::event::payload::InvoiceData;
use crate::ids::{IdGenerator, InvoiceId};
use crate::invoice::{Invoice, InvoiceError, InvoiceSummary};
use crate::payment::IllegalAttemptTransition;
use crate::policy::BillingPolicy;
use crate::proration::ProrationError;

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
    /// A charge for the subscription is recorded and not yet settled (HTTP 409): the
    /// subscription takes no other command until it is. Try again in a moment; a charge whose
    /// process died is completed by the engine's due work after its recovery grace.
    #[error("a payment for this subscription is in progress (attempt {attempt})")]
    ChargeInFlight {
        /// The idempotency key of the attempt under way, `{invoice}:{attempt}`.
        attempt: String,
    },
    /// A plan or price the decision needs is not in the catalog it was given: read the catalog
    /// again (it was defined since) and decide again.
    #[error(transparent)]
    NotInCatalog(#[from] NotInCatalog),
    /// An invoice the decision builds or settles refused a step (its figures, or its table).
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    /// A plan change could not be priced.
    #[error(transparent)]
    Proration(#[from] ProrationError),
    /// A payment attempt was already completed.
    #[error(transparent)]
    Attempt(#[from] IllegalAttemptTransition),
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

/// What every decision needs besides the command and the aggregates it is about.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The instant of the decision.
    pub now: DateTime<Utc>,
    /// The catalog: the prices a subscription's items bill at, and the plans events name.
    pub catalog: &'a Catalog,
    /// The rules the engine is configured with (rounding, dunning, checkout expiry, links).
    pub policy: &'a BillingPolicy,
    /// The payment gateway's name, e.g. `stripe`, for `provider` fields.
    pub provider: Option<&'a str>,
    /// Where the ids of new invoices and payment attempts come from.
    pub ids: &'a IdGenerator,
}

/// What to do with an invoice as part of a decision; the engine loads the invoice and its
/// customer and applies it with [`InvoiceAction::apply`], in the same commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "invoice", rename_all = "snake_case")]
pub enum InvoiceAction {
    /// Void it (it will never be collected): the credit it used goes back to the customer, and
    /// `invoice.voided` is emitted.
    Void(InvoiceId),
    /// Mark it paid outside commet (cash, bank transfer, a refund settled by hand).
    MarkPaidOutOfBand(InvoiceId),
    /// Mark it uncollectible (dunning exhausted); it can still be paid or voided later.
    MarkUncollectible(InvoiceId),
}

impl InvoiceAction {
    /// The invoice acted on.
    #[must_use]
    pub fn invoice(self) -> InvoiceId {
        match self {
            InvoiceAction::Void(id)
            | InvoiceAction::MarkPaidOutOfBand(id)
            | InvoiceAction::MarkUncollectible(id) => id,
        }
    }

    /// Apply the action to `invoice` (the one it names) at `now`, returning credit to
    /// `customer` (the invoice's) where the action gives it back; the events it emits.
    pub fn apply(
        self,
        invoice: &mut Invoice,
        customer: &mut Customer,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, SubscriptionError> {
        if invoice.id() != self.invoice() || invoice.customer() != customer.id() {
            return Err(SubscriptionError::Internal {
                reason: format!(
                    "{self:?} was applied to invoice {} of customer {}",
                    invoice.id(),
                    customer.id()
                ),
            });
        }
        match self {
            InvoiceAction::Void(_) => void(invoice, customer, now).map(|event| vec![event]),
            InvoiceAction::MarkPaidOutOfBand(_) => {
                invoice.mark_paid(now, invoice.amount_due())?;
                Ok(Vec::new())
            }
            InvoiceAction::MarkUncollectible(_) => {
                invoice.mark_uncollectible(now)?;
                Ok(Vec::new())
            }
        }
    }
}

/// Void `invoice`: nothing is owed any more, the credit it used goes back to `customer`, and
/// `invoice.voided` announces it. The one place an invoice is voided.
pub fn void(
    invoice: &mut Invoice,
    customer: &mut Customer,
    now: DateTime<Utc>,
) -> Result<Event, SubscriptionError> {
    invoice.void(now)?;
    let returned = invoice.credit_applied();
    if returned.is_positive() {
        customer.adjust_credit(returned, now)?;
    }
    let summary = InvoiceSummary::of(invoice, None)?;
    Ok(Event::InvoiceVoided(InvoiceData::of(
        &summary,
        invoice.customer(),
        invoice.subscription(),
    )))
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
    pub events: Vec<Event>,
    /// What to do with invoices.
    pub invoice_actions: Vec<InvoiceAction>,
}
