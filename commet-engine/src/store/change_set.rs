//! The one thing a store writes: a [`ChangeSet`], atomically.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{EntityKind, Lookups, StoreError, recurring_period};
use crate::idempotency::IdempotencyRecord;
use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::delivery::{Delivery, WebhookEndpoint};
use commet_core::event::Envelope;
use commet_core::ids::InvoiceId;
use commet_core::invoice::{Invoice, InvoiceNumber, InvoiceStatus, NumberSeries};
use commet_core::payment::PaymentAttempt;
use commet_core::subscription::Subscription;

/// The version a write expects to replace. There are no blind writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// The object must not exist yet.
    New,
    /// The stored object must be at exactly this version.
    Exactly(u64),
}

impl ExpectedVersion {
    /// The version a value was loaded at: 0 means never stored.
    #[must_use]
    pub fn of(version: u64) -> ExpectedVersion {
        if version == 0 {
            ExpectedVersion::New
        } else {
            ExpectedVersion::Exactly(version)
        }
    }

    /// The version the object has after the write.
    #[must_use]
    pub fn next(self) -> u64 {
        match self {
            ExpectedVersion::New => 1,
            ExpectedVersion::Exactly(version) => version.saturating_add(1),
        }
    }

    /// Does a stored version (`None`: no row) satisfy this expectation?
    #[must_use]
    pub fn matches(self, stored: Option<u64>) -> bool {
        match (self, stored) {
            (ExpectedVersion::New, None) => true,
            (ExpectedVersion::Exactly(expected), Some(actual)) => expected == actual,
            (ExpectedVersion::New, Some(_)) | (ExpectedVersion::Exactly(_), None) => false,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::New => f.write_str("a new object"),
            ExpectedVersion::Exactly(version) => write!(f, "version {version}"),
        }
    }
}

/// An object a store keeps with a version.
pub trait Versioned {
    /// The kind, for errors.
    const KIND: EntityKind;

    /// The id, as text.
    fn key(&self) -> String;

    /// The version it was loaded at (0: never stored).
    fn version(&self) -> u64;

    /// Set the version; stores call this after a write.
    fn set_version(&mut self, version: u64);
}

impl Versioned for Customer {
    const KIND: EntityKind = EntityKind::Customer;
    fn key(&self) -> String {
        self.id().to_string()
    }
    fn version(&self) -> u64 {
        Customer::version(self)
    }
    fn set_version(&mut self, version: u64) {
        Customer::set_version(self, version);
    }
}

impl Versioned for Subscription {
    const KIND: EntityKind = EntityKind::Subscription;
    fn key(&self) -> String {
        self.id().to_string()
    }
    fn version(&self) -> u64 {
        Subscription::version(self)
    }
    fn set_version(&mut self, version: u64) {
        Subscription::set_version(self, version);
    }
}

impl Versioned for Invoice {
    const KIND: EntityKind = EntityKind::Invoice;
    fn key(&self) -> String {
        self.id().to_string()
    }
    fn version(&self) -> u64 {
        Invoice::version(self)
    }
    fn set_version(&mut self, version: u64) {
        Invoice::set_version(self, version);
    }
}

