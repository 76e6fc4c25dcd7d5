//! Invoice totals and the customer credit rule. The rules are on [`Totals`].

use super::InvoiceError;
use super::line::LineItem;
use crate::money::{Currency, Money};
use crate::validation::InvalidField;

/// The amounts of an invoice, computed from its lines.
///
/// Every amount is in the invoice's currency and already rounded (line amounts are rounded
/// once when the line is made), so these are exact sums and differences:
///
/// | amount | rule |
/// |---|---|
/// | `subtotal` | the sum of the line amounts (negative lines included) |
/// | `discount` | an invoice-level amount off: `0 <= discount <= max(subtotal, 0)` |
/// | `tax` | an invoice-level amount: `tax >= 0` |
/// | `total` | `subtotal - discount + tax`; negative when credits outweigh charges |
/// | `credit_applied` | `min(available credit, max(total, 0))`: customer credit consumed |
/// | `amount_due` | `max(total, 0) - credit_applied`: never negative |
/// | `credit_issued` | `max(-total, 0)`: a negative total becomes new customer credit |
///
/// So `total == amount_due + credit_applied - credit_issued` always, and at most one of
/// `credit_applied` and `credit_issued` is non-zero. The customer's credit balance after the
/// invoice is `balance - credit_applied + credit_issued`
/// ([`Totals::customer_credit_after`]). The engine moves the balance in the same commit that
/// finalizes the invoice, and gives `credit_applied` back if the invoice is voided.
///
/// A discount may not exceed the subtotal: a discount can bring a charge down to zero but
/// cannot turn it into credit, which would be money out of nothing.
///
/// ```
/// use commet_core::invoice::Totals;
/// use commet_core::money::{Currency, Money};
///
/// let usd = |text: &str| Money::parse_amount(text, Currency::USD).unwrap();
/// // No lines, so a total of zero: nothing consumes the 30.00 of credit.
/// let empty = Totals::compute(Currency::USD, &[], usd("0"), usd("0"), usd("30"))?;
/// assert_eq!(empty.credit_applied(), usd("0"));
/// assert_eq!(empty.customer_credit_after(usd("30"))?, usd("30"));
/// # Ok::<(), commet_core::invoice::InvoiceError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    subtotal: Money,
    discount: Money,
    tax: Money,
    total: Money,
    credit_applied: Money,
    amount_due: Money,
}

impl Totals {
    /// The totals of an invoice with no lines: all zero.
    #[must_use]
    pub fn zero(currency: Currency) -> Totals {
        let zero = Money::zero(currency);
        Totals {
            subtotal: zero,
            discount: zero,
            tax: zero,
            total: zero,
            credit_applied: zero,
            amount_due: zero,
        }
    }

    /// The totals of `lines` with an invoice-level `discount` and `tax`, consuming at most
    /// `available_credit` of the customer's credit balance.
    ///
    /// Refused: any amount in another currency ([`InvoiceError::CurrencyMismatch`]); a negative
    /// discount, tax or available credit (naming the field); a discount above the subtotal
    /// ([`InvoiceError::DiscountExceedsSubtotal`]); sums beyond the money range.
    pub fn compute(
        currency: Currency,
        lines: &[LineItem],
        discount: Money,
        tax: Money,
        available_credit: Money,
    ) -> Result<Totals, InvoiceError> {
        for amount in [discount, tax, available_credit] {
            same_currency(currency, amount)?;
        }
        for (field, amount) in [
            ("discount", discount),
            ("tax", tax),
            ("available_credit", available_credit),
        ] {
            if amount.is_negative() {
                return Err(InvalidField::new(field, "must not be negative").into());
            }
        }
        let mut subtotal = Money::zero(currency);
        for line in lines {
            same_currency(currency, line.amount())?;
            subtotal = subtotal.checked_add(line.amount())?;
        }
        let zero = Money::zero(currency);
        if discount > subtotal.checked_max(zero)? {
            return Err(InvoiceError::DiscountExceedsSubtotal { discount, subtotal });
        }
        let total = subtotal.checked_sub(discount)?.checked_add(tax)?;
        let payable = total.checked_max(zero)?;
        let credit_applied = available_credit.checked_min(payable)?;
        let amount_due = payable.checked_sub(credit_applied)?;
        Ok(Totals {
            subtotal,
            discount,
            tax,
            total,
            credit_applied,
            amount_due,
        })
    }

    /// The sum of the line amounts.
    #[must_use]
    pub fn subtotal(&self) -> Money {
        self.subtotal
    }

    /// The invoice-level discount.
    #[must_use]
    pub fn discount(&self) -> Money {
        self.discount
    }

    /// The invoice-level tax.
    #[must_use]
    pub fn tax(&self) -> Money {
        self.tax
    }

    /// `subtotal - discount + tax`; negative when credits outweigh charges.
    #[must_use]
    pub fn total(&self) -> Money {
        self.total
    }

    /// The customer credit this invoice consumes.
    #[must_use]
    pub fn credit_applied(&self) -> Money {
        self.credit_applied
    }

