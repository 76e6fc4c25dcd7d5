//! The plain-data form of an invoice, for stores and serde, and the checks that rebuild an
//! [`Invoice`] from it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::{Dates, Lifecycle};
use super::{
    Invoice, InvoiceError, InvoiceKind, InvoiceNumber, InvoiceParties, InvoiceStatus, LineItem,
    LineRecord, Totals, check_header, check_memo,
};
use crate::calendar::Period;
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::money::{Currency, Money};
use crate::validation::InvalidField;
use crate::validation::check_metadata;

/// An invoice as plain data: what a store keeps in its columns, and the serde form. Every field
/// is public and nothing is checked until [`Invoice::from_record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    /// The id.
    pub id: InvoiceId,
    /// The number; `None` on drafts.
    pub number: Option<String>,
    /// Who pays.
    pub customer: CustomerId,
    /// The subscription billed, if any.
    pub subscription: Option<SubscriptionId>,
    /// The currency of every amount.
    pub currency: Currency,
    /// The lifecycle status.
    pub status: InvoiceStatus,
    /// Why it was issued.
    pub kind: InvoiceKind,
    /// The billing period covered, if any.
    pub period: Option<Period>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was finalized; `None` exactly on drafts.
    pub issued_at: Option<DateTime<Utc>>,
    /// When payment is due; `None` exactly on drafts.
    pub due_at: Option<DateTime<Utc>>,
    /// The lines, in order.
    pub lines: Vec<LineRecord>,
    /// The sum of the line amounts.
    pub subtotal: Money,
    /// The invoice-level discount.
    pub discount: Money,
    /// The invoice-level tax.
    pub tax: Money,
    /// `subtotal - discount + tax`.
    pub total: Money,
    /// The customer credit consumed.
    pub credit_applied: Money,
    /// `max(total, 0) - credit_applied`.
    pub amount_due: Money,
    /// The amount due once paid; zero before.
    pub amount_paid: Money,
    /// When it was paid; `Some` exactly when `paid`.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was voided; `Some` exactly when `void`.
    pub voided_at: Option<DateTime<Utc>>,
    /// When it was written off; `Some` when `uncollectible`, and kept if it is later paid or
    /// voided.
    pub marked_uncollectible_at: Option<DateTime<Utc>>,
    /// A note shown on the invoice.
    pub memo: Option<String>,
    /// Integrator key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// Who sold and who bought, recorded when it left `draft` (`None` on a draft, and on
    /// invoices stored before parties were recorded).
    #[serde(default)]
    pub parties: Option<InvoiceParties>,
    /// The store's version of the row.
    pub version: u64,
}

impl Invoice {
    /// Rebuild an invoice from its plain-data form, refusing anything inconsistent: a line in
    /// another currency ([`InvoiceError::CurrencyMismatch`]), totals that do not follow from the
    /// lines ([`InvoiceError::TotalsMismatch`]), and, naming the field, a number on a draft,
    /// dates or an amount paid that do not fit the status, or anything [`Invoice::draft`] and
    /// [`LineItem::from_record`] refuse.
    pub fn from_record(record: InvoiceRecord) -> Result<Invoice, InvoiceError> {
        check_header(record.kind, record.subscription, record.period)?;
        check_memo(record.memo.as_deref())?;
        check_metadata(&record.metadata)?;
        let currency = record.currency;
        let lines = rebuild_lines(record.lines, currency)?;
        let totals = check_stored_totals(
            currency,
            &lines,
            &StoredTotals {
                subtotal: record.subtotal,
                discount: record.discount,
                tax: record.tax,
                total: record.total,
                credit_applied: record.credit_applied,
                amount_due: record.amount_due,
                amount_paid: record.amount_paid,
            },
        )?;
        let number = match (record.status, record.number) {
            (_, None) => None,
            (InvoiceStatus::Draft, Some(_)) => {
                return Err(InvalidField::new("number", "a draft has no number").into());
            }
            (_, Some(number)) => Some(InvoiceNumber::new(number)?),
        };
        let lifecycle = Lifecycle::from_dates(
            record.status,
            Dates {
                issued_at: record.issued_at,
                due_at: record.due_at,
                paid_at: record.paid_at,
                voided_at: record.voided_at,
                marked_uncollectible_at: record.marked_uncollectible_at,
            },
        )?;
        if record.status == InvoiceStatus::Draft && record.parties.is_some() {
            return Err(InvalidField::new(
                "parties",
                "a draft has no parties yet: they are recorded when it is finalized",
            )
            .into());
        }
        let invoice = Invoice {
            id: record.id,
            number,
            customer: record.customer,
            subscription: record.subscription,
            currency,
            lifecycle,
            kind: record.kind,
            period: record.period,
            created_at: record.created_at,
            lines,
            totals,
            memo: record.memo,
            metadata: record.metadata,
            parties: record.parties,
            version: record.version,
        };
        if record.amount_paid != invoice.amount_paid() {
            return Err(InvalidField::new(
                "amount_paid",
                format_args!(
                    "an invoice that is {} has {} paid, not {}",
                    record.status,
                    invoice.amount_paid(),
                    record.amount_paid
                ),
            )
            .into());
        }
        Ok(invoice)
    }