impl Versioned for IdempotencyRecord {
    const KIND: EntityKind = EntityKind::IdempotencyRecord;
    fn key(&self) -> String {
        self.key.clone()
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

impl Versioned for PaymentAttempt {
    const KIND: EntityKind = EntityKind::PaymentAttempt;
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

impl Versioned for WebhookEndpoint {
    const KIND: EntityKind = EntityKind::WebhookEndpoint;
    fn key(&self) -> String {
        self.id().to_string()
    }
    fn version(&self) -> u64 {
        WebhookEndpoint::version(self)
    }
    fn set_version(&mut self, version: u64) {
        WebhookEndpoint::set_version(self, version);
    }
}

impl Versioned for Delivery {
    const KIND: EntityKind = EntityKind::Delivery;
    fn key(&self) -> String {
        self.id().to_string()
    }
    fn version(&self) -> u64 {
        Delivery::version(self)
    }
    fn set_version(&mut self, version: u64) {
        Delivery::set_version(self, version);
    }
}

/// How far webhook deliveries have been made from the outbox: every event up to `seq` has its
/// deliveries. One per store, written at its version like any row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCursor {
    /// The last event fanned out into deliveries (0: none yet).
    pub seq: u64,
    /// The stored version (0: never stored).
    pub version: u64,
}

impl Versioned for DeliveryCursor {
    const KIND: EntityKind = EntityKind::DeliveryCursor;
    fn key(&self) -> String {
        "delivery_cursor".to_owned()
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

/// A versioned write: the value, and the version it replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Put<T> {
    /// The new value (its version field is set by the store).
    pub value: T,
    /// The version it replaces.
    pub expected: ExpectedVersion,
}

impl<T: Versioned> Put<T> {
    /// Write `value` over the version it was loaded at (a new object if 0).
    #[must_use]
    pub fn of(value: T) -> Put<T> {
        let expected = ExpectedVersion::of(value.version());
        Put { value, expected }
    }

    /// The stored value after the write: its version bumped.
    #[must_use]
    pub fn stored(&self) -> T
    where
        T: Clone,
    {
        let mut value = self.value.clone();
        value.set_version(self.expected.next());
        value
    }

    /// The conflict error for a stored version that does not match.
    #[must_use]
    pub fn conflict(&self, actual: Option<u64>) -> StoreError {
        StoreError::Conflict {
            kind: T::KIND,
            id: self.value.key(),
            expected: self.expected,
            actual,
        }
    }
}

/// A write of an invoice, numbered from a series inside the commit if asked.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceWrite {
    /// The write.
    pub put: Put<Invoice>,
    /// Number the invoice from this series in the commit: the store's stored series with this
    /// prefix, or this one (its next value is where a new series starts) if none is stored.
    /// The invoice must have left `draft` and have no number yet.
    pub number_from: Option<NumberSeries>,
}

impl InvoiceWrite {
    /// Write the invoice as it is.
    #[must_use]
    pub fn of(invoice: Invoice) -> InvoiceWrite {
        InvoiceWrite {
            put: Put::of(invoice),
            number_from: None,
        }
    }

    /// Write the invoice, numbered from `series` inside the commit.
    #[must_use]
    pub fn numbered(invoice: Invoice, series: NumberSeries) -> InvoiceWrite {
        InvoiceWrite {
            put: Put::of(invoice),
            number_from: Some(series),
        }
    }
}

/// Everything one operation writes, committed atomically: every write carries the version it
/// expects, and if any is stale nothing at all is written, events included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// Customers.
    pub customers: Vec<Put<Customer>>,
    /// New plans (plans are never rewritten; codes are unique).
    pub plans: Vec<Plan>,
    /// New prices (prices are never rewritten: a new amount is a new price).
    pub prices: Vec<Price>,
    /// Subscriptions.
    pub subscriptions: Vec<Put<Subscription>>,
    /// Invoices, with their lines.
    pub invoices: Vec<InvoiceWrite>,
    /// Payment attempts.
    pub payment_attempts: Vec<Put<PaymentAttempt>>,
    /// Events for the outbox, in order; the store numbers them.
    pub events: Vec<Envelope>,
    /// Idempotency records: new ones, or replacements at the version they were stored at
    /// (see [`crate::idempotency`] for what each expectation allows).
    pub idempotency: Vec<Put<IdempotencyRecord>>,
    /// Webhook endpoints.
    pub endpoints: Vec<Put<WebhookEndpoint>>,
    /// Webhook deliveries, with their attempt logs.
    pub deliveries: Vec<Put<Delivery>>,
    /// The delivery cursor, moved past the events whose deliveries this change set creates.
    pub delivery_cursor: Option<Put<DeliveryCursor>>,
}

/// What a commit assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The outbox sequence numbers of the change set's events, in order: gap-free and strictly
    /// increasing across all commits.
    pub event_seqs: Vec<u64>,
    /// The numbers given to invoices that asked for one, in the order of the change set.
    pub invoice_numbers: Vec<(InvoiceId, InvoiceNumber)>,
}

