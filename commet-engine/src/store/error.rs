//! Store errors, and what a caller does about each.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ExpectedVersion;
use commet_core::InvalidField;

/// The kinds of things a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// [`Customer`](commet_core::customer::Customer).
    Customer,
    /// [`Plan`](commet_core::catalog::Plan).
    Plan,
    /// [`Price`](commet_core::catalog::Price).
    Price,
    /// [`Subscription`](commet_core::subscription::Subscription).
    Subscription,
    /// [`Invoice`](commet_core::invoice::Invoice).
    Invoice,
    /// [`PaymentAttempt`](commet_core::payment::PaymentAttempt).
    PaymentAttempt,
    /// An event in the outbox.
    Event,
    /// [`IdempotencyRecord`](crate::idempotency::IdempotencyRecord).
    IdempotencyRecord,
    /// An invoice number series.
    NumberSeries,
    /// [`WebhookEndpoint`](commet_core::delivery::WebhookEndpoint).
    WebhookEndpoint,
    /// [`Delivery`](commet_core::delivery::Delivery).
    Delivery,
    /// [`DeliveryCursor`](super::DeliveryCursor).
    DeliveryCursor,
}

impl EntityKind {
    /// The snake-case name, e.g. `payment_attempt`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Customer => "customer",
            EntityKind::Plan => "plan",
            EntityKind::Price => "price",
            EntityKind::Subscription => "subscription",
            EntityKind::Invoice => "invoice",
            EntityKind::PaymentAttempt => "payment_attempt",
            EntityKind::Event => "event",
            EntityKind::IdempotencyRecord => "idempotency_record",
            EntityKind::NumberSeries => "number_series",
            EntityKind::WebhookEndpoint => "webhook_endpoint",
            EntityKind::Delivery => "delivery",
            EntityKind::DeliveryCursor => "delivery_cursor",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a store could not answer or commit. Every store maps its own failures into these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Nothing has that id (HTTP 404). Returned by the [`StoreExt`](super::StoreExt) getters;
    /// the plain reads answer `Ok(None)` instead.
    #[error("no {kind} {id}")]
    NotFound {
        /// What was looked for.
        kind: EntityKind,
        /// Its id.
        id: String,
    },
    /// A uniqueness rule refused the commit, which wrote nothing (HTTP 409): a second customer
    /// with one external id, a second recurring invoice for one period, a second attempt with
    /// one idempotency key, a second plan with one code, a live idempotency key reused. Load
    /// the existing one instead.
    #[error("{kind} {key} already exists")]
    AlreadyExists {
        /// What clashed.
        kind: EntityKind,
        /// The unique key, e.g. `external_id=user_42`.
        key: String,
    },
    /// A write expected another version than the stored one: someone else committed first, or
    /// the row does not exist (`actual: None`), or already exists (`expected: New`). The whole
    /// change set was refused, events included. Reload and decide again.
    #[error("{kind} {id}: expected {expected}, found {}", .actual.map_or("none".to_owned(), |v| format!("version {v}")))]
    Conflict {
        /// What was written.
        kind: EntityKind,
        /// Its id.
        id: String,
        /// The version the write expected.
        expected: ExpectedVersion,
        /// The stored version, if the row exists.
        actual: Option<u64>,
    },
    /// The change set itself is malformed (a draft invoice to number, two writes of one
    /// object ...): a bug in the caller. Nothing was written.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A stored row does not make a valid object (edited by hand, or from a newer commet).
    /// Do not retry; inspect the row.
    #[error("corrupt {kind} {id}: {reason}")]
    Corrupt {
        /// What was read.
        kind: EntityKind,
        /// Its id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The backend failed (IO, locked beyond the busy timeout, a database from a newer commet).
    /// Nothing was written; retrying later may succeed.
    #[error("store backend: {message}")]
    Backend {
        /// What the backend said.
        message: String,
    },
}

impl StoreError {
    /// A `Corrupt` error for the row `kind`/`id`.
    pub fn corrupt(
        kind: EntityKind,
        id: impl fmt::Display,
        reason: impl fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            kind,
            id: id.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A `Backend` error from anything displayable.
    pub fn backend(error: impl fmt::Display) -> StoreError {
        StoreError::Backend {
            message: error.to_string(),
        }
    }

    /// True if re-running the operation from its reads may succeed (`Conflict`).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}
