//! Storage throughput: commits per second and rows per second for renewal change sets.
//!
//! A renewal writes, per subscription: the subscription (a versioned update), its recurring
//! invoice for the new period (numbered from the series inside the commit) with its line, and
//! one event. Change sets of 1 and of 1,000 subscriptions' worth of such writes are committed
//! to:
//!
//! - `memory`: `MemoryStore`;
//! - `sqlite`: `SqliteStore` on a file in a temporary directory (WAL, `synchronous = FULL`,
//!   the defaults), through the `Store` trait from a Tokio runtime;
//! - `raw_rusqlite`: the same rows written to the same tables by plain rusqlite on the same
//!   kind of file with the same pragmas: prepared (cached) statements, one `BEGIN IMMEDIATE`
//!   transaction per change set, values encoded before the clock starts, no checks: the floor;
//! - `raw_rusqlite_encoding`: the same, encoding the values (ids, JSON, decimals) from the
//!   change set inside the timed region, as any code writing these rows has to.
//!
//! Rows per subscription: 4 (subscription, invoice, invoice line, event); the number series
//! row is written once per commit. Inputs are generated outside the timed region.
//!
//! Run: `cargo bench -p commet-store-sqlite`.
// Benchmark set-up: a failure is a broken benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;

use commet_core::fixtures::{Fixtures, utc};
use commet_core::invoice::{Invoice, NumberSeries};
use commet_core::subscription::{ChargeOutcome, Command, Subscription};
use commet_engine::store::{ChangeSet, InvoiceWrite, Put, Store};
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;
use divan::Bencher;
use divan::counter::ItemsCount;
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params_from_iter};

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [1, 1_000];
const ROWS_PER_SUBSCRIPTION: usize = 4;

/// `n` active subscriptions and the renewals that move them on, one period per change set.
struct Renewals {
    catalog: Fixtures,
    subscriptions: Vec<Subscription>,
}

impl Renewals {
    /// The renewals of `n` subscriptions, and the change set that stores them first.
    fn new(n: usize) -> (Renewals, ChangeSet) {
        let catalog = Fixtures::new();
        let mut setup = ChangeSet {
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            ..ChangeSet::default()
        };
        let mut subscriptions = Vec::with_capacity(n);
        for i in 0..n {
            let customer = catalog.customer(u32::try_from(i).unwrap(), utc(2024, 1, 1));
            let subscription = catalog.active_for(customer.id());
            setup.customers.push(Put::of(customer));
            let put = Put::of(subscription);
            subscriptions.push(put.stored());
            setup.subscriptions.push(put);
        }
        (
            Renewals {
                catalog,
                subscriptions,
            },
            setup,
        )
    }

