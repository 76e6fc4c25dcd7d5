//! The secret of a webhook endpoint: `whsec_` followed by the standard base64 (RFC 4648
//! alphabet, with padding) of 24 to 64 random bytes, the shape Standard Webhooks prescribes
//! ("Random. Between 24 bytes (192 bits) and 64 bytes (512 bits)", `spec/standard-webhooks.md`
//! in `standard-webhooks/standard-webhooks`) and the one Commet shows its users (`whsec_...`).
//!
//! One secret keys both signature schemes (see [`signing`](super::signing)):
//!
//! - Commet's keys HMAC-SHA256 with the bytes of the whole string, `whsec_` prefix included,
//!   exactly as the Commet SDKs do with the string they are given;
//! - Standard Webhooks keys it with the decoded bytes ([`key_bytes`](WebhookSecret::key_bytes)).
//!
//! A secret is never printed: its `Debug` is `WebhookSecret(..)`, it has no `Display` and no
//! `Serialize`, and parse errors never echo it. [`expose`](WebhookSecret::expose) is the one
//! way to read it, to show it once to the host or for a store to persist it. Equality is
//! decided in constant time.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::InvalidField;

/// What every secret starts with.
pub const PREFIX: &str = "whsec_";
/// The fewest random bytes a secret holds.
pub const MIN_BYTES: usize = 24;
/// The most random bytes a secret holds.
pub const MAX_BYTES: usize = 64;
/// How many random bytes [`WebhookSecret::generate`] draws.
pub const GENERATED_BYTES: usize = 32;

/// The field every refusal names.
const FIELD: &str = "webhook_secret";
/// The longest base64 text of [`MAX_BYTES`] bytes: longer input is refused before decoding.
const MAX_BASE64_CHARS: usize = MAX_BYTES.div_ceil(3) * 4;

/// An endpoint's signing secret, `whsec_<base64 of 24 to 64 bytes>`. Never printed.
///
/// Besides the text and its decoded bytes it keeps both HMAC-SHA256 states already keyed, so
/// that signing a delivery costs the hashing of the message only.
#[derive(Clone)]
pub struct WebhookSecret {
    /// The whole `whsec_...` string.
    text: String,
    /// The decoded bytes.
    key: Box<[u8]>,
    /// HMAC-SHA256 keyed with `text`'s bytes (Commet's scheme).
    commet: Hmac<Sha256>,
    /// HMAC-SHA256 keyed with `key` (Standard Webhooks).
    standard: Hmac<Sha256>,
}

impl WebhookSecret {
    /// A fresh secret of [`GENERATED_BYTES`] random bytes from the operating system.
    pub fn generate() -> Result<WebhookSecret, InvalidField> {
        let mut bytes = [0u8; GENERATED_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| InvalidField::new(FIELD, format_args!("no randomness: {e}")))?;
        WebhookSecret::from_bytes(&bytes)
    }

    /// The secret made of `bytes` (24 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<WebhookSecret, InvalidField> {
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
            return Err(InvalidField::new(
                FIELD,
                format_args!("must hold {MIN_BYTES} to {MAX_BYTES} bytes"),
            ));
        }
        let mut text = String::with_capacity(PREFIX.len() + MAX_BASE64_CHARS);
        text.push_str(PREFIX);
        STANDARD.encode_string(bytes, &mut text);
        let commet = keyed(text.as_bytes())?;
        let standard = keyed(bytes)?;
        Ok(WebhookSecret {
            text,
            key: bytes.into(),
            commet,
            standard,
        })
    }

    /// The whole secret, `whsec_...`: to show once to the host, or for a store to persist.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The decoded random bytes (the Standard Webhooks key).
    #[must_use]
    pub fn key_bytes(&self) -> &[u8] {
        &self.key
    }

    /// HMAC-SHA256 keyed with the bytes of the whole string (Commet's scheme).
    pub(crate) fn commet_mac(&self) -> Hmac<Sha256> {
        self.commet.clone()
    }

    /// HMAC-SHA256 keyed with the decoded bytes (Standard Webhooks).
    pub(crate) fn standard_mac(&self) -> Hmac<Sha256> {
        self.standard.clone()
    }
}

/// HMAC-SHA256 keyed with `key` (HMAC takes keys of any length; the error cannot happen).
fn keyed(key: &[u8]) -> Result<Hmac<Sha256>, InvalidField> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|e| InvalidField::new(FIELD, e))
}

impl FromStr for WebhookSecret {
    type Err = InvalidField;

    /// Strict: the `whsec_` prefix (lower case), then canonical standard base64 with padding
    /// (no whitespace, no URL-safe alphabet, no stray bits) of 24 to 64 bytes. Errors name
    /// `webhook_secret` and never repeat the input.
    fn from_str(text: &str) -> Result<WebhookSecret, InvalidField> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| InvalidField::new(FIELD, format_args!("must start with `{PREFIX}`")))?;
        if encoded.len() > MAX_BASE64_CHARS {
            return Err(InvalidField::new(
                FIELD,
                format_args!("must hold {MIN_BYTES} to {MAX_BYTES} bytes"),
            ));
        }
        // The decoder's own message names the offending byte: it is not passed on.
        let bytes = STANDARD.decode(encoded).map_err(|_| {
            InvalidField::new(
                FIELD,
                format_args!("must be `{PREFIX}` followed by standard base64 with padding"),
            )
        })?;
        WebhookSecret::from_bytes(&bytes)
    }
}