    /// What the customer must pay: `max(total, 0) - credit_applied`, never negative.
    #[must_use]
    pub fn amount_due(&self) -> Money {
        self.amount_due
    }

    /// The new customer credit this invoice creates: `max(-total, 0)`.
    #[must_use]
    pub fn credit_issued(&self) -> Money {
        if self.total.is_negative() {
            // Negating an amount that fits in i64 minor units fails only for i64::MIN, which
            // `compute` cannot produce from sums of checked amounts; zero is the safe answer.
            self.total
                .checked_neg()
                .unwrap_or(Money::zero(self.total.currency()))
        } else {
            Money::zero(self.total.currency())
        }
    }

    /// The customer's credit balance after this invoice: `before - credit_applied +
    /// credit_issued`. Refused if `before` is in another currency or smaller than the credit
    /// this invoice consumed (the balance moved since the invoice was computed: recompute).
    pub fn customer_credit_after(&self, before: Money) -> Result<Money, InvoiceError> {
        same_currency(self.total.currency(), before)?;
        let after = before.checked_sub(self.credit_applied)?;
        if after.is_negative() {
            return Err(InvalidField::new(
                "available_credit",
                format_args!(
                    "the invoice consumes {} of credit but the balance is {before}",
                    self.credit_applied
                ),
            )
            .into());
        }
        Ok(after.checked_add(self.credit_issued())?)
    }
}

fn same_currency(expected: Currency, amount: Money) -> Result<(), InvoiceError> {
    if amount.currency() == expected {
        Ok(())
    } else {
        Err(InvoiceError::CurrencyMismatch {
            expected,
            actual: amount.currency(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoice::{LineKind, NewLineItem};
    use crate::money::RoundingPolicy;

    fn usd(text: &str) -> Money {
        Money::parse_amount(text, Currency::USD).unwrap()
    }

    fn line(kind: LineKind, amount: &str) -> LineItem {
        LineItem::new(
            NewLineItem {
                kind,
                description: kind.as_str().into(),
                quantity: 1.into(),
                unit_amount: usd(amount).into(),
                period: None,
                price: None,
            },
            RoundingPolicy::default(),
        )
        .unwrap()
    }

    #[test]
    fn credit_is_consumed_up_to_the_total() {
        let lines = [line(LineKind::PlanBase, "50")];
        let totals =
            Totals::compute(Currency::USD, &lines, usd("5"), usd("2.50"), usd("100")).unwrap();
        // 50.00 - 5.00 + 2.50 = 47.50, all of it covered by the 100.00 of credit.
        assert_eq!(totals.subtotal(), usd("50"));
        assert_eq!(totals.total(), usd("47.50"));
        assert_eq!(totals.credit_applied(), usd("47.50"));
        assert_eq!(totals.amount_due(), usd("0"));
        assert_eq!(totals.customer_credit_after(usd("100")), Ok(usd("52.50")));
    }

    #[test]
    fn a_negative_total_is_issued_as_credit_and_nothing_is_due() {
        let lines = [
            line(LineKind::ProrationCredit, "-80"),
            line(LineKind::PlanBase, "30"),
        ];
        let totals = Totals::compute(Currency::USD, &lines, usd("0"), usd("0"), usd("10")).unwrap();
        assert_eq!(totals.total(), usd("-50"));
        assert_eq!(totals.credit_applied(), usd("0"));
        assert_eq!(totals.amount_due(), usd("0"));
        assert_eq!(totals.credit_issued(), usd("50"));
        assert_eq!(totals.customer_credit_after(usd("10")), Ok(usd("60")));
    }

    #[test]
    fn discounts_cannot_create_credit_and_amounts_cannot_be_negative() {
        let lines = [line(LineKind::PlanBase, "10")];
        assert_eq!(
            Totals::compute(Currency::USD, &lines, usd("10.01"), usd("0"), usd("0")),
            Err(InvoiceError::DiscountExceedsSubtotal {
                discount: usd("10.01"),
                subtotal: usd("10")
            })
        );
        for (discount, tax, credit, field) in [
            ("-1", "0", "0", "discount"),
            ("0", "-1", "0", "tax"),
            ("0", "0", "-1", "available_credit"),
        ] {
            assert!(matches!(
                Totals::compute(Currency::USD, &lines, usd(discount), usd(tax), usd(credit)),
                Err(InvoiceError::Invalid(InvalidField { field: f, .. })) if f == field
            ));
        }
        let eur = Money::from_minor(0, Currency::EUR);
        assert_eq!(
            Totals::compute(Currency::USD, &lines, usd("0"), eur, usd("0")),
            Err(InvoiceError::CurrencyMismatch {
                expected: Currency::USD,
                actual: Currency::EUR
            })
        );
    }

    #[test]
    fn a_balance_smaller_than_the_credit_applied_is_refused() {
        let lines = [line(LineKind::PlanBase, "10")];
        let totals = Totals::compute(Currency::USD, &lines, usd("0"), usd("0"), usd("8")).unwrap();
        assert!(matches!(
            totals.customer_credit_after(usd("7")),
            Err(InvoiceError::Invalid(InvalidField { field, .. })) if field == "available_credit"
        ));
    }
}
