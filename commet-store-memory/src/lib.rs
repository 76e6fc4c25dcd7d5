//! # commet-store-memory
//!
//! [`MemoryStore`]: commet's store in memory, for tests and for trying commet out. It has the
//! same semantics as every other store (versions and conflicts, atomic change sets, gap-free
//! invoice numbers and event sequence, the unique keys, the due-work index, newest-first
//! pagination) and passes the same conformance suite. Nothing survives the process.
//!
//! ```
//! use commet_engine::store::{PageRequest, Store, StoreExt};
//! use commet_store_memory::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! assert!(store.customers(PageRequest::first(10)).await?.items.is_empty());
//! assert_eq!(store.next_due_at().await?, None);
//! # Ok::<(), commet_engine::store::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! # How it keeps the contract
//!
//! It is the reference implementation of the store contract (`commet_engine::store`): a
//! commit takes the lock, answers the change set's lookups from its maps
//! (`ChangeSet::lookups` → `CommitFacts`), lets the engine's rules check and number the change
//! set (`commet_engine::store::prepare`), and only then writes. The store itself checks
//! nothing: every rule, and the order in which a broken one is named, is the engine's.
//!
//! Every read is answered from an index, never by scanning every row: by id, by external id,
//! by e-mail (ASCII case folded), the pages of a customer's subscriptions and invoices and of
//! a subscription's invoices, the due-work index by (deadline, id), each invoice's attempts
//! by (attempt, id), the pending attempts by (created at, id), and the outbox by sequence
//! number. So the cost of a read grows with its answer, not with the store: `benches/advance.rs`
//! shows it through the engine, where `Billing::advance_to` costs the same per simulated year
//! over 100 years as over 800 (figures in the README).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::delivery::{Delivery, WebhookEndpoint};
use commet_core::ids::{
    CustomerId, DeliveryId, EndpointId, EventId, InvoiceId, PlanId, PriceId, SubscriptionId,
    TypedId,
};
use commet_core::invoice::{Invoice, NumberSeries};
use commet_core::payment::{PaymentAttempt, PaymentAttemptId};
use commet_core::subscription::Subscription;
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, CommitFacts, CommitReceipt, Cursor, DeliveryCursor, DeliveryQuery, InvoiceQuery,
    Lookups, Page, PageRequest, PreparedCommit, Put, Result, Store, StoredEvent, StoredIdempotency,
    StoredInvoice, SubscriptionQuery, Versioned, prepare, recurring_period,
};

