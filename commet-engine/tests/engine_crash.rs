//! Crash test: a process running the engine's due work over thousands of subscriptions on a
//! SQLite file is killed (SIGKILL) at random points, many times, and restarted each time; after
//! the restarts and a final run past the recovery grace, every period is invoiced exactly once,
//! nothing was charged twice, the money taken is exactly the invoices paid, the event sequence
//! is gap-free and no charge is left pending.
//!
//! The worker is this test binary itself, re-run with `COMMET_ENGINE_CRASH_DIR` set to a
//! directory holding `billing.db` (the store) and `gateway.db` (the payment provider's own
//! state: see `engine_support::SqliteGateway`; an in-memory gateway would die with the
//! process, and a double charge could not be seen). The worker then runs only
//! [`engine_crash_worker`]: it reads the test clock's instant saved in the gateway's file, and
//! walks a fixed schedule of instants (every 3 hours from Jan 31 to Mar 10, 2024), saving each
//! instant before calling `Billing::advance_to` to it. A restart therefore resumes at the
//! saved instant, never earlier than any work already done, and the clock never goes back.
//!
//! The subscriptions (3,000, monthly, anchored across Jan 1 and 2 so renewals spread over two
//! days in February and in March) pay with methods that succeed, always decline (dunning runs
//! to exhaustion), decline the first attempt of each invoice (recovered by the first retry), or
//! leave the first call of each charge unanswered (the engine leaves it pending; a later run
//! recovers it with the same key), so kills land in renewals, dunning retries and recoveries.
//!
//! `COMMET_ENGINE_CRASH_SEED` replays the kill delays of a failed run.
// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod engine_support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::clock::{Clock, TestClock};
use commet_core::invoice::InvoiceStatus;
use commet_core::subscription::{CancelReason, SubscriptionState, SubscriptionStatus};
use commet_core::token::SigningKey;
use commet_engine::store::Store;
use commet_engine::{Billing, BillingConfig};
use commet_store_sqlite::SqliteStore;
use engine_support::{Population, Random, SqliteGateway, audit};

const WORKER: &str = "COMMET_ENGINE_CRASH_DIR";
const SUBSCRIPTIONS: usize = 3_000;
/// Kills; `COMMET_ENGINE_CRASH_ROUNDS` overrides.
const ROUNDS: usize = 15;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

/// The payment method of subscriber `i`: 70% succeed, 10% each of the others.
fn method(i: usize) -> String {
    let prefix = match i % 10 {
        7 => "pm_declined",
        8 => "pm_flaky",
        9 => "pm_unreachable",
        _ => "pm_ok",
    };
    format!("{prefix}_{i}")
}

/// Subscriber `i` is anchored on Jan 1 or 2, on one of 48 hours.
fn anchor(i: usize) -> DateTime<Utc> {
    utc(2024, 1, 1, 0) + TimeDelta::hours(i64::try_from(i % 48).unwrap())
}

/// The instants the worker walks through: every 3 hours from Jan 31 to Mar 10.
fn schedule() -> impl Iterator<Item = DateTime<Utc>> {
    let start = utc(2024, 1, 31, 0);
    let end = utc(2024, 3, 10, 0);
    (0..)
        .map(move |step| start + TimeDelta::hours(3 * step))
        .take_while(move |at| *at <= end)
}

fn engine(store: Arc<dyn Store>, gateway: Arc<SqliteGateway>, clock: &TestClock) -> Billing {
    let config = BillingConfig::new(
        engine_support::ORGANIZATION,
        SigningKey::from_bytes(&[7; 32]).unwrap(),
    );
    Billing::new(store, gateway, Arc::new(clock.clone()), config).unwrap()
}

/// The worker: walk the schedule from the saved instant until the end (or until killed).
#[test]
fn engine_crash_worker() {
    let Ok(dir) = std::env::var(WORKER) else {
        return; // Not the worker: nothing to do.
    };
    let dir = Path::new(&dir);
    runtime().block_on(async {
        let store = SqliteStore::open(dir.join("billing.db")).await.unwrap();
        let gateway = Arc::new(SqliteGateway::open(&dir.join("gateway.db")));
        let start = gateway.clock().unwrap();
        let clock = TestClock::new(start);
        let billing = engine(Arc::new(store), gateway.clone(), &clock);
        println!("start {start}");
        // An instant saved but not finished (killed during it) is run again.
        for target in schedule().filter(|at| *at >= start) {
            gateway.save_clock(target);
            let report = billing.advance_to(target).await.unwrap();
            if report.did_work() {
                println!(
                    "reached {target}: {} renewals, {} retries, {} recovered",
                    report.renewals, report.dunning_retries, report.recovered
                );
            }
        }
        println!("finished");
    });
}

