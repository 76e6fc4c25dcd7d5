//! Webhook delivery: the outbox's events fanned out into deliveries, signed, sent through a
//! [`Transport`], retried on the schedule and logged. The rules (who receives what, when to
//! retry, what an answer means) are in [`commet_core::delivery`]; signing is in
//! [`commet_core::webhook`]; the facade is [`Billing::webhooks`](crate::Billing::webhooks).

pub(crate) mod deliver;
pub mod transport;

pub use transport::{
    FailureKind, MAX_RESPONSE_BYTES, Transport, TransportFailure, WebhookRequest, WebhookResponse,
};
