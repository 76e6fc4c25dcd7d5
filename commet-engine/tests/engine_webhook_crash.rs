//! Crash test of webhook delivery, on `MemoryStore` and on `SqliteStore`: the worker dies at
//! random commits (before the commit is written, or after it is written but before the worker
//! learns so) while it fans events out, claims deliveries, sends them and logs what came back,
//! and a fresh worker takes over on the same store. Afterwards every event has exactly one
//! delivery per endpoint that receives it, every request the receiver got is an attempt in the
//! log (an attempt whose worker died is logged as interrupted), attempt numbers run without
//! gaps, and every delivery ends delivered.
//!
//! The "process" is an engine value: a crash drops it mid-operation (its error propagates out
//! of `advance_to`, nothing after the failed commit runs) and a new `Billing` over the same
//! store, clock and receiver plays the restarted process. The store's commit is the only place
//! state survives, as with a real process over SQLite; `COMMET_WEBHOOK_CRASH_SEED` replays a run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use commet_core::catalog::{Plan, Price};
use commet_core::clock::TestClock;
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::delivery::{
    AttemptOutcome, Delivery, DeliveryStatus, EventFilter, NewEndpoint, WebhookEndpoint,
};
use commet_core::event::EventKind;
use commet_core::fixtures::utc;
use commet_core::ids::{CustomerId, DeliveryId, IdGenerator, InvoiceId, SubscriptionId};
use commet_core::invoice::Invoice;
use commet_core::payment::PaymentAttempt;
use commet_core::subscription::Subscription;
use commet_core::token::SigningKey;
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, CommitReceipt, DeliveryCursor, DeliveryQuery, InvoiceQuery, Page, PageRequest,
    Result as StoreResult, Store, StoreError, StoredEvent, SubscriptionQuery, every_page,
};
use commet_engine::testkit::gateway::FakeGateway;
use commet_engine::testkit::receiver::{FakeReceiver, Reply};
use commet_engine::{Billing, BillingConfig};
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;

/// When the next crash comes: after this many more commits (0: none planned).
#[derive(Debug, Default)]
struct Fuse {
    remaining: AtomicU64,
    /// Crash after writing (true) or before (false).
    after_write: Mutex<bool>,
    crashes: AtomicU64,
}

/// The store, with a fuse on its commits.
#[derive(Debug)]
struct Crashing {
    inner: Arc<dyn Store>,
    fuse: Fuse,
}

impl Crashing {
    fn arm(&self, commits: u64, after_write: bool) {
        self.fuse.remaining.store(commits, Ordering::SeqCst);
        *self
            .fuse
            .after_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = after_write;
    }

    fn disarm(&self) {
        self.fuse.remaining.store(0, Ordering::SeqCst);
    }

    /// Does this commit crash?
    fn blows(&self) -> bool {
        let left = self.fuse.remaining.load(Ordering::SeqCst);
        if left == 0 {
            return false;
        }
        self.fuse.remaining.store(left - 1, Ordering::SeqCst);
        if left == 1 {
            self.fuse.crashes.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        false
    }
}

fn crashed() -> StoreError {
    StoreError::backend("the worker died here")
}

#[async_trait]
impl Store for Crashing {
    async fn customers_by_id(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>> {
        self.inner.customers_by_id(ids).await
    }
    async fn customer_by_external_id(&self, id: &str) -> StoreResult<Option<Customer>> {
        self.inner.customer_by_external_id(id).await
    }
    async fn customers_by_email(&self, email: &str) -> StoreResult<Vec<Customer>> {
        self.inner.customers_by_email(email).await
    }
    async fn customers(&self, page: PageRequest) -> StoreResult<Page<Customer>> {
        self.inner.customers(page).await
    }
    async fn plans(&self) -> StoreResult<Vec<Plan>> {
        self.inner.plans().await
    }
    async fn prices(&self) -> StoreResult<Vec<Price>> {
        self.inner.prices().await
    }
    async fn subscription(&self, id: SubscriptionId) -> StoreResult<Option<Subscription>> {
        self.inner.subscription(id).await
    }
    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Subscription>> {
        self.inner.subscriptions(query, page).await
    }
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Subscription>> {
        self.inner.due(now, limit).await
    }
    async fn invoice(&self, id: InvoiceId) -> StoreResult<Option<Invoice>> {
        self.inner.invoice(id).await
    }
    async fn invoices(&self, query: InvoiceQuery, page: PageRequest) -> StoreResult<Page<Invoice>> {
        self.inner.invoices(query, page).await
    }
    async fn recurring_invoice(
        &self,
        subscription: SubscriptionId,
        start: DateTime<Utc>,
    ) -> StoreResult<Option<Invoice>> {
        self.inner.recurring_invoice(subscription, start).await
    }
    async fn payment_attempts(&self, invoice: InvoiceId) -> StoreResult<Vec<PaymentAttempt>> {
        self.inner.payment_attempts(invoice).await
    }
    async fn pending_payment_attempts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<PaymentAttempt>> {
        self.inner.pending_payment_attempts(before, limit).await
    }
    async fn events_after(&self, seq: u64, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        self.inner.events_after(seq, limit).await
    }
    async fn idempotency_record(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.inner.idempotency_record(key).await
    }
    async fn last_event_seq(&self) -> StoreResult<u64> {
        self.inner.last_event_seq().await
    }
    async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.inner.webhook_endpoints().await
    }
    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        self.inner.delivery(id).await
    }
    async fn deliveries(
        &self,
        query: DeliveryQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        self.inner.deliveries(query, page).await
    }
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.inner.due_deliveries(now, limit).await
    }
    async fn delivery_cursor(&self) -> StoreResult<DeliveryCursor> {
        self.inner.delivery_cursor().await
    }
    async fn commit(&self, changes: ChangeSet) -> StoreResult<CommitReceipt> {
        if !self.blows() {
            return self.inner.commit(changes).await;
        }
        let after = *self
            .fuse
            .after_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if after {
            self.inner.commit(changes).await?;
        }
        Err(crashed())
    }
}