/// Run the worker; kill it after `delay` (`None`: let it finish). Returns its output.
fn run_worker(dir: &Path, delay: Option<Duration>) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "engine_crash_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut output = String::new();
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        // SIGKILL on Unix. It may have finished already: nothing to kill then.
        let _ = child.kill();
        child.wait().unwrap();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
    } else {
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "the worker failed:\n{output}");
    }
    output
}

#[test]
fn killed_renewal_runs_never_bill_twice_nor_lose_an_invoice() {
    let mut random = Random::from_env("COMMET_ENGINE_CRASH_SEED");
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let started = Instant::now();
    let population = Population::new("50 USD", 11);
    let subscriptions = rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("billing.db"))
            .await
            .unwrap();
        let ids = population
            .populate(&store, SUBSCRIPTIONS, 500, true, anchor, method)
            .await;
        store.close().await.unwrap();
        ids
    });
    let gateway = SqliteGateway::open(&dir.path().join("gateway.db"));
    gateway.save_clock(schedule().next().unwrap());
    println!(
        "{SUBSCRIPTIONS} subscriptions set up in {:?}",
        started.elapsed()
    );

    let rounds = std::env::var("COMMET_ENGINE_CRASH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(ROUNDS);
    let mut abandoned_rounds = 0;
    for round in 0..rounds {
        let delay = Duration::from_millis(150 + random.next() % 700);
        let output = run_worker(dir.path(), Some(delay));
        let audit = rt.block_on(async {
            let store = SqliteStore::open(dir.path().join("billing.db"))
                .await
                .unwrap();
            let audit = audit(&store, &gateway).await;
            store.close().await.unwrap();
            audit
        });
        let pending = audit.pending();
        abandoned_rounds += usize::from(pending > 0);
        println!(
            "round {round}: killed after {delay:?} at {}, {} invoices, {} charges taken, {pending} \
             pending{}",
            gateway.clock().unwrap(),
            audit.invoices.len(),
            audit.ledger.len(),
            if output.contains("finished") {
                " (the worker had finished)"
            } else {
                ""
            }
        );
    }

    // The rest of the schedule without a kill, then one run past the recovery grace.
    let output = run_worker(dir.path(), None);
    assert!(output.contains("finished"), "{output}");
    let audit = rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("billing.db"))
                .await
                .unwrap(),
        );
        let gateway = Arc::new(SqliteGateway::open(&dir.path().join("gateway.db")));
        let clock = TestClock::new(gateway.clock().unwrap());
        let billing = engine(Arc::clone(&store), gateway.clone(), &clock);
        clock
            .advance(billing.config().recovery_grace + TimeDelta::minutes(1))
            .unwrap();
        gateway.save_clock(clock.now());
        let report = billing.run_due().await.unwrap();
        println!("final run: {report:?}");
        audit(store.as_ref(), &gateway).await
    });
    audit.assert_settled();

    // Every subscriber's exact outcome. Periods: the anchor's day and hour in February and
    // March (the anchors are Jan 1 and 2, so no month-end clamping).
    for (i, id) in subscriptions.iter().enumerate() {
        let subscription = audit.subscriptions.iter().find(|s| s.id() == *id).unwrap();
        let invoices = audit.recurring(*id);
        let starts: Vec<DateTime<Utc>> = invoices
            .iter()
            .map(|invoice| invoice.period().unwrap().start())
            .collect();
        let first = anchor(i) + TimeDelta::days(31);
        if method(i).starts_with("pm_declined") {
            // Feb: declined, retried 1, 3, 5 and 7 days later, then canceled.
            let SubscriptionState::Canceled(canceled) = subscription.state() else {
                panic!("{id} ({}) is {}", method(i), subscription.status());
            };
            assert_eq!(canceled.reason, CancelReason::DunningExhausted, "{id}");
            assert_eq!(starts, [first], "{id}");
            assert_eq!(invoices[0].status(), InvoiceStatus::Uncollectible, "{id}");
        } else {
            assert_eq!(
                subscription.status(),
                SubscriptionStatus::Active,
                "{id} ({})",
                method(i)
            );
            assert_eq!(starts, [first, first + TimeDelta::days(29)], "{id}");
            for invoice in &invoices {
                assert_eq!(invoice.status(), InvoiceStatus::Paid, "{id}");
                assert_eq!(invoice.amount_paid().minor_units(), 5_000, "{id}");
            }
        }
    }
    let declined = SUBSCRIPTIONS / 10;
    assert_eq!(audit.ledger.len(), (SUBSCRIPTIONS - declined) * 2);
    println!(
        "{rounds} kills ({abandoned_rounds} left charges pending), {} invoices, {} charges \
         taken, {} replayed by the gateway, {} events, in {:?}",
        audit.invoices.len(),
        audit.ledger.len(),
        gateway.replays(),
        audit.events,
        started.elapsed()
    );
    assert!(
        rounds == 0 || abandoned_rounds > 0,
        "no kill left a charge pending: the delays miss the work"
    );
}