impl PartialEq for WebhookSecret {
    /// Constant time in the secrets' contents.
    fn eq(&self, other: &WebhookSecret) -> bool {
        self.text.as_bytes().ct_eq(other.text.as_bytes()).into()
    }
}

impl Eq for WebhookSecret {}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `whsec_` + base64 of the bytes 0, 1, ..., 31.
    const BYTES_0_TO_31: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn bytes_0_to_31() -> Vec<u8> {
        (0u8..32).collect()
    }

    #[test]
    fn a_secret_is_whsec_and_the_standard_base64_of_its_bytes() {
        let secret = WebhookSecret::from_bytes(&bytes_0_to_31()).unwrap();
        assert_eq!(secret.expose(), BYTES_0_TO_31);
        assert_eq!(secret.key_bytes(), bytes_0_to_31().as_slice());
        let parsed: WebhookSecret = BYTES_0_TO_31.parse().unwrap();
        assert_eq!(parsed, secret);
        assert_eq!(parsed.key_bytes(), secret.key_bytes());
    }

    #[test]
    fn generated_secrets_hold_32_fresh_bytes_and_parse_back() {
        let one = WebhookSecret::generate().unwrap();
        let two = WebhookSecret::generate().unwrap();
        assert_eq!(one.key_bytes().len(), GENERATED_BYTES);
        assert_ne!(one, two);
        assert_eq!(one.expose().parse::<WebhookSecret>().unwrap(), one);
    }

    #[test]
    fn the_standard_webhooks_test_secret_parses() {
        // 24 bytes: the smallest size allowed.
        let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        assert_eq!(secret.key_bytes().len(), 24);
    }

    #[test]
    fn sizes_from_24_to_64_bytes_are_accepted_and_no_others() {
        for len in 0..=80 {
            let bytes = vec![0xA5; len];
            let made = WebhookSecret::from_bytes(&bytes);
            let text = format!("{PREFIX}{}", STANDARD.encode(&bytes));
            let parsed = text.parse::<WebhookSecret>();
            if (MIN_BYTES..=MAX_BYTES).contains(&len) {
                assert_eq!(made.unwrap().expose(), text);
                assert_eq!(parsed.unwrap().key_bytes(), bytes.as_slice());
            } else {
                assert_eq!(made.unwrap_err().field, "webhook_secret");
                assert_eq!(parsed.unwrap_err().field, "webhook_secret");
            }
        }
    }

    #[test]
    fn every_kind_of_bad_input_names_the_field_and_never_repeats_the_secret() {
        let body = BYTES_0_TO_31.strip_prefix(PREFIX).unwrap();
        let url_safe = "whsec_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_";
        let cases = [
            String::new(),
            body.to_owned(),                                // no prefix
            format!("WHSEC_{body}"),                        // prefix in the wrong case
            format!("whsk_{body}"),                         // another prefix
            format!(" {BYTES_0_TO_31}"),                    // leading space
            format!("{BYTES_0_TO_31} "),                    // trailing space
            format!("{BYTES_0_TO_31}\n"),                   // trailing newline
            BYTES_0_TO_31.trim_end_matches('=').to_owned(), // padding missing
            format!("{BYTES_0_TO_31}="),                    // too much padding
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=".to_owned(), // stray bits
            url_safe.to_owned(),                            // URL-safe alphabet
            "whsec_AAEC AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(), // inner space
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\u{e9}".to_owned(), // not ASCII
            PREFIX.to_owned(),                              // nothing after it
            format!("{PREFIX}{}", STANDARD.encode([7u8; 23])), // 23 bytes
            format!("{PREFIX}{}", STANDARD.encode([7u8; 65])), // 65 bytes
            format!("{PREFIX}{}", "A".repeat(1 << 20)),     // huge
        ];
        for case in cases {
            let error = case.parse::<WebhookSecret>().unwrap_err();
            assert_eq!(error.field, "webhook_secret", "{case:?}");
            let shown = error.to_string();
            let encoded = case.strip_prefix(PREFIX).unwrap_or(&case);
            if encoded.len() >= 4 {
                assert!(!shown.contains(encoded), "{shown} repeats the input");
            }
            assert!(!shown.contains("offset"), "{shown} names a position");
        }
    }

    #[test]
    fn debug_prints_nothing_of_the_secret() {
        let secret: WebhookSecret = BYTES_0_TO_31.parse().unwrap();
        let shown = format!("{secret:?} {secret:#?} {:?}", Some(&secret));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
        assert!(!shown.contains("AAEC"));
        assert!(!shown.contains("whsec_"));
    }

    #[test]
    fn equality_follows_the_secret() {
        let a = WebhookSecret::from_bytes(&[1; 32]).unwrap();
        let b = WebhookSecret::from_bytes(&[1; 32]).unwrap();
        let c = WebhookSecret::from_bytes(&[2; 32]).unwrap();
        let d = WebhookSecret::from_bytes(&[1; 33]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.clone(), a);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
