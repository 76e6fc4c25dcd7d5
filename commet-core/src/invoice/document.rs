//! The invoice document: everything a rendering of an issued invoice needs, as plain text
//! already formatted (amounts by their currency's minor units, dates as `YYYY-MM-DD`), so that
//! every renderer (the PDF of `commet-pdf`, a web page, an e-mail) shows the same figures.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Invoice, InvoiceStatus, Party};
use crate::InvalidField;
use crate::calendar::Period;
use crate::money::{Money, UnitAmount};

/// One line, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentLine {
    /// What it is for.
    pub description: String,
    /// The span it pays for (`2025-01-01 – 2025-02-01`), if any.
    pub period: Option<String>,
    /// How many (`1`, `3`, `0.5`).
    pub quantity: String,
    /// The amount per unit (`12.50 USD`, or finer: `0.0004 USD`).
    pub unit_amount: String,
    /// The line amount (`37.50 USD`).
    pub amount: String,
}

/// An issued invoice, ready to render. Build it with [`InvoiceDocument::of`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDocument {
    /// The invoice number (`INV-000042`).
    pub number: String,
    /// Its status.
    pub status: InvoiceStatus,
    /// A mark across a settled invoice: `PAID`, `VOID` or `UNCOLLECTIBLE`; `None` while it is
    /// outstanding.
    pub mark: Option<String>,
    /// When it was issued.
    pub issued_on: String,
    /// When it is due.
    pub due_on: String,
    /// When it was paid, if it was.
    pub paid_on: Option<String>,
    /// The billing period, if it bills one.
    pub period: Option<String>,
    /// The seller, as recorded when it was issued.
    pub issuer: Party,
    /// The buyer, as recorded when it was issued.
    pub customer: Party,
    /// The footer recorded with it.
    pub footer: Option<String>,
    /// The memo, if any.
    pub memo: Option<String>,
    /// The currency's code (`USD`).
    pub currency: String,
    /// The lines, in order.
    pub lines: Vec<DocumentLine>,
    /// The sum of the lines.
    pub subtotal: String,
    /// Customer credit applied (zero when none).
    pub credit_applied: String,
    /// The total.
    pub total: String,
    /// What has been paid.
    pub amount_paid: String,
    /// What is still due.
    pub amount_due: String,
}

impl InvoiceDocument {
    /// The document of an issued invoice. A draft has none (no number, no parties yet), nor
    /// has an invoice stored before parties were recorded: both are refused, naming `invoice`.
    pub fn of(invoice: &Invoice) -> Result<InvoiceDocument, InvalidField> {
        let refuse =
            |why: &str| InvalidField::new("invoice", format_args!("{}: {why}", invoice.id()));
        let number = invoice
            .number()
            .ok_or_else(|| refuse("a draft has no document until it is issued"))?;
        let parties = invoice
            .parties()
            .ok_or_else(|| refuse("it was issued before invoices recorded their parties"))?;
        let issued = invoice
            .issued_at()
            .ok_or_else(|| refuse("it has no issue date"))?;
        let due = invoice.due_at().unwrap_or(issued);
        let mark = match invoice.status() {
            InvoiceStatus::Paid => Some("PAID"),
            InvoiceStatus::Void => Some("VOID"),
            InvoiceStatus::Uncollectible => Some("UNCOLLECTIBLE"),
            InvoiceStatus::Draft | InvoiceStatus::Outstanding => None,
        };
        Ok(InvoiceDocument {
            number: number.as_str().to_owned(),
            status: invoice.status(),
            mark: mark.map(str::to_owned),
            issued_on: date(issued),
            due_on: date(due),
            paid_on: invoice.paid_at().map(date),
            period: invoice.period().map(span),
            issuer: parties.issuer.clone(),
            customer: parties.customer.clone(),
            footer: parties.footer.clone(),
            memo: invoice.memo().map(str::to_owned),
            currency: invoice.currency().code().to_owned(),
            lines: invoice
                .lines()
                .iter()
                .map(|line| DocumentLine {
                    description: line.description().to_owned(),
                    period: line.period().map(span),
                    quantity: line.quantity().normalize().to_string(),
                    unit_amount: format_unit_amount(line.unit_amount()),
                    amount: format_money(line.amount()),
                })
                .collect(),
            subtotal: format_money(invoice.subtotal()),
            credit_applied: format_money(invoice.credit_applied()),
            total: format_money(invoice.total()),
            amount_paid: format_money(invoice.amount_paid()),
            amount_due: format_money(invoice.amount_due()),
        })
    }
}

fn date(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d").to_string()
}

fn span(period: Period) -> String {
    format!("{} – {}", date(period.start()), date(period.end()))
}

/// An amount with exactly its currency's minor digits, thousands grouped with commas, then
/// the code: `1,234.50 USD`, `1,980 JPY`, `12.345 KWD`, `-5.00 EUR`.
#[must_use]
pub fn format_money(money: Money) -> String {
    format_decimal(
        money.amount(),
        money.currency().decimals(),
        money.currency().code(),
    )
}

/// A unit amount: at least its currency's minor digits, more when it is finer
/// (`0.0004 USD`), thousands grouped.
#[must_use]
pub fn format_unit_amount(unit: UnitAmount) -> String {
    let amount = unit.amount().normalize();
    let digits = amount.scale().max(unit.currency().decimals());
    format_decimal(amount, digits, unit.currency().code())
}

fn format_decimal(amount: Decimal, digits: u32, code: &str) -> String {
    let mut rounded = amount.round_dp(digits);
    rounded.rescale(digits);
    let text = rounded.abs().to_string();
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text.as_str(), None),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction} {code}"),
        None => format!("{sign}{grouped} {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn amounts_follow_their_currency() {
        assert_eq!(format_money(money("1234.5 USD")), "1,234.50 USD");
        assert_eq!(format_money(money("1980 JPY")), "1,980 JPY");
        assert_eq!(format_money(money("12.345 KWD")), "12.345 KWD");
        assert_eq!(format_money(money("-5 EUR")), "-5.00 EUR");
        assert_eq!(format_money(money("0 USD")), "0.00 USD");
        assert_eq!(format_money(money("1234567.89 USD")), "1,234,567.89 USD");
        assert_eq!(format_money(money("100 USD")), "100.00 USD");
        let fine = UnitAmount::parse_amount("0.0004", Currency::USD).unwrap();
        assert_eq!(format_unit_amount(fine), "0.0004 USD");
        let plain = UnitAmount::parse_amount("12.5", Currency::USD).unwrap();
        assert_eq!(format_unit_amount(plain), "12.50 USD");
    }

    #[test]
    fn a_draft_has_no_document_and_an_issued_invoice_has_one() {
        let mut invoice = super::super::__doc_invoice().unwrap();
        assert_eq!(InvoiceDocument::of(&invoice).unwrap_err().field, "invoice");
        let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
        invoice
            .finalize(now, now, super::super::__doc_parties())
            .unwrap();
        invoice
            .assign_number(super::super::NumberSeries::default().allocate().unwrap())
            .unwrap();
        let document = InvoiceDocument::of(&invoice).unwrap();
        assert_eq!(document.number, "INV-000001");
        assert_eq!(document.issuer.legal_name, "Acme Inc.");
        assert_eq!(document.lines[0].amount, "100.00 USD");
        assert_eq!(document.total, "100.00 USD");
        assert_eq!(document.issued_on, "1970-01-01");
        assert_eq!(document.mark, None);
    }
}