    /// The next renewal of every subscription, as one change set.
    fn next(&mut self) -> ChangeSet {
        let catalog = &self.catalog;
        let mut changes = ChangeSet::default();
        for subscription in &mut self.subscriptions {
            let at = subscription.next_due_at().unwrap();
            let command = Command::Renew(ChargeOutcome::Paid {
                settlement: catalog.settlement(subscription, at),
            });
            let decision = subscription.decide(&command, &catalog.context(at)).unwrap();
            let renewed = decision.subscription;
            let invoice = catalog.recurring_invoice(&renewed, renewed.current_period().unwrap());
            changes
                .events
                .push(catalog.envelope(decision.events.first().unwrap().clone(), at));
            changes
                .invoices
                .push(InvoiceWrite::numbered(invoice, NumberSeries::default()));
            let put = Put::of(renewed);
            *subscription = put.stored();
            changes.subscriptions.push(put);
        }
        changes
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[divan::bench(args = SIZES, sample_count = 100)]
fn memory(bencher: Bencher<'_, '_>, n: usize) {
    let rt = runtime();
    let store = MemoryStore::new();
    let (renewals, setup) = Renewals::new(n);
    rt.block_on(store.commit(setup)).unwrap();
    let renewals = RefCell::new(renewals);
    bencher
        .counter(ItemsCount::new(n * ROWS_PER_SUBSCRIPTION))
        .with_inputs(|| renewals.borrow_mut().next())
        .bench_local_values(|changes| rt.block_on(store.commit(changes)).unwrap());
}

#[divan::bench(args = SIZES, sample_count = 100)]
fn sqlite(bencher: Bencher<'_, '_>, n: usize) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(SqliteStore::open(dir.path().join("bench.db")))
        .unwrap();
    let (renewals, setup) = Renewals::new(n);
    rt.block_on(store.commit(setup)).unwrap();
    let renewals = RefCell::new(renewals);
    bencher
        .counter(ItemsCount::new(n * ROWS_PER_SUBSCRIPTION))
        .with_inputs(|| renewals.borrow_mut().next())
        .bench_local_values(|changes| rt.block_on(store.commit(changes)).unwrap());
}

/// A change set encoded as column values, the way a hand-written SQLite layer would bind them.
struct RawRows {
    subscriptions: Vec<Vec<Value>>,
    invoices: Vec<Vec<Value>>,
    lines: Vec<Vec<Value>>,
    events: Vec<Vec<Value>>,
    series_next: i64,
}

/// Encodes renewals as rows, numbering invoices and events itself.
struct RawEncoder {
    next_number: u64,
    next_seq: i64,
}

fn micros(instant: chrono::DateTime<chrono::Utc>) -> Value {
    Value::Integer(instant.timestamp_micros())
}

fn opt_micros(instant: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    instant.map(|i| i.timestamp_micros()).into()
}

fn text(value: impl std::fmt::Display) -> Value {
    Value::Text(value.to_string())
}

fn json(value: &impl serde::Serialize) -> Value {
    Value::Text(serde_json::to_string(value).unwrap())
}

impl RawEncoder {
    fn encode(&mut self, changes: &ChangeSet) -> RawRows {
        let mut rows = RawRows {
            subscriptions: Vec::new(),
            invoices: Vec::new(),
            lines: Vec::new(),
            events: Vec::new(),
            series_next: 0,
        };
        for put in &changes.subscriptions {
            let s = &put.value;
            rows.subscriptions.push(vec![
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
                Value::Integer(i64::try_from(put.expected.next()).unwrap()),
            ]);
        }
        let series = NumberSeries::default();
        for write in &changes.invoices {
            let invoice: &Invoice = &write.put.value;
            let number = series.format(self.next_number);
            self.next_number += 1;
            let period = invoice.period();
            let amount = |money: commet_core::money::Money| text(money.amount());
            rows.invoices.push(vec![
                text(invoice.id()),
                text(number),
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
                Value::Integer(1),
            ]);
            for (position, line) in (0_i64..).zip(invoice.lines()) {
                let period = line.period();
                rows.lines.push(vec![
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
        }
        rows.series_next = i64::try_from(self.next_number).unwrap();
        for envelope in &changes.events {
            self.next_seq += 1;
            rows.events.push(vec![
                Value::Integer(self.next_seq),
                text(envelope.id),
                text(envelope.event.kind().as_str()),
                micros(envelope.timestamp),
                Value::Text(envelope.to_json().unwrap()),
            ]);
        }
        rows
    }
}

fn write_raw(conn: &mut Connection, rows: RawRows) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    {
        let mut update = tx
            .prepare_cached(
                "UPDATE subscriptions SET customer = ?2, status = ?3, currency = ?4, \
                 interval_frequency = ?5, interval_count = ?6, items = ?7, state = ?8, \
                 next_due_at = ?9, metadata = ?10, created_at = ?11, updated_at = ?12, \
                 version = ?13 WHERE id = ?1",
            )
            .unwrap();
        for row in rows.subscriptions {
            assert_eq!(update.execute(params_from_iter(row)).unwrap(), 1);
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO invoices (id, number, customer, subscription, currency, status, \
                 kind, period_start, period_end, subtotal, discount, tax, total, \
                 credit_applied, amount_due, amount_paid, created_at, issued_at, due_at, \
                 paid_at, voided_at, marked_uncollectible_at, memo, metadata, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
            )
            .unwrap();
        for row in rows.invoices {
            insert.execute(params_from_iter(row)).unwrap();
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO invoice_lines (invoice, position, kind, description, quantity, \
                 unit_amount, amount, period_start, period_end, price) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .unwrap();
        for row in rows.lines {
            insert.execute(params_from_iter(row)).unwrap();
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (seq, id, kind, timestamp, envelope) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        for row in rows.events {
            insert.execute(params_from_iter(row)).unwrap();
        }
        tx.prepare_cached(
            "INSERT INTO number_series (prefix, padding, next_value) VALUES ('INV-', 6, ?1) \
             ON CONFLICT (prefix) DO UPDATE SET next_value = excluded.next_value",
        )
        .unwrap()
        .execute([rows.series_next])
        .unwrap();
    }
    tx.commit().unwrap();
}

/// A file database with the store's schema and `setup` in it, opened by plain rusqlite with the
/// store's pragmas.
fn raw_connection(
    rt: &tokio::runtime::Runtime,
    path: &std::path::Path,
    setup: ChangeSet,
) -> Connection {
    // The schema and the starting rows come from the store; then plain rusqlite takes over.
    let store = rt.block_on(SqliteStore::open(path)).unwrap();
    rt.block_on(store.commit(setup)).unwrap();
    rt.block_on(store.close()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn
}

#[divan::bench(args = SIZES, sample_count = 100)]
fn raw_rusqlite_encoding(bencher: Bencher<'_, '_>, n: usize) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (renewals, setup) = Renewals::new(n);
    let mut conn = raw_connection(&rt, &dir.path().join("raw.db"), setup);
    let renewals = RefCell::new(renewals);
    let mut encoder = RawEncoder {
        next_number: 1,
        next_seq: 0,
    };
    bencher
        .counter(ItemsCount::new(n * ROWS_PER_SUBSCRIPTION))
        .with_inputs(|| renewals.borrow_mut().next())
        .bench_local_values(|changes| write_raw(&mut conn, encoder.encode(&changes)));
}

#[divan::bench(args = SIZES, sample_count = 100)]
fn raw_rusqlite(bencher: Bencher<'_, '_>, n: usize) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (renewals, setup) = Renewals::new(n);
    let mut conn = raw_connection(&rt, &dir.path().join("raw.db"), setup);
    let renewals = RefCell::new(renewals);
    let encoder = RefCell::new(RawEncoder {
        next_number: 1,
        next_seq: 0,
    });
    bencher
        .counter(ItemsCount::new(n * ROWS_PER_SUBSCRIPTION))
        .with_inputs(|| {
            let changes = renewals.borrow_mut().next();
            encoder.borrow_mut().encode(&changes)
        })
        .bench_local_values(|rows| write_raw(&mut conn, rows));
}
