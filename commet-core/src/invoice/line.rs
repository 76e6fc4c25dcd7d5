//! Invoice lines: what is charged or credited, how many, at what unit amount.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::InvoiceError;
use crate::calendar::Period;
use crate::ids::PriceId;
use crate::money::{Currency, Money, MoneyError, RoundingPolicy, UnitAmount};
use crate::validation::{InvalidField, check_text};

/// The longest line description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// What a line is for. The kind fixes the sign of the unit amount:
///
/// | kind | unit amount |
/// |---|---|
/// | `plan_base`, `seats`, `proration_charge`, `one_time` | zero or more (a charge) |
/// | `proration_credit`, `discount` | zero or less (a credit) |
/// | `adjustment` | either sign |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A flat price for a period, quantity 1.
    PlanBase,
    /// A per-seat price for a period, quantity = seats.
    Seats,
    /// The unused part of a price already paid, given back when the plan changes.
    ProrationCredit,
    /// A part of a period charged when the plan changes mid-period. Commet's upgrades charge
    /// the new price for a whole new period (a `plan_base` or `seats` line), so the engine does
    /// not produce this kind today; it exists for imported invoices and manual corrections.
    ProrationCharge,
    /// A discount shown as its own line (a negative amount, part of the subtotal). An
    /// invoice-level discount is the invoice's `discount` amount instead.
    Discount,
    /// A manual correction, of either sign.
    Adjustment,
    /// A one-off charge outside any period.
    OneTime,
}

impl LineKind {
    /// Every kind.
    pub const ALL: [LineKind; 7] = [
        LineKind::PlanBase,
        LineKind::Seats,
        LineKind::ProrationCredit,
        LineKind::ProrationCharge,
        LineKind::Discount,
        LineKind::Adjustment,
        LineKind::OneTime,
    ];

    /// The serialized name, such as `plan_base`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::PlanBase => "plan_base",
            LineKind::Seats => "seats",
            LineKind::ProrationCredit => "proration_credit",
            LineKind::ProrationCharge => "proration_charge",
            LineKind::Discount => "discount",
            LineKind::Adjustment => "adjustment",
            LineKind::OneTime => "one_time",
        }
    }

    /// True if a line of this kind may carry `unit_amount` (see the sign table above).
    #[must_use]
    pub fn allows(self, unit_amount: UnitAmount) -> bool {
        match self {
            LineKind::PlanBase
            | LineKind::Seats
            | LineKind::ProrationCharge
            | LineKind::OneTime => !unit_amount.is_negative(),
            LineKind::ProrationCredit | LineKind::Discount => {
                unit_amount.is_negative() || unit_amount.is_zero()
            }
            LineKind::Adjustment => true,
        }
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a new line is made of; [`LineItem::new`] computes its amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLineItem {
    /// What the line is for.
    pub kind: LineKind,
    /// Shown to the customer: 1 to [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: String,
    /// How many units: zero or more, any precision (seats, hours, a fraction of a period).
    pub quantity: Decimal,
    /// The amount per unit, possibly finer than the currency; its sign must suit the kind.
    pub unit_amount: UnitAmount,
    /// The span of time the line pays for, if any.
    pub period: Option<Period>,
    /// The catalog price the line comes from, if any.
    pub price: Option<PriceId>,
}

/// One line of an invoice. Its amount is `unit_amount x quantity`, rounded once to the
/// currency's minor unit; an invoice's subtotal is the exact sum of its line amounts.
///
/// ```
/// use commet_core::invoice::{LineItem, LineKind, NewLineItem};
/// use commet_core::money::RoundingPolicy;
///
/// let calls = LineItem::new(
///     NewLineItem {
///         kind: LineKind::OneTime,
///         description: "API calls".into(),
///         quantity: 12_345.into(),
///         unit_amount: "0.0004 USD".parse()?,
///         period: None,
///         price: None,
///     },
///     RoundingPolicy::HalfAwayFromZero,
/// )?;
/// assert_eq!(calls.amount().to_string(), "4.94 USD"); // 4.938, rounded once
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LineRecord", into = "LineRecord")]
pub struct LineItem {
    kind: LineKind,
    description: String,
    quantity: Decimal,
    unit_amount: UnitAmount,
    amount: Money,
    period: Option<Period>,
    price: Option<PriceId>,
}

/// A line as plain data, for stores and serde: every field public, nothing checked.
/// [`LineItem::from_record`] checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRecord {
    /// What the line is for.
    pub kind: LineKind,
    /// Shown to the customer.
    pub description: String,
    /// How many units, as a decimal string in JSON.
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    /// The amount per unit.
    pub unit_amount: UnitAmount,
    /// The line amount: `unit_amount x quantity`, rounded to the currency.
    pub amount: Money,
    /// The span of time the line pays for, if any.
    pub period: Option<Period>,
    /// The catalog price the line comes from, if any.
    pub price: Option<PriceId>,
}

