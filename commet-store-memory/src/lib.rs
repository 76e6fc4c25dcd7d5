//! # commet-store-memory
//!
//! [`MemoryStore`]: commet's store in memory, for tests and for trying commet out. It has the
//! same semantics as every other store (versions and conflicts, atomic change sets, gap-free
//! invoice numbers and event sequence, the unique keys, the due-work index, newest-first
//! pagination) and passes the same conformance suite. Nothing survives the process.
//!
//! ```
//! use commet_engine::store::{PageRequest, Store};
//! use commet_store_memory::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! assert!(store.customers(PageRequest::first(10)).await?.items.is_empty());
//! assert_eq!(store.next_due_at().await?, None);
//! # Ok::<(), commet_engine::store::StoreError>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::event::Envelope;
use commet_core::ids::{CustomerId, EventId, InvoiceId, PlanId, PriceId, SubscriptionId, TypedId};
use commet_core::invoice::{Invoice, InvoiceKind, InvoiceStatus, NumberSeries};
use commet_core::payment::{PaymentAttempt, PaymentAttemptId};
use commet_core::subscription::Subscription;
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, CommitReceipt, Cursor, EntityKind, InvoiceQuery, InvoiceWrite, Page, PageRequest,
    Put, Result, Store, StoreError, StoredEvent, SubscriptionQuery, Versioned,
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
    plans: BTreeMap<PlanId, Plan>,
    plan_codes: HashMap<String, PlanId>,
    prices: BTreeMap<PriceId, Price>,
    subscriptions: BTreeMap<SubscriptionId, Subscription>,
    due: BTreeSet<(DateTime<Utc>, SubscriptionId)>,
    invoices: BTreeMap<InvoiceId, Invoice>,
    recurring: HashMap<(SubscriptionId, DateTime<Utc>), InvoiceId>,
    series: HashMap<String, NumberSeries>,
    attempts: BTreeMap<PaymentAttemptId, PaymentAttempt>,
    attempt_keys: HashMap<String, PaymentAttemptId>,
    events: Vec<StoredEvent>,
    event_ids: HashSet<EventId>,
    idempotency: HashMap<String, IdempotencyRecord>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A commit checks everything before it changes anything, so a panic elsewhere cannot
        // leave the state half-written: recovering from poisoning is safe.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The newest-first page of `map` after `cursor`, keeping what `keep` accepts.
fn page<K, V>(
    map: &BTreeMap<K, V>,
    request: &PageRequest,
    parse: impl Fn(&str) -> Option<K>,
    keep: impl Fn(&V) -> bool,
) -> Result<Page<V>>
where
    K: Ord + Copy + std::fmt::Display,
    V: Clone,
{
    let limit = request.checked_limit()?;
    let upper = match &request.after {
        Some(cursor) => Some(
            parse(cursor.as_str())
                .ok_or_else(|| InvalidField::new("after", "is not a cursor of this list"))?,
        ),
        None => None,
    };
    let range = match upper {
        Some(upper) => map.range(..upper),
        None => map.range(..),
    };
    let mut items = Vec::with_capacity(limit);
    let mut last = None;
    for (key, value) in range.rev().filter(|(_, value)| keep(value)) {
        if items.len() == limit {
            return Ok(Page {
                items,
                next: last.map(Cursor::after),
            });
        }
        items.push(value.clone());
        last = Some(*key);
    }
    Ok(Page { items, next: None })
}

fn exists(kind: EntityKind, key: impl std::fmt::Display) -> StoreError {
    StoreError::AlreadyExists {
        kind,
        key: key.to_string(),
    }
}

fn unknown(field: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(InvalidField::new(
        field,
        format_args!("{what} does not exist"),
    ))
}

fn check_version<K: Ord, T: Versioned>(map: &BTreeMap<K, T>, id: &K, put: &Put<T>) -> Result<()> {
    let stored = map.get(id).map(Versioned::version);
    if put.expected.matches(stored) {
        Ok(())
    } else {
        Err(put.conflict(stored))
    }
}

