//! Renewals per second through the engine: `Billing::run_due` over 100,000 due subscriptions,
//! on `MemoryStore` and on `SqliteStore` (a file, default durability: WAL, `synchronous =
//! FULL`), and in the same run plain rusqlite writing the same rows.
//!
//! Every subscription has two items (a 50 USD base price and 3 seats at 12.50 USD), so each
//! renewal invoice has two lines; every customer pays with a card that succeeds (`FakeGateway`,
//! in memory). The subscriptions are stored before the clock starts (directly, in change sets
//! of 10,000), all due at the same instant; one sample is one `run_due` that renews them all,
//! in batches of 200 (the default `batch_size`). Per batch the engine reads what it decides
//! on, commits the intents (the invoices, numbered; the pending attempts; the subscriptions
//! claimed), charges, and commits the outcomes (the attempts succeeded, the invoices paid, the
//! subscriptions renewed, two events each: `invoice.created` and `payment.received`).
//!
//! The raw rusqlite variants write, per renewal, rows taken from an engine run on
//! `MemoryStore` done before the clock starts, to a file with the store's schema and the same
//! pragmas, one `BEGIN IMMEDIATE` transaction per batch of 200 renewals, with cached prepared
//! statements and no checks or reads:
//!
//! - `raw_rusqlite`: the rows the engine leaves, each written once in its final state: the
//!   subscription (an update), the invoice (an insert, numbered and paid) and its two lines, the
//!   payment attempt, the two events; 7 rows per renewal, plus the number series once per
//!   transaction. Values encoded before the clock starts.
//! - `raw_rusqlite_encoding`: the same, encoding the values (ids, JSON, decimals) inside the
//!   timed region, as any code writing these rows must.
//! - `raw_rusqlite_issue_rows`: the rows the issue names: the invoice, its two lines, one event
//!   and the subscription update (5 rows per renewal; no attempt, one event). Pre-encoded.
//! - `raw_rusqlite_two_commits`: the engine's rows as its charge protocol must write them, two
//!   transactions per batch: the intent (the subscription, the invoice and its two lines, the
//!   attempt) and the outcome (the invoice, the attempt and the subscription rewritten, the two
//!   events): 10 row writes per renewal. Pre-encoded. The floor for any store running the
//!   protocol on SQLite.
//!
//! The number of subscriptions is `COMMET_BENCH_RENEWALS` (default 100,000).
//!
//! Run: `cargo bench -p commet-store-sqlite --bench renewals`.
// Benchmark set-up: a failure is a broken benchmark.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::missing_panics_doc,
    clippy::too_many_lines
)]

#[path = "../../commet-engine/tests/engine_support/mod.rs"]
mod engine_support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::clock::TestClock;
use commet_core::event::Envelope;
use commet_core::invoice::Invoice;
use commet_core::payment::{AttemptStatus, PaymentAttempt};
use commet_core::subscription::Subscription;
use commet_core::token::SigningKey;
use commet_engine::store::{InvoiceQuery, Store, SubscriptionQuery, every_page};
use commet_engine::testkit::gateway::FakeGateway;
use commet_engine::{Billing, BillingConfig};
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;
use divan::Bencher;
use divan::counter::ItemsCount;
use engine_support::Population;
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use tempfile::TempDir;

fn main() {
    divan::main();
}

