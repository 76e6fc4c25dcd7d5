//! The headers of a delivery: every attempt is signed with both schemes from one
//! [`WebhookSecret`], so a receiver can use Commet's SDKs unchanged or any Standard Webhooks
//! library.
//!
//! # Commet's scheme
//!
//! `X-Commet-Signature` is the lowercase hex HMAC-SHA256 of the raw body bytes, keyed with the
//! UTF-8 bytes of the secret string as it is (`whsec_` prefix included, no base64 decoding).
//! This is what the official SDKs compute and compare, read in their sources
//! (`commet-labs/commet` at commit 4060f8f, August 2026, and the other SDK repositories as
//! indexed then):
//!
//! - `@commet/node` (`commet-labs/commet`, `packages/node/src/resources/webhooks.ts`, v9.2.0):
//!   `crypto.createHmac("sha256", secret).update(payload).digest("hex")`, compared with
//!   `crypto.timingSafeEqual(Buffer.from(signature, "hex"), ...)` (so it also accepts upper
//!   case); its tests key with `"whsec_test_secret_key_1234567890"` as a plain string;
//! - `commet-sdk`, the Python SDK (`commet-labs/commet-python`,
//!   `src/commet/resources/webhooks.py`):
//!   `hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()`, compared with
//!   `hmac.compare_digest` on the text (so it needs lower case: what commet sends);
//! - `commet-go` (`webhooks.go`): `hmac.New(sha256.New, []byte(secret))`, `hex.EncodeToString`,
//!   `hmac.Equal` on the text.
//!
//! All three refuse an empty payload, signature or secret, read only `X-Commet-Signature`,
//! take the payload as a string (so it must be UTF-8, as JSON is) and then parse it as JSON.
//!
//! The other headers, from Commet's webhook documentation (`commet-labs/commet`,
//! `packages/node/docs/webhooks/introduction.md`): `X-Commet-Event` is the event type
//! (`subscription.activated`), `X-Commet-Event-Id` the event id (the envelope's `id`, stable
//! across retries), and `X-Commet-Timestamp` an "ISO 8601 datetime when the event was
//! emitted"; Commet's own CLI (`packages/cli/src/commands/listen.ts`) forwards the envelope's
//! `timestamp` there, which JavaScript writes with milliseconds (`2026-03-25T14:30:00.000Z`).
//! [`sign_delivery`] writes the event's emission instant there in that format, the same on
//! every attempt (the attempt's own instant goes in `webhook-timestamp`). No SDK reads the
//! header, so its value changes nothing for verification.
//!
//! Commet's header holds one signature, and the SDKs compare it whole, so it is made with the
//! current secret only: during a rotation a receiver that still has the old secret fails
//! Commet's check but passes the Standard Webhooks one, which carries a signature per secret.
//!
//! # Standard Webhooks v1
//!
//! `webhook-id` (the event id), `webhook-timestamp` (unix seconds of this attempt) and
//! `webhook-signature: v1,<standard base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">`
//! keyed with the base64-decoded secret; with several secrets (a rotation), one `v1,...` per
//! secret, separated by single spaces, the current one first. As in the reference
//! implementation, `standard-webhooks/standard-webhooks` (commit b2fa7b8):
//! `spec/standard-webhooks.md` ("Signature scheme", "Webhook headers") and
//! `libraries/rust/src/lib.rs` (`Webhook::sign`, whose test vector this crate's tests check).
//!
//! Signing hashes the message only: the secret keeps both HMAC states already keyed, the
//! signed content is fed to the MAC piece by piece (no concatenated copy of the body), and
//! the encodings are written into strings allocated once at their final size.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookSecret;
use crate::InvalidField;

/// `Content-Type`, always `application/json`.
pub const CONTENT_TYPE: &str = "Content-Type";
/// The media type of every delivery.
pub const APPLICATION_JSON: &str = "application/json";
/// Commet's signature: lowercase hex HMAC-SHA256 of the body, keyed with the secret string.
pub const COMMET_SIGNATURE: &str = "X-Commet-Signature";
/// The event type, e.g. `subscription.activated`.
pub const COMMET_EVENT: &str = "X-Commet-Event";
/// The event id, the same on every attempt.
pub const COMMET_EVENT_ID: &str = "X-Commet-Event-Id";
/// The instant given to [`sign_delivery`], ISO 8601 in UTC with milliseconds.
pub const COMMET_TIMESTAMP: &str = "X-Commet-Timestamp";
/// Standard Webhooks: the message id (the event id).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: unix seconds of this attempt.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64>` per secret, space-separated.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The longest event id or event name signed (and verified), in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// The version tag of a symmetric Standard Webhooks signature.
pub(crate) const V1: &str = "v1";
/// Characters of one `v1,<base64>` signature: the tag, the comma, 44 base64 characters.
const STANDARD_SIGNATURE_CHARS: usize = V1.len() + 1 + 44;

/// The headers of one delivery attempt, in a fixed order: `Content-Type` first, then the
/// Commet ones, then the Standard Webhooks ones. Nothing in them is secret (signatures are
/// safe to print), so `Debug` shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders(Vec<(&'static str, String)>);