/// A small deterministic random source (SplitMix64).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A fresh worker over the store (a restarted process).
fn worker(
    store: &Arc<Crashing>,
    clock: &TestClock,
    receiver: &Arc<FakeReceiver>,
    n: u64,
) -> Billing {
    let config = BillingConfig::new("org_crash", SigningKey::from_bytes(&[9; 32]).unwrap());
    Billing::new(
        store.clone(),
        Arc::new(FakeGateway::new()),
        Arc::new(clock.clone()),
        config,
    )
    .unwrap()
    .with_ids(IdGenerator::seeded(n))
    .with_transport(receiver.clone())
}

/// One run over `inner`: answers (crashes, interrupted attempts).
async fn run(seed: u64, inner: Arc<dyn Store>) -> (u64, usize) {
    let mut random = Random(seed);
    let start = utc(2026, 1, 1);
    let clock = TestClock::new(start);
    let store = Arc::new(Crashing {
        inner,
        fuse: Fuse::default(),
    });
    let receiver = Arc::new(FakeReceiver::new(Arc::new(clock.clone())));
    let mut restarts = 1;
    let mut billing = worker(&store, &clock, &receiver, restarts);
    let urls = [
        "https://hooks.example.com/all",
        "https://hooks.example.com/customers",
        "https://hooks.example.com/updates",
    ];
    let filters = [
        EventFilter::All,
        EventFilter::Only([EventKind::CustomerCreated].into()),
        EventFilter::Only([EventKind::CustomerUpdated].into()),
    ];
    let mut endpoints = Vec::new();
    for (url, events) in urls.iter().zip(filters) {
        endpoints.push(
            billing
                .webhooks()
                .create(NewEndpoint {
                    url: (*url).into(),
                    events,
                    description: None,
                    enabled: true,
                })
                .await
                .unwrap(),
        );
    }
    // Receivers that fail now and then, never long enough to use up the schedule.
    for url in urls {
        let replies: Vec<Reply> = (0..40)
            .map(|_| match random.below(5) {
                0 => Reply::Status(500),
                1 => Reply::Timeout,
                _ => Reply::Status(200),
            })
            .collect();
        receiver.script(url, replies);
    }

    let mut now = start;
    for step in 0..30u32 {
        // New events: customers created and updated (through the API, never crashed).
        for k in 0..=random.below(3) {
            billing
                .customers()
                .create(CustomerDetails {
                    external_id: Some(format!("user_{step}_{k}")),
                    email: format!("u{step}.{k}@example.com"),
                    full_name: None,
                    metadata: BTreeMap::new(),
                })
                .await
                .unwrap();
        }
        // Due work with a fuse: a crash before or after one of the next few commits.
        store.arm(1 + random.below(6), random.below(2) == 0);
        now += TimeDelta::minutes(i64::try_from(1 + random.below(20)).unwrap());
        if billing.advance_to(now).await.is_err() {
            restarts += 1;
            billing = worker(&store, &clock, &receiver, restarts);
        }
        store.disarm();
    }
    // Settle: no more crashes, a day for every retry to run.
    billing.advance_to(now + TimeDelta::days(1)).await.unwrap();
    let interrupted = audit(&billing, &endpoints, &receiver).await;
    (store.fuse.crashes.load(Ordering::SeqCst), interrupted)
}

