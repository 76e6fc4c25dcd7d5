//! `UnitAmount`: a price per unit, which may be finer than the currency.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::decimal_text::parse_decimal;
use super::{Currency, Money, MoneyError, RoundingPolicy};

/// A price per unit in one currency, with any precision up to 28 significant digits
/// (0.0004 USD per API call, 0.333 EUR per seat-day).
///
/// A unit amount is not payable. It becomes [`Money`] only through
/// [`times`](UnitAmount::times): `quantity x unit amount`, rounded once by the policy.
///
/// ```
/// use commet_core::money::{RoundingPolicy, UnitAmount};
/// use rust_decimal::Decimal;
///
/// let per_call: UnitAmount = "0.0004 USD".parse()?;
/// let bill = per_call.times(Decimal::from(12_345), RoundingPolicy::HalfAwayFromZero)?;
/// assert_eq!(bill.to_string(), "4.94 USD"); // 4.938 rounded once
/// # Ok::<(), commet_core::money::MoneyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitAmount {
    amount: Decimal,
    currency: Currency,
}

impl UnitAmount {
    /// A unit amount of any precision.
    #[must_use]
    pub fn new(amount: Decimal, currency: Currency) -> UnitAmount {
        UnitAmount {
            amount: amount.normalize(),
            currency,
        }
    }

    /// Parse an amount written for `currency`, such as `"0.0004"`.
    pub fn parse_amount(amount: &str, currency: Currency) -> Result<UnitAmount, MoneyError> {
        Ok(UnitAmount::new(parse_decimal(amount)?, currency))
    }

    /// The exact amount per unit.
    #[must_use]
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// True if the amount is zero.
    #[must_use]
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// True if the amount is below zero.
    #[must_use]
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// True if this unit amount is already payable: no more decimals than the currency.
    #[must_use]
    pub fn is_payable(&self) -> bool {
        self.amount.scale() <= self.currency.decimals()
    }

    /// `quantity x self`, rounded once to the currency's minor unit with `policy`.
    pub fn times(self, quantity: Decimal, policy: RoundingPolicy) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Money::round(product, self.currency, policy)
    }
}

impl From<Money> for UnitAmount {
    fn from(money: Money) -> Self {
        UnitAmount::new(money.amount(), money.currency())
    }
}

impl fmt::Display for UnitAmount {
    /// `0.0004 USD`, `50.00 USD`: at least the currency's decimals, more only when needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.amount;
        if shown.scale() < self.currency.decimals() {
            shown.rescale(self.currency.decimals());
        }
        write!(f, "{shown} {}", self.currency)
    }
}

impl FromStr for UnitAmount {
    type Err = MoneyError;

    /// Parse `"<amount> <CODE>"`, the form [`Display`](fmt::Display) writes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (amount, code) = super::split_amount_and_code(text)?;
        UnitAmount::parse_amount(amount, Currency::from_code(code)?)
    }
}

/// The serde form: `{"amount": "0.0004", "currency": "USD"}`. Never a float.
#[derive(Serialize, Deserialize)]
struct UnitAmountRepr<'a> {
    #[serde(borrow)]
    amount: std::borrow::Cow<'a, str>,
    currency: Currency,
}

impl Serialize for UnitAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        UnitAmountRepr {
            amount: self.amount.to_string().into(),
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for UnitAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = UnitAmountRepr::deserialize(deserializer)?;
        UnitAmount::parse_amount(&repr.amount, repr.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_precision_beyond_the_currency() {
        let unit: UnitAmount = "0.0004 USD".parse().unwrap();
        assert_eq!(unit.to_string(), "0.0004 USD");
        assert!(!unit.is_payable());
        let flat: UnitAmount = "50 USD".parse().unwrap();
        assert_eq!(flat.to_string(), "50.00 USD");
        assert!(flat.is_payable());
    }

    #[test]
    fn becomes_money_only_by_quantity_rounded_once() {
        let unit = UnitAmount::parse_amount("0.125", Currency::USD).unwrap();
        let one = Decimal::ONE;
        assert_eq!(
            unit.times(one, RoundingPolicy::HalfAwayFromZero)
                .unwrap()
                .to_string(),
            "0.13 USD"
        );
        assert_eq!(
            unit.times(one, RoundingPolicy::HalfEven)
                .unwrap()
                .to_string(),
            "0.12 USD"
        );
        // Rounded once: 3 x 0.125 = 0.375 -> 0.38, not 3 x 0.13 = 0.39.
        assert_eq!(
            unit.times(Decimal::from(3), RoundingPolicy::HalfAwayFromZero)
                .unwrap()
                .to_string(),
            "0.38 USD"
        );
    }

    #[test]
    fn serde_round_trips_exactly() {
        let unit = UnitAmount::parse_amount("0.00040", Currency::EUR).unwrap();
        let json = serde_json::to_string(&unit).unwrap();
        assert_eq!(json, r#"{"amount":"0.0004","currency":"EUR"}"#);
        assert_eq!(serde_json::from_str::<UnitAmount>(&json).unwrap(), unit);
    }
}