impl SignedHeaders {
    /// The headers as `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(name, value)| (*name, value.as_str()))
    }

    /// The headers as a slice of `(name, value)` pairs, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[(&'static str, String)] {
        &self.0
    }

    /// The value of the header `name`, which is matched ignoring ASCII case.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The headers, to hand to an HTTP client.
    #[must_use]
    pub fn into_vec(self) -> Vec<(&'static str, String)> {
        self.0
    }
}

impl<'a> IntoIterator for &'a SignedHeaders {
    type Item = &'a (&'static str, String);
    type IntoIter = std::slice::Iter<'a, (&'static str, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Commet's `X-Commet-Signature` of `body`: lowercase hex HMAC-SHA256, keyed with the bytes of
/// the secret string (`whsec_...` as it is).
#[must_use]
pub fn commet_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = secret.commet_mac();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(2 * tag.len());
    for byte in tag {
        hex.push(hex_digit(byte >> 4));
        hex.push(hex_digit(byte & 0x0f));
    }
    hex
}

/// The Standard Webhooks signature `v1,<base64>` of `body` sent as message `id` at
/// `timestamp` (unix seconds), keyed with the secret's decoded bytes.
#[must_use]
pub fn standard_signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signature = String::with_capacity(STANDARD_SIGNATURE_CHARS);
    push_standard_signature(&mut signature, secret, id, timestamp, body);
    signature
}

/// Sign one delivery attempt of the event `event_id` (named `event_name`, e.g.
/// `subscription.activated`, emitted at `emitted_at`) whose envelope is `body`, made at
/// `timestamp`, with `secrets`: the current one first, then any still signing during a
/// rotation (at least one).
///
/// Commet's signature uses the current secret only (its header holds one signature); the
/// Standard Webhooks header carries one signature per secret. `webhook-timestamp` is
/// `timestamp` (this attempt) in whole unix seconds, which is what replay protection needs;
/// `X-Commet-Timestamp` is `emitted_at` in ISO 8601 to the millisecond, as Commet sends it
/// (the envelope's `timestamp`, the same on every attempt; the envelope itself keeps any
/// finer fraction).
///
/// Refused, naming the field: no secret (`webhook_secret`); an event id or name that is
/// empty, longer than [`MAX_ID_BYTES`] or not printable ASCII without spaces (`event_id`,
/// `event_name`); an instant before 1970 (`timestamp`).
pub fn sign_delivery(
    event_id: &str,
    event_name: &str,
    emitted_at: DateTime<Utc>,
    body: &[u8],
    timestamp: DateTime<Utc>,
    secrets: &[&WebhookSecret],
) -> Result<SignedHeaders, InvalidField> {
    let Some((current, _)) = secrets.split_first() else {
        return Err(InvalidField::new(
            "webhook_secret",
            "at least one secret is needed to sign",
        ));
    };
    check_token("event_id", event_id)?;
    check_token("event_name", event_name)?;
    let seconds = timestamp.timestamp();
    if seconds < 0 {
        return Err(InvalidField::new("timestamp", "must not be before 1970"));
    }
    if !(0..=9999).contains(&emitted_at.year()) {
        return Err(InvalidField::new(
            "emitted_at",
            "must be within the years 0 to 9999 (ISO 8601 as JavaScript reads it)",
        ));
    }

    let mut standard = String::with_capacity(secrets.len() * (STANDARD_SIGNATURE_CHARS + 1));
    for (n, secret) in secrets.iter().enumerate() {
        if n > 0 {
            standard.push(' ');
        }
        push_standard_signature(&mut standard, secret, event_id, seconds, body);
    }

    Ok(SignedHeaders(vec![
        (CONTENT_TYPE, APPLICATION_JSON.to_owned()),
        (COMMET_SIGNATURE, commet_signature(current, body)),
        (COMMET_EVENT, event_name.to_owned()),
        (COMMET_EVENT_ID, event_id.to_owned()),
        (
            COMMET_TIMESTAMP,
            emitted_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
        (WEBHOOK_ID, event_id.to_owned()),
        (WEBHOOK_TIMESTAMP, seconds.to_string()),
        (WEBHOOK_SIGNATURE, standard),
    ]))
}

/// Append `v1,<base64>` of `"{id}.{timestamp}.{body}"` to `out`.
fn push_standard_signature(
    out: &mut String,
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) {
    let tag = standard_tag(secret.standard_mac(), id, timestamp, body);
    out.push_str(V1);
    out.push(',');
    STANDARD.encode_string(tag, out);
}

/// The HMAC of `"{id}.{timestamp}.{body}"` under `mac`, fed piece by piece.
pub(crate) fn standard_tag(
    mut mac: Hmac<Sha256>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [u8; 32] {
    mac.update(id.as_bytes());
    mac.update(b".");
    // The decimal digits go straight into the MAC; writing to it cannot fail.
    let _ = write!(MacWriter(&mut mac), "{timestamp}");
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Feeds formatted text to a MAC without an intermediate buffer.
struct MacWriter<'a>(&'a mut Hmac<Sha256>);

impl fmt::Write for MacWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.update(text.as_bytes());
        Ok(())
    }
}

