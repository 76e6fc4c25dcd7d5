//! Invoice numbers: a gap-free series with a prefix and zero padding (`INV-000001`).
//!
//! A [`NumberSeries`] is the next value to hand out plus how to format it. It lives in the
//! store: the store loads it, calls [`NumberSeries::allocate`] and writes it back in the same
//! commit that records the finalized invoice with [`Invoice::assign_number`]. A commit that fails
//! writes neither, so the series has no gaps; drafts have no number, so deleting one leaves no
//! gap either.
//!
//! [`Invoice::assign_number`]: super::Invoice::assign_number

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InvoiceError;
use crate::validation::InvalidField;

/// The prefix of the default series.
pub const DEFAULT_PREFIX: &str = "INV-";
/// The zero padding of the default series: six digits.
pub const DEFAULT_PADDING: u32 = 6;
/// The longest prefix, in characters.
pub const MAX_PREFIX_CHARS: usize = 16;
/// The widest padding, in digits.
pub const MAX_PADDING: u32 = 12;
/// The longest invoice number, in characters.
pub const MAX_NUMBER_CHARS: usize = 64;

/// An invoice number, such as `INV-000042`: 1 to 64 visible ASCII characters (no spaces).
///
/// Numbers made by a [`NumberSeries`] always qualify; the looser rule lets a store hold numbers
/// imported from another system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InvoiceNumber(String);

impl InvoiceNumber {
    /// Check `text` as an invoice number; the error names `number`.
    pub fn new(text: impl Into<String>) -> Result<InvoiceNumber, InvalidField> {
        let text = text.into();
        if text.is_empty() || text.len() > MAX_NUMBER_CHARS {
            return Err(InvalidField::new(
                "number",
                format_args!("must be 1 to {MAX_NUMBER_CHARS} characters"),
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidField::new(
                "number",
                "may contain only visible ASCII characters, no spaces",
            ));
        }
        Ok(InvoiceNumber(text))
    }

    /// The number as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for InvoiceNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for InvoiceNumber {
    type Err = InvalidField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        InvoiceNumber::new(text)
    }
}

impl TryFrom<String> for InvoiceNumber {
    type Error = InvalidField;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        InvoiceNumber::new(text)
    }
}

impl From<InvoiceNumber> for String {
    fn from(number: InvoiceNumber) -> Self {
        number.0
    }
}

/// A gap-free series of invoice numbers: a prefix, a zero padding, and the next value.
///
/// Values start at 1. A value wider than the padding is written in full: with the default
/// padding of 6, number 1,000,000 is `INV-1000000`, so numbers never wrap or repeat.
///
/// ```
/// use commet_core::invoice::NumberSeries;
///
/// let mut series = NumberSeries::default();
/// assert_eq!(series.allocate()?.as_str(), "INV-000001");
/// assert_eq!(series.allocate()?.as_str(), "INV-000002");
///
/// let mut custom = NumberSeries::new("ACME/2024/", 4)?;
/// assert_eq!(custom.allocate()?.as_str(), "ACME/2024/0001");
/// assert!(NumberSeries::new("INV ", 6).is_err()); // no spaces in a prefix
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "NumberSeriesRepr", into = "NumberSeriesRepr")]
pub struct NumberSeries {
    prefix: String,
    padding: u32,
    next: u64,
}

#[derive(Serialize, Deserialize)]
struct NumberSeriesRepr {
    prefix: String,
    padding: u32,
    next: u64,
}

impl TryFrom<NumberSeriesRepr> for NumberSeries {
    type Error = InvalidField;

    fn try_from(repr: NumberSeriesRepr) -> Result<Self, Self::Error> {
        NumberSeries::resume(repr.prefix, repr.padding, repr.next)
    }
}

impl From<NumberSeries> for NumberSeriesRepr {
    fn from(series: NumberSeries) -> Self {
        NumberSeriesRepr {
            prefix: series.prefix,
            padding: series.padding,
            next: series.next,
        }
    }
}

impl Default for NumberSeries {
    /// `INV-000001`, `INV-000002`, ...
    fn default() -> Self {
        NumberSeries {
            prefix: DEFAULT_PREFIX.to_owned(),
            padding: DEFAULT_PADDING,
            next: 1,
        }
    }
}

impl NumberSeries {
    /// A new series starting at 1. The prefix is 1 to 16 of `A-Z a-z 0-9 - _ / .` (error field
    /// `prefix`); the padding 1 to 12 digits (error field `padding`).
    pub fn new(prefix: impl Into<String>, padding: u32) -> Result<NumberSeries, InvalidField> {
        NumberSeries::resume(prefix, padding, 1)
    }

    /// A series as a store kept it, whose next value is `next` (at least 1; error field
    /// `next`).
    pub fn resume(
        prefix: impl Into<String>,
        padding: u32,
        next: u64,
    ) -> Result<NumberSeries, InvalidField> {
        let prefix = prefix.into();
        if prefix.is_empty() || prefix.chars().count() > MAX_PREFIX_CHARS {
            return Err(InvalidField::new(
                "prefix",
                format_args!("must be 1 to {MAX_PREFIX_CHARS} characters"),
            ));
        }
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/.".contains(&b))
        {
            return Err(InvalidField::new(
                "prefix",
                "may contain only letters, digits, '-', '_', '/' and '.'",
            ));
        }
        if !(1..=MAX_PADDING).contains(&padding) {
            return Err(InvalidField::new(
                "padding",
                format_args!("must be 1 to {MAX_PADDING} digits"),
            ));
        }
        if next == 0 {
            return Err(InvalidField::new("next", "numbers start at 1"));
        }
        Ok(NumberSeries {
            prefix,
            padding,
            next,
        })
    }

