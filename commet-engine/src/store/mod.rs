//! Storage: one small trait, primitive reads plus one atomic [`commit`](Store::commit).
//!
//! Every operation loads what it touches, decides in pure code, and commits one [`ChangeSet`]
//! (DESIGN.md section 2). A store only stores: it keeps rows, answers a few indexed reads, and
//! writes a change set all at once. The rules a commit must keep (expected versions, unique
//! keys, references, fixed lines, invoice numbering, event sequence, and the order in which a
//! broken rule is named) are written once, here, and every store runs the same conformance
//! suite (`commet_engine::testkit`, feature `testkit`), so swapping the in-memory store for
//! SQLite changes nothing else.
//!
//! # What a store implements
//!
//! 1. The reads of [`Store`]: by id, by unique key, the newest-first pages, the due-work index,
//!    the attempts of an invoice and the pending ones, the outbox, idempotency records as
//!    stored, webhook endpoints, deliveries (by id, listed, the due ones) and the delivery
//!    cursor. [`StoreExt`] builds everything else on them (a customer, plan or price by id,
//!    the prices of a plan, an attempt by its key, the next deadline, a live idempotency
//!    record, getters that answer [`StoreError::NotFound`]).
//! 2. [`Store::commit`], in one transaction (or under one lock):
//!    - answer the change set's [`Lookups`] ([`ChangeSet::lookups`]) with [`CommitFacts`]:
//!      stored versions, who holds each unique key, the catalog entries and events that
//!      exist, the fixed lines of finalized invoices, stored idempotency records' versions and
//!      expiries, the number series, the last event sequence number;
//!    - [`prepare`] the commit from them: [`check`] names the first broken rule, then the
//!      invoices are numbered and the events sequenced;
//!    - write the [`PreparedCommit`] (rows, number series, events with their sequence
//!      numbers) and return its receipt. Nothing is written if any step fails.
//!
//! That is the whole contract, and it suits a synchronous backend and an asynchronous one
//! alike: the rules are pure functions of plain data, and only answering the lookups and
//! writing touch the backend. `MemoryStore` does exactly this under its lock; an async store's
//! commit reads like this (the transaction's methods are the store's own):
//!
//! ```text
//! async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt> {
//!     let lookups = changes.lookups();
//!     let tx = self.begin().await?;               // one transaction, or the store's lock
//!     let facts = tx.answer(&lookups).await?;     // CommitFacts, read inside it
//!     let prepared = store::prepare(changes, &facts)?; // every rule, numbers, sequence
//!     tx.write(&prepared).await?;                 // rows, number series, events
//!     tx.commit().await?;
//!     Ok(prepared.receipt)
//! }
//! ```
//!
//! Nothing the facts say may change unseen before the write commits: read them under the
//! store's write lock, or make the write enforce them too (versioned `UPDATE`s, unique and
//! foreign keys), so that a concurrent change fails the write instead of slipping past the
//! check.
//!
//! A store may also write first and let its backend refuse, as long as every rule is
//! enforced by the write itself (`SqliteStore`: versioned `UPDATE ... WHERE version = ?` with a
//! rows-affected check, the schema's primary, unique and foreign keys). After a refusal it
//! rolls back, answers the lookups against the rows as they are, and returns the error
//! [`check`] names, so every store names the same error for the same change set. It still
//! numbers invoices with [`ChangeSet::assign_numbers`] and events with
//! [`ChangeSet::event_seqs`] under its write lock, and checks [`ChangeSet::validate`] first.
//!
//! | guarantee | how |
//! |---|---|
//! | all or nothing | a change set is written completely or not at all, events included |
//! | no lost updates | every write carries an [`ExpectedVersion`]; a stale one is [`StoreError::Conflict`] |
//! | gap-free invoice numbers | allocated from a stored series inside the commit ([`ChangeSet::assign_numbers`]) |
//! | gap-free event order | the outbox numbers events 1, 2, 3 ... inside the commit ([`ChangeSet::event_seqs`]) |
//! | one recurring invoice per (subscription, period start) | a unique key: [`StoreError::AlreadyExists`] |
//! | one payment attempt per idempotency key | a unique key |
//! | one customer per external id, one plan per code | unique keys |
//! | one live idempotency record per key | a unique key; replaced at its version, or once expired |
//! | references exist | a subscription's or invoice's customer, a price's plan, an attempt's invoice: [`StoreError::Invalid`] |
//! | a finalized invoice's lines are fixed | a write that changes them is [`StoreError::Invalid`] (`invoice.lines`); [`Invoice`] only edits lines while a draft |
//! | due work without scans | subscriptions are indexed by [`Subscription::next_due_at`], pending deliveries by [`Delivery::next_attempt_at`] |
//! | one delivery per (endpoint, event) | a unique key: [`StoreError::AlreadyExists`] |
//!
//! Reads return `Ok(None)` for a missing id; [`StoreExt`] adds getters that return
//! [`StoreError::NotFound`] instead. Lists are newest first (by id, which is creation time)
//! and cursor-paginated: a page's `next` cursor continues after its last item, so items added
//! meanwhile never make a page repeat or skip an older item.

