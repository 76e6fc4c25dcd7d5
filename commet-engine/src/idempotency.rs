//! Idempotency records: the first result of a mutating request, kept for its key.
//!
//! Every mutating call takes an optional idempotency key (DESIGN.md section 11). The engine
//! stores the key, a fingerprint of the request and the response in the same commit as the
//! change; a second call with the same key and fingerprint gets the stored response and changes
//! nothing, a second call with the same key and another fingerprint is refused. Records expire
//! (24 hours by default, as at Stripe); an expired key may be used again.
//!
//! A record is versioned like every stored object, so one request can write it more than once:
//! an "in progress" record in a charge's intent commit, replaced by the final answer (at the
//! version it was stored at) in the commit that settles the charge. The commit rules
//! (`crate::store::check`) decide what a write may do:
//!
//! | write | stored record | outcome |
//! |---|---|---|
//! | [`ExpectedVersion::New`](crate::store::ExpectedVersion::New) | none | stored at version 1 |
//! | `New` | expired at the new record's `created_at` | replaced, at version 1 |
//! | `New` | live at the new record's `created_at` | [`StoreError::AlreadyExists`](crate::store::StoreError::AlreadyExists) `key=...` |
//! | [`Exactly(v)`](crate::store::ExpectedVersion::Exactly) | at version `v` (live or not) | replaced, at version `v + 1` |
//! | `Exactly(v)` | none, or at another version | [`StoreError::Conflict`](crate::store::StoreError::Conflict) |
//!
//! Stores return records as stored, live or expired
//! ([`Store::idempotency_record`](crate::store::Store::idempotency_record)); the engine decides
//! liveness ([`StoreExt::live_idempotency_record`](crate::store::StoreExt::live_idempotency_record)).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use commet_core::InvalidField;
use commet_core::validation::check_text;

/// The first result of a request made with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The caller's key: 1 to 255 characters.
    pub key: String,
    /// A fingerprint of the request (operation and arguments), to tell a retry from a reuse.
    pub fingerprint: String,
    /// The stored response (JSON).
    pub response: String,
    /// When the request was first made.
    pub created_at: DateTime<Utc>,
    /// When the record may be forgotten and the key reused.
    pub expires_at: DateTime<Utc>,
    /// The stored version: 0 before the first write.
    pub version: u64,
}

impl IdempotencyRecord {
    /// Check the fields a store persists.
    pub fn validate(&self) -> Result<(), InvalidField> {
        check_text("idempotency_key", &self.key, true, 255)?;
        check_text("fingerprint", &self.fingerprint, true, 255)?;
        if self.expires_at <= self.created_at {
            return Err(InvalidField::new("expires_at", "must be after created_at"));
        }
        Ok(())
    }

    /// True if the record still holds at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}