    /// The prefix, such as `INV-`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The minimum number of digits.
    #[must_use]
    pub fn padding(&self) -> u32 {
        self.padding
    }

    /// The value the next [`allocate`](NumberSeries::allocate) hands out.
    #[must_use]
    pub fn next_value(&self) -> u64 {
        self.next
    }

    /// The number for `value` in this series' format, without allocating it.
    #[must_use]
    pub fn format(&self, value: u64) -> InvoiceNumber {
        let width = usize::try_from(self.padding).unwrap_or(usize::MAX);
        // A valid prefix (16 characters) and a u64 (20 digits) always make a valid number.
        InvoiceNumber(format!("{}{value:0width$}", self.prefix))
    }

    /// The number the next allocation hands out, without allocating it.
    #[must_use]
    pub fn peek(&self) -> InvoiceNumber {
        self.format(self.next)
    }

    /// Hand out the next number and advance by exactly one. The store calls this inside the
    /// commit that finalizes the invoice, and writes the series back in that commit.
    ///
    /// Fails with [`InvoiceError::NumberSeriesExhausted`] only after `u64::MAX - 1` numbers.
    pub fn allocate(&mut self) -> Result<InvoiceNumber, InvoiceError> {
        let after = self
            .next
            .checked_add(1)
            .ok_or(InvoiceError::NumberSeriesExhausted)?;
        let number = self.peek();
        self.next = after;
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_series_formats_inv_000001() {
        let mut series = NumberSeries::default();
        let numbers: Vec<String> = (0..3)
            .map(|_| series.allocate().unwrap().to_string())
            .collect();
        assert_eq!(numbers, ["INV-000001", "INV-000002", "INV-000003"]);
        assert_eq!(series.next_value(), 4);
    }

    #[test]
    fn numbers_beyond_the_padding_grow_instead_of_wrapping() {
        let mut series = NumberSeries::resume("INV-", 6, 999_999).unwrap();
        assert_eq!(series.allocate().unwrap().as_str(), "INV-999999");
        assert_eq!(series.allocate().unwrap().as_str(), "INV-1000000");
        let widest = NumberSeries::resume("ABCDEFGHIJKLMNOP", 12, u64::MAX).unwrap();
        assert_eq!(
            widest.peek().as_str(),
            "ABCDEFGHIJKLMNOP18446744073709551615"
        );
        assert!(InvoiceNumber::new(widest.peek().as_str()).is_ok());
    }

    #[test]
    fn a_custom_prefix_and_padding_are_used_on_request() {
        let mut series = NumberSeries::new("acme_2024.", 3).unwrap();
        assert_eq!(series.allocate().unwrap().as_str(), "acme_2024.001");
        let mut series = NumberSeries::new("F", 1).unwrap();
        assert_eq!(series.allocate().unwrap().as_str(), "F1");
    }

    #[test]
    fn invalid_series_name_the_field() {
        let field = |result: Result<NumberSeries, InvalidField>| result.unwrap_err().field;
        assert_eq!(field(NumberSeries::new("", 6)), "prefix");
        assert_eq!(field(NumberSeries::new("x".repeat(17), 6)), "prefix");
        assert_eq!(field(NumberSeries::new("INV#", 6)), "prefix");
        assert_eq!(field(NumberSeries::new("FACTURE-É", 6)), "prefix");
        assert_eq!(field(NumberSeries::new("INV-", 0)), "padding");
        assert_eq!(field(NumberSeries::new("INV-", 13)), "padding");
        assert_eq!(field(NumberSeries::resume("INV-", 6, 0)), "next");
        assert!(
            serde_json::from_str::<NumberSeries>(r#"{"prefix":"INV-","padding":0,"next":1}"#)
                .is_err()
        );
    }

    #[test]
    fn the_last_value_is_never_handed_out_twice() {
        let mut series = NumberSeries::resume("INV-", 6, u64::MAX).unwrap();
        assert_eq!(series.allocate(), Err(InvoiceError::NumberSeriesExhausted));
        assert_eq!(series.next_value(), u64::MAX);
    }

    #[test]
    fn a_series_round_trips_through_json() {
        let mut series = NumberSeries::new("INV-", 8).unwrap();
        series.allocate().unwrap();
        let json = serde_json::to_string(&series).unwrap();
        assert_eq!(json, r#"{"prefix":"INV-","padding":8,"next":2}"#);
        assert_eq!(serde_json::from_str::<NumberSeries>(&json).unwrap(), series);
    }

    #[test]
    fn invoice_numbers_are_visible_ascii() {
        assert!(InvoiceNumber::new("2019-0001/B").is_ok());
        for bad in ["", "INV 1", "INV-\u{0}", "Nº1"] {
            assert_eq!(
                InvoiceNumber::new(bad).unwrap_err().field,
                "number",
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<InvoiceNumber>("\"INV 1\"").is_err());
    }
}