impl State {
    /// Every check of a commit, before anything changes.
    fn check(&self, changes: &ChangeSet) -> Result<()> {
        let rewritten = self.check_customers(&changes.customers)?;
        let customer_exists =
            |id: CustomerId| self.customers.contains_key(&id) || rewritten.contains(&id);
        self.check_catalog(&changes.plans, &changes.prices)?;
        for put in &changes.subscriptions {
            check_version(&self.subscriptions, &put.value.id(), put)?;
            if !customer_exists(put.value.customer()) {
                return Err(unknown("subscription.customer", put.value.customer()));
            }
        }
        for write in &changes.invoices {
            if !customer_exists(write.put.value.customer()) {
                return Err(unknown("invoice.customer", write.put.value.customer()));
            }
        }
        self.check_invoices(&changes.invoices)?;
        self.check_attempts(changes)?;
        self.check_outbox(&changes.events, &changes.idempotency)
    }

    /// Versions, and one customer per external id after the commit. Returns the ids written.
    fn check_customers(&self, puts: &[Put<Customer>]) -> Result<HashSet<CustomerId>> {
        let rewritten: HashSet<CustomerId> = puts.iter().map(|p| p.value.id()).collect();
        // External ids claimed by this change set; a stored one is taken unless its holder is
        // rewritten here (and so lets go of it). Looked up per put: the work is the change
        // set's, not the number of customers stored.
        let mut claimed: HashSet<&str> = HashSet::new();
        for put in puts {
            check_version(&self.customers, &put.value.id(), put)?;
            if let Some(external_id) = put.value.external_id()
                && (self
                    .external_ids
                    .get(external_id)
                    .is_some_and(|holder| !rewritten.contains(holder))
                    || !claimed.insert(external_id))
            {
                return Err(exists(
                    EntityKind::Customer,
                    format_args!("external_id={external_id}"),
                ));
            }
        }
        Ok(rewritten)
    }

    /// Plans and prices are insert-only: unique ids and plan codes, prices of known plans.
    fn check_catalog(&self, plans: &[Plan], prices: &[Price]) -> Result<()> {
        let mut codes = HashSet::new();
        let mut ids = HashSet::new();
        for plan in plans {
            if self.plans.contains_key(&plan.id()) || !ids.insert(plan.id()) {
                return Err(exists(EntityKind::Plan, format_args!("id={}", plan.id())));
            }
            if self.plan_codes.contains_key(plan.code()) || !codes.insert(plan.code()) {
                return Err(exists(
                    EntityKind::Plan,
                    format_args!("code={}", plan.code()),
                ));
            }
        }
        let new_plans: HashSet<PlanId> = plans.iter().map(Plan::id).collect();
        let mut new_prices = HashSet::new();
        for price in prices {
            if self.prices.contains_key(&price.id()) || !new_prices.insert(price.id()) {
                return Err(exists(EntityKind::Price, format_args!("id={}", price.id())));
            }
            if !self.plans.contains_key(&price.plan()) && !new_plans.contains(&price.plan()) {
                return Err(unknown("price.plan", price.plan()));
            }
        }
        Ok(())
    }