impl LineItem {
    /// A line whose amount is `unit_amount x quantity` rounded once with `policy`.
    ///
    /// Refused, naming the field: an empty or over-long description, a negative quantity, a
    /// unit amount whose sign does not suit the kind; an amount beyond the money range is
    /// [`InvoiceError::Money`].
    pub fn new(line: NewLineItem, policy: RoundingPolicy) -> Result<LineItem, InvoiceError> {
        check_parts(
            line.kind,
            &line.description,
            line.quantity,
            line.unit_amount,
        )?;
        let amount = line.unit_amount.times(line.quantity, policy)?;
        Ok(LineItem {
            kind: line.kind,
            description: line.description,
            quantity: line.quantity,
            unit_amount: line.unit_amount,
            amount,
            period: line.period,
            price: line.price,
        })
    }

    /// Rebuild a stored line, checking everything [`LineItem::new`] checks, and that the stored
    /// amount is in the unit amount's currency and is `unit_amount x quantity` rounded to the
    /// minor unit by one of the [`RoundingPolicy`] rules (a record does not say which policy
    /// the engine used, so either is accepted).
    pub fn from_record(record: LineRecord) -> Result<LineItem, InvoiceError> {
        check_parts(
            record.kind,
            &record.description,
            record.quantity,
            record.unit_amount,
        )?;
        let currency = record.unit_amount.currency();
        if record.amount.currency() != currency {
            return Err(InvoiceError::CurrencyMismatch {
                expected: currency,
                actual: record.amount.currency(),
            });
        }
        let exact = record
            .unit_amount
            .amount()
            .checked_mul(record.quantity)
            .ok_or(MoneyError::Overflow)?;
        let rounded_by = |policy| Money::round(exact, currency, policy);
        if rounded_by(RoundingPolicy::HalfAwayFromZero)? != record.amount
            && rounded_by(RoundingPolicy::HalfEven)? != record.amount
        {
            return Err(InvalidField::new(
                "amount",
                format_args!(
                    "{} is not {} x {} rounded to the minor unit",
                    record.amount, record.quantity, record.unit_amount
                ),
            )
            .into());
        }
        Ok(LineItem {
            kind: record.kind,
            description: record.description,
            quantity: record.quantity,
            unit_amount: record.unit_amount,
            amount: record.amount,
            period: record.period,
            price: record.price,
        })
    }

    /// The plain-data form, for stores.
    #[must_use]
    pub fn to_record(&self) -> LineRecord {
        LineRecord::from(self.clone())
    }

    /// What the line is for.
    #[must_use]
    pub fn kind(&self) -> LineKind {
        self.kind
    }

    /// The text shown to the customer.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// How many units.
    #[must_use]
    pub fn quantity(&self) -> Decimal {
        self.quantity
    }

    /// The amount per unit, possibly finer than the currency.
    #[must_use]
    pub fn unit_amount(&self) -> UnitAmount {
        self.unit_amount
    }

    /// The line amount: `unit_amount x quantity`, rounded once.
    #[must_use]
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// The currency of the line.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }

    /// The span of time the line pays for, if any.
    #[must_use]
    pub fn period(&self) -> Option<Period> {
        self.period
    }

    /// The catalog price the line comes from, if any.
    #[must_use]
    pub fn price(&self) -> Option<PriceId> {
        self.price
    }
}

impl TryFrom<LineRecord> for LineItem {
    type Error = InvoiceError;

    fn try_from(record: LineRecord) -> Result<Self, Self::Error> {
        LineItem::from_record(record)
    }
}

impl From<LineItem> for LineRecord {
    fn from(line: LineItem) -> Self {
        LineRecord {
            kind: line.kind,
            description: line.description,
            quantity: line.quantity,
            unit_amount: line.unit_amount,
            amount: line.amount,
            period: line.period,
            price: line.price,
        }
    }
}

