//! Support for the engine's SQLite tests (and the renewal benchmark, which includes this file):
//!
//! - [`SqliteGateway`]: a payment provider that keeps its idempotency map and its ledger of money
//!   taken in its own SQLite file, one transaction per charge, so that what was charged survives
//!   a killed process and a second charge for one invoice shows;
//! - [`Population`]: many customers with a payment method each and an active monthly
//!   subscription, built directly as store rows (a migration's override activates them, with no
//!   invoice) and committed in large change sets;
//! - [`audit`]: the invariants that hold at every moment, even right after a process was killed,
//!   and [`Audit::assert_settled`] for the ones that hold once every charge is settled.
// Test support: a panic is how a check fails; each user uses part of it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    clippy::too_many_lines
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use commet_core::calendar::Interval;
use commet_core::catalog::{Catalog, NewPlan, NewPrice, Plan, Price, PricingModel};
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::dunning::classify;
use commet_core::event::{DEFAULT_API_VERSION, Envelope, Mode};
use commet_core::ids::{IdGenerator, SubscriptionId};
use commet_core::invoice::{Invoice, InvoiceKind, InvoiceStatus};
use commet_core::payment::{AttemptStatus, PaymentAttempt};
use commet_core::subscription::{
    AdminUpdate, CheckoutOffer, Command, Context, NewSubscription, PricedItems, Subscription,
    SubscriptionStatus,
};
use commet_core::token::{SignedUrl, SigningKey};
use commet_engine::BillingConfig;
use commet_engine::gateway::{ChargeRequest, GatewayError, PaymentGateway, PaymentOutcome};
use commet_engine::store::{ChangeSet, InvoiceQuery, Put, Store, SubscriptionQuery, every_page};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The organization id of the events these tests write.
pub(crate) const ORGANIZATION: &str = "org_engine_tests";

// ---- the gateway ---------------------------------------------------------------------------

/// Payment methods of [`SqliteGateway`], by prefix.
///
/// | prefix | behaviour |
/// |---|---|
/// | `pm_ok` | paid |
/// | `pm_declined` | declined, `card_declined` (soft), every time |
/// | `pm_flaky` | declined (`insufficient_funds`, soft) on attempt 1 of an invoice, paid after |
/// | `pm_unreachable` | the first call with a key fails (outcome unknown), later calls are paid |
/// | anything else | declined, `invalid_payment_method` |
pub(crate) const METHODS: [&str; 4] = ["pm_ok", "pm_declined", "pm_flaky", "pm_unreachable"];

/// A row of the gateway's ledger: money taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) key: String,
    pub(crate) invoice: String,
    pub(crate) minor_units: i64,
    pub(crate) currency: String,
    pub(crate) payment_id: String,
}

/// A payment provider whose state lives in its own SQLite file. Each charge is one
/// transaction: the outcome stored under the idempotency key and, when paid, the ledger row,
/// together. A repeated key answers the stored outcome and charges nothing. It also keeps the
/// test clock of a process that is killed and restarted (see [`SqliteGateway::clock`]).
#[derive(Debug)]
pub(crate) struct SqliteGateway {
    conn: Mutex<Connection>,
}

