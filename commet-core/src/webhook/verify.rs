//! The receiver's side: check that a delivery comes from the holder of the endpoint secret.
//! A receiver depends on `commet-core` alone.
//!
//! - [`verify`] and [`verify_and_parse`] have the shape of the Commet SDKs' functions
//!   (`verify(payload, signature, secret)`, a `bool` or `null` there, a typed `Result` here):
//!   the `X-Commet-Signature` header against the raw body, keyed with the secret string as it
//!   is. Commet's scheme signs the body only, so it does not resist replay: deduplicate on the
//!   envelope's `id`.
//! - [`verify_standard`] checks the Standard Webhooks headers, which also sign the message id
//!   and the attempt's timestamp: a delivery is refused more than [`TOLERANCE`] away from
//!   `now`, so a captured request cannot be replayed later.
//!
//! Both compare in constant time, decode strictly and bound the sizes they read (so that no
//! input makes them slow), and return a typed [`WebhookError`], never panic. No error message
//! repeats a secret.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use super::WebhookSecret;
use super::signing::{
    COMMET_SIGNATURE, MAX_ID_BYTES, SignedHeaders, V1, WEBHOOK_ID, WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP, standard_tag,
};
use crate::event::Envelope;

/// How far `webhook-timestamp` may be from the receiver's clock, either way (inclusive: a
/// delivery exactly 5 minutes old verifies, one a second older does not). The Standard
/// Webhooks reference implementations use the same 5 minutes and the same boundary.
pub const TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// The longest `webhook-signature` header read, in bytes; a longer one is malformed.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 4096;

/// The longest secret string [`verify`] accepts, in bytes.
pub const MAX_SECRET_BYTES: usize = 4096;

/// Bytes of an HMAC-SHA256 tag.
const TAG_BYTES: usize = 32;
/// Standard base64 characters of a tag (with its one `=` of padding).
const TAG_BASE64_CHARS: usize = 44;
/// The most digits a `webhook-timestamp` has (`i64::MAX` has 19).
const MAX_TIMESTAMP_DIGITS: usize = 19;

/// Why a delivery was refused. Messages never repeat a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A header that verification needs is absent (or the signature given is empty).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not in its one accepted form.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The secret to verify with is unusable (empty, too long, none given).
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(&'static str),
    /// Well formed, but no signature matches any secret: forged, altered, or signed with
    /// another secret.
    #[error("no signature matches the payload")]
    NoMatchingSignature,
    /// `webhook-timestamp` is more than [`TOLERANCE`] before `now`: possibly a replay.
    #[error("the webhook timestamp {timestamp} is more than 5 minutes before {now}")]
    TimestampTooOld {
        /// The delivery's timestamp.
        timestamp: DateTime<Utc>,
        /// The receiver's clock.
        now: DateTime<Utc>,
    },
    /// `webhook-timestamp` is more than [`TOLERANCE`] after `now`.
    #[error("the webhook timestamp {timestamp} is more than 5 minutes after {now}")]
    TimestampInFuture {
        /// The delivery's timestamp.
        timestamp: DateTime<Utc>,
        /// The receiver's clock.
        now: DateTime<Utc>,
    },
    /// The payload verified but is not an envelope commet understands.
    #[error("invalid payload: {0}")]
    Payload(String),
}

impl WebhookError {
    fn malformed(header: &'static str, reason: &str) -> WebhookError {
        WebhookError::MalformedHeader {
            header,
            reason: reason.to_owned(),
        }
    }
}

/// Check Commet's `X-Commet-Signature` (`signature`) of the raw body `payload` with the
/// endpoint `secret`, as the Commet SDKs' `verify(payload, signature, secret)` does: HMAC-SHA256
/// keyed with the secret string's bytes as they are (any non-empty string; `whsec_...` is not
/// decoded), compared in constant time.
///
/// The signature is 64 hex digits (either case), nothing else. Unlike the SDKs an empty
/// payload is not refused outright: it verifies if it was signed (commet never sends one).
pub fn verify(payload: &[u8], signature: &str, secret: &str) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::InvalidSecret("the secret is empty"));
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err(WebhookError::InvalidSecret(
            "the secret is longer than 4096 bytes",
        ));
    }
    let tag = decode_hex_tag(signature)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|_| WebhookError::InvalidSecret("the secret cannot key HMAC-SHA256"))?;
    mac.update(payload);
    mac.verify_slice(&tag)
        .map_err(|_| WebhookError::NoMatchingSignature)
}

