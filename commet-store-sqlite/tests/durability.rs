//! Durability: a writer process killed at random points (SIGKILL, many times) leaves every
//! change set wholly present or wholly absent, and the event sequence gap-free; a database
//! from a newer schema version is refused.
//!
//! The writer is this test binary itself, re-run with `COMMET_DURABILITY_WRITER` set to the
//! database path: it then runs only [`durability_writer`], which commits batches of 200
//! customers and their 200 `customer.created` events, each tagged with its batch number,
//! until it is killed. It prints `begin N` before each commit and `done N` after, so the
//! parent knows which kills landed inside a commit.
// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, TimeZone, Utc};
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::event::{DEFAULT_API_VERSION, Envelope, Event, Mode};
use commet_core::ids::{CustomerId, IdGenerator};
use commet_engine::store::{ChangeSet, Put, Store, StoreError, every_page};
use commet_store_sqlite::{SCHEMA_VERSION, SqliteStore};

const WRITER: &str = "COMMET_DURABILITY_WRITER";
const BATCH: usize = 200;
const ROUNDS: usize = 20;
/// A safety net for fast machines: the writer stops growing the database here, so the checks
/// stay quick. With the delays below it normally gets to about a third of this.
const MAX_BATCHES: u64 = 200;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The change set of batch `n`: 200 customers and one event each.
fn batch(n: u64) -> ChangeSet {
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let now = base + TimeDelta::seconds(i64::try_from(n).unwrap());
    let ids = IdGenerator::seeded(n);
    let mut changes = ChangeSet::default();
    for i in 0..BATCH {
        let customer = Customer::new(
            ids.next(now),
            CustomerDetails {
                external_id: Some(format!("b{n}-{i}")),
                email: format!("c{i}@batch{n}.example.com"),
                full_name: Some(format!("Customer {i} of batch {n}")),
                metadata: BTreeMap::from([("batch".to_owned(), n.to_string())]),
            },
            now,
        )
        .unwrap();
        changes.events.push(Envelope {
            id: ids.next(now),
            timestamp: now,
            organization_id: "org_durability".into(),
            mode: Mode::Sandbox,
            api_version: DEFAULT_API_VERSION.into(),
            event: Event::CustomerCreated(customer.event_data()),
        });
        changes.customers.push(Put::of(customer));
    }
    changes
}

/// The child: commit batch after batch until killed (or until the database is big enough).
#[test]
fn durability_writer() {
    let Ok(path) = std::env::var(WRITER) else {
        return; // Not the child: nothing to do.
    };
    runtime().block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        // Batches are written in order and wholly or not at all: the first missing one is next.
        let mut n = 0;
        while store
            .customer_by_external_id(&format!("b{n}-0"))
            .await
            .unwrap()
            .is_some()
        {
            n += 1;
        }
        while n < MAX_BATCHES {
            let changes = batch(n);
            println!("begin {n}");
            store.commit(changes).await.unwrap();
            println!("done {n}");
            n += 1;
        }
        println!("full");
        // Wait to be killed, as the parent expects.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// What a reopened database holds: the number of whole batches.
async fn check_whole_batches(path: &Path) -> u64 {
    let store = SqliteStore::open(path).await.unwrap();
    let mut per_batch: BTreeMap<u64, BTreeSet<CustomerId>> = BTreeMap::new();
    for customer in every_page(|page| store.customers(page)).await.unwrap() {
        let n: u64 = customer.metadata()["batch"].parse().unwrap();
        per_batch.entry(n).or_default().insert(customer.id());
    }
    let batches = per_batch.len() as u64;
    assert_eq!(
        per_batch.keys().copied().collect::<Vec<_>>(),
        (0..batches).collect::<Vec<_>>(),
        "batches are present from 0 without holes"
    );
    for (n, customers) in &per_batch {
        assert_eq!(customers.len(), BATCH, "batch {n} is not whole");
    }

    let events = store.events_after(0, usize::MAX).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "event seqs are gap-free"
    );
    assert_eq!(
        events.len() as u64,
        batches * BATCH as u64,
        "one event per customer"
    );
    let mut last_batch = 0;
    for event in &events {
        let Event::CustomerCreated(data) = &event.envelope.event else {
            panic!("unexpected event {:?}", event.envelope.event);
        };
        let n: u64 = data.metadata["batch"].parse().unwrap();
        assert!(n >= last_batch, "events are in batch order");
        last_batch = n;
        assert!(
            per_batch.get(&n).is_some_and(|ids| ids.contains(&data.id)),
            "event of batch {n} for a customer that is not there"
        );
    }
    store.close().await.unwrap();
    batches
}

/// A small random source: SplitMix64.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[test]
fn a_killed_writer_leaves_whole_change_sets_and_a_gap_free_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durability.db");
    let seed = std::env::var("COMMET_DURABILITY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                .into()
        });
    println!("COMMET_DURABILITY_SEED={seed}");
    let mut random = Random(seed);
    let rt = runtime();
    let started = Instant::now();
    let mut batches = 0;
    let mut killed_mid_commit = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "durability_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(10 + random.next() % 80);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let mut output = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
        let last = output
            .lines()
            .rfind(|line| line.starts_with("begin ") || line.starts_with("done "))
            .unwrap_or("")
            .to_owned();
        let in_commit = last.starts_with("begin ");
        killed_mid_commit += usize::from(in_commit);

        let now = rt.block_on(check_whole_batches(&path));
        assert!(now >= batches, "round {round}: batches went missing");
        if let Some(n) = last.strip_prefix("done ") {
            assert_eq!(
                now,
                n.parse::<u64>().unwrap() + 1,
                "round {round}: a returned commit is kept"
            );
        }
        println!(
            "round {round}: killed after {delay:?} ({}), {now} whole batches",
            if in_commit {
                "inside a commit"
            } else {
                "between commits"
            }
        );
        batches = now;
    }
    println!(
        "{ROUNDS} kills, {killed_mid_commit} inside a commit, {batches} batches, in {:?}",
        started.elapsed()
    );
    assert!(
        batches > 0,
        "the writer never committed: the delays are too short"
    );
    assert!(killed_mid_commit > 0, "no kill landed inside a commit");

    // Finally: a database from a newer commet is refused, naming both versions.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let refused = rt.block_on(SqliteStore::open(&path)).unwrap_err();
    let StoreError::Backend { message } = &refused else {
        panic!("expected a backend error, got {refused:?}");
    };
    assert!(
        message.contains(&format!("version {}", SCHEMA_VERSION + 1))
            && message.contains(&format!("version {SCHEMA_VERSION}")),
        "{message}"
    );
}
