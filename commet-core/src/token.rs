//! Signed links: checkout, portal and recovery tokens (DESIGN.md section 10).
//!
//! A token says *what* it is for (its [`Purpose`]), *whom* it concerns (a subscription or a
//! customer id) and *until when*, and carries an HMAC-SHA256 tag over exactly that, keyed with
//! the engine's [`SigningKey`]. It is `base64url(payload) "." base64url(tag)`, so it travels
//! in a URL query unescaped. Verification checks the tag in constant time before reading
//! anything else, then the purpose, then the expiry: a tampered, wrong-purpose or expired
//! token is a typed [`TokenError`], never a panic.
//!
//! Tokens and keys never appear in `Debug` output: [`SigningKey`] prints `SigningKey(..)` and a
//! [`SignedUrl`] prints its URL without the query.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::InvalidField;

/// Domain separation: a tag made for anything else never verifies as a link token.
const DOMAIN: &[u8] = b"commet-link-token-v1\0";

/// The longest token accepted, in characters.
pub const MAX_TOKEN_CHARS: usize = 512;

/// The secret that signs links: at least 32 bytes, kept only as a keyed HMAC. Never printed.
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    /// A key from secret bytes (at least 32).
    pub fn from_bytes(bytes: &[u8]) -> Result<SigningKey, InvalidField> {
        if bytes.len() < 32 {
            return Err(InvalidField::new(
                "signing_key",
                "must be at least 32 bytes of secret randomness",
            ));
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
            .map_err(|e| InvalidField::new("signing_key", e))?;
        mac.update(DOMAIN);
        Ok(SigningKey(mac))
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> Result<SigningKey, InvalidField> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| InvalidField::new("signing_key", format_args!("no randomness: {e}")))?;
        SigningKey::from_bytes(&bytes)
    }

    /// A MAC keyed with this key, the domain separator already absorbed.
    fn mac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Complete checkout of a subscription (subject: the subscription id).
    Checkout,
    /// A customer portal session (subject: the customer id).
    Portal,
    /// Pay a past-due invoice or update the payment method (subject: the subscription id).
    Recovery,
}

impl Purpose {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Checkout => "checkout",
            Purpose::Portal => "portal",
            Purpose::Recovery => "recovery",
        }
    }

    fn parse(text: &str) -> Option<Purpose> {
        [Purpose::Checkout, Purpose::Portal, Purpose::Recovery]
            .into_iter()
            .find(|purpose| purpose.as_str() == text)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// What it opens.
    pub purpose: Purpose,
    /// Whom it concerns: a subscription or customer id (no `|`).
    pub subject: String,
    /// Until when it is valid (whole seconds).
    pub expires_at: DateTime<Utc>,
}

/// Why a token was refused. Show the customer a generic "this link is invalid or expired".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token at all (wrong shape, bad encoding, too long).
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The tag does not match: tampered with, or signed with another key.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// A valid token for something else (a portal token used for checkout ...).
    #[error("a {actual} token cannot be used for {expected}")]
    WrongPurpose {
        /// What it was presented for.
        expected: Purpose,
        /// What it was issued for.
        actual: Purpose,
    },
    /// A valid token for another subscription or customer than the one it was presented for.
    #[error("the token was issued for another {purpose} subject")]
    WrongSubject {
        /// What it was presented for.
        purpose: Purpose,
    },
    /// A valid token past its expiry.
    #[error("the token expired at {expired_at}")]
    Expired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
}

/// Sign `claims` into a token.
pub fn issue(key: &SigningKey, claims: &Claims) -> Result<String, InvalidField> {
    if claims.subject.is_empty() || claims.subject.contains('|') || claims.subject.len() > 128 {
        return Err(InvalidField::new(
            "subject",
            "must be 1 to 128 characters without '|'",
        ));
    }
    let payload = format!(
        "{}|{}|{}",
        claims.purpose,
        claims.subject,
        claims.expires_at.timestamp()
    );
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    let tag = mac.finalize().into_bytes();
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    ))
}

/// Check a token presented for `purpose` at `now` and return what it says.
pub fn verify(
    key: &SigningKey,
    token: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let malformed = |reason| TokenError::Malformed { reason };
    if token.len() > MAX_TOKEN_CHARS {
        return Err(malformed("too long"));
    }
    let (payload, tag) = token
        .split_once('.')
        .ok_or(malformed("expected two parts separated by '.'"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| malformed("the tag is not base64url"))?;
    let mut mac = key.mac();
    mac.update(&payload);
    // Constant-time comparison; nothing of the payload is trusted before it.
    mac.verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let payload =
        std::str::from_utf8(&payload).map_err(|_| malformed("the payload is not text"))?;
    let mut parts = payload.split('|');
    let (Some(actual), Some(subject), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("the payload has the wrong shape"));
    };
    let actual = Purpose::parse(actual).ok_or(malformed("unknown purpose"))?;
    // Only the spelling `issue` writes (no sign, no leading zeros): a token has one form.
    let expires_at = expires
        .parse::<i64>()
        .ok()
        .filter(|secs| secs.to_string() == expires)
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or(malformed("the expiry is not a time"))?;
    if actual != purpose {
        return Err(TokenError::WrongPurpose {
            expected: purpose,
            actual,
        });
    }
    if now >= expires_at {
        return Err(TokenError::Expired {
            expired_at: expires_at,
        });
    }
    Ok(Claims {
        purpose: actual,
        subject: subject.to_owned(),
        expires_at,
    })
}