/// [`verify`], then decode the payload as a commet [`Envelope`] (the SDKs' `verifyAndParse`).
/// Nothing is decoded before the signature verifies.
pub fn verify_and_parse(
    payload: &[u8],
    signature: &str,
    secret: &str,
) -> Result<Envelope, WebhookError> {
    verify(payload, signature, secret)?;
    let text = std::str::from_utf8(payload)
        .map_err(|_| WebhookError::Payload("the payload is not UTF-8".to_owned()))?;
    Envelope::from_json(text).map_err(|e| WebhookError::Payload(e.to_string()))
}

/// Where a receiver's request headers come from. Lookup ignores ASCII case; when a name
/// appears more than once, the first one counts.
///
/// Implemented for slices, arrays and vectors of `(name, value)` pairs of `&str` or `String`,
/// for `BTreeMap<String, String>` and `HashMap<String, String>`, and for [`SignedHeaders`].
pub trait HeaderSource {
    /// The value of the header `name`, if present.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderSource for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl HeaderSource for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| {
                self.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value)
            })
            .map(String::as_str)
    }
}

impl<S: BuildHasher> HeaderSource for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| {
                self.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value)
            })
            .map(String::as_str)
    }
}

impl HeaderSource for SignedHeaders {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

impl<T: HeaderSource + ?Sized> HeaderSource for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

/// What a verified Standard Webhooks delivery says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedStandard {
    /// `webhook-id`: the event id, the same on every attempt (deduplicate on it).
    pub id: String,
    /// `webhook-timestamp`: when this attempt was signed.
    pub timestamp: DateTime<Utc>,
}

/// Check a Standard Webhooks v1 delivery of the raw body `body` at the receiver's instant
/// `now`, with the endpoint's `secrets` (during a rotation, the new and the old one).
///
/// In order: `webhook-id` (1 to 256 bytes), `webhook-timestamp` (unix seconds, plain digits,
/// no leading zero) within [`TOLERANCE`] of `now` either way, bounds included; then
/// `webhook-signature`, a space-separated list (at most 4 KiB) of `version,base64`: any `v1`
/// signature matching any secret verifies. Other versions (`v1a,...`), base64 that is not
/// canonical standard base64 or does not decode to 32 bytes are skipped as non-matching.
/// Signatures are compared in constant time.
pub fn verify_standard<H: HeaderSource + ?Sized>(
    headers: &H,
    body: &[u8],
    secrets: &[&WebhookSecret],
    now: DateTime<Utc>,
) -> Result<VerifiedStandard, WebhookError> {
    if secrets.is_empty() {
        return Err(WebhookError::InvalidSecret("no secret to verify with"));
    }
    let id = headers
        .header(WEBHOOK_ID)
        .ok_or(WebhookError::MissingHeader(WEBHOOK_ID))?;
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(WebhookError::malformed(
            WEBHOOK_ID,
            "must be 1 to 256 bytes long",
        ));
    }
    let seconds = parse_timestamp(
        headers
            .header(WEBHOOK_TIMESTAMP)
            .ok_or(WebhookError::MissingHeader(WEBHOOK_TIMESTAMP))?,
    )?;
    let timestamp = DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| WebhookError::malformed(WEBHOOK_TIMESTAMP, "out of range"))?;
    let age = now.signed_duration_since(timestamp);
    if age > TOLERANCE {
        return Err(WebhookError::TimestampTooOld { timestamp, now });
    }
    if age < -TOLERANCE {
        return Err(WebhookError::TimestampInFuture { timestamp, now });
    }
    let signatures = headers
        .header(WEBHOOK_SIGNATURE)
        .ok_or(WebhookError::MissingHeader(WEBHOOK_SIGNATURE))?;
    if signatures.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(WebhookError::malformed(
            WEBHOOK_SIGNATURE,
            "longer than 4096 bytes",
        ));
    }

    let expected: Vec<[u8; TAG_BYTES]> = secrets
        .iter()
        .map(|secret| standard_tag(secret.standard_mac(), id, seconds, body))
        .collect();
    let mut matched = Choice::from(0);
    for candidate in signatures.split(' ').filter_map(decode_v1_tag) {
        for tag in &expected {
            matched |= tag.as_slice().ct_eq(candidate.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(VerifiedStandard {
            id: id.to_owned(),
            timestamp,
        })
    } else {
        Err(WebhookError::NoMatchingSignature)
    }
}

/// `webhook-timestamp`: 1 to 19 ASCII digits, no sign, no leading zero, within `i64`.
fn parse_timestamp(text: &str) -> Result<i64, WebhookError> {
    let canonical = !text.is_empty()
        && text.len() <= MAX_TIMESTAMP_DIGITS
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(WebhookError::malformed(
            WEBHOOK_TIMESTAMP,
            "must be unix seconds in plain digits",
        ));
    }
    text.parse()
        .map_err(|_| WebhookError::malformed(WEBHOOK_TIMESTAMP, "out of range"))
}

