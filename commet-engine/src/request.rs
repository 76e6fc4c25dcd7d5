//! The one shape of every mutating call: look the idempotency key up, prepare from fresh reads,
//! commit (re-running on a lost race), and for a charge, call the provider and settle.
//!
//! # Idempotency
//!
//! A call made with a key looks the key up before anything else, on every run:
//!
//! | the key holds | the call answers |
//! |---|---|
//! | nothing (or an expired record) | it runs; its commit stores the answer under the key |
//! | another request's fingerprint | [`BillingError::IdempotencyKeyReused`] |
//! | the answer of this request | that answer, with no second effect |
//! | a charge of this request still in flight | [`BillingError::RequestInProgress`]: try again shortly |
//! | a charge of this request, settled | its answer (read from the state the charge left), or the decline |
//!
//! A charging call stores "charge in flight" under its key in the commit that records the
//! charge, and the answer (or the decline) in the commit that settles it, so concurrent calls
//! with one key get the first answer once it exists and `RequestInProgress` before, whatever
//! the store, and a retry after a crash gets the answer of the charge the recovery settled.
//! A call whose own decision or commit fails looks the key up again before answering with the
//! error: a concurrent call with the same key may have changed the state it decided on, or
//! written what it would write.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use commet_core::InvalidField;
use commet_core::catalog::Catalog;
use commet_core::customer::Customer;
use commet_core::payment::{AttemptStatus, ChargeResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::billing::{Billing, MAX_RUNS};
use crate::charges::{Recorded, Settled, SettlementRecord};
use crate::error::{BillingError, Result};
use crate::idempotency::IdempotencyRecord;
use crate::store::{EntityKind, ExpectedVersion, Put, StoreError, StoreExt};
use crate::writes::Writes;

/// What a call prepared from its reads.
#[allow(clippy::large_enum_variant)] // built and moved once per call
pub(crate) enum Prepared<T> {
    /// One commit, and the answer it gives.
    Commit {
        /// What to commit.
        writes: Writes,
        /// The answer, as the commit stores it.
        answer: T,
    },
    /// A charge: commit `writes` (which record it), call the provider, settle, answer.
    Charge {
        /// What to commit, the charge included.
        writes: Writes,
        /// The attempt recorded.
        attempt: commet_core::payment::PaymentAttempt,
        /// The customer who pays, as read.
        payer: Customer,
    },
}

/// What follows a call's commit.
#[allow(clippy::large_enum_variant)] // built and moved once per call
enum Then<T> {
    /// Nothing: this is the answer.
    Answer(T),
    /// The charge the commit recorded, and the customer who pays as read.
    Charge(commet_core::payment::PaymentAttempt, Customer),
}

/// How a charging call answers once its charge is paid.
pub(crate) type Answer<'a, T> = &'a (dyn Fn(&Settled) -> Result<T> + Send + Sync);

/// What an idempotency record holds: this engine's own format for its `response` text.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Response {
    /// The call's answer.
    Answered {
        /// The answer, as JSON.
        answer: serde_json::Value,
    },
    /// The call's charge is recorded and not yet settled.
    Charging {
        /// The attempt's idempotency key.
        attempt: String,
    },
    /// The call's charge was declined.
    Declined {
        /// The decline code.
        code: String,
        /// The message.
        message: String,
    },
}

/// The record a charging call's settlement writes under its key.
pub(crate) struct Finish<'a, T> {
    key: &'a str,
    fingerprint: &'a str,
    answer: Answer<'a, T>,
}

impl<T> std::fmt::Debug for Finish<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finish")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize> SettlementRecord for Finish<'_, T> {
    /// The record replacing "charge in flight" (stored at version 1 by the intent commit).
    fn record(
        &self,
        billing: &Billing,
        settled: &Settled,
        now: DateTime<Utc>,
    ) -> Result<Put<IdempotencyRecord>> {
        let response = match &settled.result {
            ChargeResult::Paid { .. } => Response::Answered {
                answer: to_json((self.answer)(settled)?)?,
            },
            ChargeResult::Declined { code, message, .. } => Response::Declined {
                code: code.clone(),
                message: message.clone(),
            },
        };
        Ok(Put {
            value: billing.idempotency_record(self.key, self.fingerprint, &response, now)?,
            expected: ExpectedVersion::Exactly(1),
        })
    }
}

