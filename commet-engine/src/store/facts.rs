//! What a commit needs to know about the stored rows: asked for by the change set
//! ([`ChangeSet::lookups`](super::ChangeSet::lookups)), answered by the store as plain data
//! ([`CommitFacts`]), judged by [`check`](super::check).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use commet_core::ids::{
    CustomerId, DeliveryId, EndpointId, EventId, InvoiceId, PlanId, PriceId, SubscriptionId,
};
use commet_core::invoice::{Invoice, InvoiceKind, LineItem, NumberSeries};
use commet_core::payment::PaymentAttemptId;

/// The ids and keys a change set writes or refers to: what its store looks up, inside the
/// commit's transaction, to fill [`CommitFacts`].
///
/// Each field says what to answer for each entry; an entry with nothing stored is left out of
/// the answer. An entry may appear more than once (a customer referred to by two invoices):
/// answer it once or each time, the facts are maps and sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Customers written, or referred to by a subscription or an invoice: the stored version
    /// ([`CommitFacts::customers`]).
    pub customers: Vec<CustomerId>,
    /// External ids claimed by the customers written: the customer holding each
    /// ([`CommitFacts::external_ids`]).
    pub external_ids: Vec<String>,
    /// Plans added, or referred to by a price: which are stored ([`CommitFacts::plans`]).
    pub plans: Vec<PlanId>,
    /// Codes of the plans added: which are taken ([`CommitFacts::plan_codes`]).
    pub plan_codes: Vec<String>,
    /// Prices added: which are stored ([`CommitFacts::prices`]).
    pub prices: Vec<PriceId>,
    /// Subscriptions written: the stored version ([`CommitFacts::subscriptions`]).
    pub subscriptions: Vec<SubscriptionId>,
    /// Invoices written, or referred to by a payment attempt: the stored version and, once
    /// finalized, the stored lines ([`CommitFacts::invoices`]).
    pub invoices: Vec<InvoiceId>,
    /// (subscription, period start) of the recurring invoices written ([`recurring_period`]):
    /// the recurring invoice holding each ([`CommitFacts::recurring_periods`]).
    pub recurring_periods: Vec<(SubscriptionId, DateTime<Utc>)>,
    /// Payment attempts written: the stored version ([`CommitFacts::payment_attempts`]).
    pub payment_attempts: Vec<PaymentAttemptId>,
    /// Idempotency keys of the attempts written: the attempt holding each
    /// ([`CommitFacts::attempt_keys`]).
    pub attempt_keys: Vec<String>,
    /// Ids of the events appended: which are in the outbox already ([`CommitFacts::events`]).
    pub events: Vec<EventId>,
    /// Keys of the idempotency records written: the stored record's version and expiry
    /// ([`CommitFacts::idempotency`]).
    pub idempotency_keys: Vec<String>,
    /// Prefixes of the number series invoices are numbered from: the stored series
    /// ([`CommitFacts::number_series`]).
    pub number_series: Vec<String>,
    /// Webhook endpoints written, or referred to by a delivery: the stored version
    /// ([`CommitFacts::endpoints`]).
    pub endpoints: Vec<EndpointId>,
    /// Deliveries written: the stored version ([`CommitFacts::deliveries`]).
    pub deliveries: Vec<DeliveryId>,
    /// (endpoint, event) of the deliveries written: the delivery holding each
    /// ([`CommitFacts::delivery_keys`]).
    pub delivery_keys: Vec<(EndpointId, EventId)>,
    /// Is the delivery cursor written: its stored version ([`CommitFacts::delivery_cursor`]).
    pub delivery_cursor: bool,
}

/// The stored rows a change set's rules depend on, as a store answers [`Lookups`]: plain data,
/// read inside the commit's transaction (so nothing changes between the check and the write).
///
/// A store fills it however suits its backend (map lookups, one query per kind, a batch of
/// queries awaited on an async connection); [`check`](super::check) and
/// [`prepare`](super::prepare) only read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitFacts {
    /// The stored version of each customer asked for that exists.
    pub customers: BTreeMap<CustomerId, u64>,
    /// The customer holding each external id asked for that is held.
    pub external_ids: BTreeMap<String, CustomerId>,
    /// The plans asked for that exist.
    pub plans: BTreeSet<PlanId>,
    /// The plan codes asked for that are taken.
    pub plan_codes: BTreeSet<String>,
    /// The prices asked for that exist.
    pub prices: BTreeSet<PriceId>,
    /// The stored version of each subscription asked for that exists.
    pub subscriptions: BTreeMap<SubscriptionId, u64>,
    /// What is stored of each invoice asked for that exists.
    pub invoices: BTreeMap<InvoiceId, StoredInvoice>,
    /// The recurring invoice holding each (subscription, period start) asked for that is held.
    pub recurring_periods: BTreeMap<(SubscriptionId, DateTime<Utc>), InvoiceId>,
    /// The stored version of each payment attempt asked for that exists.
    pub payment_attempts: BTreeMap<PaymentAttemptId, u64>,
    /// The attempt holding each attempt idempotency key asked for that is held.
    pub attempt_keys: BTreeMap<String, PaymentAttemptId>,
    /// The event ids asked for that are in the outbox.
    pub events: BTreeSet<EventId>,
    /// What is stored under each idempotency key asked for that has a record (live or not).
    pub idempotency: BTreeMap<String, StoredIdempotency>,
    /// The stored series of each prefix asked for that has one.
    pub number_series: BTreeMap<String, NumberSeries>,
    /// The highest outbox sequence number used so far (0 for an empty outbox). Only
    /// [`prepare`](super::prepare) reads it, to number the events of the change set; a store
    /// that numbers events some other way under its write lock (`MAX(seq)` at write time) may
    /// leave it 0 when it only [`check`](super::check)s.
    pub last_event_seq: u64,
    /// The stored version of each endpoint asked for that exists.
    pub endpoints: BTreeMap<EndpointId, u64>,
    /// The stored version of each delivery asked for that exists.
    pub deliveries: BTreeMap<DeliveryId, u64>,
    /// The delivery holding each (endpoint, event) asked for that is held.
    pub delivery_keys: BTreeMap<(EndpointId, EventId), DeliveryId>,
    /// The delivery cursor's stored version, if asked for and stored.
    pub delivery_cursor: Option<u64>,
}

/// What the rules need of a stored invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInvoice {
    /// Its stored version.
    pub version: u64,
    /// Its lines once it has left `draft` (they are fixed from then on); `None` for a draft.
    pub fixed_lines: Option<Vec<LineItem>>,
}

impl StoredInvoice {
    /// What the rules need of `invoice`, as stored.
    #[must_use]
    pub fn of(invoice: &Invoice) -> StoredInvoice {
        StoredInvoice {
            version: invoice.version(),
            fixed_lines: (invoice.status() != commet_core::invoice::InvoiceStatus::Draft)
                .then(|| invoice.lines().to_vec()),
        }
    }
}

/// What the rules need of a stored idempotency record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredIdempotency {
    /// Its stored version.
    pub version: u64,
    /// When it expires: a new record made at or after this instant replaces it.
    pub expires_at: DateTime<Utc>,
}

/// The unique key of a recurring invoice: (subscription, period start). `None` for any other
/// invoice (and for a recurring one without a subscription or period, which no rule limits).
#[must_use]
pub fn recurring_period(invoice: &Invoice) -> Option<(SubscriptionId, DateTime<Utc>)> {
    match (invoice.kind(), invoice.subscription(), invoice.period()) {
        (InvoiceKind::Recurring, Some(subscription), Some(period)) => {
            Some((subscription, period.start()))
        }
        _ => None,
    }
}