/// Subscriptions renewed per sample: `COMMET_BENCH_RENEWALS`, 100,000 by default.
fn count() -> usize {
    std::env::var("COMMET_BENCH_RENEWALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// The engine's default batch size; the raw writers use the same.
const BATCH: usize = 200;
const SEED: u64 = 5;

fn population() -> Population {
    Population::with_seats("50 USD", "12.50 USD", 3, SEED)
}

/// Anchors spread over the first hour of Jan 1: every subscription is due by Feb 1, 01:00.
fn anchor(i: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
        + TimeDelta::seconds(i64::try_from(i % 3_600).unwrap())
}

fn due_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 2, 1, 1, 0, 0).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Store the subscribers (catalog included) in `store`.
fn populate(rt: &tokio::runtime::Runtime, store: &dyn Store, n: usize) {
    rt.block_on(population().populate(store, n, 10_000, false, anchor, |_| {
        "pm_card_visa".to_owned()
    }));
}

/// An engine over `store` whose test clock stands where every subscription is due.
fn engine(store: Arc<dyn Store>) -> Billing {
    let config = BillingConfig::new("org_bench", SigningKey::from_bytes(&[7; 32]).unwrap());
    assert_eq!(config.batch_size, BATCH);
    Billing::new(
        store,
        Arc::new(FakeGateway::new()),
        Arc::new(TestClock::new(due_at())),
        config,
    )
    .unwrap()
}

/// One sample: renew every subscription. The engine (and its store) is returned so that
/// dropping it is not timed.
fn renew_all(rt: &tokio::runtime::Runtime, billing: Billing, n: usize) -> Billing {
    let report = rt.block_on(billing.run_due()).unwrap();
    assert_eq!(report.renewals, n as u64);
    assert_eq!(report.charges_paid, n as u64);
    if std::env::var_os("COMMET_BENCH_REPORT").is_some() {
        eprintln!("{report:?}");
    }
    billing
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn memory(bencher: Bencher<'_, '_>) {
    let rt = runtime();
    let n = count();
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(|| {
            let store = Arc::new(MemoryStore::new());
            populate(&rt, store.as_ref(), n);
            engine(store)
        })
        .bench_local_values(|billing| renew_all(&rt, billing, n));
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn sqlite(bencher: Bencher<'_, '_>) {
    let rt = runtime();
    let n = count();
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = rt
                .block_on(SqliteStore::open(dir.path().join("bench.db")))
                .unwrap();
            populate(&rt, &store, n);
            (engine(Arc::new(store)), dir)
        })
        .bench_local_values(|(billing, dir)| (renew_all(&rt, billing, n), dir));
}

// ---- raw rusqlite --------------------------------------------------------------------------

/// One renewal as the engine left it.
struct Renewal {
    subscription: Subscription,
    invoice: Invoice,
    attempt: PaymentAttempt,
    events: Vec<Envelope>,
}

/// The renewals of an engine run on `MemoryStore`, in the order the engine numbered them.
fn renewals() -> &'static [Renewal] {
    static RENEWALS: OnceLock<Vec<Renewal>> = OnceLock::new();
    RENEWALS.get_or_init(|| {
        let rt = runtime();
        let n = count();
        let store = Arc::new(MemoryStore::new());
        populate(&rt, store.as_ref(), n);
        let billing = engine(store.clone());
        renew_all(&rt, billing, n);
        rt.block_on(async {
            let subscriptions: BTreeMap<_, _> =
                every_page(|page| store.subscriptions(SubscriptionQuery::default(), page))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| (s.id(), s))
                    .collect();
            let mut invoices = every_page(|page| store.invoices(InvoiceQuery::default(), page))
                .await
                .unwrap();
            invoices.sort_by_key(|i| i.number().map(|n| n.as_str().to_owned()));
            let mut events: BTreeMap<String, Vec<Envelope>> = BTreeMap::new();
            for stored in store.events_after(0, usize::MAX).await.unwrap() {
                let json = stored.envelope.to_json().unwrap();
                let data = &serde_json::from_str::<serde_json::Value>(&json).unwrap()["data"];
                let key = data["invoiceId"]
                    .as_str()
                    .or_else(|| data["id"].as_str())
                    .unwrap()
                    .to_owned();
                events.entry(key).or_default().push(stored.envelope);
            }
            let mut renewals = Vec::with_capacity(n);
            for invoice in invoices {
                let attempts = store.payment_attempts(invoice.id()).await.unwrap();
                assert_eq!(attempts.len(), 1);
                let attempt = attempts.into_iter().next().unwrap();
                assert!(matches!(attempt.status, AttemptStatus::Succeeded { .. }));
                let subscription = subscriptions[&invoice.subscription().unwrap()].clone();
                let events = events.remove(&invoice.id().to_string()).unwrap();
                assert_eq!(events.len(), 2);
                assert_eq!(invoice.lines().len(), 2);
                renewals.push(Renewal {
                    subscription,
                    invoice,
                    attempt,
                    events,
                });
            }
            assert!(events.is_empty());
            renewals
        })
    })
}

