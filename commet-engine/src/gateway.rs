//! The payment provider, behind a trait (DESIGN.md sections 2 and 8).
//!
//! commet never talks to a card network itself: a [`PaymentGateway`] charges a payment method
//! on file, with an idempotency key derived from (invoice, attempt), and answers paid or
//! declined. A provider must honour the key as Stripe does: a second call with the same key
//! returns the first outcome and charges nothing again. That is what lets commet retry a
//! charge whose outcome it never learned (a crash, a timeout) without ever charging twice.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use commet_core::dunning::DeclineClass;
use commet_core::ids::{CustomerId, InvoiceId, SubscriptionId};
use commet_core::money::Money;

/// One charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    /// The idempotency key: `{invoice}:{attempt}`. The same key must never charge twice.
    pub idempotency_key: String,
    /// What to charge.
    pub amount: Money,
    /// Who pays.
    pub customer: CustomerId,
    /// The provider's reference to the payment method (`pm_...`).
    pub payment_method: String,
    /// For the statement and the provider's dashboard, e.g. `Pro, Feb 29 to Mar 31 2024`.
    pub description: String,
    /// The invoice charged.
    pub invoice: InvoiceId,
    /// The subscription, if the invoice bills one.
    pub subscription: Option<SubscriptionId>,
    /// Free-form key/value pairs passed to the provider.
    pub metadata: BTreeMap<String, String>,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// Charged.
    Paid {
        /// The provider's payment id.
        payment_id: String,
    },
    /// Declined by the provider or the card issuer.
    Declined {
        /// The decline code, e.g. `card_declined`, `insufficient_funds`, `stolen_card`.
        code: String,
        /// A message fit to show the customer.
        message: String,
        /// Soft (worth retrying) or hard (not until the payment method changes).
        class: DeclineClass,
    },
}

/// The provider could not be reached or failed: the outcome of the charge is unknown. commet
/// leaves the attempt pending and retries it later with the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment gateway unavailable: {message}")]
pub struct GatewayError {
    /// What went wrong.
    pub message: String,
}

/// A payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + fmt::Debug + 'static {
    /// The provider's name, reported as `provider` in events (`stripe`, `fake` ...).
    fn name(&self) -> &str;

    /// Charge a payment method. The same idempotency key must return the first outcome and
    /// never charge again.
    async fn charge(&self, request: &ChargeRequest) -> Result<PaymentOutcome, GatewayError>;

    /// A provider-hosted checkout page for a subscription, if the provider offers one; commet's
    /// own signed checkout link is used otherwise. The default offers none.
    async fn hosted_checkout_url(
        &self,
        _subscription: SubscriptionId,
        _amount: Money,
    ) -> Result<Option<String>, GatewayError> {
        Ok(None)
    }
}