/// The tag of one `v1,<base64>` entry, or `None` for another version or a malformed entry.
fn decode_v1_tag(entry: &str) -> Option<[u8; TAG_BYTES]> {
    let (version, encoded) = entry.split_once(',')?;
    if version != V1 || encoded.len() != TAG_BASE64_CHARS {
        return None;
    }
    // The decoder wants room for its estimate (33 bytes for 44 characters).
    let mut buffer = [0u8; TAG_BYTES + 3];
    let written = STANDARD.decode_slice(encoded, &mut buffer).ok()?;
    let (tag, _) = buffer.split_first_chunk::<TAG_BYTES>()?;
    (written == TAG_BYTES).then_some(*tag)
}

/// `X-Commet-Signature`: exactly 64 hex digits (either case), as 32 bytes.
fn decode_hex_tag(signature: &str) -> Result<[u8; TAG_BYTES], WebhookError> {
    if signature.is_empty() {
        return Err(WebhookError::MissingHeader(COMMET_SIGNATURE));
    }
    let malformed = || WebhookError::malformed(COMMET_SIGNATURE, "must be 64 hex digits");
    if signature.len() != 2 * TAG_BYTES {
        return Err(malformed());
    }
    let mut tag = [0u8; TAG_BYTES];
    for (byte, pair) in tag.iter_mut().zip(signature.as_bytes().chunks_exact(2)) {
        let [high, low] = pair else {
            return Err(malformed());
        };
        *byte = (hex_value(*high).ok_or_else(malformed)? << 4)
            | hex_value(*low).ok_or_else(malformed)?;
    }
    Ok(tag)
}

