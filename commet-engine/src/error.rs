//! Engine errors, and what a caller does about each.

use crate::gateway::GatewayError;
use crate::store::{EntityKind, StoreError};
use commet_core::InvalidField;
use commet_core::clock::ClockError;
use commet_core::delivery::DeliveryError;
use commet_core::invoice::InvoiceError;
use commet_core::proration::ProrationError;
use commet_core::subscription::SubscriptionError;
use commet_core::token::TokenError;

/// A `Result` with [`BillingError`].
pub type Result<T, E = BillingError> = std::result::Result<T, E>;

/// Why an engine operation failed. Nothing was changed unless the variant says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BillingError {
    /// A field of the request is invalid (HTTP 400); the error names it.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// Something the request names does not exist (HTTP 404).
    #[error("no {kind} {id}")]
    NotFound {
        /// What was looked for.
        kind: EntityKind,
        /// Its id.
        id: String,
    },
    /// The subscription cannot do that now (HTTP 409): an illegal transition, work not due, a
    /// scheduled cancellation in the way ...
    #[error(transparent)]
    Subscription(SubscriptionError),
    /// The invoice cannot do that now (HTTP 409), or its figures were refused.
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    /// A plan change could not be computed.
    #[error(transparent)]
    Proration(#[from] ProrationError),
    /// The charge was declined (HTTP 402): show the message and ask for another payment method.
    /// The invoice stays open (checkout) or was voided (upgrade, resume, reactivation); the
    /// subscription is unchanged.
    #[error("payment declined ({code}): {message}")]
    PaymentDeclined {
        /// The decline code.
        code: String,
        /// A message fit for the customer.
        message: String,
    },
    /// A charge for this subscription is in flight (HTTP 409): until it is settled the
    /// subscription takes no other command. Try again in a moment; a charge whose process died
    /// is completed by the due work after [`recovery_grace`](crate::BillingConfig::recovery_grace).
    #[error("a payment for this subscription is in progress (attempt {attempt})")]
    PaymentInProgress {
        /// The idempotency key of the attempt under way, `{invoice}:{attempt}`.
        attempt: String,
    },
    /// A call with this idempotency key and the same request is still being answered: its
    /// charge is in flight (HTTP 409). Repeat the call shortly: it then answers with the first
    /// result (or the decline). The one answer concurrent calls with one key get before the
    /// first result exists.
    #[error("a request with idempotency key {key:?} is still in progress")]
    RequestInProgress {
        /// The key.
        key: String,
    },
    /// The payment provider could not be reached (HTTP 503). The charge was recorded and will
    /// be completed by a later run with the same idempotency key; nothing is charged twice.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A link token was refused (HTTP 401/403).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The idempotency key was used for a different request (HTTP 422).
    #[error("idempotency key {key:?} was used for a different request")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// Other writers kept changing the same objects; nothing was changed (HTTP 409): retry.
    #[error("too much contention on {what}: retry")]
    Contention {
        /// What was contended.
        what: String,
    },
    /// A webhook delivery cannot do that now (HTTP 409).
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Webhooks need a transport: build the engine with
    /// [`Billing::with_transport`](crate::Billing::with_transport) (HTTP 501).
    #[error("no webhook transport is configured: see Billing::with_transport")]
    NoTransport,
    /// Rendering invoices needs a renderer: build the engine with
    /// [`Billing::with_renderer`](crate::Billing::with_renderer) (HTTP 501).
    #[error("no invoice renderer is configured: see Billing::with_renderer")]
    NoRenderer,
    /// The renderer failed (HTTP 500).
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The store failed (HTTP 500/503).
    #[error(transparent)]
    Store(StoreError),
    /// The clock refused to move: backwards, or the engine runs on the wall clock
    /// ([`Billing::advance_to`](crate::Billing::advance_to) needs a test clock).
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// A bug in commet (the engine and the domain disagreed). Nothing was changed; please
    /// report it.
    #[error("internal error: {reason}")]
    Internal {
        /// What disagreed.
        reason: String,
    },
}

impl From<SubscriptionError> for BillingError {
    fn from(error: SubscriptionError) -> Self {
        match error {
            SubscriptionError::ChargeInFlight { attempt } => {
                BillingError::PaymentInProgress { attempt }
            }
            SubscriptionError::Invalid(invalid) => BillingError::Invalid(invalid),
            SubscriptionError::Invoice(invoice) => BillingError::Invoice(invoice),
            SubscriptionError::Proration(proration) => BillingError::Proration(proration),
            other => BillingError::Subscription(other),
        }
    }
}

impl From<StoreError> for BillingError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { kind, id } => BillingError::NotFound { kind, id },
            StoreError::Invalid(invalid) => BillingError::Invalid(invalid),
            other => BillingError::Store(other),
        }
    }
}

impl BillingError {
    /// A `NotFound` for `kind` and `id`.
    pub fn not_found(kind: EntityKind, id: impl std::fmt::Display) -> BillingError {
        BillingError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// True if the error is a declined payment.
    #[must_use]
    pub fn is_declined(&self) -> bool {
        matches!(self, BillingError::PaymentDeclined { .. })
    }

    /// True if the operation lost a race and may be run again from its reads.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, BillingError::Store(error) if error.is_conflict())
    }
}