    /// The plain-data form, for stores.
    #[must_use]
    pub fn to_record(&self) -> InvoiceRecord {
        InvoiceRecord::from(self.clone())
    }
}

impl TryFrom<InvoiceRecord> for Invoice {
    type Error = InvoiceError;

    fn try_from(record: InvoiceRecord) -> Result<Self, Self::Error> {
        Invoice::from_record(record)
    }
}

impl From<Invoice> for InvoiceRecord {
    fn from(invoice: Invoice) -> Self {
        let dates = invoice.lifecycle.dates();
        let amount_paid = invoice.amount_paid();
        InvoiceRecord {
            id: invoice.id,
            number: invoice.number.map(String::from),
            customer: invoice.customer,
            subscription: invoice.subscription,
            currency: invoice.currency,
            status: invoice.lifecycle.status(),
            kind: invoice.kind,
            period: invoice.period,
            created_at: invoice.created_at,
            issued_at: dates.issued_at,
            due_at: dates.due_at,
            lines: invoice.lines.into_iter().map(LineRecord::from).collect(),
            subtotal: invoice.totals.subtotal(),
            discount: invoice.totals.discount(),
            tax: invoice.totals.tax(),
            total: invoice.totals.total(),
            credit_applied: invoice.totals.credit_applied(),
            amount_due: invoice.totals.amount_due(),
            amount_paid,
            paid_at: dates.paid_at,
            voided_at: dates.voided_at,
            marked_uncollectible_at: dates.marked_uncollectible_at,
            memo: invoice.memo,
            metadata: invoice.metadata,
            parties: invoice.parties,
            version: invoice.version,
        }
    }
}

/// Rebuild stored lines, naming the line in errors, and check their currency.
fn rebuild_lines(
    records: Vec<LineRecord>,
    currency: Currency,
) -> Result<Vec<LineItem>, InvoiceError> {
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let line = LineItem::from_record(record).map_err(|error| match error {
                InvoiceError::Invalid(invalid) => {
                    InvoiceError::Invalid(invalid.within(&format!("lines[{index}]")))
                }
                other => other,
            })?;
            if line.currency() == currency {
                Ok(line)
            } else {
                Err(InvoiceError::CurrencyMismatch {
                    expected: currency,
                    actual: line.currency(),
                })
            }
        })
        .collect()
}

/// The amounts a store keeps next to the lines.
struct StoredTotals {
    subtotal: Money,
    discount: Money,
    tax: Money,
    total: Money,
    credit_applied: Money,
    amount_due: Money,
    amount_paid: Money,
}

/// Recompute the totals from the lines and check the stored ones against them.
fn check_stored_totals(
    currency: Currency,
    lines: &[LineItem],
    stored: &StoredTotals,
) -> Result<Totals, InvoiceError> {
    for amount in [
        stored.subtotal,
        stored.total,
        stored.credit_applied,
        stored.amount_due,
        stored.amount_paid,
    ] {
        if amount.currency() != currency {
            return Err(InvoiceError::CurrencyMismatch {
                expected: currency,
                actual: amount.currency(),
            });
        }
    }
    if stored.credit_applied.is_negative() {
        return Err(InvalidField::new("credit_applied", "must not be negative").into());
    }
    // Applying the stored credit as the available credit gives it back unchanged exactly when
    // it is at most the total, which is the rule.
    let totals = Totals::compute(
        currency,
        lines,
        stored.discount,
        stored.tax,
        stored.credit_applied,
    )?;
    for (field, computed, stored) in [
        ("subtotal", totals.subtotal(), stored.subtotal),
        ("total", totals.total(), stored.total),
        (
            "credit_applied",
            totals.credit_applied(),
            stored.credit_applied,
        ),
        ("amount_due", totals.amount_due(), stored.amount_due),
    ] {
        if computed != stored {
            return Err(InvoiceError::TotalsMismatch {
                field,
                computed,
                stored,
            });
        }
    }
    Ok(totals)
}
