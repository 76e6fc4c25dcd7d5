//! Events: what happened, as typed values and as Commet's wire envelope.
//!
//! Every committed change appends its events to the store's outbox, and webhook delivery (and
//! any other consumer) reads them from there. An [`Event`] is the typed `event` + `data` pair;
//! an [`Envelope`] adds the id (stable across delivery retries), the timestamp and the
//! organization, and serializes exactly as Commet does:
//!
//! ```json
//! {"id":"evt_...","event":"subscription.activated","timestamp":"2026-03-25T14:30:00.000Z",
//!  "organizationId":"org_...","mode":"live","apiVersion":"2026-07-31","data":{...}}
//! ```
//!
//! Field names and units follow Commet's SDK types: camelCase, amounts as integer minor units,
//! currencies in lower case, instants as ISO 8601 with `Z`. Where commet emits an event Commet
//! does not define (`subscription.payment_failed`, the seed's missing event) or a field it lacks
//! (`retryAt`, `attempt`), the field is marked "commet" in [`payload`]; receivers written for
//! Commet ignore unknown fields.

pub mod payload;
pub mod wire;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::ids::EventId;
use payload::{
    CancellationRevokedData, CancellationScheduledData, CheckoutReadyData, CustomerData,
    InvoiceData, PastDueData, PaymentFailedData, PaymentReceivedData, PaymentRecoveredData,
    PaymentRetryFailedData, PlanChangeRevokedData, PlanChangeScheduledData, PlanChangedData,
    SubscriptionActivatedData, SubscriptionCanceledData, SubscriptionCreatedData,
    SubscriptionPaymentFailedData, TrialConvertedData, TrialData, WebhookTestData,
};

macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident($data:ty) => $name:literal,)*) => {
        /// The kind of an event, by its Commet wire name (`subscription.created` ...).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventKind {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl EventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            /// The wire name, e.g. `subscription.payment_failed`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }
        }

        /// An event: its kind and its data.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "event", content = "data")]
        pub enum Event {
            $($(#[$doc])* #[serde(rename = $name)] $variant($data),)*
        }

        impl Event {
            /// The kind.
            #[must_use]
            pub fn kind(&self) -> EventKind {
                match self {
                    $(Event::$variant(_) => EventKind::$variant,)*
                }
            }
        }

        /// Serializes only the `data` of an event.
        struct DataOf<'a>(&'a Event);

        impl Serialize for DataOf<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    $(Event::$variant(data) => data.serialize(serializer),)*
                }
            }
        }
    };
}

events! {
    /// A subscription was created (in any status).
    SubscriptionCreated(SubscriptionCreatedData) => "subscription.created",
    /// A subscription became active after checkout (or at once, when free).
    SubscriptionActivated(SubscriptionActivatedData) => "subscription.activated",
    /// A subscription ended.
    SubscriptionCanceled(SubscriptionCanceledData) => "subscription.canceled",
    /// A subscription changed outside the other events (pause, resume, admin override ...).
    SubscriptionUpdated(SubscriptionCanceledData) => "subscription.updated",
    /// A cancellation was scheduled for the end of the period.
    SubscriptionCancellationScheduled(CancellationScheduledData) => "subscription.cancellation_scheduled",
    /// A scheduled cancellation was revoked.
    SubscriptionCancellationRevoked(CancellationRevokedData) => "subscription.cancellation_revoked",
    /// The plan changed (an upgrade, or a scheduled downgrade taking effect).
    SubscriptionPlanChanged(PlanChangedData) => "subscription.plan_changed",
    /// A downgrade was scheduled for the end of the period.
    SubscriptionPlanChangeScheduled(PlanChangeScheduledData) => "subscription.plan_change_scheduled",
    /// A scheduled plan change was revoked.
    SubscriptionPlanChangeRevoked(PlanChangeRevokedData) => "subscription.plan_change_revoked",
    /// A charge failed and dunning started.
    SubscriptionPastDue(PastDueData) => "subscription.past_due",
    /// A canceled subscription was reactivated.
    SubscriptionReactivated(SubscriptionActivatedData) => "subscription.reactivated",
    /// A charge for the subscription failed (with the next retry, if any).
    SubscriptionPaymentFailed(SubscriptionPaymentFailedData) => "subscription.payment_failed",
    /// A trial started.
    TrialStarted(TrialData) => "trial.started",
    /// A trial ends in three days (sent once).
    TrialWillEnd(TrialData) => "trial.will_end",
    /// A trial ended.
    TrialExpired(TrialData) => "trial.expired",
    /// A trial was converted to a paid plan before its end.
    TrialConverted(TrialConvertedData) => "trial.converted",
    /// A checkout link is ready for the customer.
    CheckoutReady(CheckoutReadyData) => "checkout.ready",
    /// An invoice was settled.
    PaymentReceived(PaymentReceivedData) => "payment.received",
    /// A charge failed.
    PaymentFailed(PaymentFailedData) => "payment.failed",
    /// A past-due invoice was paid.
    PaymentRecovered(PaymentRecoveredData) => "payment.recovered",
    /// The last retry failed: dunning is exhausted.
    PaymentRetryFailed(PaymentRetryFailedData) => "payment.retry_failed",
    /// An invoice was issued.
    InvoiceCreated(InvoiceData) => "invoice.created",
    /// An invoice was voided.
    InvoiceVoided(InvoiceData) => "invoice.voided",
    /// A customer was created.
    CustomerCreated(CustomerData) => "customer.created",
    /// A customer was updated.
    CustomerUpdated(CustomerData) => "customer.updated",
    /// A test delivery to one endpoint, sent by hand (commet; never in the outbox).
    WebhookTest(WebhookTestData) => "webhook.test",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = crate::InvalidField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                crate::InvalidField::new(
                    "event",
                    format_args!(
                        "{:?} is not an event name",
                        crate::validation::excerpt(text)
                    ),
                )
            })
    }
}

/// Live or test data, as Commet's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Real money.
    Live,
    /// Test data.
    Sandbox,
}

/// The API version commet's payloads match by default (the version Commet's typed SDKs use).
pub const DEFAULT_API_VERSION: &str = "2026-07-31";

/// An event as delivered: Commet's envelope around an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The event id, the same on every delivery attempt.
    pub id: EventId,
    /// When the event happened.
    #[serde(with = "wire::time")]
    pub timestamp: DateTime<Utc>,
    /// The organization (the engine's configured id).
    pub organization_id: String,
    /// Live or sandbox.
    pub mode: Mode,
    /// The payload version, e.g. `2026-07-31`.
    pub api_version: String,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

impl Serialize for Envelope {
    /// Keys in Commet's order: `id, event, timestamp, organizationId, mode, apiVersion, data`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut envelope = serializer.serialize_struct("Envelope", 7)?;
        envelope.serialize_field("id", &self.id)?;
        envelope.serialize_field("event", &self.event.kind())?;
        envelope.serialize_field("timestamp", &wire::time::format(&self.timestamp))?;
        envelope.serialize_field("organizationId", &self.organization_id)?;
        envelope.serialize_field("mode", &self.mode)?;
        envelope.serialize_field("apiVersion", &self.api_version)?;
        envelope.serialize_field("data", &DataOf(&self.event))?;
        envelope.end()
    }
}

impl Envelope {
    /// The envelope as compact JSON: the exact bytes a webhook delivers and signs.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Parse an envelope from JSON, checking every field of its data.
    pub fn from_json(json: &str) -> Result<Envelope, serde_json::Error> {
        serde_json::from_str(json)
    }
}
