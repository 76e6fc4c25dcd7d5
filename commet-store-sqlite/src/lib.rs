//! # commet-store-sqlite
//!
//! [`SqliteStore`]: commet's store in one SQLite file (or in memory), on
//! [rusqlite](https://docs.rs/rusqlite) with SQLite bundled, so there is nothing to install. It
//! has exactly the semantics of every commet store (versions and conflicts, atomic change sets,
//! gap-free invoice numbers and event sequence, the unique keys, the due-work and due-delivery
//! indexes, newest-first pagination) and passes the shared conformance suite of
//! `commet-engine`, plus a differential test that runs random operation sequences against it
//! and `MemoryStore`.
//!
//! It only stores: it answers the primitive reads of `commet_engine::store::Store` with indexed
//! queries and writes a change set in one transaction. The commit rules (versions, unique keys,
//! references, fixed lines, numbering, sequence, and which broken rule is named) are the
//! engine's, written once for every store; this crate makes SQLite enforce them as it writes
//! (see [Commits](#commits)).
//!
//! ```
//! use commet_engine::store::{PageRequest, Store, StoreExt};
//! use commet_store_sqlite::SqliteStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("billing.db");
//! let store = SqliteStore::open(&path).await?; // creates and migrates the file
//! assert!(store.customers(PageRequest::first(10)).await?.items.is_empty());
//!
//! let scratch = SqliteStore::in_memory().await?; // private to this value, gone on drop
//! assert_eq!(scratch.next_due_at().await?, None);
//! # Ok::<(), commet_engine::store::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! | | |
//! |---|---|
//! | open | [`SqliteStore::open`] (a file, created if missing), [`SqliteStore::in_memory`], [`SqliteStore::open_with`] ([`SqliteOptions`]) |
//! | connection | one connection behind a mutex; every call runs on Tokio's blocking pool (`spawn_blocking`), never on an async worker |
//! | journal | WAL for files: readers never block the writer; several processes may open one file |
//! | commits | `BEGIN IMMEDIATE`; numbering and writes in one transaction, refused by the schema and versioned `UPDATE`s; any error rolls everything back, and the engine's rules name it |
//! | durability | `synchronous = FULL` by default ([`Durability`]): a returned commit survives power loss |
//! | locking | `busy_timeout` 5 s; a commit that waits longer fails with `StoreError::Backend` |
//! | integrity | `foreign_keys = ON`; unique keys in the schema; rows rebuilt through the validating constructors (a bad row is `StoreError::Corrupt`) |
//! | schema | embedded, versioned migrations run on open ([`SCHEMA_VERSION`], in `PRAGMA user_version`; version 3 adds the webhook tables); an older database is migrated in place, a newer one is refused |
//!
//! # Schema
//!
//! One table per entity, with the queried and indexed fields as real, typed columns:
//!
//! | table | key | other unique / indexed columns | JSON text columns |
//! |---|---|---|---|
//! | `customers` | `id` | `external_id` UNIQUE; `email` (indexed, `COLLATE NOCASE`) | `credit` (currency → amount), `metadata`, `billing` (the billing details, NULL when none; schema version 4) |
//! | `plans` | `id` | `code` UNIQUE | |
//! | `prices` | `id` | `plan` → `plans` | |
//! | `subscriptions` | `id` | `customer` → `customers`; `status`; `next_due_at` (the due-work index) | `items`, `state`, `metadata`, `charging` (the charge in flight, NULL when none; schema version 2) |
//! | `invoices` | `id` | `customer` → `customers`; `subscription`; `status`; (`subscription`, `period_start`) UNIQUE where `kind = 'recurring'`; `lines_digest` (BLOB, schema version 2) | `metadata`, `parties` (the seller's and buyer's legal details frozen when it left `draft`; schema version 4) |
//! | `invoice_lines` | (`invoice`, `position`) | `invoice` → `invoices` | |
//! | `payment_attempts` | `id` | `idempotency_key` UNIQUE; `invoice` → `invoices`; pending ones by `created_at` | |
//! | `events` (the outbox) | `seq` | `id` UNIQUE | `envelope` (the exact webhook JSON) |
//! | `idempotency_records` | `idempotency_key` | `version` (schema version 2) | |
//! | `number_series` | `prefix` | | |
//! | `webhook_endpoints` (schema version 3) | `id` | | `events` (the event filter) |
//! | `deliveries` (schema version 3) | `id` | `endpoint` → `webhook_endpoints`; (`endpoint`, `event`) UNIQUE; by `endpoint` and by `event` (newest first); `next_attempt_at` where `status = 'pending'` (the due-delivery index) | `attempts` (the attempt log, oldest first) |
//! | `delivery_cursor` (schema version 3) | `id` (always 1: one row) | | |
//!
//! Decisions written down here:
//!
//! - **Instants** are `INTEGER` microseconds since the Unix epoch, UTC. Commet keeps instants to
//!   the microsecond (`commet_core::clock`), so they round-trip exactly, compare and sort as
//!   numbers, and index well. A sub-microsecond part, which commet never produces, is dropped.
//! - **Money** is exact decimal `TEXT` at the currency's scale (`12.34`, `5000`, `1.250`) next to
//!   a `currency` column holding the ISO 4217 code; unit prices keep the precision they have
//!   (`0.0004`). Never a float. An invoice has one `currency` for all its amounts and lines.
//! - **Ids** are the TypeID text (`cus_01h4...`). They are time-sortable and their text order is
//!   their creation order, so lists are `ORDER BY id DESC` with the cursor as `id < ?`.
//! - **Enums** (statuses, kinds, purposes) are their snake-case wire names.
//! - **Nested data** that is never queried is JSON text: a subscription's items and its
//!   status-specific state (the `SubscriptionState` enum, tagged with its `status`), metadata
//!   maps, customer credit. Columns would be a dozen nullable fields that only one status uses.
//!   The `status` and `next_due_at` columns are derived from the state on every write, and a
//!   read checks that they still agree with it: a stale due-work index would silently skip
//!   renewals, so it is `Corrupt` instead. A commet release that changes how deadlines derive
//!   from the state therefore ships a migration that recomputes the column.
//! - **E-mail lookups** compare with SQLite's `NOCASE` collation, which folds exactly the 26 ASCII
//!   letters: the same rule as `customers_by_email` everywhere (`str::eq_ignore_ascii_case`).
//! - **Integers** are SQLite's signed 64 bits: a version, sequence number or invoice number
//!   series value above `i64::MAX` is refused as `StoreError::Invalid` (nothing gets there).
//! - **Webhook secrets** are stored as their `whsec_...` text (`WebhookSecret::expose`) and
//!   parsed back on read (its `FromStr`; a value that does not parse is `Corrupt`, and the
//!   error never repeats it). They are not encrypted: protect the database file as you
//!   would any file holding credentials. A rotated-out secret is `retired_secret` with the
//!   instant it stops signing in `retired_until`, both `NULL` when there is none.
//! - **A delivery's event** is the outbox event's id, not a foreign key: the commit rules do not
//!   require the event to be stored (deliveries are fanned out from events already in the
//!   outbox, which is append-only). Its endpoint is a foreign key. A row is read through
//!   `Delivery::from_record`: every column must decode (ids, names, instants, the attempt
//!   log's JSON) and the fields must agree (attempts numbered in order, a due time exactly
//!   while pending, a failure reason exactly when failed), or the row is corrupt.
//! - **Invoice numbers** are not unique in the schema (a store may hold imported numbers); the
//!   gap-free series in `number_series` is what keeps commet's own numbers unique.
//!
//! # Commits
//!
//! The commit rules are the engine's (`commet_engine::store::check`); this crate only makes
//! SQLite enforce them while it writes, so the common commit looks nothing up first. A commit
//! checks the change set on its own (`ChangeSet::validate`), takes the write lock (`BEGIN
//! IMMEDIATE`), numbers invoices from `number_series` (`ChangeSet::assign_numbers`), sequences
//! events after `MAX(seq)` (`ChangeSet::event_seqs`), writes, and commits. Both numberings are
//! gap-free because only one writer holds the lock and a failed commit rolls back.
//!
//! Every rule is enforced by the write itself: a versioned write is `UPDATE ... WHERE id = ? AND
//! version = ?` with a rows-affected check, a new row an `INSERT` its primary key refuses if it
//! exists, and the schema's unique and foreign keys refuse the rest (external ids, plan codes,
//! recurring periods, attempt keys, event ids, one delivery per (endpoint, event),
//! references). A finalized invoice's lines are fixed: every invoice row keeps
//! `lines_digest`, 16 bytes of SHA-256 over its lines as values (decimals normalized), and a
//! rewrite is first tried as an `UPDATE` that also requires the stored digest to equal the new
//! lines' digest. That is every rewrite of a finalized invoice
//! (paid, voided ...), and it reads nothing. Only when it does not apply (a draft's new lines,
//! a row written by schema version 1, or a write that changes fixed lines) are the stored lines
//! read and compared, and a draft's lines replaced. A new idempotency record is an upsert that
//! only replaces an expired one. When a commit rewrites several
//! customers, those holding an external id claimed in it let go of it first, so an id can
//! move between them.
//!
//! When a write is refused, the transaction rolls back, and a read transaction answers the
//! change set's lookups (`ChangeSet::lookups`, one indexed `SELECT` each) for the engine's
//! rules to name the broken one, so both stores name the same error. If that reading fails or
//! finds nothing broken (another process changed the rows meanwhile), the refusal itself is
//! returned: a stale version stays a `Conflict`.
//!
//! # Durability and several processes
//!
//! A commit is atomic: the write-ahead log exposes only whole transactions, so a process
//! killed mid-commit leaves either the whole change set or nothing (a test kills a writer
//! process at random points, many times, and checks exactly that). With the default
//! [`Durability::Full`] a commit that returned also survives an OS crash or power loss;
//! [`Durability::Normal`] trades that for fewer `fsync`s. Several processes (or several
//! `SqliteStore`s) may open one file: commits serialize on SQLite's write lock, waiting up to
//! the busy timeout, and the version checks inside the transaction keep the same guarantees
//! as within one process. Reads that touch several tables (an invoice and its lines) run in
//! one read transaction, so they see one consistent snapshot. Keep the file on a local disk:
//! WAL needs shared memory, which network file systems do not provide.
//!
//! Within one process a `SqliteStore` (and its clones) has one connection: calls take turns, so
//! a read waits for a commit in progress. Open one store per process and share it.
//!
//! Calls need a Tokio runtime to run off the executor; without one (a plain blocking caller)
//! they run inline on the calling thread.
//!
//! # How it is tested
//!
//! | test | what it shows |
//! |---|---|
//! | `tests/conformance.rs` | every behaviour of the shared suite, on a file, on one file through two connections (calls alternating), and in memory |
//! | `tests/differential.rs` | random operation sequences (including stale writes, taken keys, missing references, idempotency records replaced at fresh and stale versions, reopening the file) give `MemoryStore`'s exact results and readable state; a fixed sequence survives a close and reopen |
//! | `tests/durability.rs` | a writer process killed (SIGKILL) 20 times at random points, mostly inside commits, leaves every change set whole or absent and the outbox gap-free; a newer schema is refused |
//! | `tests/corrupt_rows.rs` | rows edited into nonsense are `StoreError::Corrupt`, naming the row (webhook rows too, without ever showing a secret) |
//! | `tests/deliveries.rs` | webhook endpoints, deliveries (attempt logs of every outcome) and the delivery cursor round-trip, conflict at stale versions, keep one delivery per (endpoint, event) with nothing written on refusal, list and page with every filter and answer the due deliveries in order, all exactly as `MemoryStore` does |
//! | `tests/open.rs` | a new file is created and migrated, also by several openers at once; a file that is not a commet database is refused; a database written by schema version 1 opens, migrates, and keeps its idempotency records at version 1; one written by version 2 migrates to the current version in place, keeps its rows and takes webhook rows; an invoice row without its lines digest (as version 1 left them) or with a wrong one is checked against its stored lines |
//! | `rows::tests::no_statement_is_prepared_again` | no statement the store runs is ever prepared twice by SQLite (the statement cache works for every query shape) |
//! | `query::tests::delivery_reads_use_their_indexes` | the due deliveries are a range of the partial index of pending ones, and lists by endpoint or event a range of theirs, with no sort |
//! | `benches/store.rs` | commits and rows per second against raw rusqlite (figures in the README) |
//! | `benches/renewals.rs` | renewals per second through the engine against raw rusqlite writing the same rows (figures in the README) |
//! | `examples/fixed_saas/` | the README's main job: a year of a fixed-price `SaaS`, through the engine, on a file, its webhooks delivered over HTTP to two verifying receivers |
//! | `benches/deliveries.rs` | webhook deliveries per second through the engine and the real transport |
//!
//! The engine's tests on this store live in `commet-engine/tests` (`engine_parity`,
//! `engine_crash`, `engine_crash_paths`, `engine_concurrency`, `engine_concurrent_requests`,
//! `engine_shared_catalog`).