/// Which rows a raw writer writes per renewal, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Subscription, invoice, two lines, attempt, two events, in one transaction.
    Engine,
    /// Subscription, invoice, two lines, one event, in one transaction.
    Issue,
    /// The engine's rows as its charge protocol writes them, in two transactions per batch:
    /// first the invoice, its lines, the attempt and the subscription (the intent), then the
    /// invoice, the attempt and the subscription again and the two events (the outcome).
    TwoCommits,
}

/// A batch of renewals encoded as column values, as a hand-written SQLite layer binds them.
#[derive(Default)]
struct RawBatch {
    subscriptions: Vec<Vec<Value>>,
    invoices: Vec<Vec<Value>>,
    lines: Vec<Vec<Value>>,
    attempts: Vec<Vec<Value>>,
    events: Vec<Vec<Value>>,
    series_next: i64,
}

fn micros(instant: DateTime<Utc>) -> Value {
    Value::Integer(instant.timestamp_micros())
}

fn opt_micros(instant: Option<DateTime<Utc>>) -> Value {
    instant.map(|i| i.timestamp_micros()).into()
}

fn text(value: impl std::fmt::Display) -> Value {
    Value::Text(value.to_string())
}

fn json(value: &impl serde::Serialize) -> Value {
    Value::Text(serde_json::to_string(value).unwrap())
}

/// The snake-case name of an enum, as the store writes it.
fn name(value: &impl serde::Serialize) -> Value {
    match serde_json::to_value(value).unwrap() {
        serde_json::Value::String(name) => Value::Text(name),
        other => panic!("not a name: {other}"),
    }
}

/// Encode a batch; event sequence numbers continue from `seq`.
fn encode(batch: &[Renewal], rows: Rows, seq: &mut i64) -> RawBatch {
    let mut raw = RawBatch::default();
    for renewal in batch {
        let s = &renewal.subscription;
        raw.subscriptions.push(vec![
            text(s.id()),
            text(s.customer()),
            text(s.status().as_str()),
            text(s.currency().code()),
            text(s.interval().frequency().as_str()),
            Value::Integer(i64::from(s.interval().count())),
            json(&s.items()),
            json(s.state()),
            opt_micros(s.next_due_at()),
            json(s.metadata()),
            micros(s.created_at()),
            micros(s.updated_at()),
            Value::Integer(i64::try_from(s.version()).unwrap()),
        ]);
        let invoice = &renewal.invoice;
        let period = invoice.period();
        let amount = |money: commet_core::money::Money| text(money.amount());
        raw.invoices.push(vec![
            text(invoice.id()),
            text(invoice.number().unwrap().as_str()),
            text(invoice.customer()),
            invoice.subscription().map(|s| s.to_string()).into(),
            text(invoice.currency().code()),
            text(invoice.status().as_str()),
            text(invoice.kind().as_str()),
            opt_micros(period.map(|p| p.start())),
            opt_micros(period.map(|p| p.end())),
            amount(invoice.subtotal()),
            amount(invoice.discount()),
            amount(invoice.tax()),
            amount(invoice.total()),
            amount(invoice.credit_applied()),
            amount(invoice.amount_due()),
            amount(invoice.amount_paid()),
            micros(invoice.created_at()),
            opt_micros(invoice.issued_at()),
            opt_micros(invoice.due_at()),
            opt_micros(invoice.paid_at()),
            opt_micros(invoice.voided_at()),
            opt_micros(invoice.marked_uncollectible_at()),
            invoice.memo().map(str::to_owned).into(),
            json(invoice.metadata()),
            Value::Integer(i64::try_from(invoice.version()).unwrap()),
        ]);
        for (position, line) in (0_i64..).zip(invoice.lines()) {
            let period = line.period();
            raw.lines.push(vec![
                text(invoice.id()),
                Value::Integer(position),
                text(line.kind().as_str()),
                text(line.description()),
                text(line.quantity()),
                text(line.unit_amount().amount()),
                text(line.amount().amount()),
                opt_micros(period.map(|p| p.start())),
                opt_micros(period.map(|p| p.end())),
                line.price().map(|p| p.to_string()).into(),
            ]);
        }
        if rows != Rows::Issue {
            let a = &renewal.attempt;
            let AttemptStatus::Succeeded { payment_id } = &a.status else {
                panic!("the engine run left an unpaid attempt");
            };
            raw.attempts.push(vec![
                text(a.id),
                text(a.invoice),
                text(a.customer),
                a.subscription.map(|s| s.to_string()).into(),
                name(&a.purpose),
                Value::Integer(i64::from(a.attempt)),
                Value::Text(a.idempotency_key()),
                text(a.amount.currency().code()),
                text(a.amount.amount()),
                a.payment_method.clone().into(),
                Value::Text("succeeded".into()),
                payment_id.clone().into(),
                Value::Null,
                Value::Null,
                micros(a.created_at),
                opt_micros(a.completed_at),
                Value::Integer(i64::try_from(a.version).unwrap()),
            ]);
        }
        let events = match rows {
            Rows::Engine | Rows::TwoCommits => &renewal.events[..],
            Rows::Issue => &renewal.events[..1],
        };
        for envelope in events {
            *seq += 1;
            raw.events.push(vec![
                Value::Integer(*seq),
                text(envelope.id),
                text(envelope.event.kind().as_str()),
                micros(envelope.timestamp),
                Value::Text(envelope.to_json().unwrap()),
            ]);
        }
        let number = invoice.number().unwrap().as_str();
        raw.series_next = number.trim_start_matches("INV-").parse::<i64>().unwrap() + 1;
    }
    raw
}