    /// Versions, and one recurring invoice per (subscription, period start).
    fn check_invoices(&self, writes: &[InvoiceWrite]) -> Result<()> {
        let mut periods = HashSet::new();
        for write in writes {
            let invoice = &write.put.value;
            check_version(&self.invoices, &invoice.id(), &write.put)?;
            if let Some(stored) = self.invoices.get(&invoice.id())
                && stored.status() != InvoiceStatus::Draft
                && stored.lines() != invoice.lines()
            {
                return Err(StoreError::Invalid(InvalidField::new(
                    "invoice.lines",
                    "a finalized invoice's lines cannot change",
                )));
            }
            if let Some(key) = recurring_key(invoice) {
                let taken = self
                    .recurring
                    .get(&key)
                    .is_some_and(|owner| *owner != invoice.id());
                if taken || !periods.insert(key) {
                    return Err(exists(
                        EntityKind::Invoice,
                        format_args!("subscription={} period_start={}", key.0, key.1),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Versions, known invoices, one attempt per idempotency key.
    fn check_attempts(&self, changes: &ChangeSet) -> Result<()> {
        let new_invoices: HashSet<InvoiceId> =
            changes.invoices.iter().map(|w| w.put.value.id()).collect();
        let mut keys = HashSet::new();
        for put in &changes.payment_attempts {
            let attempt = &put.value;
            check_version(&self.attempts, &attempt.id, put)?;
            if !self.invoices.contains_key(&attempt.invoice)
                && !new_invoices.contains(&attempt.invoice)
            {
                return Err(unknown("payment_attempt.invoice", attempt.invoice));
            }
            let key = attempt.idempotency_key();
            let taken = self
                .attempt_keys
                .get(&key)
                .is_some_and(|owner| *owner != attempt.id);
            if taken || !keys.insert(key.clone()) {
                return Err(exists(
                    EntityKind::PaymentAttempt,
                    format_args!("idempotency_key={key}"),
                ));
            }
        }
        Ok(())
    }

    /// Unique event ids across the outbox; a live idempotency key cannot be taken again.
    fn check_outbox(&self, events: &[Envelope], records: &[IdempotencyRecord]) -> Result<()> {
        for event in events {
            if self.event_ids.contains(&event.id) {
                return Err(exists(EntityKind::Event, format_args!("id={}", event.id)));
            }
        }
        let mut keys = HashSet::new();
        for record in records {
            let live = self
                .idempotency
                .get(&record.key)
                .is_some_and(|stored| stored.is_live(record.created_at));
            if live || !keys.insert(record.key.as_str()) {
                return Err(exists(
                    EntityKind::IdempotencyRecord,
                    format_args!("key={}", record.key),
                ));
            }
        }
        Ok(())
    }

    /// Write a checked change set; cannot fail.
    fn apply(&mut self, changes: ChangeSet, series: Vec<NumberSeries>) -> Vec<u64> {
        // A rewritten object lets go of its old unique keys first, and only of keys it still
        // holds: within one change set, another object may take a key this one gives up.
        for put in &changes.customers {
            if let Some(old) = self.customers.get(&put.value.id())
                && let Some(external_id) = old.external_id()
                && self.external_ids.get(external_id) == Some(&old.id())
            {
                self.external_ids.remove(external_id);
            }
        }
        for put in changes.customers {
            let customer = put.stored();
            if let Some(external_id) = customer.external_id() {
                self.external_ids
                    .insert(external_id.to_owned(), customer.id());
            }
            self.customers.insert(customer.id(), customer);
        }
        for plan in changes.plans {
            self.plan_codes.insert(plan.code().to_owned(), plan.id());
            self.plans.insert(plan.id(), plan);
        }
        for price in changes.prices {
            self.prices.insert(price.id(), price);
        }
        for put in changes.subscriptions {
            let subscription = put.stored();
            if let Some(old) = self.subscriptions.get(&subscription.id())
                && let Some(due) = old.next_due_at()
            {
                self.due.remove(&(due, old.id()));
            }
            if let Some(due) = subscription.next_due_at() {
                self.due.insert((due, subscription.id()));
            }
            self.subscriptions.insert(subscription.id(), subscription);
        }
        for write in changes.invoices {
            let invoice = write.put.stored();
            if let Some(key) = self.invoices.get(&invoice.id()).and_then(recurring_key)
                && self.recurring.get(&key) == Some(&invoice.id())
            {
                self.recurring.remove(&key);
            }
            if let Some(key) = recurring_key(&invoice) {
                self.recurring.insert(key, invoice.id());
            }
            self.invoices.insert(invoice.id(), invoice);
        }
        for series in series {
            self.series.insert(series.prefix().to_owned(), series);
        }
        for put in changes.payment_attempts {
            let attempt = put.stored();
            if let Some(old) = self.attempts.get(&attempt.id) {
                let key = old.idempotency_key();
                if self.attempt_keys.get(&key) == Some(&attempt.id) {
                    self.attempt_keys.remove(&key);
                }
            }
            self.attempt_keys
                .insert(attempt.idempotency_key(), attempt.id);
            self.attempts.insert(attempt.id, attempt);
        }
        let mut seqs = Vec::with_capacity(changes.events.len());
        for envelope in changes.events {
            let seq = self.events.len() as u64 + 1;
            self.event_ids.insert(envelope.id);
            self.events.push(StoredEvent { seq, envelope });
            seqs.push(seq);
        }
        for record in changes.idempotency {
            self.idempotency.insert(record.key.clone(), record);
        }
        seqs
    }
}

/// The unique key of a recurring invoice: (subscription, period start).
fn recurring_key(invoice: &Invoice) -> Option<(SubscriptionId, DateTime<Utc>)> {
    match (invoice.kind(), invoice.subscription(), invoice.period()) {
        (InvoiceKind::Recurring, Some(subscription), Some(period)) => {
            Some((subscription, period.start()))
        }
        _ => None,
    }
}

fn parse<T: TypedId>(text: &str) -> Option<T> {
    text.parse().ok()
}

#[async_trait]
impl Store for MemoryStore {
    async fn customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        Ok(self.state().customers.get(&id).cloned())
    }

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
        Ok(self
            .state()
            .customers
            .values()
            .rev()
            .filter(|customer| customer.email().eq_ignore_ascii_case(email))
            .cloned()
            .collect())
    }

    async fn customers(&self, request: PageRequest) -> Result<Page<Customer>> {
        page(&self.state().customers, &request, parse, |_| true)
    }

    async fn plan(&self, id: PlanId) -> Result<Option<Plan>> {
        Ok(self.state().plans.get(&id).cloned())
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        Ok(self.state().plans.values().cloned().collect())
    }

    async fn price(&self, id: PriceId) -> Result<Option<Price>> {
        Ok(self.state().prices.get(&id).cloned())
    }

    async fn prices(&self, plan: Option<PlanId>) -> Result<Vec<Price>> {
        Ok(self
            .state()
            .prices
            .values()
            .filter(|price| plan.is_none_or(|plan| price.plan() == plan))
            .cloned()
            .collect())
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        Ok(self.state().subscriptions.get(&id).cloned())
    }

    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        request: PageRequest,
    ) -> Result<Page<Subscription>> {
        page(
            &self.state().subscriptions,
            &request,
            parse,
            |subscription| {
                query.customer.is_none_or(|c| subscription.customer() == c)
                    && query.status.is_none_or(|s| subscription.status() == s)
            },
        )
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

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.state().due.first().map(|(due, _)| *due))
    }

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>> {
        Ok(self.state().invoices.get(&id).cloned())
    }

    async fn invoices(&self, query: InvoiceQuery, request: PageRequest) -> Result<Page<Invoice>> {
        page(&self.state().invoices, &request, parse, |invoice| {
            query.customer.is_none_or(|c| invoice.customer() == c)
                && query
                    .subscription
                    .is_none_or(|s| invoice.subscription() == Some(s))
                && query.status.is_none_or(|s| invoice.status() == s)
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

    async fn number_series(&self, prefix: &str) -> Result<Option<NumberSeries>> {
        Ok(self.state().series.get(prefix).cloned())
    }

    async fn payment_attempt(&self, idempotency_key: &str) -> Result<Option<PaymentAttempt>> {
        let state = self.state();
        Ok(state
            .attempt_keys
            .get(idempotency_key)
            .and_then(|id| state.attempts.get(id))
            .cloned())
    }

    async fn payment_attempts(&self, invoice: InvoiceId) -> Result<Vec<PaymentAttempt>> {
        let mut attempts: Vec<PaymentAttempt> = self
            .state()
            .attempts
            .values()
            .filter(|attempt| attempt.invoice == invoice)
            .cloned()
            .collect();
        attempts.sort_by_key(|attempt| attempt.attempt);
        Ok(attempts)
    }

    async fn pending_payment_attempts(
        &self,
        created_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PaymentAttempt>> {
        let mut pending: Vec<PaymentAttempt> = self
            .state()
            .attempts
            .values()
            .filter(|attempt| attempt.is_pending() && attempt.created_at < created_before)
            .cloned()
            .collect();
        pending.sort_by_key(|attempt| (attempt.created_at, attempt.id));
        pending.truncate(limit);
        Ok(pending)
    }

    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let state = self.state();
        let start = usize::try_from(seq).unwrap_or(usize::MAX);
        Ok(state
            .events
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn idempotency_record(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(self
            .state()
            .idempotency
            .get(key)
            .filter(|record| record.is_live(now))
            .cloned())
    }

    async fn commit(&self, mut changes: ChangeSet) -> Result<CommitReceipt> {
        changes.validate()?;
        let mut state = self.state();
        state.check(&changes)?;
        let numbering = changes.assign_numbers(|prefix| Ok(state.series.get(prefix).cloned()))?;
        let event_seqs = state.apply(changes, numbering.series);
        Ok(CommitReceipt {
            event_seqs,
            invoice_numbers: numbering.numbers,
        })
    }
}