/// The in-memory store. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    customers: BTreeMap<CustomerId, Customer>,
    external_ids: HashMap<String, CustomerId>,
    /// By e-mail, ASCII-lowercased.
    emails: HashMap<String, BTreeSet<CustomerId>>,
    plans: BTreeMap<PlanId, Plan>,
    plan_codes: HashMap<String, PlanId>,
    prices: BTreeMap<PriceId, Price>,
    subscriptions: BTreeMap<SubscriptionId, Subscription>,
    subscriptions_of: HashMap<CustomerId, BTreeSet<SubscriptionId>>,
    due: BTreeSet<(DateTime<Utc>, SubscriptionId)>,
    invoices: BTreeMap<InvoiceId, Invoice>,
    invoices_of_customer: HashMap<CustomerId, BTreeSet<InvoiceId>>,
    invoices_of_subscription: HashMap<SubscriptionId, BTreeSet<InvoiceId>>,
    recurring: HashMap<(SubscriptionId, DateTime<Utc>), InvoiceId>,
    series: HashMap<String, NumberSeries>,
    attempts: BTreeMap<PaymentAttemptId, PaymentAttempt>,
    attempt_keys: HashMap<String, PaymentAttemptId>,
    attempts_of: HashMap<InvoiceId, BTreeSet<(u32, PaymentAttemptId)>>,
    pending: BTreeSet<(DateTime<Utc>, PaymentAttemptId)>,
    events: Vec<StoredEvent>,
    event_ids: HashSet<EventId>,
    idempotency: HashMap<String, IdempotencyRecord>,
    endpoints: BTreeMap<EndpointId, WebhookEndpoint>,
    deliveries: BTreeMap<DeliveryId, Delivery>,
    delivery_keys: HashMap<(EndpointId, EventId), DeliveryId>,
    deliveries_of_endpoint: HashMap<EndpointId, BTreeSet<DeliveryId>>,
    deliveries_of_event: HashMap<EventId, BTreeSet<DeliveryId>>,
    /// Pending deliveries by (next attempt, id).
    due_deliveries: BTreeSet<(DateTime<Utc>, DeliveryId)>,
    delivery_cursor: Option<DeliveryCursor>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The invoice number series stored under `prefix`, with its next value. Not part of the
    /// [`Store`] contract (the engine never reads a series outside a commit): for tests and
    /// inspection.
    #[must_use]
    pub fn number_series(&self, prefix: &str) -> Option<NumberSeries> {
        self.state().series.get(prefix).cloned()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A commit checks everything before it changes anything, so a panic elsewhere cannot
        // leave the state half-written: recovering from poisoning is safe.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The limit of a page request, and the id its cursor points after.
fn bounds<K: TypedId>(request: &PageRequest) -> Result<(usize, Bound<K>)> {
    let limit = request.checked_limit()?;
    let upper = match &request.after {
        Some(cursor) => Bound::Excluded(
            cursor
                .as_str()
                .parse()
                .map_err(|_| InvalidField::new("after", "is not a cursor of this list"))?,
        ),
        None => Bound::Unbounded,
    };
    Ok((limit, upper))
}

/// The first `limit` items of `newest_first` that `keep` accepts, and the cursor after them.
fn page<'a, K, V>(
    limit: usize,
    newest_first: impl Iterator<Item = (K, &'a V)>,
    keep: impl Fn(&V) -> bool,
) -> Page<V>
where
    K: std::fmt::Display,
    V: Clone + 'a,
{
    let mut items = Vec::with_capacity(limit);
    let mut last = None;
    for (key, value) in newest_first.filter(|(_, value)| keep(value)) {
        if items.len() == limit {
            return Page {
                items,
                next: last.map(Cursor::after),
            };
        }
        items.push(value.clone());
        last = Some(key);
    }
    Page { items, next: None }
}

/// The rows of `map` with ids in `index` (below `upper`), newest first.
fn indexed<'a, K: Ord + Copy, V>(
    map: &'a BTreeMap<K, V>,
    index: Option<&'a BTreeSet<K>>,
    upper: Bound<K>,
) -> impl Iterator<Item = (K, &'a V)> {
    index
        .into_iter()
        .flat_map(move |ids| ids.range((Bound::Unbounded, upper)).rev())
        .filter_map(|id| map.get(id).map(|value| (*id, value)))
}

/// The rows of `map` below `upper`, newest first.
fn all<K: Ord + Copy, V>(map: &BTreeMap<K, V>, upper: Bound<K>) -> impl Iterator<Item = (K, &V)> {
    map.range((Bound::Unbounded, upper))
        .rev()
        .map(|(id, value)| (*id, value))
}

/// Move `id` from `old`'s entry to `new`'s in a one-to-many index (nothing to do if they are
/// the same, as they are for most rewrites).
fn reindex<K: Eq + std::hash::Hash, I: Ord + Copy>(
    index: &mut HashMap<K, BTreeSet<I>>,
    old: Option<K>,
    new: Option<K>,
    id: I,
) {
    if old == new {
        return;
    }
    if let Some(old) = old
        && let Some(ids) = index.get_mut(&old)
    {
        ids.remove(&id);
        if ids.is_empty() {
            index.remove(&old);
        }
    }
    if let Some(new) = new {
        index.entry(new).or_default().insert(id);
    }
}

/// The entries of `keys` that `find` answers, with their answers (each asked once).
fn known<K: Ord + Clone, V>(keys: &[K], find: impl Fn(&K) -> Option<V>) -> BTreeMap<K, V> {
    let mut found = BTreeMap::new();
    for key in keys {
        if !found.contains_key(key)
            && let Some(value) = find(key)
        {
            found.insert(key.clone(), value);
        }
    }
    found
}

/// The entries of `keys` that `stored` holds.
fn present<K: Ord + Clone>(keys: &[K], stored: impl Fn(&K) -> bool) -> BTreeSet<K> {
    keys.iter().filter(|key| stored(key)).cloned().collect()
}