/// The value of one hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::webhook::signing::{commet_signature, sign_delivery, standard_signature};

    fn secret() -> WebhookSecret {
        WebhookSecret::from_bytes(&[9; 32]).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 25, 14, 30, 0).unwrap()
    }

    #[test]
    fn commet_signatures_verify_in_either_case_and_nothing_else_does() {
        let s = secret();
        let body = br#"{"id":"evt_1"}"#;
        let hex = commet_signature(&s, body);
        assert_eq!(verify(body, &hex, s.expose()), Ok(()));
        assert_eq!(verify(body, &hex.to_uppercase(), s.expose()), Ok(()));
        assert_eq!(
            verify(b"{}", &hex, s.expose()),
            Err(WebhookError::NoMatchingSignature)
        );
        assert_eq!(
            verify(body, &hex, "whsec_other"),
            Err(WebhookError::NoMatchingSignature)
        );
        assert_eq!(
            verify(body, "", s.expose()),
            Err(WebhookError::MissingHeader(COMMET_SIGNATURE))
        );
        for bad in [
            &hex[1..],
            &format!("{hex}0"),
            &format!(" {}", &hex[1..]),
            &format!("g{}", &hex[1..]),
            &format!("sha256={hex}"),
            &"é".repeat(32),
        ] {
            assert!(
                matches!(
                    verify(body, bad, s.expose()),
                    Err(WebhookError::MalformedHeader {
                        header: COMMET_SIGNATURE,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            verify(body, &hex, ""),
            Err(WebhookError::InvalidSecret("the secret is empty"))
        );
        assert!(matches!(
            verify(body, &hex, &"x".repeat(MAX_SECRET_BYTES + 1)),
            Err(WebhookError::InvalidSecret(_))
        ));
    }

    #[test]
    fn standard_timestamps_are_plain_digits() {
        for good in ["0", "1614265330", "9223372036854775807"] {
            assert!(parse_timestamp(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "01614265330",
            "+1614265330",
            "-1",
            " 1614265330",
            "1614265330.5",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v1_entries_decode_strictly() {
        let s = secret();
        let good = standard_signature(&s, "evt_1", 0, b"{}");
        assert!(decode_v1_tag(&good).is_some());
        assert!(decode_v1_tag(&good.replacen("v1,", "v1a,", 1)).is_none());
        assert!(decode_v1_tag(&good.replacen("v1,", "v2,", 1)).is_none());
        assert!(decode_v1_tag(good.trim_end_matches('=')).is_none());
        assert!(decode_v1_tag(&good.replace('=', "A")).is_none());
        assert!(decode_v1_tag(&format!("{good}=")).is_none());
        assert!(decode_v1_tag("v1").is_none());
        assert!(decode_v1_tag("v1,").is_none());
    }

    #[test]
    fn signed_headers_are_a_header_source() {
        let s = secret();
        let headers = sign_delivery("evt_1", "a.b", now(), b"{}", now(), &[&s]).unwrap();
        assert_eq!(
            verify_standard(&headers, b"{}", &[&s], now()),
            Ok(VerifiedStandard {
                id: "evt_1".to_owned(),
                timestamp: now()
            })
        );
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| (name.to_uppercase(), value.to_owned()))
            .collect();
        assert!(verify_standard(&pairs, b"{}", &[&s], now()).is_ok());
        assert!(verify_standard(pairs.as_slice(), b"{}", &[&s], now()).is_ok());
        let map: HashMap<String, String> = pairs.iter().cloned().collect();
        assert!(verify_standard(&map, b"{}", &[&s], now()).is_ok());
        let map: BTreeMap<String, String> = pairs.into_iter().collect();
        assert!(verify_standard(&map, b"{}", &[&s], now()).is_ok());
        assert_eq!(
            verify_standard(&headers, b"{}", &[], now()),
            Err(WebhookError::InvalidSecret("no secret to verify with"))
        );
    }

    #[test]
    fn missing_and_oversized_headers_are_typed_errors() {
        let s = secret();
        let headers = sign_delivery("evt_1", "a.b", now(), b"{}", now(), &[&s]).unwrap();
        for name in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE] {
            let without: Vec<_> = headers.iter().filter(|(n, _)| *n != name).collect();
            assert_eq!(
                verify_standard(&without, b"{}", &[&s], now()),
                Err(WebhookError::MissingHeader(name))
            );
        }
        let long_signature = format!(
            "{} {}",
            "v1a,x".repeat(MAX_SIGNATURE_HEADER_BYTES / 5),
            headers.get(WEBHOOK_SIGNATURE).unwrap()
        );
        let oversized = [
            (WEBHOOK_ID, headers.get(WEBHOOK_ID).unwrap().to_owned()),
            (
                WEBHOOK_TIMESTAMP,
                headers.get(WEBHOOK_TIMESTAMP).unwrap().to_owned(),
            ),
            (WEBHOOK_SIGNATURE, long_signature),
        ];
        assert!(matches!(
            verify_standard(&oversized, b"{}", &[&s], now()),
            Err(WebhookError::MalformedHeader {
                header: WEBHOOK_SIGNATURE,
                ..
            })
        ));
        let empty_id = [
            (WEBHOOK_ID, String::new()),
            (WEBHOOK_TIMESTAMP, "0".to_owned()),
            (WEBHOOK_SIGNATURE, String::new()),
        ];
        assert!(matches!(
            verify_standard(&empty_id, b"{}", &[&s], now()),
            Err(WebhookError::MalformedHeader {
                header: WEBHOOK_ID,
                ..
            })
        ));
    }

    #[test]
    fn error_messages_never_repeat_the_secret() {
        let s = secret();
        let errors = [
            verify(b"{}", "zz", s.expose()).unwrap_err(),
            verify(b"{}", &"0".repeat(64), s.expose()).unwrap_err(),
            verify_and_parse(b"{}", &commet_signature(&s, b"{}"), s.expose()).unwrap_err(),
        ];
        for error in errors {
            let shown = format!("{error} {error:?}");
            assert!(
                !shown.contains(s.expose().trim_start_matches("whsec_")),
                "{shown}"
            );
        }
    }
}