/// What [`ChangeSet::assign_numbers`] gave out, for the store to persist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Numbering {
    /// The numbers given, in the order of the change set (for the receipt).
    pub numbers: Vec<(InvoiceId, InvoiceNumber)>,
    /// The series after allocation, to write back (one per prefix used).
    pub series: Vec<NumberSeries>,
}

/// An event in the outbox, with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The position in the outbox: 1, 2, 3 ... without gaps.
    pub seq: u64,
    /// The event.
    pub envelope: Envelope,
}

impl ChangeSet {
    /// True if the change set writes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.plans.is_empty()
            && self.prices.is_empty()
            && self.subscriptions.is_empty()
            && self.invoices.is_empty()
            && self.payment_attempts.is_empty()
            && self.events.is_empty()
            && self.idempotency.is_empty()
            && self.endpoints.is_empty()
            && self.deliveries.is_empty()
            && self.delivery_cursor.is_none()
    }

    /// Add another change set's writes after this one's.
    pub fn extend(&mut self, other: ChangeSet) {
        self.customers.extend(other.customers);
        self.plans.extend(other.plans);
        self.prices.extend(other.prices);
        self.subscriptions.extend(other.subscriptions);
        self.invoices.extend(other.invoices);
        self.payment_attempts.extend(other.payment_attempts);
        self.events.extend(other.events);
        self.idempotency.extend(other.idempotency);
        self.endpoints.extend(other.endpoints);
        self.deliveries.extend(other.deliveries);
        if other.delivery_cursor.is_some() {
            self.delivery_cursor = other.delivery_cursor;
        }
    }

    /// Check the change set on its own, without the stored rows: one write per object, invoices
    /// to number that have left `draft` and have no number, valid attempts and idempotency
    /// records, unique event ids. A failure is [`StoreError::Invalid`]; nothing is written.
    /// The first step of [`check`](super::check); a store that writes before it checks
    /// (`SqliteStore`) calls it before writing.
    pub fn validate(&self) -> Result<(), StoreError> {
        fn once<T: Versioned>(puts: &[&Put<T>]) -> Result<(), StoreError> {
            let mut seen = HashSet::new();
            for put in puts {
                if !seen.insert(put.value.key()) {
                    return Err(InvalidField::new(
                        T::KIND.as_str(),
                        format_args!("{} is written twice in one change set", put.value.key()),
                    )
                    .into());
                }
            }
            Ok(())
        }
        once(&self.customers.iter().collect::<Vec<_>>())?;
        once(&self.subscriptions.iter().collect::<Vec<_>>())?;
        once(&self.invoices.iter().map(|w| &w.put).collect::<Vec<_>>())?;
        once(&self.payment_attempts.iter().collect::<Vec<_>>())?;
        once(&self.endpoints.iter().collect::<Vec<_>>())?;
        once(&self.deliveries.iter().collect::<Vec<_>>())?;
        for write in &self.invoices {
            let invoice = &write.put.value;
            if write.number_from.is_some()
                && (invoice.status() == InvoiceStatus::Draft || invoice.number().is_some())
            {
                return Err(InvalidField::new(
                    "invoice",
                    format_args!(
                        "{} cannot be numbered: only a finalized invoice without a number can",
                        invoice.id()
                    ),
                )
                .into());
            }
        }
        for put in &self.payment_attempts {
            put.value.validate()?;
        }
        for put in &self.idempotency {
            put.value.validate()?;
        }
        let mut event_ids = HashSet::new();
        if !self.events.iter().all(|event| event_ids.insert(event.id)) {
            return Err(InvalidField::new("events", "an event id appears twice").into());
        }
        Ok(())
    }

    /// What the commit rules need to know about the stored rows to judge this change set: the
    /// ids and keys it writes or refers to. The store answers them with [`CommitFacts`](super::CommitFacts)
    /// (inside its transaction) and [`check`](super::check) judges.
    #[must_use]
    pub fn lookups(&self) -> Lookups {
        let mut lookups = Lookups::default();
        for put in &self.customers {
            lookups.customers.push(put.value.id());
            if let Some(external_id) = put.value.external_id() {
                lookups.external_ids.push(external_id.to_owned());
            }
        }
        for plan in &self.plans {
            lookups.plans.push(plan.id());
            lookups.plan_codes.push(plan.code().to_owned());
        }
        for price in &self.prices {
            lookups.prices.push(price.id());
            lookups.plans.push(price.plan());
        }
        for put in &self.subscriptions {
            lookups.subscriptions.push(put.value.id());
            lookups.customers.push(put.value.customer());
        }
        for write in &self.invoices {
            let invoice = &write.put.value;
            lookups.invoices.push(invoice.id());
            lookups.customers.push(invoice.customer());
            lookups.recurring_periods.extend(recurring_period(invoice));
            if let Some(series) = &write.number_from
                && !lookups.number_series.iter().any(|p| p == series.prefix())
            {
                lookups.number_series.push(series.prefix().to_owned());
            }
        }
        for put in &self.payment_attempts {
            lookups.payment_attempts.push(put.value.id);
            lookups.invoices.push(put.value.invoice);
            lookups.attempt_keys.push(put.value.idempotency_key());
        }
        lookups
            .events
            .extend(self.events.iter().map(|event| event.id));
        lookups
            .idempotency_keys
            .extend(self.idempotency.iter().map(|put| put.value.key.clone()));
        lookups
            .endpoints
            .extend(self.endpoints.iter().map(|put| put.value.id()));
        for put in &self.deliveries {
            lookups.deliveries.push(put.value.id());
            lookups.endpoints.push(put.value.endpoint());
            lookups
                .delivery_keys
                .push((put.value.endpoint(), put.value.event()));
        }
        lookups.delivery_cursor = self.delivery_cursor.is_some();
        lookups
    }

    /// The outbox sequence numbers of this change set's events, after the last one used
    /// (`last`, 0 for an empty outbox): `last + 1, last + 2, ...`, in the order of
    /// [`events`](ChangeSet::events). Gap-free as long as the store assigns them under its
    /// write lock and a refused commit stores none.
    pub fn event_seqs(&self, last: u64) -> Result<Vec<u64>, StoreError> {
        (1_u64..)
            .zip(&self.events)
            .map(|(n, _)| {
                last.checked_add(n)
                    .ok_or_else(|| StoreError::backend("the outbox sequence is exhausted"))
            })
            .collect()
    }

    /// Number the invoices that ask for it, inside the store's commit: `stored` looks up the
    /// store's series for a prefix. The formatting and the gap-free allocation stay here, in
    /// one place; the store only persists `(prefix, padding, next)`.
    pub fn assign_numbers(
        &mut self,
        mut stored: impl FnMut(&str) -> Result<Option<NumberSeries>, StoreError>,
    ) -> Result<Numbering, StoreError> {
        let mut series: BTreeMap<String, NumberSeries> = BTreeMap::new();
        let mut numbers = Vec::new();
        for write in &mut self.invoices {
            let Some(requested) = &write.number_from else {
                continue;
            };
            let prefix = requested.prefix().to_owned();
            if !series.contains_key(&prefix) {
                let current = stored(&prefix)?.unwrap_or_else(|| requested.clone());
                series.insert(prefix.clone(), current);
            }
            let number = series
                .get_mut(&prefix)
                .ok_or_else(|| StoreError::backend("number series vanished"))?
                .allocate()
                .map_err(|e| StoreError::Invalid(InvalidField::new("number_series", e)))?;
            write
                .put
                .value
                .assign_number(number.clone())
                .map_err(|e| StoreError::Invalid(InvalidField::new("invoice", e)))?;
            write.number_from = None;
            numbers.push((write.put.value.id(), number));
        }
        Ok(Numbering {
            numbers,
            series: series.into_values().collect(),
        })
    }
}