fn check_parts(
    kind: LineKind,
    description: &str,
    quantity: Decimal,
    unit_amount: UnitAmount,
) -> Result<(), InvalidField> {
    check_text("description", description, true, MAX_DESCRIPTION_CHARS)?;
    if quantity.is_sign_negative() && !quantity.is_zero() {
        return Err(InvalidField::new("quantity", "must not be negative"));
    }
    if !kind.allows(unit_amount) {
        let expected = if matches!(kind, LineKind::ProrationCredit | LineKind::Discount) {
            "zero or negative"
        } else {
            "zero or positive"
        };
        return Err(InvalidField::new(
            "unit_amount",
            format_args!("a {kind} line needs a {expected} unit amount, got {unit_amount}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: LineKind, quantity: i64, unit: &str) -> NewLineItem {
        NewLineItem {
            kind,
            description: "Pro (monthly)".into(),
            quantity: quantity.into(),
            unit_amount: unit.parse().unwrap(),
            period: None,
            price: None,
        }
    }

    #[test]
    fn the_amount_is_quantity_times_unit_rounded_once() {
        let three = LineItem::new(
            line(LineKind::Seats, 3, "0.125 USD"),
            RoundingPolicy::HalfAwayFromZero,
        )
        .unwrap();
        // 3 x 0.125 = 0.375 -> 0.38, not 3 x 0.13 = 0.39.
        assert_eq!(three.amount().to_string(), "0.38 USD");
        let even = LineItem::new(
            line(LineKind::Seats, 3, "0.125 USD"),
            RoundingPolicy::HalfEven,
        )
        .unwrap();
        assert_eq!(even.amount().to_string(), "0.38 USD");
        let one = LineItem::new(
            line(LineKind::Seats, 1, "0.125 USD"),
            RoundingPolicy::HalfEven,
        )
        .unwrap();
        assert_eq!(one.amount().to_string(), "0.12 USD");
    }

    #[test]
    fn the_kind_fixes_the_sign() {
        let field = |kind, unit: &str| match LineItem::new(
            line(kind, 1, unit),
            RoundingPolicy::default(),
        ) {
            Err(InvoiceError::Invalid(invalid)) => invalid.field,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(field(LineKind::PlanBase, "-1 USD"), "unit_amount");
        assert_eq!(field(LineKind::ProrationCredit, "1 USD"), "unit_amount");
        assert_eq!(field(LineKind::Discount, "0.01 USD"), "unit_amount");
        for kind in LineKind::ALL {
            assert!(LineItem::new(line(kind, 1, "0 USD"), RoundingPolicy::default()).is_ok());
        }
        assert!(
            LineItem::new(
                line(LineKind::Adjustment, 1, "-5 USD"),
                RoundingPolicy::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn descriptions_and_quantities_are_checked() {
        let mut empty = line(LineKind::OneTime, 1, "1 USD");
        empty.description = " ".into();
        let long = NewLineItem {
            description: "x".repeat(MAX_DESCRIPTION_CHARS + 1),
            ..line(LineKind::OneTime, 1, "1 USD")
        };
        let negative = line(LineKind::OneTime, -1, "1 USD");
        for (new, field) in [
            (empty, "description"),
            (long, "description"),
            (negative, "quantity"),
        ] {
            assert!(matches!(
                LineItem::new(new, RoundingPolicy::default()),
                Err(InvoiceError::Invalid(InvalidField { field: f, .. })) if f == field
            ));
        }
    }

    #[test]
    fn a_stored_amount_must_be_the_rounded_product() {
        let item = LineItem::new(
            line(LineKind::Seats, 3, "0.125 USD"),
            RoundingPolicy::default(),
        )
        .unwrap();
        let json = serde_json::to_string(&item).unwrap();
        assert!(json.contains(r#""quantity":"3""#), "{json}");
        assert_eq!(serde_json::from_str::<LineItem>(&json).unwrap(), item);
        // 5 x 0.125 = 0.625: half away from zero gives 0.63, half to even 0.62; both are
        // accepted because a record does not say which policy was used. 0.61 is neither.
        let mut record = LineItem::new(
            line(LineKind::Seats, 5, "0.125 USD"),
            RoundingPolicy::HalfEven,
        )
        .unwrap()
        .to_record();
        assert_eq!(record.amount.to_string(), "0.62 USD");
        assert!(LineItem::from_record(record.clone()).is_ok());
        record.amount = "0.63 USD".parse().unwrap();
        assert!(LineItem::from_record(record.clone()).is_ok());
        record.amount = "0.61 USD".parse().unwrap();
        assert!(matches!(
            LineItem::from_record(record.clone()),
            Err(InvoiceError::Invalid(InvalidField { field, .. })) if field == "amount"
        ));
        record.amount = "0.63 EUR".parse().unwrap();
        assert_eq!(
            LineItem::from_record(record),
            Err(InvoiceError::CurrencyMismatch {
                expected: Currency::USD,
                actual: Currency::EUR
            })
        );
        assert!(serde_json::from_str::<LineItem>(&json.replace(r#""3""#, "3")).is_err());
    }
}
