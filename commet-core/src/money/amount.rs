//! `Money`: a payable amount in one currency.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::decimal_text::parse_decimal;
use super::{Currency, MoneyError, RoundingPolicy, excerpt};

/// A payable amount: an exact decimal in one [`Currency`], with no more decimal places than the
/// currency's minor unit, and a number of minor units that fits in an `i64`.
///
/// Fields are private so the invariant always holds. Amounts of different currencies never mix:
/// [`checked_add`](Money::checked_add) answers [`MoneyError::CurrencyMismatch`], and comparing them
/// with `<` is `false` both ways (`partial_cmp` is `None`).
///
/// ```
/// use commet_core::money::{Currency, Money};
///
/// let price: Money = "50.00 USD".parse()?;
/// let seats = price.checked_mul(3.into(), Default::default())?;
/// assert_eq!(seats.to_string(), "150.00 USD");
/// assert_eq!(seats.minor_units(), 15_000);
/// # Ok::<(), commet_core::money::MoneyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Always at exactly `currency.decimals()` scale, so the mantissa is the minor units.
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Zero in `currency`.
    #[must_use]
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }

    /// An exact amount. Fails with [`MoneyError::TooPrecise`] if it has more significant decimal
    /// places than the currency (use [`Money::round`] to round on purpose).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let max = currency.decimals();
        let normalized = amount.normalize();
        if normalized.scale() > max {
            return Err(MoneyError::TooPrecise {
                amount: excerpt(&normalized.to_string()),
                currency,
                decimals: normalized.scale(),
                max,
            });
        }
        Money::at_currency_scale(amount, currency)
    }

    /// The amount of `minor` minor units: `from_minor(1234, USD)` is 12.34 USD.
    #[must_use]
    pub fn from_minor(minor: i64, currency: Currency) -> Money {
        Money {
            amount: Decimal::from_i128_with_scale(i128::from(minor), currency.decimals()),
            currency,
        }
    }

    /// Round an exact value to the currency's minor unit with `policy`: the one place where
    /// an exact amount becomes payable.
    pub fn round(
        value: Decimal,
        currency: Currency,
        policy: RoundingPolicy,
    ) -> Result<Money, MoneyError> {
        Money::at_currency_scale(policy.round(value, currency.decimals()), currency)
    }

    /// Parse an amount written for `currency`, such as `"12.34"` for USD.
    pub fn parse_amount(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        Money::new(parse_decimal(amount)?, currency)
    }

    /// The exact decimal amount, at the currency's scale (`50` USD is `50.00`).
    #[must_use]
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in minor units: cents for USD, yen for JPY, fils for KWD. This is what goes
    /// on the wire.
    #[must_use]
    pub fn minor_units(&self) -> i64 {
        // The invariant keeps the mantissa within i64; saturate rather than panic regardless.
        let mantissa = self.amount.mantissa();
        i64::try_from(mantissa).unwrap_or(if mantissa < 0 { i64::MIN } else { i64::MAX })
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

    /// True if the amount is above zero.
    #[must_use]
    pub fn is_positive(&self) -> bool {
        self.amount.is_sign_positive() && !self.amount.is_zero()
    }

    /// `self + other`, in the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::at_currency_scale(sum, self.currency)
    }

    /// `self - other`, in the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::at_currency_scale(difference, self.currency)
    }

    /// `self * factor`, rounded once with `policy` (exact when `factor` is a whole number).
    pub fn checked_mul(self, factor: Decimal, policy: RoundingPolicy) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Money::round(product, self.currency, policy)
    }

    /// `-self`.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        Money::at_currency_scale(-self.amount, self.currency)
    }

    /// The larger of two amounts of the same currency.
    pub fn checked_max(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if other.amount > self.amount {
            other
        } else {
            self
        })
    }

    /// The smaller of two amounts of the same currency.
    pub fn checked_min(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if other.amount < self.amount {
            other
        } else {
            self
        })
    }

    /// Split the amount by integer `weights`, in minor units, so that the parts always sum to
    /// the whole and each part is within one minor unit of its exact share
    /// (`self * weight / sum(weights)`).
    ///
    /// Shares are floored (toward zero); the minor units left over go one each to the parts with
    /// the largest remainders, earlier parts first on ties. So `10.00 USD` by `[1, 1, 1]` is
    /// `3.34, 3.33, 3.33`, every time.
    pub fn allocate(self, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
        if weights.is_empty() {
            return Err(MoneyError::InvalidWeights {
                reason: "at least one weight is needed",
            });
        }
        let total_weight: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        if total_weight == 0 {
            return Err(MoneyError::InvalidWeights {
                reason: "the weights must not all be zero",
            });
        }
        let minor = i128::from(self.minor_units());
        let magnitude = minor.unsigned_abs();
        // |minor| < 2^63 and weight < 2^64, so every product fits in u128.
        // (index, floored share, remainder)
        let mut parts: Vec<(usize, u128, u128)> = weights
            .iter()
            .enumerate()
            .map(|(index, &w)| {
                let exact = magnitude * u128::from(w);
                (index, exact / total_weight, exact % total_weight)
            })
            .collect();
        let floored: u128 = parts.iter().map(|&(_, share, _)| share).sum();
        let leftover = usize::try_from(magnitude - floored).map_err(|_| MoneyError::Overflow)?;
        parts.sort_by_key(|&(index, _, remainder)| (std::cmp::Reverse(remainder), index));
        for part in parts.iter_mut().take(leftover) {
            part.1 += 1;
        }
        parts.sort_by_key(|&(index, _, _)| index);
        parts
            .into_iter()
            .map(|(_, share, _)| {
                // Each share is at most `magnitude`, which came from an i64.
                let share = i128::try_from(share).map_err(|_| MoneyError::Overflow)?;
                let signed = if minor < 0 { -share } else { share };
                let minor = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
                Ok(Money::from_minor(minor, self.currency))
            })
            .collect()
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                expected: self.currency,
                actual: other.currency,
            })
        }
    }

    /// Build the invariant: exactly the currency's scale, minor units within i64.
    fn at_currency_scale(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let mut rescaled = amount;
        // `rescale` rounds when it cannot represent the value at the new scale (a mantissa of
        // 28+ digits); such amounts are far outside the i64 range anyway.
        rescaled.rescale(currency.decimals());
        if rescaled != amount
            || rescaled.scale() != currency.decimals()
            || i64::try_from(rescaled.mantissa()).is_err()
        {
            return Err(MoneyError::Overflow);
        }
        Ok(Money {
            amount: rescaled,
            currency,
        })
    }
}