const UPDATE_SUBSCRIPTION: &str = "UPDATE subscriptions SET customer = ?2, status = ?3, \
    currency = ?4, interval_frequency = ?5, interval_count = ?6, items = ?7, state = ?8, \
    next_due_at = ?9, metadata = ?10, created_at = ?11, updated_at = ?12, version = ?13 \
    WHERE id = ?1";

fn update_rows(tx: &Connection, sql: &str, rows: &[Vec<Value>]) {
    let mut update = tx.prepare_cached(sql).unwrap();
    for row in rows {
        assert_eq!(update.execute(params_from_iter(row)).unwrap(), 1);
    }
}

/// Write one batch: in one transaction, or as the engine's intent and outcome.
fn write_raw(conn: &mut Connection, batch: &RawBatch, rows: Rows) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    update_rows(&tx, UPDATE_SUBSCRIPTION, &batch.subscriptions);
    insert_rows(&tx, INSERT_INVOICE, &batch.invoices);
    insert_rows(&tx, INSERT_LINE, &batch.lines);
    insert_rows(&tx, INSERT_ATTEMPT, &batch.attempts);
    let tx = if rows == Rows::TwoCommits {
        tx.commit().unwrap();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        update_rows(&tx, UPDATE_INVOICE, &batch.invoices);
        update_rows(&tx, UPDATE_ATTEMPT, &batch.attempts);
        update_rows(&tx, UPDATE_SUBSCRIPTION, &batch.subscriptions);
        tx
    } else {
        tx
    };
    insert_rows(&tx, INSERT_EVENT, &batch.events);
    tx.prepare_cached(
        "INSERT INTO number_series (prefix, padding, next_value) VALUES ('INV-', 6, ?1) \
         ON CONFLICT (prefix) DO UPDATE SET next_value = excluded.next_value",
    )
    .unwrap()
    .execute([batch.series_next])
    .unwrap();
    tx.commit().unwrap();
}

fn insert_rows(tx: &Connection, sql: &str, rows: &[Vec<Value>]) {
    let mut insert = tx.prepare_cached(sql).unwrap();
    for row in rows {
        insert.execute(params_from_iter(row)).unwrap();
    }
}