/// Check a token presented for `purpose` and `subject` at `now`.
pub fn verify_for(
    key: &SigningKey,
    token: &str,
    purpose: Purpose,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let claims = verify(key, token, purpose, now)?;
    if claims.subject == subject {
        Ok(claims)
    } else {
        Err(TokenError::WrongSubject { purpose })
    }
}

/// Where the links of one purpose point, and how long they stay valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBase {
    /// Links are `{base_url}/{subject}?token=...`: an http(s) URL without a query.
    pub base_url: String,
    /// How long a link stays valid from when it is issued.
    pub ttl: TimeDelta,
}

/// The signed links an engine issues: the key, and where each purpose's links point.
#[derive(Debug, Clone)]
pub struct Links {
    /// Signs every link.
    pub key: SigningKey,
    /// Checkout links (subject: a subscription).
    pub checkout: LinkBase,
    /// Portal links (subject: a customer).
    pub portal: LinkBase,
    /// Recovery links, sent in `payment.failed` (subject: a subscription).
    pub recovery: LinkBase,
}

impl Links {
    /// A link for `purpose` about `subject`, valid from `now` for the purpose's time to live.
    pub fn issue(
        &self,
        purpose: Purpose,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedUrl, InvalidField> {
        let base = match purpose {
            Purpose::Checkout => &self.checkout,
            Purpose::Portal => &self.portal,
            Purpose::Recovery => &self.recovery,
        };
        let expires_at = now
            .checked_add_signed(base.ttl)
            .ok_or_else(|| InvalidField::new("ttl", "the link would expire out of range"))?;
        let token = issue(
            &self.key,
            &Claims {
                purpose,
                subject: subject.to_owned(),
                expires_at,
            },
        )?;
        Ok(SignedUrl::new(&base.base_url, subject, &token))
    }
}

/// A URL that carries a token: shown in full by `Display` and on the wire, but printed without
/// its query by `Debug`, so logs never leak it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignedUrl(String);

impl SignedUrl {
    /// `{base}/{subject}?token={token}`.
    #[must_use]
    pub fn new(base: &str, subject: &str, token: &str) -> SignedUrl {
        SignedUrl(format!(
            "{}/{subject}?token={token}",
            base.trim_end_matches('/')
        ))
    }

    /// A URL given by someone else (a provider's hosted checkout page).
    #[must_use]
    pub fn external(url: String) -> SignedUrl {
        SignedUrl(url)
    }

    /// The whole URL, token included.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token in its `token` query parameter, if any.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.0.split_once('?').and_then(|(_, query)| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("token="))
        })
    }
}

impl fmt::Display for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('?') {
            Some((path, _)) => write!(f, "SignedUrl({path}?..)"),
            None => write!(f, "SignedUrl({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32]).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    }

    fn claims(purpose: Purpose) -> Claims {
        Claims {
            purpose,
            subject: "sub_01h455vb4pex5vsknk084sn02q".into(),
            expires_at: now() + TimeDelta::hours(24),
        }
    }

    #[test]
    fn a_token_verifies_for_its_purpose_until_it_expires() {
        let token = issue(&key(), &claims(Purpose::Checkout)).unwrap();
        assert_eq!(
            verify(&key(), &token, Purpose::Checkout, now()),
            Ok(claims(Purpose::Checkout))
        );
        assert_eq!(
            verify(&key(), &token, Purpose::Portal, now()),
            Err(TokenError::WrongPurpose {
                expected: Purpose::Portal,
                actual: Purpose::Checkout
            })
        );
        let later = now() + TimeDelta::hours(24);
        assert_eq!(
            verify(&key(), &token, Purpose::Checkout, later),
            Err(TokenError::Expired { expired_at: later })
        );
    }

    #[test]
    fn tampering_or_another_key_breaks_the_signature() {
        let token = issue(&key(), &claims(Purpose::Checkout)).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]).unwrap();
        assert_eq!(
            verify(&other, &token, Purpose::Checkout, now()),
            Err(TokenError::BadSignature)
        );
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode("checkout|sub_someone_else|9999999999");
        assert_eq!(
            verify(&key(), &format!("{forged}.{tag}"), Purpose::Checkout, now()),
            Err(TokenError::BadSignature)
        );
        let mut flipped = tag.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{payload}.{}", String::from_utf8(flipped).unwrap());
        assert!(verify(&key(), &flipped, Purpose::Checkout, now()).is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for token in ["", ".", "abc", "a.b.c", "!!!.###", &"x".repeat(600)] {
            assert!(
                matches!(
                    verify(&key(), token, Purpose::Checkout, now()),
                    Err(TokenError::Malformed { .. } | TokenError::BadSignature)
                ),
                "{token:?}"
            );
        }
    }

    #[test]
    fn keys_and_tokens_stay_out_of_debug_output() {
        assert_eq!(format!("{:?}", key()), "SigningKey(..)");
        let url = SignedUrl::new("https://pay.example.com/checkout/", "sub_1", "secret-token");
        assert_eq!(
            url.to_string(),
            "https://pay.example.com/checkout/sub_1?token=secret-token"
        );
        assert_eq!(
            format!("{url:?}"),
            "SignedUrl(https://pay.example.com/checkout/sub_1?..)"
        );
        assert_eq!(url.token(), Some("secret-token"));
        assert!(SigningKey::from_bytes(&[1; 16]).is_err());
    }
}
