//! Fuzz harnesses. Each `fuzz/fuzz_targets/*.rs` is a one-line call into a function here, so
//! the harness also compiles and runs under `cargo test` (over the committed seed corpus).
//! They assert round-trips, not just the absence of panics. Not a public API.
#![allow(clippy::missing_panics_doc, clippy::expect_used)]

use chrono::DateTime;

use crate::ids::{CustomerId, InvoiceId, TypedId};
use crate::money::{Money, RoundingPolicy, UnitAmount};
use crate::token::{self, Claims, Purpose, SigningKey, TokenError};

/// Money and unit-amount text: whatever parses prints back to text that parses to the same
/// value; minor units round-trip.
pub fn money_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(money) = text.parse::<Money>() {
        let shown = money.to_string();
        let again: Money = shown.parse().expect("displayed money parses");
        assert_eq!(again, money);
        assert_eq!(again.to_string(), shown);
        assert_eq!(
            Money::from_minor(money.minor_units(), money.currency()),
            money
        );
        assert_eq!(
            UnitAmount::from(money).times(1.into(), RoundingPolicy::default()),
            Ok(money)
        );
    }
    if let Ok(unit) = text.parse::<UnitAmount>() {
        let shown = unit.to_string();
        let again: UnitAmount = shown.parse().expect("displayed unit amount parses");
        assert_eq!(again, unit);
        assert_eq!(again.to_string(), shown);
    }
}

/// Id text: whatever parses prints back to exactly the same text (ids have one spelling), and
/// no text is both a customer id and an invoice id.
pub fn id_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<CustomerId>() {
        assert_eq!(id.to_string(), text);
        assert_eq!(CustomerId::from_uuid(id.uuid()), id);
        assert!(text.parse::<InvoiceId>().is_err());
    }
}

/// Link tokens, under a fixed key at a fixed instant (2024-01-01T00:00:00Z):
///
/// - any text verifies only if it is exactly the token `issue` makes for the claims it
///   yields (no second spelling of a valid token, no forgery), and is refused with a typed
///   error otherwise, never a panic;
/// - a token issued for a subject made of the input verifies back to its claims, and changing
///   any one of its characters (chosen by the input) makes it fail.
pub fn token_parse(data: &[u8]) {
    let key = SigningKey::from_bytes(&[0x42; 32]).expect("a 32-byte key");
    let now = DateTime::from_timestamp(1_704_067_200, 0).expect("a valid instant");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for purpose in [Purpose::Checkout, Purpose::Portal, Purpose::Recovery] {
        match token::verify(&key, text, purpose, now) {
            Ok(claims) => {
                assert_eq!(token::issue(&key, &claims).as_deref(), Ok(text));
                assert!(claims.expires_at > now);
            }
            Err(TokenError::WrongPurpose { expected, actual }) => {
                assert_eq!(expected, purpose);
                assert_ne!(actual, purpose);
            }
            Err(_) => {}
        }
    }

    let claims = Claims {
        purpose: Purpose::Checkout,
        subject: text.to_owned(),
        expires_at: DateTime::from_timestamp(1_893_456_000, 0).expect("a valid instant"),
    };
    let Ok(issued) = token::issue(&key, &claims) else {
        return;
    };
    assert_eq!(
        token::verify_for(&key, &issued, Purpose::Checkout, text, now),
        Ok(claims)
    );
    let position = data.first().map_or(0, |&b| usize::from(b)) % issued.len();
    let mut changed = issued.clone().into_bytes();
    if let Some(byte) = changed.get_mut(position) {
        *byte = if *byte == b'A' { b'B' } else { b'A' };
    }
    let changed = String::from_utf8(changed).expect("ASCII in, ASCII out");
    assert!(token::verify(&key, &changed, Purpose::Checkout, now).is_err());
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Run a harness over every seed of its committed corpus.
    fn replay_corpus(target: &str, harness: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).expect("the seed corpus is committed") {
            harness(&std::fs::read(entry.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn money_parse_holds_over_the_seed_corpus() {
        replay_corpus("money_parse", super::money_parse);
    }

    #[test]
    fn id_parse_holds_over_the_seed_corpus() {
        replay_corpus("id_parse", super::id_parse);
    }

    #[test]
    fn token_parse_holds_over_the_seed_corpus() {
        replay_corpus("token_parse", super::token_parse);
    }
}