mod change_set;
mod error;
mod facts;
mod query;
mod rules;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use change_set::{
    ChangeSet, CommitReceipt, DeliveryCursor, ExpectedVersion, InvoiceWrite, Numbering, Put,
    StoredEvent, Versioned,
};
pub use error::{EntityKind, StoreError};
pub use facts::{CommitFacts, Lookups, StoredIdempotency, StoredInvoice, recurring_period};
pub use query::{
    Cursor, DeliveryQuery, InvoiceQuery, MAX_PAGE, Page, PageRequest, SubscriptionQuery, every_page,
};
pub use rules::{PreparedCommit, check, prepare};

use crate::idempotency::IdempotencyRecord;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::delivery::{Delivery, WebhookEndpoint};
use commet_core::ids::{CustomerId, DeliveryId, InvoiceId, PlanId, PriceId, SubscriptionId};
use commet_core::invoice::Invoice;
use commet_core::payment::PaymentAttempt;
use commet_core::subscription::Subscription;

/// A `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where commet keeps its data: primitive reads, and one atomic write.
///
/// Implementations: `commet_store_memory::MemoryStore`, `commet_store_sqlite::SqliteStore`.
/// Every method is required (no default bodies); conveniences live in [`StoreExt`]. What
/// [`commit`](Store::commit) must do is described in the [module docs](self).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The customers with these ids that exist, in the order of `ids` (an id given twice is
    /// answered twice). One call for a batch of work, instead of one per customer.
    async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>>;

    /// The customer with this external id.
    async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>>;

    /// The customers with this e-mail address (compared without regard to ASCII case), newest
    /// first.
    async fn customers_by_email(&self, email: &str) -> Result<Vec<Customer>>;

    /// All customers, newest first.
    async fn customers(&self, page: PageRequest) -> Result<Page<Customer>>;

    /// All plans, in creation order.
    async fn plans(&self) -> Result<Vec<Plan>>;

    /// All prices, in creation order.
    async fn prices(&self) -> Result<Vec<Price>>;

    /// A subscription by id.
    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>>;

    /// Subscriptions matching `query`, newest first.
    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        page: PageRequest,
    ) -> Result<Page<Subscription>>;

    /// Subscriptions whose next work is due at or before `now`, oldest deadline first (ties by
    /// id), at most `limit`.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscription>>;

    /// An invoice (with its lines) by id.
    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>>;

    /// Invoices matching `query`, newest first.
    async fn invoices(&self, query: InvoiceQuery, page: PageRequest) -> Result<Page<Invoice>>;

    /// The recurring invoice of `subscription` for the period starting at `period_start`.
    async fn recurring_invoice(
        &self,
        subscription: SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<Option<Invoice>>;

    /// The payment attempts of an invoice, in attempt order (ties by id).
    async fn payment_attempts(&self, invoice: InvoiceId) -> Result<Vec<PaymentAttempt>>;

    /// Attempts still pending that were recorded before `created_before`, oldest first (ties
    /// by id), at most `limit`: the charges a crash left unfinished.
    async fn pending_payment_attempts(
        &self,
        created_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PaymentAttempt>>;

    /// Outbox events with a sequence number above `seq`, in order, at most `limit`.
    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// The idempotency record stored under `key`, live or expired: whether it still holds is
    /// the engine's call ([`StoreExt::live_idempotency_record`]).
    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>>;

    /// The highest outbox sequence number used so far (0 for an empty outbox).
    async fn last_event_seq(&self) -> Result<u64>;

    /// Every webhook endpoint, deleted ones included, in creation order.
    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>>;

    /// A webhook delivery (with its attempt log) by id.
    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>>;

    /// Deliveries matching `query`, newest first.
    async fn deliveries(&self, query: DeliveryQuery, page: PageRequest) -> Result<Page<Delivery>>;

    /// Pending deliveries due at or before `now` ([`Delivery::next_attempt_at`]), soonest
    /// first (ties by id), at most `limit`.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>>;

    /// The delivery cursor (`DeliveryCursor::default()` if never written).
    async fn delivery_cursor(&self) -> Result<DeliveryCursor>;

    /// Write a change set atomically, after the rules of [`check`] (see the
    /// [module docs](self)); nothing is written on error.
    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt>;
}

/// Conveniences over any [`Store`], built on its primitive reads: lookups by id and key, and
/// getters that answer [`StoreError::NotFound`].
#[async_trait]
pub trait StoreExt: Store {
    /// A customer by id.
    async fn customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        Ok(self.customers_by_id(&[id]).await?.into_iter().next())
    }

    /// A customer that must exist.
    async fn get_customer(&self, id: CustomerId) -> Result<Customer> {
        self.customer(id)
            .await?
            .ok_or_else(|| not_found(EntityKind::Customer, id))
    }

    /// A subscription that must exist.
    async fn get_subscription(&self, id: SubscriptionId) -> Result<Subscription> {
        self.subscription(id)
            .await?
            .ok_or_else(|| not_found(EntityKind::Subscription, id))
    }

    /// An invoice that must exist.
    async fn get_invoice(&self, id: InvoiceId) -> Result<Invoice> {
        self.invoice(id)
            .await?
            .ok_or_else(|| not_found(EntityKind::Invoice, id))
    }

    /// A plan by id (read from [`Store::plans`]: catalogs are small, and the engine keeps
    /// what it read).
    async fn plan(&self, id: PlanId) -> Result<Option<Plan>> {
        Ok(self.plans().await?.into_iter().find(|plan| plan.id() == id))
    }

    /// A plan that must exist.
    async fn get_plan(&self, id: PlanId) -> Result<Plan> {
        self.plan(id)
            .await?
            .ok_or_else(|| not_found(EntityKind::Plan, id))
    }

    /// A price by id (read from [`Store::prices`]).
    async fn price(&self, id: PriceId) -> Result<Option<Price>> {
        Ok(self
            .prices()
            .await?
            .into_iter()
            .find(|price| price.id() == id))
    }

    /// A price that must exist.
    async fn get_price(&self, id: PriceId) -> Result<Price> {
        self.price(id)
            .await?
            .ok_or_else(|| not_found(EntityKind::Price, id))
    }

    /// The prices of one plan, in creation order.
    async fn prices_of(&self, plan: PlanId) -> Result<Vec<Price>> {
        let mut prices = self.prices().await?;
        prices.retain(|price| price.plan() == plan);
        Ok(prices)
    }

    /// The payment attempt with this idempotency key (`{invoice}:{attempt}`, see
    /// [`PaymentAttempt::key_for`]), found among its invoice's attempts. `None` for a key of
    /// another shape.
    async fn payment_attempt(&self, idempotency_key: &str) -> Result<Option<PaymentAttempt>> {
        let Some((invoice, attempt)) = idempotency_key.rsplit_once(':') else {
            return Ok(None);
        };
        let (Ok(invoice), Ok(attempt)) = (invoice.parse::<InvoiceId>(), attempt.parse::<u32>())
        else {
            return Ok(None);
        };
        Ok(self
            .payment_attempts(invoice)
            .await?
            .into_iter()
            .find(|found| found.attempt == attempt && found.idempotency_key() == idempotency_key))
    }

    /// The earliest deadline of any subscription, if one has any.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .due(DateTime::<Utc>::MAX_UTC, 1)
            .await?
            .first()
            .and_then(Subscription::next_due_at))
    }

    /// The idempotency record for `key`, if it is still live at `now`.
    async fn live_idempotency_record(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(self
            .idempotency_record(key)
            .await?
            .filter(|record| record.is_live(now)))
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

fn not_found(kind: EntityKind, id: impl std::fmt::Display) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}