impl State {
    /// What the rules need to know about the stored rows, from the maps.
    fn facts(&self, lookups: &Lookups) -> CommitFacts {
        CommitFacts {
            customers: known(&lookups.customers, |id| {
                self.customers.get(id).map(Versioned::version)
            }),
            external_ids: known(&lookups.external_ids, |id| {
                self.external_ids.get(id).copied()
            }),
            plans: present(&lookups.plans, |id| self.plans.contains_key(id)),
            plan_codes: present(&lookups.plan_codes, |code| {
                self.plan_codes.contains_key(code)
            }),
            prices: present(&lookups.prices, |id| self.prices.contains_key(id)),
            subscriptions: known(&lookups.subscriptions, |id| {
                self.subscriptions.get(id).map(Versioned::version)
            }),
            invoices: known(&lookups.invoices, |id| {
                self.invoices.get(id).map(StoredInvoice::of)
            }),
            recurring_periods: known(&lookups.recurring_periods, |key| {
                self.recurring.get(key).copied()
            }),
            payment_attempts: known(&lookups.payment_attempts, |id| {
                self.attempts.get(id).map(|attempt| attempt.version)
            }),
            attempt_keys: known(&lookups.attempt_keys, |key| {
                self.attempt_keys.get(key).copied()
            }),
            events: present(&lookups.events, |id| self.event_ids.contains(id)),
            idempotency: known(&lookups.idempotency_keys, |key| {
                self.idempotency.get(key).map(|record| StoredIdempotency {
                    version: record.version,
                    expires_at: record.expires_at,
                })
            }),
            number_series: known(&lookups.number_series, |prefix| {
                self.series.get(prefix).cloned()
            }),
            last_event_seq: self.events.len() as u64,
            endpoints: known(&lookups.endpoints, |id| {
                self.endpoints.get(id).map(WebhookEndpoint::version)
            }),
            deliveries: known(&lookups.deliveries, |id| {
                self.deliveries
                    .get(id)
                    .map(commet_core::delivery::Delivery::version)
            }),
            delivery_keys: known(&lookups.delivery_keys, |key| {
                self.delivery_keys.get(key).copied()
            }),
            delivery_cursor: self
                .delivery_cursor
                .filter(|_| lookups.delivery_cursor)
                .map(|cursor| cursor.version),
        }
    }

    /// Write a prepared change set; cannot fail.
    fn apply(&mut self, prepared: PreparedCommit) -> CommitReceipt {
        let PreparedCommit {
            changes,
            series,
            receipt,
        } = prepared;
        self.apply_customers(changes.customers);
        for plan in changes.plans {
            self.plan_codes.insert(plan.code().to_owned(), plan.id());
            self.plans.insert(plan.id(), plan);
        }
        for price in changes.prices {
            self.prices.insert(price.id(), price);
        }
        for put in changes.subscriptions {
            self.apply_subscription(put.stored());
        }
        for write in changes.invoices {
            self.apply_invoice(write.put.stored());
        }
        for series in series {
            self.series.insert(series.prefix().to_owned(), series);
        }
        for put in changes.payment_attempts {
            self.apply_attempt(put.stored());
        }
        for (envelope, &seq) in changes.events.into_iter().zip(&receipt.event_seqs) {
            self.event_ids.insert(envelope.id);
            self.events.push(StoredEvent { seq, envelope });
        }
        for put in changes.idempotency {
            let record = put.stored();
            self.idempotency.insert(record.key.clone(), record);
        }
        for put in changes.endpoints {
            let endpoint = put.stored();
            self.endpoints.insert(endpoint.id(), endpoint);
        }
        for put in changes.deliveries {
            self.apply_delivery(put.stored());
        }
        if let Some(put) = changes.delivery_cursor {
            self.delivery_cursor = Some(put.stored());
        }
        receipt
    }

    fn apply_delivery(&mut self, delivery: Delivery) {
        let id = delivery.id();
        let due = |delivery: &Delivery| {
            (delivery.status() == commet_core::delivery::DeliveryStatus::Pending)
                .then_some(delivery.next_attempt_at())
                .flatten()
        };
        let old = self.deliveries.get(&id);
        let (was_due, is_due) = (old.and_then(due), due(&delivery));
        if was_due != is_due {
            if let Some(at) = was_due {
                self.due_deliveries.remove(&(at, id));
            }
            if let Some(at) = is_due {
                self.due_deliveries.insert((at, id));
            }
        }
        let old_key = old.map(|old| (old.endpoint(), old.event()));
        let key = (delivery.endpoint(), delivery.event());
        if old_key != Some(key) {
            if let Some(old_key) = old_key
                && self.delivery_keys.get(&old_key) == Some(&id)
            {
                self.delivery_keys.remove(&old_key);
            }
            self.delivery_keys.insert(key, id);
        }
        reindex(
            &mut self.deliveries_of_endpoint,
            old_key.map(|key| key.0),
            Some(key.0),
            id,
        );
        reindex(
            &mut self.deliveries_of_event,
            old_key.map(|key| key.1),
            Some(key.1),
            id,
        );
        self.deliveries.insert(id, delivery);
    }