/// The lowercase hex digit of a nibble (`0..=15`).
fn hex_digit(nibble: u8) -> char {
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' - 10 + nibble
    })
}

/// An id or event name fit for a header and a signed message: 1 to [`MAX_ID_BYTES`] printable
/// ASCII characters, no spaces.
fn check_token(field: &str, value: &str) -> Result<(), InvalidField> {
    if value.is_empty()
        || value.len() > MAX_ID_BYTES
        || !value.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(InvalidField::new(
            field,
            format_args!("must be 1 to {MAX_ID_BYTES} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn secret(fill: u8) -> WebhookSecret {
        WebhookSecret::from_bytes(&[fill; 32]).unwrap()
    }

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_774_449_000, 123_456_789).unwrap()
    }

    #[test]
    fn a_delivery_carries_both_schemes_in_a_fixed_order() {
        let (current, old) = (secret(1), secret(2));
        let body = br#"{"id":"evt_1"}"#;
        let headers = sign_delivery(
            "evt_1",
            "subscription.activated",
            at() - chrono::TimeDelta::hours(1),
            body,
            at(),
            &[&current, &old],
        )
        .unwrap();
        let names: Vec<_> = headers.iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                CONTENT_TYPE,
                COMMET_SIGNATURE,
                COMMET_EVENT,
                COMMET_EVENT_ID,
                COMMET_TIMESTAMP,
                WEBHOOK_ID,
                WEBHOOK_TIMESTAMP,
                WEBHOOK_SIGNATURE
            ]
        );
        assert_eq!(headers.get("content-type"), Some("application/json"));
        assert_eq!(
            headers.get("x-commet-signature"),
            Some(commet_signature(&current, body).as_str())
        );
        assert_eq!(
            headers.get("X-COMMET-EVENT"),
            Some("subscription.activated")
        );
        assert_eq!(headers.get(COMMET_EVENT_ID), Some("evt_1"));
        assert_eq!(
            headers.get(COMMET_TIMESTAMP),
            Some("2026-03-25T13:30:00.123Z"),
            "when the event was emitted, not when this attempt was made"
        );
        assert_eq!(headers.get(WEBHOOK_ID), Some("evt_1"));
        assert_eq!(headers.get(WEBHOOK_TIMESTAMP), Some("1774449000"));
        assert_eq!(
            headers.get(WEBHOOK_SIGNATURE),
            Some(
                format!(
                    "{} {}",
                    standard_signature(&current, "evt_1", 1_774_449_000, body),
                    standard_signature(&old, "evt_1", 1_774_449_000, body)
                )
                .as_str()
            )
        );
        assert_eq!(headers.get("webhook-unknown"), None);
        assert_eq!(headers.as_slice().len(), 8);
        assert_eq!(headers.clone().into_vec().len(), 8);
    }

    #[test]
    fn signatures_have_their_fixed_shapes() {
        let hex = commet_signature(&secret(3), b"{}");
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let standard = standard_signature(&secret(3), "evt_1", 0, b"{}");
        assert_eq!(standard.len(), STANDARD_SIGNATURE_CHARS);
        assert!(standard.starts_with("v1,"));
        assert!(standard.ends_with('='));
    }

    #[test]
    fn bad_inputs_are_refused_naming_the_field() {
        let s = secret(4);
        let field = |result: Result<SignedHeaders, InvalidField>| result.unwrap_err().field;
        assert_eq!(
            field(sign_delivery("evt_1", "a.b", at(), b"{}", at(), &[])),
            "webhook_secret"
        );
        for id in [
            "",
            "evt 1",
            "evt\r\n1",
            "\u{e9}",
            &"x".repeat(MAX_ID_BYTES + 1),
        ] {
            assert_eq!(
                field(sign_delivery(id, "a.b", at(), b"{}", at(), &[&s])),
                "event_id"
            );
            assert_eq!(
                field(sign_delivery("evt_1", id, at(), b"{}", at(), &[&s])),
                "event_name"
            );
        }
        let before_1970 = Utc.timestamp_opt(-1, 0).unwrap();
        assert_eq!(
            field(sign_delivery(
                "evt_1",
                "a.b",
                before_1970,
                b"{}",
                before_1970,
                &[&s]
            )),
            "timestamp"
        );
        let longest = "x".repeat(MAX_ID_BYTES);
        assert!(sign_delivery(&longest, &longest, at(), b"", at(), &[&s]).is_ok());
    }

    #[test]
    fn debug_shows_the_headers_and_nothing_of_the_secret() {
        let s = secret(5);
        let headers = sign_delivery("evt_1", "a.b", at(), b"{}", at(), &[&s]).unwrap();
        let shown = format!("{headers:?}");
        assert!(shown.contains("X-Commet-Signature"));
        assert!(!shown.contains(s.expose()));
        assert!(!shown.contains(s.expose().trim_start_matches("whsec_")));
    }
}
