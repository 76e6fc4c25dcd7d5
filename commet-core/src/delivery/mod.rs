//! Webhook deliveries, the sender's side (DESIGN.md section 9): endpoints, one delivery per
//! (endpoint, event), the retry schedule and the attempt log. The engine drives them; this
//! module decides.
//!
//! - An [`WebhookEndpoint`] receives the outbox's events committed after it was created
//!   ([`WebhookEndpoint::after_seq`]) that its [`EventFilter`] lets through, while it is enabled.
//! - [`deliveries_for`] fans one event out into one [`Delivery`] per endpoint that receives it.
//! - A delivery is claimed before it is sent ([`Delivery::claim`] logs the attempt in flight)
//!   and completed with what came back ([`Delivery::complete`]): 2xx succeeds, `410` fails it
//!   and disables the endpoint, anything else is retried on the [`RetrySchedule`] (1 m, 5 m,
//!   15 m, 30 m, 1 h, 2 h, 4 h after the round's first failure, a receiver's `Retry-After`
//!   pushing a retry back by at most 4 h) and then failed.
//! - An endpoint every attempt to which failed for a span (3 days by default) is disabled
//!   ([`WebhookEndpoint::record_failure`]).

pub mod address;
pub mod endpoint;
pub mod record;
pub mod schedule;

pub use address::is_forbidden_address;
pub use endpoint::{
    DisabledReason, EndpointRecord, EndpointUpdate, EventFilter, NewEndpoint, RetiredSecret,
    UrlPolicy, WebhookEndpoint,
};
pub use record::{
    AttemptOutcome, AttemptResult, AttemptTrigger, Delivery, DeliveryAttempt, DeliveryError,
    DeliveryFailure, DeliveryRecord, DeliveryStatus, DeliveryTrigger, EndpointSignal,
    IllegalDeliveryTransition, MAX_LOGGED_BODY,
};
pub use schedule::{MAX_RETRY_AFTER, RetrySchedule, parse_retry_after};

use chrono::{DateTime, Utc};

use crate::event::Envelope;
use crate::ids::IdGenerator;

/// The deliveries of event `seq` (`envelope`) to the endpoints that receive it, due at `now`.
#[must_use]
pub fn deliveries_for(
    envelope: &Envelope,
    seq: u64,
    endpoints: &[WebhookEndpoint],
    ids: &IdGenerator,
    now: DateTime<Utc>,
) -> Vec<Delivery> {
    let kind = envelope.event.kind();
    endpoints
        .iter()
        .filter(|endpoint| endpoint.receives(seq, kind))
        .map(|endpoint| Delivery::new(ids.next(now), endpoint.id(), envelope.id, seq, kind, now))
        .collect()
}