    fn apply_customers(&mut self, puts: Vec<Put<Customer>>) {
        // A rewritten customer lets go of its old external id first, and only of one it still
        // holds: within one change set, another customer may take an id this one gives up.
        for put in &puts {
            if let Some(old) = self.customers.get(&put.value.id())
                && let Some(external_id) = old.external_id()
                && self.external_ids.get(external_id) == Some(&old.id())
            {
                self.external_ids.remove(external_id);
            }
        }
        for put in puts {
            let customer = put.stored();
            let id = customer.id();
            if let Some(external_id) = customer.external_id() {
                self.external_ids.insert(external_id.to_owned(), id);
            }
            let old = self.customers.get(&id).map(Customer::email);
            if !old.is_some_and(|old| old.eq_ignore_ascii_case(customer.email())) {
                reindex(
                    &mut self.emails,
                    old.map(str::to_ascii_lowercase),
                    Some(customer.email().to_ascii_lowercase()),
                    id,
                );
            }
            self.customers.insert(id, customer);
        }
    }

    fn apply_subscription(&mut self, subscription: Subscription) {
        let id = subscription.id();
        let old = self.subscriptions.get(&id);
        let (was_due, due) = (
            old.and_then(Subscription::next_due_at),
            subscription.next_due_at(),
        );
        if was_due != due {
            if let Some(was_due) = was_due {
                self.due.remove(&(was_due, id));
            }
            if let Some(due) = due {
                self.due.insert((due, id));
            }
        }
        let old_customer = old.map(Subscription::customer);
        reindex(
            &mut self.subscriptions_of,
            old_customer,
            Some(subscription.customer()),
            id,
        );
        self.subscriptions.insert(id, subscription);
    }

    fn apply_invoice(&mut self, invoice: Invoice) {
        let id = invoice.id();
        let old = self.invoices.get(&id);
        let (old_period, period) = (old.and_then(recurring_period), recurring_period(&invoice));
        if old_period != period {
            if let Some(key) = old_period
                && self.recurring.get(&key) == Some(&id)
            {
                self.recurring.remove(&key);
            }
            if let Some(key) = period {
                self.recurring.insert(key, id);
            }
        }
        let (old_customer, old_subscription) = (
            old.map(Invoice::customer),
            old.and_then(Invoice::subscription),
        );
        reindex(
            &mut self.invoices_of_customer,
            old_customer,
            Some(invoice.customer()),
            id,
        );
        reindex(
            &mut self.invoices_of_subscription,
            old_subscription,
            invoice.subscription(),
            id,
        );
        self.invoices.insert(id, invoice);
    }

    fn apply_attempt(&mut self, attempt: PaymentAttempt) {
        let id = attempt.id;
        let old = self.attempts.get(&id);
        if let Some(old) = old.filter(|old| old.is_pending()) {
            self.pending.remove(&(old.created_at, id));
        }
        if attempt.is_pending() {
            self.pending.insert((attempt.created_at, id));
        }
        let key = (attempt.invoice, attempt.attempt);
        if old.is_none_or(|old| (old.invoice, old.attempt) != key) {
            // New, or renumbered: the attempt moves in its invoice's list, and its key with it.
            if let Some(old) = old {
                let old_key = old.idempotency_key();
                if self.attempt_keys.get(&old_key) == Some(&id) {
                    self.attempt_keys.remove(&old_key);
                }
                if let Some(ids) = self.attempts_of.get_mut(&old.invoice) {
                    ids.remove(&(old.attempt, id));
                }
            }
            self.attempts_of
                .entry(attempt.invoice)
                .or_default()
                .insert((attempt.attempt, id));
            self.attempt_keys.insert(attempt.idempotency_key(), id);
        }
        self.attempts.insert(id, attempt);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        let state = self.state();
        Ok(ids
            .iter()
            .filter_map(|id| state.customers.get(id).cloned())
            .collect())
    }

    async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>> {
        let state = self.state();
        Ok(state
            .external_ids
            .get(external_id)
            .and_then(|id| state.customers.get(id))
            .cloned())
    }

    async fn customers_by_email(&self, email: &str) -> Result<Vec<Customer>> {
        let state = self.state();
        let index = state.emails.get(&email.to_ascii_lowercase());
        Ok(indexed(&state.customers, index, Bound::Unbounded)
            .map(|(_, customer)| customer.clone())
            .collect())
    }

    async fn customers(&self, request: PageRequest) -> Result<Page<Customer>> {
        let (limit, upper) = bounds(&request)?;
        let state = self.state();
        Ok(page(limit, all(&state.customers, upper), |_| true))
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        Ok(self.state().plans.values().cloned().collect())
    }