impl Billing {
    /// Run a mutating call (see the [module docs](self)): `prepare` reads and decides at an
    /// instant over the catalog; `answer` turns a paid charge into the call's answer.
    pub(crate) async fn request<T, F>(
        &self,
        key: Option<&str>,
        operation: &str,
        request: &impl Serialize,
        mut prepare: impl FnMut(Arc<Catalog>, DateTime<Utc>) -> F,
        answer: Option<Answer<'_, T>>,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<Prepared<T>>>,
    {
        let fingerprint = fingerprint(operation, request)?;
        let mut refresh = false;
        for _ in 0..MAX_RUNS {
            if let Some(key) = key
                && let Some(done) = self.replay(key, &fingerprint, answer).await?
            {
                return done;
            }
            let now = self.now();
            let catalog = self.catalog_view(refresh).await?;
            let prepared = match prepare(catalog, now).await {
                Ok(prepared) => prepared,
                Err(error) if error.is_not_in_catalog() && !refresh => {
                    refresh = true;
                    continue;
                }
                Err(error) if error.is_conflict() => continue,
                Err(error) => return self.refused(key, &fingerprint, answer, error).await,
            };
            let (mut writes, then) = match prepared {
                Prepared::Commit { writes, answer } => (writes, Then::Answer(answer)),
                Prepared::Charge {
                    writes,
                    attempt,
                    payer,
                } => (writes, Then::Charge(attempt, payer)),
            };
            if let Some(key) = key {
                let response = match &then {
                    Then::Answer(answer) => Response::Answered {
                        answer: to_json(answer)?,
                    },
                    Then::Charge(attempt, _) => Response::Charging {
                        attempt: attempt.idempotency_key(),
                    },
                };
                writes
                    .changes
                    .idempotency
                    .push(Put::of(self.idempotency_record(
                        key,
                        &fingerprint,
                        &response,
                        now,
                    )?));
            }
            let stored = match self.commit(writes).await {
                Ok(stored) => stored,
                Err(error) if lost_race(&error) => continue,
                // A concurrent call with the same key may have written what this one refuses
                // to write twice (a plan code, an external id): its answer wins.
                Err(error) => return self.refused(key, &fingerprint, answer, error.into()).await,
            };
            let (attempt, payer) = match then {
                Then::Answer(answer) => return Ok(answer),
                Then::Charge(attempt, payer) => (attempt, payer),
            };
            let recorded = Recorded::stored(&stored, &attempt, &payer)?;
            let result = self.call_gateway(&recorded.attempt).await?;
            let finish = match (key, answer) {
                (Some(key), Some(answer)) => Some(Finish {
                    key,
                    fingerprint: &fingerprint,
                    answer,
                }),
                _ => None,
            };
            let settled = self
                .settle(
                    recorded,
                    &result,
                    finish.as_ref().map(|f| f as &dyn SettlementRecord),
                )
                .await?;
            return match (&settled.result, answer) {
                (ChargeResult::Paid { .. }, Some(answer)) => answer(&settled),
                (ChargeResult::Paid { .. }, None) => Err(BillingError::Internal {
                    reason: format!("{operation} charged without a way to answer"),
                }),
                (ChargeResult::Declined { code, message, .. }, _) => {
                    Err(BillingError::PaymentDeclined {
                        code: code.clone(),
                        message: message.clone(),
                    })
                }
            };
        }
        Err(BillingError::Contention {
            what: operation.to_owned(),
        })
    }

    /// The answer stored under `key` for this request, if any (see the [module docs](self)).
    async fn replay<T: DeserializeOwned>(
        &self,
        key: &str,
        fingerprint: &str,
        answer: Option<Answer<'_, T>>,
    ) -> Result<Option<Result<T>>> {
        let Some(record) = self.store.live_idempotency_record(key, self.now()).await? else {
            return Ok(None);
        };
        if record.fingerprint != fingerprint {
            return Ok(Some(Err(BillingError::IdempotencyKeyReused {
                key: key.to_owned(),
            })));
        }
        let corrupt = |e: &dyn std::fmt::Display| {
            BillingError::Store(StoreError::corrupt(EntityKind::IdempotencyRecord, key, e))
        };
        let response: Response = serde_json::from_str(&record.response).map_err(|e| corrupt(&e))?;
        match response {
            Response::Answered { answer } => Ok(Some(
                serde_json::from_value(answer).map_err(|e| corrupt(&e)),
            )),
            Response::Declined { code, message } => {
                Ok(Some(Err(BillingError::PaymentDeclined { code, message })))
            }
            Response::Charging { attempt } => {
                let Some(attempt) = self.store.payment_attempt(&attempt).await? else {
                    return Err(corrupt(&"its charge is not stored"));
                };
                match &attempt.status {
                    AttemptStatus::Pending => Ok(Some(Err(BillingError::RequestInProgress {
                        key: key.to_owned(),
                    }))),
                    AttemptStatus::Failed { code, message } => {
                        Ok(Some(Err(BillingError::PaymentDeclined {
                            code: code.clone(),
                            message: message.clone(),
                        })))
                    }
                    // Settled by the recovery of an abandoned charge: answered from the state
                    // the charge left.
                    AttemptStatus::Succeeded { payment_id } => {
                        let Some(answer) = answer else {
                            return Err(corrupt(&"a charge answers a call that does not charge"));
                        };
                        let subscription = match attempt.subscription {
                            Some(id) => self.store.get_subscription(id).await?,
                            None => return Err(corrupt(&"its charge bills no subscription")),
                        };
                        let settled = Settled {
                            subscription,
                            invoice: self.store.get_invoice(attempt.invoice).await?,
                            result: ChargeResult::Paid {
                                payment_id: payment_id.clone(),
                            },
                        };
                        Ok(Some(answer(&settled)))
                    }
                }
            }
        }
    }

    /// A call's own decision failed: a concurrent call with the same key may have changed what
    /// it decided on, so its answer (or its charge in progress) wins over the error.
    async fn refused<T: DeserializeOwned>(
        &self,
        key: Option<&str>,
        fingerprint: &str,
        answer: Option<Answer<'_, T>>,
        error: BillingError,
    ) -> Result<T> {
        if let Some(key) = key
            && let Some(done) = self.replay(key, fingerprint, answer).await?
        {
            return done;
        }
        Err(error)
    }

    fn idempotency_record(
        &self,
        key: &str,
        fingerprint: &str,
        response: &Response,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyRecord> {
        let response =
            serde_json::to_string(response).map_err(|e| InvalidField::new("response", e))?;
        let expires_at = now
            .checked_add_signed(self.config().idempotency_ttl)
            .ok_or_else(|| {
                InvalidField::new(
                    "idempotency_ttl",
                    "the key would be kept past the last instant time can hold",
                )
            })?;
        Ok(IdempotencyRecord {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            response,
            created_at: now,
            expires_at,
            version: 0,
        })
    }
}

/// A lost race: someone committed first (a version, or the same key's record).
fn lost_race(error: &StoreError) -> bool {
    error.is_conflict()
        || matches!(
            error,
            StoreError::AlreadyExists {
                kind: EntityKind::IdempotencyRecord,
                ..
            }
        )
}

fn to_json(value: impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| InvalidField::new("response", e).into())
}

/// A fingerprint of a request: the operation and its arguments, hashed.
fn fingerprint(operation: &str, request: &impl Serialize) -> Result<String> {
    let body = serde_json::to_string(request).map_err(|e| InvalidField::new("request", e))?;
    Ok(hex_digest(&[operation.as_bytes(), b"\n", body.as_bytes()]))
}

/// The key of a call that a keyed call makes on its own (`what`: which one, such as
/// `retry:sub_...`): derived from the caller's key, so a repeated call replays that call too
/// instead of making it again. Always 64 hex digits, a colon and `what`, whatever the length of
/// the caller's key.
pub(crate) fn derived_key(key: &str, what: &str) -> String {
    format!("{}:{what}", hex_digest(&[key.as_bytes()]))
}

/// SHA-256 of `parts` in order, as lowercase hex.
fn hex_digest(parts: &[&[u8]]) -> String {
    let digest = parts
        .iter()
        .fold(Sha256::new(), Digest::chain_update)
        .finalize();
    digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
