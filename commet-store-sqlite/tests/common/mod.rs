//! Test support shared by this crate's test files.
#![allow(dead_code, clippy::expect_used, clippy::indexing_slicing)] // each test file uses part of it; set-up failures fail the test

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
use commet_store_sqlite::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

/// `SqliteStore`s on one file in its own temporary directory, removed on drop. With several
/// stores (several connections, as several processes would have), calls go to each in turn.
#[derive(Debug)]
pub(crate) struct TempFileStore {
    stores: Vec<SqliteStore>,
    turn: AtomicUsize,
    pub(crate) dir: TempDir,
}

impl TempFileStore {
    /// One store on a new file.
    pub(crate) async fn new() -> TempFileStore {
        TempFileStore::shared(1).await
    }

    /// `connections` stores on one new file.
    pub(crate) async fn shared(connections: usize) -> TempFileStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut stores = Vec::new();
        for _ in 0..connections {
            stores.push(
                SqliteStore::open(dir.path().join("commet.db"))
                    .await
                    .expect("the store opens"),
            );
        }
        TempFileStore {
            stores,
            turn: AtomicUsize::new(0),
            dir,
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("commet.db")
    }

    /// The invoice number series under `prefix` (read through the first connection).
    pub(crate) async fn number_series(&self, prefix: &str) -> Result<Option<NumberSeries>> {
        self.stores[0].number_series(prefix).await
    }

    /// The store whose turn it is.
    fn store(&self) -> &SqliteStore {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        &self.stores[turn % self.stores.len()]
    }
}

#[async_trait::async_trait]
impl Store for TempFileStore {
    async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>> {
        self.store().customers_by_id(ids).await
    }
    async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>> {
        self.store().customer_by_external_id(external_id).await
    }
    async fn customers_by_email(&self, email: &str) -> Result<Vec<Customer>> {
        self.store().customers_by_email(email).await
    }
    async fn customers(&self, page: PageRequest) -> Result<Page<Customer>> {
        self.store().customers(page).await
    }
    async fn plans(&self) -> Result<Vec<Plan>> {
        self.store().plans().await
    }
    async fn prices(&self) -> Result<Vec<Price>> {
        self.store().prices().await
    }
    async fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        self.store().subscription(id).await
    }
    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        page: PageRequest,
    ) -> Result<Page<Subscription>> {
        self.store().subscriptions(query, page).await
    }
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Subscription>> {
        self.store().due(now, limit).await
    }
    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>> {
        self.store().invoice(id).await
    }
    async fn invoices(&self, query: InvoiceQuery, page: PageRequest) -> Result<Page<Invoice>> {
        self.store().invoices(query, page).await
    }
    async fn recurring_invoice(
        &self,
        subscription: SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<Option<Invoice>> {
        self.store()
            .recurring_invoice(subscription, period_start)
            .await
    }
    async fn payment_attempts(&self, invoice: InvoiceId) -> Result<Vec<PaymentAttempt>> {
        self.store().payment_attempts(invoice).await
    }
    async fn pending_payment_attempts(
        &self,
        created_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PaymentAttempt>> {
        self.store()
            .pending_payment_attempts(created_before, limit)
            .await
    }
    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.store().events_after(seq, limit).await
    }
    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>> {
        self.store().idempotency_record(key).await
    }
    async fn last_event_seq(&self) -> Result<u64> {
        self.store().last_event_seq().await
    }
    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        self.store().webhook_endpoints().await
    }
    async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>> {
        self.store().delivery(id).await
    }
    async fn deliveries(&self, query: DeliveryQuery, page: PageRequest) -> Result<Page<Delivery>> {
        self.store().deliveries(query, page).await
    }
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        self.store().due_deliveries(now, limit).await
    }
    async fn delivery_cursor(&self) -> Result<DeliveryCursor> {
        self.store().delivery_cursor().await
    }
    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt> {
        self.store().commit(changes).await
    }
}
