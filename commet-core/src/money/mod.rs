//! Money: currencies with their minor units, exact amounts, one rounding policy, allocation.
//!
//! - [`Currency`] is an ISO 4217 currency that knows its minor-unit exponent (USD 2, JPY 0,
//!   KWD 3), taken from the maintained `iso_currency` tables.
//! - [`Money`] is a payable amount: never more decimals than its currency, minor units that fit
//!   in an `i64`. Arithmetic is checked and returns [`MoneyError`] instead of panicking.
//! - [`UnitAmount`] is a unit price, which may be finer than the currency (0.0004 USD per API
//!   call). It becomes [`Money`] only through [`UnitAmount::times`], rounded once.
//! - [`RoundingPolicy`] names the one rounding rule an engine uses: half away from zero (how
//!   people round on invoices, the default) or half to even.
//!
//! There is no `f64` anywhere in this module, and no `impl Add` that could panic.

mod amount;
mod currency;
mod decimal_text;
mod rounding;
mod unit_amount;

pub use amount::Money;
pub use currency::Currency;
pub use rounding::RoundingPolicy;
pub use unit_amount::UnitAmount;

use crate::validation::excerpt;

/// Split `"<amount> <CODE>"` (the form `Display` writes) into its amount and code: exactly one
/// space between them and none around, so a stray space is reported as a malformed input
/// rather than as an odd currency code.
pub(crate) fn split_amount_and_code(text: &str) -> Result<(&str, &str), MoneyError> {
    let parts = text
        .split_once(' ')
        .filter(|(amount, code)| !amount.is_empty() && !code.is_empty() && !code.contains(' '));
    match parts {
        Some(parts) if text.trim() == text => Ok(parts),
        _ => Err(MoneyError::Malformed {
            input: excerpt(text),
            reason: "expected \"<amount> <currency code>\" with one space between and none \
                     around, e.g. \"12.34 USD\"",
        }),
    }
}

/// Why a money value could not be built, parsed or computed.
///
/// Every variant is a caller error (HTTP 400 at an API edge) except [`MoneyError::Overflow`],
/// which only arises from amounts far beyond any real invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The amount text is not a plain decimal number (`-?digits[.digits]`).
    #[error("malformed amount {input:?}: {reason}")]
    Malformed {
        /// The text that was given (cut to 64 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The currency code is not an ISO 4217 code.
    #[error("unknown currency code {code:?}: expected an ISO 4217 code such as USD, EUR or JPY")]
    UnknownCurrency {
        /// The code that was given (cut to 64 characters).
        code: String,
    },
    /// The code is ISO 4217 but names no tender with minor units (gold `XAU`, testing `XTS` ...).
    #[error("currency {code} has no minor unit and cannot be billed")]
    NotBillable {
        /// The code that was given.
        code: String,
    },
    /// The amount has more decimal places than its currency allows for a payable amount.
    #[error("amount {amount} has {decimals} decimal places, but {currency} allows at most {max}")]
    TooPrecise {
        /// The amount that was given, as text.
        amount: String,
        /// The currency it was given in.
        currency: Currency,
        /// Its significant decimal places.
        decimals: u32,
        /// The currency's minor-unit exponent.
        max: u32,
    },
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: expected {expected}, got {actual}")]
    CurrencyMismatch {
        /// The currency of the left-hand amount.
        expected: Currency,
        /// The currency of the right-hand amount.
        actual: Currency,
    },
    /// The result does not fit: payable amounts are limited to `i64` minor units
    /// (about 92 quadrillion dollars), unit amounts to 28 significant digits.
    #[error("amount out of range")]
    Overflow,
    /// The weights given to [`Money::allocate`] cannot split anything.
    #[error("invalid allocation weights: {reason}")]
    InvalidWeights {
        /// What is wrong with them.
        reason: &'static str,
    },
}
