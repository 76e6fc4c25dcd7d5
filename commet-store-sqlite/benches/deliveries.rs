//! Webhook deliveries per second through the engine: `Billing::run_due` fanning a backlog of
//! outbox events out into deliveries to one endpoint and sending them all, signed, through the
//! real transport (`commet_webhooks::HttpTransport`) to a local axum receiver on 127.0.0.1
//! answering 204, on `SqliteStore` (a file, default durability) and on `MemoryStore`.
//!
//! One sample is one `run_due` over a fresh store holding `COMMET_BENCH_DELIVERIES` events
//! (2,000 by default, `customer.created`, committed before the clock starts): per 200 events
//! the engine commits their deliveries with the cursor; then, 16 at a time (the default
//! `concurrency`), it claims the due deliveries in one commit, sends them at once, and logs
//! their outcomes in one commit.
//!
//! Run: `cargo bench -p commet-store-sqlite --bench deliveries`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark set-up: a failure ends the run

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::http::StatusCode;
use commet_core::clock::TestClock;
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::delivery::{EventFilter, NewEndpoint};
use commet_core::event::{DEFAULT_API_VERSION, Envelope, Event, Mode};
use commet_core::fixtures::utc;
use commet_core::ids::IdGenerator;
use commet_core::token::SigningKey;
use commet_engine::store::{ChangeSet, Store};
use commet_engine::testkit::gateway::FakeGateway;
use commet_engine::{Billing, BillingConfig};
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;
use commet_webhooks::HttpTransport;
use divan::Bencher;
use divan::counter::ItemsCount;
use tempfile::TempDir;
use tokio::runtime::Runtime;

fn main() {
    divan::main();
}

/// Events (and so deliveries) per sample.
fn count() -> usize {
    std::env::var("COMMET_BENCH_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

struct Fixture {
    runtime: Runtime,
    url: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().fallback(|| async { StatusCode::NO_CONTENT });
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/hooks")
    });
    Fixture { runtime, url }
});

/// An engine over `store` with an endpoint at the receiver, and `count()` events waiting.
async fn backlog(store: Arc<dyn Store>) -> Billing {
    let start = utc(2026, 1, 1);
    let mut config = BillingConfig::new("org_bench", SigningKey::from_bytes(&[3; 32]).unwrap());
    config.webhooks.allow_http = true;
    let billing = Billing::new(
        store.clone(),
        Arc::new(FakeGateway::new()),
        Arc::new(TestClock::new(start)),
        config,
    )
    .unwrap()
    .with_ids(IdGenerator::seeded(1))
    .with_transport(Arc::new(HttpTransport::new().unwrap()));
    billing
        .webhooks()
        .create(NewEndpoint {
            url: FIXTURE.url.clone(),
            events: EventFilter::All,
            description: None,
            enabled: true,
        })
        .await
        .unwrap();
    let ids = IdGenerator::seeded(2);
    let events: Vec<Envelope> = (0..count())
        .map(|n| {
            let customer = Customer::new(
                ids.next(start),
                CustomerDetails {
                    external_id: Some(format!("user_{n}")),
                    email: format!("user{n}@example.com"),
                    full_name: Some(format!("User {n}")),
                    metadata: BTreeMap::new(),
                },
                start,
            )
            .unwrap();
            Envelope {
                id: ids.next(start),
                timestamp: start,
                organization_id: "org_bench".into(),
                mode: Mode::Sandbox,
                api_version: DEFAULT_API_VERSION.into(),
                event: Event::CustomerCreated(customer.event_data()),
            }
        })
        .collect();
    for chunk in events.chunks(1_000) {
        store
            .commit(ChangeSet {
                events: chunk.to_vec(),
                ..ChangeSet::default()
            })
            .await
            .unwrap();
    }
    billing
}

fn deliver(bencher: Bencher<'_, '_>, store: impl Fn() -> (Arc<dyn Store>, Option<TempDir>) + Sync) {
    let runtime = &FIXTURE.runtime;
    bencher
        .counter(ItemsCount::new(count()))
        .with_inputs(|| {
            let (store, dir) = store();
            (runtime.block_on(backlog(store)), dir)
        })
        .bench_local_values(|(billing, dir)| {
            let report = runtime.block_on(billing.run_due()).unwrap();
            assert_eq!(report.webhooks_delivered, count() as u64);
            (billing, dir)
        });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn sqlite_store(bencher: Bencher<'_, '_>) {
    deliver(bencher, || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deliveries.db");
        let store = FIXTURE.runtime.block_on(SqliteStore::open(&path)).unwrap();
        (Arc::new(store) as Arc<dyn Store>, Some(dir))
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn memory_store(bencher: Bencher<'_, '_>) {
    deliver(bencher, || {
        (Arc::new(MemoryStore::new()) as Arc<dyn Store>, None)
    });
}
