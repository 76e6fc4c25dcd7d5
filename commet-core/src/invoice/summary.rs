//! The invoice as events and decisions report it: its number and figures, without its lines.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Invoice, InvoiceStatus, LineKind};
use crate::InvalidField;
use crate::calendar::Period;
use crate::ids::InvoiceId;
use crate::money::Money;

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
        invoice
            .finalize(now, now, crate::invoice::__doc_parties())
            .unwrap();
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