mod codec;
mod commit;
mod connection;
mod error;
mod facts;
mod migrations;
mod query;
mod rows;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::delivery::{Delivery, WebhookEndpoint};
use commet_core::ids::{CustomerId, DeliveryId, InvoiceId, SubscriptionId};
use commet_core::invoice::{Invoice, NumberSeries};
use commet_core::payment::PaymentAttempt;
use commet_core::subscription::Subscription;
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, CommitReceipt, DeliveryCursor, DeliveryQuery, InvoiceQuery, Page, PageRequest,
    Result, Store, StoredEvent, SubscriptionQuery,
};

pub use connection::{Durability, SqliteOptions};
pub use migrations::SCHEMA_VERSION;

use connection::{Database, blocking};
use query::PageBounds;

/// The SQLite store. Cheap to clone (clones share the connection); share it behind an `Arc`
/// or clone it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Arc<Database>,
}

impl SqliteStore {
    /// Open the database file at `path`, creating it if it does not exist, with the default
    /// [`SqliteOptions`], and bring its schema up to date.
    ///
    /// Fails with `StoreError::Backend` if the file cannot be opened, is not a SQLite database,
    /// cannot use WAL, or has a schema from a newer commet (the message names both versions).
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        SqliteStore::open_with(path, SqliteOptions::default()).await
    }

    /// [`open`](SqliteStore::open) with explicit options.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let db = connection::open(Some(path.as_ref().to_path_buf()), options).await?;
        Ok(SqliteStore { db: Arc::new(db) })
    }

    /// A new, empty database in memory, private to this store (and its clones). For tests and
    /// trying commet out; nothing survives the last clone.
    pub async fn in_memory() -> Result<SqliteStore> {
        let db = connection::open(None, SqliteOptions::default()).await?;
        Ok(SqliteStore { db: Arc::new(db) })
    }

    /// The schema version of the open database (always [`SCHEMA_VERSION`] once open).
    pub async fn schema_version(&self) -> Result<i64> {
        blocking(&self.db, |conn| migrations::version(conn)).await
    }

    /// The invoice number series stored under `prefix`, with its next value. Not part of the
    /// `Store` contract (the engine never reads a series outside a commit): for tests and
    /// inspection.
    pub async fn number_series(&self, prefix: &str) -> Result<Option<NumberSeries>> {
        let prefix = prefix.to_owned();
        blocking(&self.db, move |conn| rows::series::load(conn, &prefix)).await
    }

    /// Close the connection, reporting any error SQLite has while closing (a file database
    /// checkpoints its write-ahead log into the main file and removes it). If clones of this
    /// store are still alive, this only drops this handle; the last one closes on drop.
    pub async fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.db) {
            Ok(db) => connection::close(db).await,
            Err(_shared) => Ok(()),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        blocking(&self.db, move |conn| query::customers_by_id(conn, &ids)).await
    }

    async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>> {
        let external_id = external_id.to_owned();
        blocking(&self.db, move |conn| {
            query::customer_by_external_id(conn, &external_id)
        })
        .await
    }

    async fn customers_by_email(&self, email: &str) -> Result<Vec<Customer>> {
        let email = email.to_owned();
        blocking(&self.db, move |conn| {
            query::customers_by_email(conn, &email)
        })
        .await
    }

    async fn customers(&self, page: PageRequest) -> Result<Page<Customer>> {
        let bounds = PageBounds::of::<CustomerId>(&page)?;
        blocking(&self.db, move |conn| query::customers(conn, &bounds)).await
    }

    async fn plans(&self) -> Result<Vec<Plan>> {
        blocking(&self.db, query::plans).await
    }

    async fn prices(&self) -> Result<Vec<Price>> {
        blocking(&self.db, query::prices).await
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        let id = id.to_string();
        blocking(&self.db, move |conn| query::subscription_by_id(conn, &id)).await
    }

    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        page: PageRequest,
    ) -> Result<Page<Subscription>> {
        let bounds = PageBounds::of::<SubscriptionId>(&page)?;
        blocking(&self.db, move |conn| {
            query::subscriptions(conn, query, &bounds)
        })
        .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscription>> {
        blocking(&self.db, move |conn| query::due(conn, now, limit)).await
    }

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>> {
        let id = id.to_string();
        blocking(&self.db, move |conn| query::invoice_by_id(conn, &id)).await
    }

    async fn invoices(&self, query: InvoiceQuery, page: PageRequest) -> Result<Page<Invoice>> {
        let bounds = PageBounds::of::<InvoiceId>(&page)?;
        blocking(&self.db, move |conn| query::invoices(conn, query, &bounds)).await
    }

    async fn recurring_invoice(
        &self,
        subscription: SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<Option<Invoice>> {
        blocking(&self.db, move |conn| {
            query::recurring_invoice(conn, subscription, period_start)
        })
        .await
    }

    async fn payment_attempts(&self, invoice: InvoiceId) -> Result<Vec<PaymentAttempt>> {
        blocking(&self.db, move |conn| query::payment_attempts(conn, invoice)).await
    }

    async fn pending_payment_attempts(
        &self,
        created_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PaymentAttempt>> {
        blocking(&self.db, move |conn| {
            query::pending_payment_attempts(conn, created_before, limit)
        })
        .await
    }

    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        // Past i64::MAX there is nothing: no sequence number gets that far.
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(Vec::new());
        };
        let limit = query::limit(limit);
        blocking(&self.db, move |conn| rows::event::after(conn, seq, limit)).await
    }

    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>> {
        let key = key.to_owned();
        blocking(&self.db, move |conn| rows::idempotency::get(conn, &key)).await
    }

    async fn last_event_seq(&self) -> Result<u64> {
        blocking(&self.db, |conn| rows::event::last_seq(conn)).await
    }

    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        blocking(&self.db, query::webhook_endpoints).await
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>> {
        let id = id.to_string();
        blocking(&self.db, move |conn| query::delivery_by_id(conn, &id)).await
    }

    async fn deliveries(&self, query: DeliveryQuery, page: PageRequest) -> Result<Page<Delivery>> {
        let bounds = PageBounds::of::<DeliveryId>(&page)?;
        blocking(&self.db, move |conn| {
            query::deliveries(conn, query, &bounds)
        })
        .await
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        blocking(&self.db, move |conn| {
            query::due_deliveries(conn, now, limit)
        })
        .await
    }

    async fn delivery_cursor(&self) -> Result<DeliveryCursor> {
        blocking(&self.db, |conn| {
            Ok(rows::delivery::cursor(conn)?.unwrap_or_default())
        })
        .await
    }

    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt> {
        changes.validate()?;
        blocking(&self.db, move |conn| commit::commit(conn, changes)).await
    }
}
