//! Webhook delivery: endpoints, deliveries of the outbox's events, retries, the delivery log.

pub(crate) mod deliver;
pub mod transport;

pub use transport::{
    FailureKind, MAX_RESPONSE_BYTES, Transport, TransportFailure, WebhookRequest, WebhookResponse,
};