    async fn prices(&self) -> Result<Vec<Price>> {
        Ok(self.state().prices.values().cloned().collect())
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        Ok(self.state().subscriptions.get(&id).cloned())
    }

    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        request: PageRequest,
    ) -> Result<Page<Subscription>> {
        let (limit, upper) = bounds(&request)?;
        let state = self.state();
        let keep =
            |subscription: &Subscription| query.status.is_none_or(|s| subscription.status() == s);
        Ok(match query.customer {
            Some(customer) => {
                let index = state.subscriptions_of.get(&customer);
                page(limit, indexed(&state.subscriptions, index, upper), keep)
            }
            None => page(limit, all(&state.subscriptions, upper), keep),
        })
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscription>> {
        let state = self.state();
        Ok(state
            .due
            .iter()
            .take_while(|(due, _)| *due <= now)
            .take(limit)
            .filter_map(|(_, id)| state.subscriptions.get(id).cloned())
            .collect())
    }

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>> {
        Ok(self.state().invoices.get(&id).cloned())
    }

    async fn invoices(&self, query: InvoiceQuery, request: PageRequest) -> Result<Page<Invoice>> {
        let (limit, upper) = bounds(&request)?;
        let state = self.state();
        let keep = |invoice: &Invoice| {
            query.customer.is_none_or(|c| invoice.customer() == c)
                && query
                    .subscription
                    .is_none_or(|s| invoice.subscription() == Some(s))
                && query.status.is_none_or(|s| invoice.status() == s)
        };
        Ok(match (query.subscription, query.customer) {
            (Some(subscription), _) => {
                let index = state.invoices_of_subscription.get(&subscription);
                page(limit, indexed(&state.invoices, index, upper), keep)
            }
            (None, Some(customer)) => {
                let index = state.invoices_of_customer.get(&customer);
                page(limit, indexed(&state.invoices, index, upper), keep)
            }
            (None, None) => page(limit, all(&state.invoices, upper), keep),
        })
    }

    async fn recurring_invoice(
        &self,
        subscription: SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<Option<Invoice>> {
        let state = self.state();
        Ok(state
            .recurring
            .get(&(subscription, period_start))
            .and_then(|id| state.invoices.get(id))
            .cloned())
    }

    async fn payment_attempts(&self, invoice: InvoiceId) -> Result<Vec<PaymentAttempt>> {
        let state = self.state();
        Ok(state
            .attempts_of
            .get(&invoice)
            .into_iter()
            .flatten()
            .filter_map(|(_, id)| state.attempts.get(id).cloned())
            .collect())
    }

    async fn pending_payment_attempts(
        &self,
        created_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PaymentAttempt>> {
        let state = self.state();
        Ok(state
            .pending
            .iter()
            .take_while(|(created_at, _)| *created_at < created_before)
            .take(limit)
            .filter_map(|(_, id)| state.attempts.get(id).cloned())
            .collect())
    }

    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let state = self.state();
        // Event `seq` is at index `seq - 1`: the ones after it start at index `seq`.
        let start = usize::try_from(seq).unwrap_or(usize::MAX);
        Ok(state
            .events
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>> {
        Ok(self.state().idempotency.get(key).cloned())
    }

    async fn last_event_seq(&self) -> Result<u64> {
        Ok(self.state().events.len() as u64)
    }

    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        Ok(self.state().endpoints.values().cloned().collect())
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>> {
        Ok(self.state().deliveries.get(&id).cloned())
    }

    async fn deliveries(
        &self,
        query: DeliveryQuery,
        request: PageRequest,
    ) -> Result<Page<Delivery>> {
        let (limit, upper) = bounds(&request)?;
        let state = self.state();
        let keep = |delivery: &Delivery| query.matches(delivery);
        Ok(match (query.event, query.endpoint) {
            (Some(event), _) => {
                let index = state.deliveries_of_event.get(&event);
                page(limit, indexed(&state.deliveries, index, upper), keep)
            }
            (None, Some(endpoint)) => {
                let index = state.deliveries_of_endpoint.get(&endpoint);
                page(limit, indexed(&state.deliveries, index, upper), keep)
            }
            (None, None) => page(limit, all(&state.deliveries, upper), keep),
        })
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        let state = self.state();
        Ok(state
            .due_deliveries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .filter_map(|(_, id)| state.deliveries.get(id).cloned())
            .collect())
    }

    async fn delivery_cursor(&self) -> Result<DeliveryCursor> {
        Ok(self.state().delivery_cursor.unwrap_or_default())
    }

    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt> {
        let lookups = changes.lookups();
        let mut state = self.state();
        let facts = state.facts(&lookups);
        let prepared = prepare(changes, &facts)?;
        Ok(state.apply(prepared))
    }
}
