//! The one strict grammar for amounts written as text: `-?[0-9]+(\.[0-9]+)?`.
//!
//! `rust_decimal`'s own parser is lenient (it accepts `_`, a leading `+`, `.5`, exponents in
//! some entry points); an amount on an invoice should be written one way only.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::{MoneyError, excerpt};

/// Parse a plain decimal number.
pub(super) fn parse_decimal(input: &str) -> Result<Decimal, MoneyError> {
    let malformed = |reason| MoneyError::Malformed {
        input: excerpt(input),
        reason,
    };
    let digits = input.strip_prefix('-').unwrap_or(input);
    if digits.is_empty() {
        return Err(malformed("no digits"));
    }
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    if whole.is_empty() {
        return Err(malformed("a digit must come before the decimal point"));
    }
    if fraction.is_some_and(str::is_empty) {
        return Err(malformed("a digit must follow the decimal point"));
    }
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Err(malformed(
            "only digits, one leading '-' and one '.' are allowed",
        ));
    }
    // The grammar is checked, so the only failure left is size (more than 28 digits).
    Decimal::from_str(input).map_err(|_| MoneyError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_numbers() {
        for (text, value) in [
            ("0", "0"),
            ("12.34", "12.34"),
            ("-0.5", "-0.5"),
            ("007", "7"),
        ] {
            assert_eq!(parse_decimal(text), Ok(Decimal::from_str(value).unwrap()));
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for text in [
            "", "-", ".5", "5.", "+5", "1_000", "1e3", " 1", "1 ", "1.2.3", "--1", "١", "0x10",
        ] {
            assert!(
                matches!(parse_decimal(text), Err(MoneyError::Malformed { .. })),
                "{text:?} should be malformed"
            );
        }
    }

    #[test]
    fn too_many_digits_is_overflow() {
        assert_eq!(
            parse_decimal("123456789012345678901234567890"),
            Err(MoneyError::Overflow)
        );
    }
}