impl PartialOrd for Money {
    /// Amounts compare only within one currency.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.amount.cmp(&other.amount))
    }
}

impl fmt::Display for Money {
    /// `12.34 USD`, `5000 JPY`, `-1.250 KWD`: always the currency's number of decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Parse `"<amount> <CODE>"`, the form [`Display`](fmt::Display) writes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (amount, code) = super::split_amount_and_code(text)?;
        Money::parse_amount(amount, Currency::from_code(code)?)
    }
}

/// The serde form: `{"amount": "12.34", "currency": "USD"}`. Never a float.
#[derive(Serialize, Deserialize)]
struct MoneyRepr<'a> {
    #[serde(borrow)]
    amount: std::borrow::Cow<'a, str>,
    currency: Currency,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyRepr {
            amount: self.amount.to_string().into(),
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = MoneyRepr::deserialize(deserializer)?;
        Money::parse_amount(&repr.amount, repr.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Money {
        Money::parse_amount(text, Currency::USD).unwrap()
    }

    #[test]
    fn display_always_shows_the_currency_decimals() {
        assert_eq!(usd("50").to_string(), "50.00 USD");
        assert_eq!(
            Money::from_minor(5000, Currency::JPY).to_string(),
            "5000 JPY"
        );
        assert_eq!(
            Money::from_minor(-1250, Currency::KWD).to_string(),
            "-1.250 KWD"
        );
    }

    #[test]
    fn parse_refuses_more_decimals_than_the_currency() {
        assert_eq!(
            Money::parse_amount("1.234", Currency::USD),
            Err(MoneyError::TooPrecise {
                amount: "1.234".into(),
                currency: Currency::USD,
                decimals: 3,
                max: 2
            })
        );
        assert!(matches!(
            Money::parse_amount("1.5", Currency::JPY),
            Err(MoneyError::TooPrecise { max: 0, .. })
        ));
        // Trailing zeros add no precision.
        assert_eq!(
            Money::parse_amount("1.000", Currency::JPY)
                .unwrap()
                .minor_units(),
            1
        );
    }

    #[test]
    fn parse_names_what_is_wrong() {
        assert!(matches!(
            "12.34".parse::<Money>(),
            Err(MoneyError::Malformed { .. })
        ));
        assert!(matches!(
            "12,34 USD".parse::<Money>(),
            Err(MoneyError::Malformed { .. })
        ));
        assert!(matches!(
            "12.34 XYZ".parse::<Money>(),
            Err(MoneyError::UnknownCurrency { .. })
        ));
        // A stray space is reported as what arrived and what was expected, not as a currency
        // code " USD" or "50 USD ".
        for spaced in ["12.34  USD", " 50 USD ", " 50 USD", "50 USD ", "50 US D"] {
            let error = spaced.parse::<Money>().unwrap_err();
            assert_eq!(
                error,
                MoneyError::Malformed {
                    input: spaced.into(),
                    reason: "expected \"<amount> <currency code>\" with one space between and \
                             none around, e.g. \"12.34 USD\""
                },
                "{spaced:?}"
            );
            assert!(error.to_string().contains("e.g. \"12.34 USD\""), "{error}");
            assert!(spaced.parse::<crate::money::UnitAmount>().is_err());
        }
        let unknown = "12.34 XYZ".parse::<Money>().unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown currency code \"XYZ\": expected an ISO 4217 code such as USD, EUR or JPY"
        );
        assert_eq!(
            "99999999999999999999 USD".parse::<Money>(),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn minor_units_round_trip() {
        let m = Money::from_minor(-123_456, Currency::KWD);
        assert_eq!(m.amount().to_string(), "-123.456");
        assert_eq!(m.minor_units(), -123_456);
        let max = Money::from_minor(i64::MAX, Currency::USD);
        assert_eq!(max.minor_units(), i64::MAX);
        assert_eq!(max.checked_add(usd("0.01")), Err(MoneyError::Overflow));
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies() {
        let eur = Money::from_minor(100, Currency::EUR);
        assert_eq!(
            usd("1").checked_add(eur),
            Err(MoneyError::CurrencyMismatch {
                expected: Currency::USD,
                actual: Currency::EUR
            })
        );
        assert_eq!(usd("1").partial_cmp(&eur), None);
        assert!(usd("1") < usd("2"));
    }

    #[test]
    fn multiplication_rounds_once_by_the_policy() {
        let m = usd("0.05");
        let half = Decimal::new(5, 1);
        assert_eq!(
            m.checked_mul(half, RoundingPolicy::HalfAwayFromZero),
            Ok(usd("0.03"))
        );
        assert_eq!(
            m.checked_mul(half, RoundingPolicy::HalfEven),
            Ok(usd("0.02"))
        );
    }

    #[test]
    fn allocation_hands_out_the_remainder_deterministically() {
        let parts = usd("10").allocate(&[1, 1, 1]).unwrap();
        assert_eq!(parts, vec![usd("3.34"), usd("3.33"), usd("3.33")]);
        let parts = usd("-10").allocate(&[1, 1, 1]).unwrap();
        assert_eq!(parts, vec![usd("-3.34"), usd("-3.33"), usd("-3.33")]);
        // Exact shares 0, 1.5 and 3.5 cents: both remainders are one half, so the earlier wins.
        let parts = usd("0.05").allocate(&[0, 3, 7]).unwrap();
        assert_eq!(parts, vec![usd("0"), usd("0.02"), usd("0.03")]);
        // Exact shares 0.6 and 2.4 cents: the largest remainder gets the leftover cent.
        let parts = usd("0.03").allocate(&[1, 4]).unwrap();
        assert_eq!(parts, vec![usd("0.01"), usd("0.02")]);
        assert!(matches!(
            usd("1").allocate(&[]),
            Err(MoneyError::InvalidWeights { .. })
        ));
        assert!(matches!(
            usd("1").allocate(&[0, 0]),
            Err(MoneyError::InvalidWeights { .. })
        ));
    }

    #[test]
    fn serde_is_a_decimal_string_and_a_code() {
        let json = serde_json::to_string(&usd("12.3")).unwrap();
        assert_eq!(json, r#"{"amount":"12.30","currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), usd("12.30"));
        assert!(serde_json::from_str::<Money>(r#"{"amount":12.3,"currency":"USD"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":"12.345","currency":"USD"}"#).is_err());
    }
}
