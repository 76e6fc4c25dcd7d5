//! Fuzz harnesses of the webhook signatures and the envelope. Each `fuzz/fuzz_targets/*.rs` of
//! them is a one-line call into a function here, and `commet-core/tests/webhook_signatures.rs`
//! includes this file too and runs every harness over its committed seed corpus, so they
//! compile and hold under `cargo test`. They check an oracle (only what was signed verifies),
//! not just the absence of panics. Public API of `commet-core` only, plus the `hmac` crate as
//! the independent reference for Commet's scheme.
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt::Write as _;

use chrono::DateTime;
use commet_core::event::Envelope;
use commet_core::webhook::signing::{
    COMMET_SIGNATURE, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};
use commet_core::webhook::verify::{MAX_SECRET_BYTES, MAX_SIGNATURE_HEADER_BYTES};
use commet_core::webhook::{
    HeaderSource, TOLERANCE, WebhookError, WebhookSecret, commet_signature, sign_delivery, verify,
    verify_and_parse, verify_standard,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The receiver's clock in the Standard Webhooks harness: 2026-03-25T14:30:00Z.
pub(crate) const NOW_SECONDS: i64 = 1_774_449_000;

/// The secret used when the input does not start with one: `whsec_` + base64 of 0, 1, ..., 31.
pub(crate) const DEFAULT_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Commet's scheme. Input: one byte `s` (signature length), one byte `k` (secret length),
/// then `s` bytes of signature, `k` bytes of secret (both read as lossy UTF-8), the rest is
/// the payload.
///
/// - `verify` and `verify_and_parse` return `Ok` or a typed error, never panic, and the error
///   follows the input's shape (empty secret, empty signature, not 64 hex digits);
/// - the fuzzed signature verifies exactly when it equals, ignoring ASCII case, the lowercase
///   hex HMAC-SHA256 of the payload keyed with the secret string (computed here with
///   the `hmac` crate directly), which itself always verifies, in either case;
/// - `verify_and_parse` succeeds exactly when `verify` does and the payload is an envelope;
/// - for a `WebhookSecret` made of the secret's bytes (when 24 to 64 of them),
///   `commet_signature` is that same reference HMAC keyed with `whsec_...`.
pub(crate) fn webhook_verify_commet(data: &[u8]) {
    let [signature_len, secret_len, rest @ ..] = data else {
        return;
    };
    let (signature, rest) = rest.split_at(usize::from(*signature_len).min(rest.len()));
    let (secret, payload) = rest.split_at(usize::from(*secret_len).min(rest.len()));
    let signature = String::from_utf8_lossy(signature);
    let secret_text = String::from_utf8_lossy(secret);

    let verified = verify(payload, &signature, &secret_text);
    let parsed = verify_and_parse(payload, &signature, &secret_text);
    match (&verified, &parsed) {
        (Ok(()), Ok(envelope)) => {
            let text = std::str::from_utf8(payload).expect("a parsed payload is UTF-8");
            assert_eq!(
                &Envelope::from_json(text).expect("it parsed once"),
                envelope
            );
        }
        (Ok(()), Err(error)) => assert!(
            matches!(error, WebhookError::Payload(_)),
            "verified, then {error:?}"
        ),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Err(_), Ok(_)) => panic!("parsed without verifying"),
    }

    if secret_text.is_empty() {
        assert!(matches!(verified, Err(WebhookError::InvalidSecret(_))));
        return;
    }
    if secret_text.len() > MAX_SECRET_BYTES {
        assert!(matches!(verified, Err(WebhookError::InvalidSecret(_))));
        return;
    }
    let expected = reference_commet(secret_text.as_bytes(), payload);
    assert_eq!(verify(payload, &expected, &secret_text), Ok(()));
    assert_eq!(
        verify(payload, &expected.to_ascii_uppercase(), &secret_text),
        Ok(())
    );
    let well_formed = signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit());
    match &verified {
        Ok(()) => assert!(signature.eq_ignore_ascii_case(&expected)),
        Err(WebhookError::NoMatchingSignature) => {
            assert!(well_formed && !signature.eq_ignore_ascii_case(&expected));
        }
        Err(WebhookError::MissingHeader(header)) => {
            assert!(signature.is_empty() && *header == COMMET_SIGNATURE);
        }
        Err(WebhookError::MalformedHeader { header, .. }) => {
            assert!(!signature.is_empty() && !well_formed && *header == COMMET_SIGNATURE);
        }
        Err(other) => panic!("unexpected {other:?}"),
    }

    if let Ok(secret) = WebhookSecret::from_bytes(secret) {
        let signed = commet_signature(&secret, payload);
        assert_eq!(
            signed,
            reference_commet(secret.expose().as_bytes(), payload)
        );
        assert_eq!(verify(payload, &signed, secret.expose()), Ok(()));
        assert_eq!(
            verify(payload, &signature, secret.expose()).is_ok(),
            signature.eq_ignore_ascii_case(&signed)
        );
    }
}