const INSERT_INVOICE: &str = "INSERT INTO invoices (id, number, customer, subscription, \
    currency, status, kind, period_start, period_end, subtotal, discount, tax, total, \
    credit_applied, amount_due, amount_paid, created_at, issued_at, due_at, paid_at, voided_at, \
    marked_uncollectible_at, memo, metadata, version) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
    ?19, ?20, ?21, ?22, ?23, ?24, ?25)";

const INSERT_LINE: &str = "INSERT INTO invoice_lines (invoice, position, kind, description, \
    quantity, unit_amount, amount, period_start, period_end, price) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const INSERT_ATTEMPT: &str = "INSERT INTO payment_attempts (id, invoice, customer, \
    subscription, purpose, attempt, idempotency_key, currency, amount, payment_method, status, \
    payment_id, failure_code, failure_message, created_at, completed_at, version) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

const INSERT_EVENT: &str =
    "INSERT INTO events (seq, id, kind, timestamp, envelope) VALUES (?1, ?2, ?3, ?4, ?5)";

/// The outcome's rewrite of an invoice: every column, as the store writes it.
const UPDATE_INVOICE: &str = "UPDATE invoices SET number = ?2, customer = ?3, subscription = ?4, \
    currency = ?5, status = ?6, kind = ?7, period_start = ?8, period_end = ?9, subtotal = ?10, \
    discount = ?11, tax = ?12, total = ?13, credit_applied = ?14, amount_due = ?15, \
    amount_paid = ?16, created_at = ?17, issued_at = ?18, due_at = ?19, paid_at = ?20, \
    voided_at = ?21, marked_uncollectible_at = ?22, memo = ?23, metadata = ?24, version = ?25 \
    WHERE id = ?1";

/// The outcome's rewrite of an attempt: every column.
const UPDATE_ATTEMPT: &str = "UPDATE payment_attempts SET invoice = ?2, customer = ?3, \
    subscription = ?4, purpose = ?5, attempt = ?6, idempotency_key = ?7, currency = ?8, \
    amount = ?9, payment_method = ?10, status = ?11, payment_id = ?12, failure_code = ?13, \
    failure_message = ?14, created_at = ?15, completed_at = ?16, version = ?17 WHERE id = ?1";

/// A file with the store's schema and the subscribers in it (written by `SqliteStore`), opened
/// by plain rusqlite with the store's pragmas.
fn raw_connection(rt: &tokio::runtime::Runtime, n: usize) -> (Connection, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.db");
    let store = rt.block_on(SqliteStore::open(&path)).unwrap();
    populate(rt, &store, n);
    rt.block_on(store.close()).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.set_prepared_statement_cache_capacity(128);
    (conn, dir)
}

fn raw(bencher: Bencher<'_, '_>, rows: Rows, encode_in_timing: bool) {
    let rt = runtime();
    let n = count();
    let renewals = renewals();
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(|| {
            let (conn, dir) = raw_connection(&rt, n);
            let encoded: Vec<RawBatch> = if encode_in_timing {
                Vec::new()
            } else {
                let mut seq = 0;
                renewals
                    .chunks(BATCH)
                    .map(|batch| encode(batch, rows, &mut seq))
                    .collect()
            };
            (conn, dir, encoded)
        })
        .bench_local_values(|(mut conn, dir, encoded)| {
            if encode_in_timing {
                let mut seq = 0;
                for batch in renewals.chunks(BATCH) {
                    write_raw(&mut conn, &encode(batch, rows, &mut seq), rows);
                }
            } else {
                for batch in encoded {
                    write_raw(&mut conn, &batch, rows);
                }
            }
            (conn, dir)
        });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn raw_rusqlite(bencher: Bencher<'_, '_>) {
    raw(bencher, Rows::Engine, false);
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn raw_rusqlite_encoding(bencher: Bencher<'_, '_>) {
    raw(bencher, Rows::Engine, true);
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn raw_rusqlite_issue_rows(bencher: Bencher<'_, '_>) {
    raw(bencher, Rows::Issue, false);
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn raw_rusqlite_two_commits(bencher: Bencher<'_, '_>) {
    raw(bencher, Rows::TwoCommits, false);
}
