//! ISO 4217 currencies and their minor units.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{MoneyError, excerpt};

/// An ISO 4217 currency that can be billed: it has a minor-unit exponent.
///
/// The exponent comes from the ISO tables (`iso_currency`): USD and EUR have 2 decimal places,
/// JPY 0, KWD 3. Codes are parsed case-insensitively (`usd` as Stripe writes it, `USD` as ISO
/// does) and always written in upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// US dollar, 2 decimals.
    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    /// Euro, 2 decimals.
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    /// Pound sterling, 2 decimals.
    pub const GBP: Currency = Currency(iso_currency::Currency::GBP);
    /// Japanese yen, 0 decimals.
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);
    /// Kuwaiti dinar, 3 decimals.
    pub const KWD: Currency = Currency(iso_currency::Currency::KWD);

    /// The currency for an ISO 4217 code such as `"USD"` or `"usd"`.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let unknown = || MoneyError::UnknownCurrency {
            code: excerpt(code),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(unknown());
        }
        let currency =
            iso_currency::Currency::from_code(&code.to_ascii_uppercase()).ok_or_else(unknown)?;
        if currency.exponent().is_none() {
            return Err(MoneyError::NotBillable {
                code: currency.code().to_owned(),
            });
        }
        Ok(Currency(currency))
    }

    /// The upper-case ISO 4217 code, e.g. `"USD"`.
    #[must_use]
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimal places of the minor unit: 2 for USD (cents), 0 for JPY, 3 for KWD.
    #[must_use]
    pub fn decimals(self) -> u32 {
        // `from_code` admits only currencies that have an exponent.
        self.0.exponent().map_or(0, u32::from)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Currency {
    /// Alphabetical by code.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(other.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::from_code(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_come_from_iso_4217() {
        assert_eq!(Currency::USD.decimals(), 2);
        assert_eq!(Currency::EUR.decimals(), 2);
        assert_eq!(Currency::JPY.decimals(), 0);
        assert_eq!(Currency::KWD.decimals(), 3);
        assert_eq!(Currency::from_code("CLF").unwrap().decimals(), 4);
    }

    #[test]
    fn codes_parse_in_either_case_and_print_upper() {
        assert_eq!(Currency::from_code("usd"), Ok(Currency::USD));
        assert_eq!(Currency::from_code("Jpy"), Ok(Currency::JPY));
        assert_eq!(Currency::KWD.to_string(), "KWD");
    }

    #[test]
    fn unknown_codes_are_typed_errors() {
        for code in ["", "US", "USDX", "ZZZ", "12$", "ÜSD", "U D"] {
            assert!(
                matches!(
                    Currency::from_code(code),
                    Err(MoneyError::UnknownCurrency { .. })
                ),
                "{code:?}"
            );
        }
    }

    #[test]
    fn currencies_without_minor_units_cannot_be_billed() {
        assert_eq!(
            Currency::from_code("XAU"),
            Err(MoneyError::NotBillable { code: "XAU".into() })
        );
    }

    #[test]
    fn serde_is_the_code() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
        let parsed: Currency = serde_json::from_str("\"eur\"").unwrap();
        assert_eq!(parsed, Currency::EUR);
        assert!(serde_json::from_str::<Currency>("\"EURO\"").is_err());
    }
}