const GATEWAY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outcomes (
    key     TEXT PRIMARY KEY,
    invoice TEXT NOT NULL,
    outcome TEXT NOT NULL,
    replays INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    key         TEXT PRIMARY KEY,
    invoice     TEXT NOT NULL,
    minor_units INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    payment_id  TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS calls (
    key   TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS test_clock (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    now INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS progress (
    worker TEXT PRIMARY KEY,
    step   INTEGER NOT NULL,
    now    INTEGER NOT NULL
);
";

fn unavailable(error: impl std::fmt::Display) -> GatewayError {
    GatewayError {
        message: format!("the test gateway's database failed: {error}"),
    }
}

impl SqliteGateway {
    /// Open (or create) the gateway's file. WAL with `synchronous = NORMAL`: a transaction
    /// that committed survives the process being killed, which is what the tests do to it.
    pub(crate) fn open(path: &Path) -> SqliteGateway {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(GATEWAY_SCHEMA).unwrap();
        SqliteGateway {
            conn: Mutex::new(conn),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn charge_now(&self, request: &ChargeRequest) -> Result<PaymentOutcome, GatewayError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let key = &request.idempotency_key;
        let stored: Option<String> = tx
            .query_row(
                "SELECT outcome FROM outcomes WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some(stored) = stored {
            tx.execute(
                "UPDATE outcomes SET replays = replays + 1 WHERE key = ?1",
                [key],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            return serde_json::from_str(&stored).map_err(unavailable);
        }
        let calls: i64 = tx
            .query_row(
                "INSERT INTO calls (key, count) VALUES (?1, 1) \
                 ON CONFLICT (key) DO UPDATE SET count = count + 1 RETURNING count",
                [key],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        let attempt: u32 = key
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| unavailable(format_args!("the key {key} names no attempt")))?;
        let paid = PaymentOutcome::Paid {
            payment_id: format!("pay_{key}"),
        };
        let decline = |code: &str| PaymentOutcome::Declined {
            code: code.to_owned(),
            message: format!("The card was declined ({code})."),
            class: classify(code),
        };
        let method = request.payment_method.as_str();
        let outcome = if method.starts_with("pm_ok") {
            paid
        } else if method.starts_with("pm_declined") {
            decline("card_declined")
        } else if method.starts_with("pm_flaky") {
            if attempt == 1 {
                decline("insufficient_funds")
            } else {
                paid
            }
        } else if method.starts_with("pm_unreachable") {
            if calls == 1 {
                tx.commit().map_err(unavailable)?;
                return Err(GatewayError {
                    message: "connection reset by the test provider".into(),
                });
            }
            paid
        } else {
            decline("invalid_payment_method")
        };
        tx.execute(
            "INSERT INTO outcomes (key, invoice, outcome, replays) VALUES (?1, ?2, ?3, 0)",
            (
                key,
                request.invoice.to_string(),
                serde_json::to_string(&outcome).map_err(unavailable)?,
            ),
        )
        .map_err(unavailable)?;
        if let PaymentOutcome::Paid { payment_id } = &outcome {
            tx.execute(
                "INSERT INTO ledger (key, invoice, minor_units, currency, payment_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                (
                    key,
                    request.invoice.to_string(),
                    request.amount.minor_units(),
                    request.amount.currency().code(),
                    payment_id,
                ),
            )
            .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(outcome)
    }

    /// The money taken, in the order it was taken.
    pub(crate) fn ledger(&self) -> Vec<Taken> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(
                "SELECT key, invoice, minor_units, currency, payment_id FROM ledger ORDER BY rowid",
            )
            .unwrap();
        statement
            .query_map([], |row| {
                Ok(Taken {
                    key: row.get(0)?,
                    invoice: row.get(1)?,
                    minor_units: row.get(2)?,
                    currency: row.get(3)?,
                    payment_id: row.get(4)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Every outcome answered, by idempotency key.
    pub(crate) fn outcomes(&self) -> BTreeMap<String, PaymentOutcome> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT key, outcome FROM outcomes").unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, String>(1)?)))
            .unwrap()
            .map(|row| {
                let (key, outcome) = row.unwrap();
                (key, serde_json::from_str(&outcome).unwrap())
            })
            .collect()
    }

    /// How many calls repeated a key (answered from the idempotency map).
    pub(crate) fn replays(&self) -> i64 {
        self.conn()
            .query_row(
                "SELECT COALESCE(SUM(replays), 0) FROM outcomes",
                [],
                |row| row.get(0),
            )
            .unwrap()
    }

    /// The instant a test process's clock stands at, if one was saved.
    pub(crate) fn clock(&self) -> Option<DateTime<Utc>> {
        let micros: Option<i64> = self
            .conn()
            .query_row("SELECT now FROM test_clock WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .unwrap();
        micros.map(|micros| Utc.timestamp_micros(micros).single().unwrap())
    }

    /// Save the test clock's instant (it must not go back).
    pub(crate) fn save_clock(&self, now: DateTime<Utc>) {
        if let Some(saved) = self.clock() {
            assert!(
                now >= saved,
                "the clock would go back from {saved} to {now}"
            );
        }
        self.conn()
            .execute(
                "INSERT INTO test_clock (id, now) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET now = excluded.now",
                [now.timestamp_micros()],
            )
            .unwrap();
    }
}

impl SqliteGateway {
    /// Where a scripted worker stands: the step it is on and its clock, if it ever saved them.
    pub(crate) fn progress(&self, worker: &str) -> Option<(usize, DateTime<Utc>)> {
        let row: Option<(i64, i64)> = self
            .conn()
            .query_row(
                "SELECT step, now FROM progress WHERE worker = ?1",
                [worker],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .unwrap();
        row.map(|(step, now)| {
            (
                usize::try_from(step).unwrap(),
                Utc.timestamp_micros(now).single().unwrap(),
            )
        })
    }

    /// Save a scripted worker's step and clock (its clock never goes back).
    pub(crate) fn save_progress(&self, worker: &str, step: usize, now: DateTime<Utc>) {
        if let Some((_, saved)) = self.progress(worker) {
            assert!(
                now >= saved,
                "{worker}'s clock would go back from {saved} to {now}"
            );
        }
        self.conn()
            .execute(
                "INSERT INTO progress (worker, step, now) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (worker) DO UPDATE SET step = excluded.step, now = excluded.now",
                (worker, i64::try_from(step).unwrap(), now.timestamp_micros()),
            )
            .unwrap();
    }
}

#[async_trait]
impl PaymentGateway for SqliteGateway {
    fn name(&self) -> &'static str {
        "sqlite-test"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<PaymentOutcome, GatewayError> {
        self.charge_now(request)
    }
}

// ---- the population ------------------------------------------------------------------------

/// One plan with one flat monthly price, and the builder of its subscribers.
#[derive(Debug)]
pub(crate) struct Population {
    pub(crate) plan: Plan,
    pub(crate) price: Price,
    /// A per-seat price of the same plan, and the seats each subscriber takes, if any.
    pub(crate) seats: Option<(Price, u32)>,
    ids: IdGenerator,
}

impl Population {
    /// A `pro` plan at `amount` (e.g. `"50 USD"`) a month; ids from a generator seeded with
    /// `seed`.
    pub(crate) fn new(amount: &str, seed: u64) -> Population {
        let ids = IdGenerator::seeded(seed);
        let at = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
        let plan = Plan::new(
            ids.next(at),
            NewPlan {
                code: "pro".into(),
                name: "Pro".into(),
                description: None,
            },
        )
        .unwrap();
        let price = Price::new(
            ids.next(at),
            NewPrice {
                plan: plan.id(),
                unit_amount: amount.parse().unwrap(),
                interval: Interval::MONTHLY,
                trial_days: 0,
                model: PricingModel::Flat,
            },
        )
        .unwrap();
        Population {
            plan,
            price,
            seats: None,
            ids,
        }
    }

    /// The same, and every subscriber also takes `seats` seats at `seat_amount` each a month
    /// (so each invoice has two lines).
    pub(crate) fn with_seats(amount: &str, seat_amount: &str, seats: u32, seed: u64) -> Population {
        let mut population = Population::new(amount, seed);
        let at = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
        let price = Price::new(
            population.ids.next(at),
            NewPrice {
                plan: population.plan.id(),
                unit_amount: seat_amount.parse().unwrap(),
                interval: Interval::MONTHLY,
                trial_days: 0,
                model: PricingModel::PerSeat,
            },
        )
        .unwrap();
        population.seats = Some((price, seats));
        population
    }

    /// The prices and quantities every subscriber takes.
    pub(crate) fn items(&self) -> Vec<(Price, u32)> {
        let mut items = vec![(self.price.clone(), 1)];
        items.extend(self.seats.clone());
        items
    }

    /// The change set that stores the catalog.
    pub(crate) fn catalog(&self) -> ChangeSet {
        ChangeSet {
            plans: vec![self.plan.clone()],
            prices: self.items().into_iter().map(|(price, _)| price).collect(),
            ..ChangeSet::default()
        }
    }

    fn envelope(&self, event: commet_core::event::Event, now: DateTime<Utc>) -> Envelope {
        Envelope {
            id: self.ids.next(now),
            timestamp: now,
            organization_id: ORGANIZATION.into(),
            mode: Mode::Sandbox,
            api_version: DEFAULT_API_VERSION.into(),
            event,
        }
    }

    /// Subscriber `n` into `changes`: a customer with `payment_method`, and a subscription
    /// activated at `anchor` by a migration's override (no invoice for the first period), so
    /// its first renewal is due a month after `anchor`. With `events`, their events too.
    pub(crate) fn subscriber(
        &self,
        n: usize,
        anchor: DateTime<Utc>,
        payment_method: &str,
        events: bool,
        changes: &mut ChangeSet,
    ) -> SubscriptionId {
        let mut customer = Customer::new(
            self.ids.next(anchor),
            CustomerDetails {
                external_id: Some(format!("user_{n}")),
                email: format!("user{n}@example.com"),
                full_name: Some(format!("User {n}")),
                metadata: BTreeMap::new(),
            },
            anchor,
        )
        .unwrap();
        customer.set_payment_method(payment_method, anchor).unwrap();
        let catalog = Catalog::new(
            [self.plan.clone()],
            self.items().into_iter().map(|(price, _)| price),
        );
        let policy =
            BillingConfig::new(ORGANIZATION, SigningKey::from_bytes(&[7; 32]).unwrap()).policy();
        let context = Context {
            now: anchor,
            catalog: &catalog,
            policy: &policy,
            provider: Some("sqlite-test"),
            ids: &self.ids,
        };
        let id: SubscriptionId = self.ids.next(anchor);
        let created = Subscription::create(
            NewSubscription {
                id,
                customer: customer.id(),
                items: PricedItems::new(&self.items()).unwrap(),
                draft: false,
                checkout: Some(CheckoutOffer {
                    url: SignedUrl::new("https://billing.example.com/checkout", "sub", "t"),
                    amount: self
                        .price
                        .unit_amount()
                        .times(
                            rust_decimal::Decimal::ONE,
                            commet_core::money::RoundingPolicy::default(),
                        )
                        .unwrap(),
                    expires_at: None,
                    success_url: None,
                    cancel_url: None,
                }),
                metadata: BTreeMap::new(),
            },
            &context,
        )
        .unwrap();
        let activated = created
            .subscription
            .decide(
                &Command::Override(AdminUpdate {
                    status: SubscriptionStatus::Active,
                    reason: "migrated, first period paid in the old system".into(),
                    actor: "migration".into(),
                    invoice_policy: None,
                }),
                &context,
            )
            .unwrap();
        if events {
            for event in created.events.into_iter().chain(activated.events) {
                let envelope = self.envelope(event, anchor);
                changes.events.push(envelope);
            }
        }
        changes.customers.push(Put::of(customer));
        changes.subscriptions.push(Put::of(activated.subscription));
        id
    }

    /// Store `n` subscribers (catalog included), `chunk` per commit: subscriber `i` anchored
    /// at `anchor(i)` and paying with `method(i)`.
    pub(crate) async fn populate(
        &self,
        store: &dyn Store,
        n: usize,
        chunk: usize,
        events: bool,
        anchor: impl Fn(usize) -> DateTime<Utc>,
        method: impl Fn(usize) -> String,
    ) -> Vec<SubscriptionId> {
        store.commit(self.catalog()).await.unwrap();
        let mut ids = Vec::with_capacity(n);
        let mut changes = ChangeSet::default();
        for i in 0..n {
            ids.push(self.subscriber(i, anchor(i), &method(i), events, &mut changes));
            if changes.subscriptions.len() == chunk {
                store.commit(std::mem::take(&mut changes)).await.unwrap();
            }
        }
        if !changes.subscriptions.is_empty() {
            store.commit(changes).await.unwrap();
        }
        ids
    }
}

// ---- the invariants ------------------------------------------------------------------------

/// Everything a store holds that the invariants look at.
#[derive(Debug)]
pub(crate) struct Audit {
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) invoices: Vec<Invoice>,
    pub(crate) attempts: Vec<PaymentAttempt>,
    pub(crate) events: u64,
    pub(crate) ledger: Vec<Taken>,
    pub(crate) outcomes: BTreeMap<String, PaymentOutcome>,
}

impl Audit {
    /// Attempts still pending (abandoned by a killed process, or in flight).
    pub(crate) fn pending(&self) -> usize {
        self.attempts.iter().filter(|a| a.is_pending()).count()
    }

    /// Recurring invoices of `subscription`, by period start.
    pub(crate) fn recurring(&self, subscription: SubscriptionId) -> Vec<&Invoice> {
        let mut invoices: Vec<&Invoice> = self
            .invoices
            .iter()
            .filter(|i| {
                i.kind() == InvoiceKind::Recurring && i.subscription() == Some(subscription)
            })
            .collect();
        invoices.sort_by_key(|i| i.period().map(|p| p.start()));
        invoices
    }

    /// The invariants that hold once every charge is settled: nothing pending, and the
    /// ledger is exactly the invoices paid through the gateway (one charge each, same
    /// amounts), and every answer the gateway gave is recorded on its attempt.
    pub(crate) fn assert_settled(&self) {
        assert_eq!(self.pending(), 0, "attempts left pending");
        let by_key: BTreeMap<String, &PaymentAttempt> = self
            .attempts
            .iter()
            .map(|a| (a.idempotency_key(), a))
            .collect();
        let succeeded: BTreeSet<String> = self
            .attempts
            .iter()
            .filter(|a| {
                matches!(
                    a.status,
                    AttemptStatus::Succeeded {
                        payment_id: Some(_)
                    }
                )
            })
            .map(PaymentAttempt::idempotency_key)
            .collect();
        let ledger_keys: BTreeSet<String> = self.ledger.iter().map(|t| t.key.clone()).collect();
        assert_eq!(
            succeeded, ledger_keys,
            "the attempts recorded as paid are not exactly the charges taken"
        );
        for (key, outcome) in &self.outcomes {
            let attempt = by_key[key];
            match (outcome, &attempt.status) {
                (
                    PaymentOutcome::Paid { payment_id },
                    AttemptStatus::Succeeded {
                        payment_id: Some(recorded),
                    },
                ) => assert_eq!(payment_id, recorded, "{key}"),
                (
                    PaymentOutcome::Declined { code, .. },
                    AttemptStatus::Failed { code: recorded, .. },
                ) => assert_eq!(code, recorded, "{key}"),
                (outcome, status) => {
                    panic!("{key}: the gateway answered {outcome:?}, the store has {status:?}")
                }
            }
        }
        let paid_through_gateway = self
            .invoices
            .iter()
            .filter(|i| {
                self.attempts.iter().any(|a| {
                    a.invoice == i.id() && matches!(a.status, AttemptStatus::Succeeded { .. })
                })
            })
            .count();
        assert_eq!(
            paid_through_gateway,
            self.ledger.len(),
            "invoices paid through the gateway vs charges taken"
        );
    }
}

async fn all_invoices(store: &dyn Store) -> Vec<Invoice> {
    every_page(|page| store.invoices(InvoiceQuery::default(), page))
        .await
        .unwrap()
}

async fn all_subscriptions(store: &dyn Store) -> Vec<Subscription> {
    every_page(|page| store.subscriptions(SubscriptionQuery::default(), page))
        .await
        .unwrap()
}

/// Read the store and the gateway and check what holds at every moment, even right after a
/// writer was killed:
///
/// - the event sequence is gap-free (1, 2, ... n);
/// - invoice numbers are `INV-000001` ... without a gap or a repeat;
/// - no (subscription, period start) has two recurring invoices, and each subscription's
///   recurring invoices cover contiguous periods (no period skipped);
/// - no invoice was charged twice (one ledger row per invoice at most);
/// - every charge the gateway answered was recorded as an attempt first (intent before
///   charge), for the same invoice and amount;
/// - an invoice marked paid through the gateway has exactly one successful attempt, whose
///   payment is in the ledger with the invoice's amount paid; a paid attempt's invoice is paid.
pub(crate) async fn audit(store: &dyn Store, gateway: &SqliteGateway) -> Audit {
    // The gateway first: a charge it answered must already be recorded in the store.
    let ledger = gateway.ledger();
    let outcomes = gateway.outcomes();
    let subscriptions = all_subscriptions(store).await;
    let invoices = all_invoices(store).await;
    let mut attempts = Vec::new();
    for invoice in &invoices {
        attempts.extend(store.payment_attempts(invoice.id()).await.unwrap());
    }
    let events = store.events_after(0, usize::MAX).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.iter().copied().eq(1..=events.len() as u64),
        "the event sequence has a gap"
    );

    let mut numbers: Vec<String> = invoices
        .iter()
        .filter_map(|i| i.number().map(|n| n.as_str().to_owned()))
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=numbers.len()).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected, "invoice numbers are not gap-free");

    let mut periods = BTreeSet::new();
    let mut per_subscription: BTreeMap<SubscriptionId, Vec<&Invoice>> = BTreeMap::new();
    for invoice in invoices
        .iter()
        .filter(|i| i.kind() == InvoiceKind::Recurring)
    {
        let subscription = invoice.subscription().unwrap();
        let period = invoice.period().unwrap();
        assert!(
            periods.insert((subscription, period.start())),
            "{subscription} is invoiced twice for the period starting {}",
            period.start()
        );
        per_subscription
            .entry(subscription)
            .or_default()
            .push(invoice);
    }
    // A renewal bills the period right after one that was billed (by a renewal, or by the
    // plan change or reactivation that restarted the cycle): no period is skipped. Voided
    // invoices (a declined change) billed nothing.
    for (subscription, recurring) in &mut per_subscription {
        recurring.sort_by_key(|i| i.period().map(|p| p.start()));
        let billed: Vec<_> = invoices
            .iter()
            .filter(|i| {
                i.subscription() == Some(*subscription) && i.status() != InvoiceStatus::Void
            })
            .filter_map(Invoice::period)
            .collect();
        for renewal in recurring.iter().skip(1) {
            let period = renewal.period().unwrap();
            assert!(
                billed.iter().any(|earlier| earlier.end() == period.start()),
                "{subscription}: a period was skipped before {period:?}"
            );
        }
    }

    let by_key: BTreeMap<String, &PaymentAttempt> =
        attempts.iter().map(|a| (a.idempotency_key(), a)).collect();
    let mut charged_invoices = BTreeSet::new();
    for taken in &ledger {
        assert!(
            charged_invoices.insert(taken.invoice.clone()),
            "invoice {} was charged twice",
            taken.invoice
        );
    }
    for (key, outcome) in &outcomes {
        let attempt = by_key
            .get(key)
            .unwrap_or_else(|| panic!("{key} was charged without a recorded attempt"));
        match (&attempt.status, outcome) {
            (AttemptStatus::Pending, _) => {}
            (
                AttemptStatus::Succeeded {
                    payment_id: Some(recorded),
                },
                PaymentOutcome::Paid { payment_id },
            ) => assert_eq!(recorded, payment_id, "{key}"),
            (
                AttemptStatus::Failed { code: recorded, .. },
                PaymentOutcome::Declined { code, .. },
            ) => {
                assert_eq!(recorded, code, "{key}");
            }
            (status, outcome) => {
                panic!("{key}: the gateway answered {outcome:?}, the store has {status:?}")
            }
        }
    }
    let invoice_by_id: BTreeMap<String, &Invoice> =
        invoices.iter().map(|i| (i.id().to_string(), i)).collect();
    for taken in &ledger {
        let attempt = by_key[&taken.key];
        assert_eq!(attempt.invoice.to_string(), taken.invoice, "{}", taken.key);
        assert_eq!(
            attempt.amount.minor_units(),
            taken.minor_units,
            "{}: charged another amount than recorded",
            taken.key
        );
        let invoice = invoice_by_id[&taken.invoice];
        if !attempt.is_pending() {
            assert_eq!(invoice.status(), InvoiceStatus::Paid, "{}", taken.key);
            assert_eq!(
                invoice.amount_paid().minor_units(),
                taken.minor_units,
                "{}: the invoice paid is not the money taken",
                taken.key
            );
        }
    }
    for invoice in invoices
        .iter()
        .filter(|i| i.status() == InvoiceStatus::Paid)
    {
        let paid: Vec<&PaymentAttempt> = attempts
            .iter()
            .filter(|a| {
                a.invoice == invoice.id() && matches!(a.status, AttemptStatus::Succeeded { .. })
            })
            .collect();
        assert!(
            paid.len() <= 1,
            "{} has {} successful attempts",
            invoice.id(),
            paid.len()
        );
    }
    Audit {
        subscriptions,
        invoices,
        attempts,
        events: events.len() as u64,
        ledger,
        outcomes,
    }
}

// ---- randomness ----------------------------------------------------------------------------

/// A small random source: SplitMix64.
#[derive(Debug, Clone)]
pub(crate) struct Random(pub(crate) u64);

impl Random {
    /// A seed from `var` if set, else from the time; printed so a failure can be replayed.
    pub(crate) fn from_env(var: &str) -> Random {
        let seed = std::env::var(var)
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos()
                    .into()
            });
        println!("{var}={seed}");
        Random(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