/// The invariants: one delivery per (event, receiving endpoint), every request logged,
/// attempt numbers without gaps, everything delivered. Answers how many attempts were
/// interrupted by a crash.
async fn audit(billing: &Billing, endpoints: &[WebhookEndpoint], receiver: &FakeReceiver) -> usize {
    let events = billing.events_after(0, 100_000).await.unwrap();
    let webhooks = billing.webhooks();
    let mut expected = BTreeSet::new();
    for event in &events {
        for endpoint in endpoints {
            if endpoint.receives(event.seq, event.envelope.event.kind()) {
                expected.insert((endpoint.id(), event.envelope.id));
            }
        }
    }
    let deliveries = every_page(|page| webhooks.deliveries(DeliveryQuery::default(), page))
        .await
        .unwrap();
    let mut found = BTreeMap::new();
    for delivery in &deliveries {
        let key = (delivery.endpoint(), delivery.event());
        assert!(
            found.insert(key, delivery).is_none(),
            "two deliveries of {key:?}"
        );
        assert_eq!(
            delivery.status(),
            DeliveryStatus::Succeeded,
            "{delivery:#?}"
        );
        let numbers: Vec<u32> = delivery.attempts().iter().map(|a| a.number).collect();
        assert_eq!(
            numbers,
            (1..=u32::try_from(numbers.len()).unwrap()).collect::<Vec<_>>(),
            "attempt numbers without gaps"
        );
        assert!(delivery.in_flight().is_none());
    }
    assert_eq!(
        found.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "exactly one delivery per event and receiving endpoint"
    );
    // Every request the receiver got is an attempt in the log, signed at its start.
    for endpoint in endpoints {
        for request in receiver.received_by(endpoint.url()) {
            let event_id = request.header("webhook-id").unwrap().parse().unwrap();
            let delivery = found
                .get(&(endpoint.id(), event_id))
                .expect("a request for a delivery that exists");
            let stamp = request.header("webhook-timestamp").unwrap();
            assert!(
                delivery
                    .attempts()
                    .iter()
                    .any(|a| a.started_at.timestamp().to_string() == stamp
                        && a.started_at == request.at),
                "the request at {} is not in the log of {}",
                request.at,
                delivery.id()
            );
        }
    }
    // An interrupted attempt is one whose worker died with it in flight: count them.
    deliveries
        .iter()
        .flat_map(commet_core::delivery::Delivery::attempts)
        .filter(|a| a.outcome == Some(AttemptOutcome::Interrupted))
        .count()
}

/// The seeds to run: `COMMET_WEBHOOK_CRASH_SEED` replays one.
fn seeds(count: u64) -> Vec<u64> {
    match std::env::var("COMMET_WEBHOOK_CRASH_SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => (1..=count).collect(),
    }
}

/// Sum the runs' crashes and interrupted attempts, and check the fuses went off.
fn tally(runs: &[(u64, usize)]) {
    let crashes: u64 = runs.iter().map(|run| run.0).sum();
    let interrupted: usize = runs.iter().map(|run| run.1).sum();
    println!("{crashes} crashes, {interrupted} attempts interrupted");
    assert!(crashes >= 10, "the fuses went off ({crashes} crashes)");
    assert!(
        interrupted > 0,
        "some crash fell between a claim and its outcome"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_workers_dying_at_random_commits_on_memory() {
    let mut runs = Vec::new();
    for seed in seeds(20) {
        println!("seed {seed}");
        runs.push(Box::pin(run(seed, Arc::new(MemoryStore::new()))).await);
    }
    tally(&runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_workers_dying_at_random_commits_on_sqlite() {
    let mut runs = Vec::new();
    for seed in seeds(8) {
        println!("seed {seed}");
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("billing.db"))
            .await
            .unwrap();
        runs.push(Box::pin(run(seed, Arc::new(store))).await);
    }
    tally(&runs);
}