/// Standard Webhooks. Input, as lossy UTF-8: a first line, the secret if it parses as one
/// (else [`DEFAULT_SECRET`] is used and the line is a header); header lines `name: value`
/// up to an empty line; the rest is the body. The receiver's clock is [`NOW_SECONDS`].
///
/// - `verify_standard` returns `Ok` or a typed error, never panics;
/// - it verifies only if the timestamp is within the tolerance of the clock and one entry of
///   the signature header is exactly the signature made with the secret over the headers' id
///   and timestamp and the body (canonical base64 has one spelling), and then it returns
///   that id and timestamp; the same holds for another secret;
/// - a delivery signed by `sign_delivery` for the fuzzed id and body verifies, with the
///   secret and with a rotation list that contains it, but not with another secret; with its
///   signature header replaced by the fuzzed one it verifies exactly when one entry of the
///   fuzzed header is the real signature.
pub(crate) fn webhook_verify_standard(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.split('\n').peekable();
    let secret = match lines.peek().map(|line| line.parse::<WebhookSecret>()) {
        Some(Ok(secret)) => {
            lines.next();
            secret
        }
        _ => DEFAULT_SECRET.parse().expect("the default secret parses"),
    };
    let other = WebhookSecret::from_bytes(&[0xEE; 32]).expect("32 bytes");
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim_start()))
        .collect();
    let body = body.as_bytes();
    let now = DateTime::from_timestamp(NOW_SECONDS, 0).expect("a valid instant");

    match verify_standard(headers.as_slice(), body, &[&secret], now) {
        Ok(verified) => {
            let id = headers.header(WEBHOOK_ID).expect("verified with an id");
            assert_eq!(verified.id, id);
            let seconds = verified.timestamp.timestamp();
            assert_eq!(
                headers.header(WEBHOOK_TIMESTAMP),
                Some(seconds.to_string().as_str())
            );
            assert!((now - verified.timestamp).abs() <= TOLERANCE);
            let real = reference_standard(secret.key_bytes(), id, seconds, body);
            let given = headers
                .header(WEBHOOK_SIGNATURE)
                .expect("verified with one");
            assert!(
                given.split(' ').any(|entry| entry == real),
                "{given} != {real}"
            );
            let by_other = reference_standard(other.key_bytes(), id, seconds, body);
            assert_eq!(
                verify_standard(headers.as_slice(), body, &[&other], now).is_ok(),
                given.split(' ').any(|entry| entry == by_other)
            );
        }
        Err(
            WebhookError::MissingHeader(_)
            | WebhookError::MalformedHeader { .. }
            | WebhookError::NoMatchingSignature
            | WebhookError::TimestampTooOld { .. }
            | WebhookError::TimestampInFuture { .. },
        ) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }

    let id = headers.header(WEBHOOK_ID).unwrap_or("evt_fuzz");
    let Ok(signed) = sign_delivery(id, "fuzz.event", now, body, now, &[&secret]) else {
        return;
    };
    let expected = Ok(commet_core::webhook::VerifiedStandard {
        id: id.to_owned(),
        timestamp: now,
    });
    assert_eq!(verify_standard(&signed, body, &[&secret], now), expected);
    assert_eq!(
        verify_standard(&signed, body, &[&other, &secret], now),
        expected
    );
    assert_eq!(
        verify_standard(&signed, body, &[&other], now),
        Err(WebhookError::NoMatchingSignature)
    );
    assert_eq!(
        verify(
            body,
            signed.get(COMMET_SIGNATURE).expect("signed"),
            secret.expose()
        ),
        Ok(())
    );
    let real = signed.get(WEBHOOK_SIGNATURE).expect("signed").to_owned();
    if let Some(fuzzed) = headers.header(WEBHOOK_SIGNATURE) {
        let replaced: Vec<(&str, &str)> = signed
            .iter()
            .map(|(name, value)| {
                (
                    name,
                    if name == WEBHOOK_SIGNATURE {
                        fuzzed
                    } else {
                        value
                    },
                )
            })
            .collect();
        let verifies = fuzzed.len() <= MAX_SIGNATURE_HEADER_BYTES
            && fuzzed.split(' ').any(|entry| entry == real);
        assert_eq!(
            verify_standard(&replaced, body, &[&secret], now).is_ok(),
            verifies,
            "{fuzzed:?} against {real:?}"
        );
    }
}

/// Envelopes: whatever JSON decodes as an envelope encodes to JSON that decodes to an equal
/// envelope, and encodes again to the same bytes (the bytes a delivery signs are stable).
pub(crate) fn envelope_roundtrip(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(envelope) = Envelope::from_json(text) else {
        return;
    };
    let json = envelope.to_json().expect("an envelope encodes");
    let again = Envelope::from_json(&json).expect("an encoded envelope decodes");
    assert_eq!(again, envelope, "{json}");
    assert_eq!(again.to_json().expect("an envelope encodes"), json);
}

/// Lowercase hex HMAC-SHA256 of `payload` keyed with `key`, with the `hmac` crate directly.
fn reference_commet(key: &[u8], payload: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(payload);
    let mut hex = String::new();
    for byte in mac.finalize().into_bytes() {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

/// `v1,` and the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with the decoded
/// secret `key`, with the `hmac` and `base64` crates directly (not commet's signer).
fn reference_standard(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine as _;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}
