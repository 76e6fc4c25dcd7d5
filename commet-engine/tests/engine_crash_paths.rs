//! Crash test of every path that charges: a process is killed in each phase of a charge (the
//! intent committed, the provider called, the outcome committed) during checkout, an upgrade,
//! a reactivation, a manual retry ("pay now"), a renewal and a scheduled dunning retry, and
//! restarted; afterwards nothing is charged twice, no invoice or event is lost, every answer
//! the provider gave is recorded, and every customer ends as the story says. Then the same
//! with two workers running the story at once, one of them killed.
//!
//! The worker is this test binary, re-run with `COMMET_CRASH_PATHS_DIR` set (see
//! [`crash_paths_worker`]). It plays a fixed story through the API and the due work on a
//! SQLite file, with a test clock; its position in the story and its clock are saved in the
//! provider's own file (`engine_support::SqliteGateway`, which also keeps the money taken), so
//! a restart resumes where it was and repeats the step it was killed in with the same
//! idempotency keys. A step whose charge was left in flight by the kill answers
//! `RequestInProgress`; the worker then lets the recovery grace pass and runs the due work,
//! which completes the charge with the same key, and asks again.
//!
//! Kills are exact, not timed: `COMMET_CRASH_PATHS_KILL=phase:label:n` makes the worker abort
//! (no destructors, no flush: as a SIGKILL would) right after the `n`-th time it reaches
//! `phase` in `label`. The store is wrapped to see commits that record pending attempts
//! (`intent`) or completed ones (`settled`), the provider to see charges it answered
//! (`charged`). The worker prints the kill before it dies; the test counts the kills by phase
//! and by path, and fails if any was never reached.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod engine_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, PricingModel};
use commet_core::clock::{Clock, TestClock};
use commet_core::customer::{Customer, CustomerDetails};
use commet_core::delivery::{Delivery, WebhookEndpoint};
use commet_core::ids::DeliveryId;
use commet_core::ids::{CustomerId, InvoiceId, PriceId, SubscriptionId};
use commet_core::invoice::Invoice;
use commet_core::payment::{ChargePurpose, PaymentAttempt};
use commet_core::subscription::{
    IllegalTransition, Subscription, SubscriptionError, SubscriptionStatus,
};
use commet_core::token::SigningKey;
use commet_engine::gateway::{ChargeRequest, GatewayError, PaymentGateway, PaymentOutcome};
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::{
    ChangeSet, CommitReceipt, InvoiceQuery, Page, PageRequest, Result as StoreResult, Store,
    StoredEvent, SubscriptionQuery,
};
use commet_engine::store::{DeliveryCursor, DeliveryQuery};
use commet_engine::{Billing, BillingConfig, BillingError, CancelRequest, CreateSubscription};
use commet_store_sqlite::SqliteStore;
use engine_support::{Random, SqliteGateway, audit};

const DIR: &str = "COMMET_CRASH_PATHS_DIR";
const WORKER: &str = "COMMET_CRASH_PATHS_WORKER";
const KILL: &str = "COMMET_CRASH_PATHS_KILL";

/// Customers in the story: three of each of its five kinds.
const CUSTOMERS: usize = 15;

const PHASES: [&str; 3] = ["intent", "charged", "settled"];
const PATHS: [&str; 6] = [
    "checkout",
    "upgrade",
    "reactivate",
    "retry_payment",
    "due:renewal",
    "due:dunning_retry",
];

fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, m, d, h, 0, 0).unwrap()
}

fn hours(i: usize) -> TimeDelta {
    TimeDelta::hours(i64::try_from(i).unwrap())
}

// ---- the kill switch ---------------------------------------------------------------------

/// Where a kill is wanted: the `n`-th time `phase` is reached in `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    phase: String,
    path: String,
    n: u32,
}

/// What the worker is doing now (a step's path, or `due`), and what it should die at.
static NOW_DOING: Mutex<String> = Mutex::new(String::new());
static TARGET: Mutex<Option<(Target, u32)>> = Mutex::new(None);

fn doing(path: &str) {
    path.clone_into(&mut NOW_DOING.lock().unwrap_or_else(PoisonError::into_inner));
}

fn purpose_path(purpose: ChargePurpose) -> String {
    let name = serde_json::to_value(purpose).unwrap();
    format!("due:{}", name.as_str().unwrap())
}

/// `phase` was reached for charges with these purposes: die if that is the target.
fn reached(phase: &str, purposes: &[ChargePurpose]) {
    let now_doing = NOW_DOING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let paths: Vec<String> = if now_doing == "due" {
        purposes.iter().copied().map(purpose_path).collect()
    } else {
        vec![now_doing]
    };
    let mut target = TARGET.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((wanted, seen)) = target.as_mut() else {
        return;
    };
    for path in paths {
        if wanted.phase == phase && wanted.path == path {
            *seen += 1;
            if *seen == wanted.n {
                println!("KILLED {phase} {path}");
                std::io::stdout().flush().unwrap();
                std::process::abort();
            }
        }
    }
}

/// The store, watched: a commit that records pending attempts is an intent, one that records
/// completed attempts a settlement.
#[derive(Debug)]
struct Watched(SqliteStore);

#[async_trait]
impl Store for Watched {
    async fn customers_by_id(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>> {
        self.0.customers_by_id(ids).await
    }
    async fn customer_by_external_id(&self, id: &str) -> StoreResult<Option<Customer>> {
        self.0.customer_by_external_id(id).await
    }
    async fn customers_by_email(&self, email: &str) -> StoreResult<Vec<Customer>> {
        self.0.customers_by_email(email).await
    }
    async fn customers(&self, page: PageRequest) -> StoreResult<Page<Customer>> {
        self.0.customers(page).await
    }
    async fn plans(&self) -> StoreResult<Vec<commet_core::catalog::Plan>> {
        self.0.plans().await
    }
    async fn prices(&self) -> StoreResult<Vec<commet_core::catalog::Price>> {
        self.0.prices().await
    }
    async fn subscription(&self, id: SubscriptionId) -> StoreResult<Option<Subscription>> {
        self.0.subscription(id).await
    }
    async fn subscriptions(
        &self,
        query: SubscriptionQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Subscription>> {
        self.0.subscriptions(query, page).await
    }
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Subscription>> {
        self.0.due(now, limit).await
    }
    async fn invoice(&self, id: InvoiceId) -> StoreResult<Option<Invoice>> {
        self.0.invoice(id).await
    }
    async fn invoices(&self, query: InvoiceQuery, page: PageRequest) -> StoreResult<Page<Invoice>> {
        self.0.invoices(query, page).await
    }
    async fn recurring_invoice(
        &self,
        subscription: SubscriptionId,
        start: DateTime<Utc>,
    ) -> StoreResult<Option<Invoice>> {
        self.0.recurring_invoice(subscription, start).await
    }
    async fn payment_attempts(&self, invoice: InvoiceId) -> StoreResult<Vec<PaymentAttempt>> {
        self.0.payment_attempts(invoice).await
    }
    async fn pending_payment_attempts(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<PaymentAttempt>> {
        self.0.pending_payment_attempts(before, limit).await
    }
    async fn events_after(&self, seq: u64, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        self.0.events_after(seq, limit).await
    }
    async fn idempotency_record(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.0.idempotency_record(key).await
    }
    async fn last_event_seq(&self) -> StoreResult<u64> {
        self.0.last_event_seq().await
    }
    async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.0.webhook_endpoints().await
    }
    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        self.0.delivery(id).await
    }
    async fn deliveries(
        &self,
        query: DeliveryQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        self.0.deliveries(query, page).await
    }
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.0.due_deliveries(now, limit).await
    }
    async fn delivery_cursor(&self) -> StoreResult<DeliveryCursor> {
        self.0.delivery_cursor().await
    }
    async fn commit(&self, changes: ChangeSet) -> StoreResult<CommitReceipt> {
        let pending: Vec<ChargePurpose> = changes
            .payment_attempts
            .iter()
            .filter(|put| put.value.is_pending())
            .map(|put| put.value.purpose)
            .collect();
        let settled: Vec<ChargePurpose> = changes
            .payment_attempts
            .iter()
            .filter(|put| !put.value.is_pending())
            .map(|put| put.value.purpose)
            .collect();
        let receipt = self.0.commit(changes).await?;
        if !pending.is_empty() {
            reached("intent", &pending);
        }
        if !settled.is_empty() {
            reached("settled", &settled);
        }
        Ok(receipt)
    }
}

/// The provider, watched: a charge it answered (the money is taken, the outcome is not yet
/// recorded).
#[derive(Debug)]
struct WatchedGateway(Arc<SqliteGateway>);

#[async_trait]
impl PaymentGateway for WatchedGateway {
    fn name(&self) -> &'static str {
        "sqlite-test"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<PaymentOutcome, GatewayError> {
        let outcome = self.0.charge(request).await?;
        let purpose = [
            ChargePurpose::Checkout,
            ChargePurpose::TrialEnd,
            ChargePurpose::Renewal,
            ChargePurpose::DunningRetry,
            ChargePurpose::PlanChange,
            ChargePurpose::Resume,
            ChargePurpose::Reactivation,
        ]
        .into_iter()
        .find(|purpose| {
            request
                .description
                .ends_with(&format!("({})", purpose.describe()))
        })
        .unwrap();
        reached("charged", &[purpose]);
        Ok(outcome)
    }
}

// ---- the story ---------------------------------------------------------------------------

/// What customer `i` does, by kind (`i % 5`): 0 upgrades mid-period, 1 cancels and later
/// reactivates, 2 pays with a card that declines each invoice's first charge and pays a
/// declined renewal at once ("pay now"), 3 has the same card and waits for the scheduled
/// retry, 4 just renews.
fn method(i: usize) -> String {
    match i % 5 {
        2 | 3 => format!("pm_flaky_{i}"),
        _ => format!("pm_ok_{i}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    SignUp,
    Upgrade,
    Cancel,
    Reactivate,
    PayNow(u32),
}

/// The story's steps, in time order.
fn story() -> Vec<(DateTime<Utc>, usize, Action)> {
    let mut steps = Vec::new();
    for i in 0..CUSTOMERS {
        let at = |m, d| utc(m, d, 0) + hours(i);
        steps.push((at(1, 1), i, Action::SignUp));
        match i % 5 {
            0 => steps.push((at(1, 15), i, Action::Upgrade)),
            1 => {
                steps.push((at(1, 20), i, Action::Cancel));
                steps.push((at(3, 5), i, Action::Reactivate));
            }
            2 => {
                steps.push((at(2, 1) + TimeDelta::hours(1), i, Action::PayNow(2)));
                steps.push((at(3, 1) + TimeDelta::hours(1), i, Action::PayNow(3)));
            }
            _ => {}
        }
    }
    steps.sort_by_key(|(at, i, _)| (*at, *i));
    steps
}

const END: (u32, u32) = (3, 20);

/// Every customer's charges by the end: checkout, upgrade and two renewals of the new plan;
/// checkout and reactivation; checkout and two renewals for the three others.
const CHARGES: usize = CUSTOMERS / 5 * (4 + 2 + 3 + 3 + 3);

fn engine(store: Arc<dyn Store>, gateway: Arc<dyn PaymentGateway>, clock: &TestClock) -> Billing {
    let mut config = BillingConfig::new(
        engine_support::ORGANIZATION,
        SigningKey::from_bytes(&[7; 32]).unwrap(),
    );
    config.checkout_base_url = "https://billing.example.com/checkout".into();
    // The story repeats its calls after a restart, months later for the catalog's: its keys
    // must outlive it.
    config.idempotency_ttl = TimeDelta::days(365);
    Billing::new(store, gateway, Arc::new(clock.clone()), config).unwrap()
}

/// Run a keyed call of `$player.billing` until it answers with something else than "in
/// progress" (a charge of it in flight: the recovery grace passes and the due work runs).
macro_rules! call {
    ($player:expr, $path:expr, |$billing:ident| $call:expr) => {{
        let mut tries = 0;
        loop {
            doing($path);
            let $billing = &$player.billing;
            match $call.await {
                Err(
                    BillingError::RequestInProgress { .. } | BillingError::PaymentInProgress { .. },
                ) if tries < 50 => {
                    tries += 1;
                    $player.recover().await;
                }
                other => break other,
            }
        }
    }};
}

/// A worker playing the story.
struct Player<'a> {
    billing: Billing,
    clock: TestClock,
    gateway: &'a SqliteGateway,
    worker: String,
    step: usize,
}

impl Player<'_> {
    /// Save the position and move the clock (and the due work) to `at`.
    async fn advance(&mut self, at: DateTime<Utc>) {
        let at = at.max(self.clock.now());
        self.gateway.save_progress(&self.worker, self.step, at);
        doing("due");
        self.billing.advance_to(at).await.unwrap();
    }

    /// Let a charge left in flight be recovered: the grace passes, the due work runs.
    async fn recover(&mut self) {
        let at = self.clock.now() + self.billing.config().recovery_grace + TimeDelta::minutes(1);
        self.advance(at).await;
    }

    async fn price(&mut self, code: &str, amount: &str) -> PriceId {
        let plan_key = format!("plan-{code}");
        let new_plan = NewPlan {
            code: code.into(),
            name: code.to_uppercase(),
            description: None,
        };
        let plan = call!(self, "catalog", |billing| billing
            .idempotent(&plan_key)
            .catalog()
            .define_plan(new_plan.clone()))
        .unwrap();
        let price_key = format!("price-{code}");
        let new_price = NewPrice {
            plan: plan.id(),
            unit_amount: amount.parse().unwrap(),
            interval: Interval::MONTHLY,
            trial_days: 0,
            model: PricingModel::Flat,
        };
        call!(self, "catalog", |billing| billing
            .idempotent(&price_key)
            .catalog()
            .define_price(new_price))
        .unwrap()
        .id()
    }

    async fn subscription(&mut self, i: usize) -> SubscriptionId {
        let customer = self
            .billing
            .customers()
            .find_by_external_id(&format!("user_{i}"))
            .await
            .unwrap();
        self.billing
            .subscriptions()
            .list(
                SubscriptionQuery {
                    customer: Some(customer.id()),
                    status: None,
                },
                PageRequest::first(10),
            )
            .await
            .unwrap()
            .items[0]
            .id()
    }

    async fn sign_up(&mut self, i: usize, basic: PriceId) {
        let key = format!("customer-{i}");
        let details = CustomerDetails {
            external_id: Some(format!("user_{i}")),
            email: format!("user{i}@example.com"),
            ..CustomerDetails::default()
        };
        let customer = call!(self, "sign_up", |billing| billing
            .idempotent(&key)
            .customers()
            .create(details.clone()))
        .unwrap();
        let key = format!("subscribe-{i}");
        let create = CreateSubscription {
            customer: customer.id(),
            items: vec![(basic, 1)],
            draft: false,
            success_url: None,
            cancel_url: None,
            metadata: BTreeMap::new(),
        };
        let view = call!(self, "sign_up", |billing| billing
            .idempotent(&key)
            .subscriptions()
            .create(create.clone()))
        .unwrap();
        let id = view.subscription.id();
        let token = view.checkout_url.unwrap().token().unwrap().to_owned();
        let method = method(i);
        for attempt in ["checkout", "checkout-again"] {
            let key = format!("{attempt}-{i}");
            let answer = call!(self, "checkout", |billing| billing
                .idempotent(&key)
                .checkout()
                .complete(id, &token, &method));
            match answer {
                Ok(view) => {
                    assert_eq!(view.subscription.status(), SubscriptionStatus::Active);
                    return;
                }
                // The flaky card declines each invoice's first charge.
                Err(BillingError::PaymentDeclined { .. }) if i % 5 == 2 || i % 5 == 3 => {}
                Err(error) => panic!("checkout of {i}: {error:?}"),
            }
        }
        panic!("{i} could not check out");
    }

    async fn play(&mut self, i: usize, action: Action, basic: PriceId, pro: PriceId) {
        if let Action::SignUp = action {
            Box::pin(self.sign_up(i, basic)).await;
            return;
        }
        let id = self.subscription(i).await;
        match action {
            Action::SignUp => {}
            Action::Upgrade => {
                let key = format!("upgrade-{i}");
                call!(self, "upgrade", |billing| billing
                    .idempotent(&key)
                    .subscriptions()
                    .change_plan(id, vec![(pro, 1)]))
                .unwrap();
            }
            Action::Cancel => {
                let key = format!("cancel-{i}");
                call!(self, "cancel", |billing| billing
                    .idempotent(&key)
                    .subscriptions()
                    .cancel(id, CancelRequest::default()))
                .unwrap();
            }
            Action::Reactivate => {
                let key = format!("reactivate-{i}");
                call!(self, "reactivate", |billing| billing
                    .idempotent(&key)
                    .subscriptions()
                    .reactivate(id))
                .unwrap();
            }
            Action::PayNow(month) => {
                let key = format!("pay-now-{i}-{month}");
                let answer = call!(self, "retry_payment", |billing| billing
                    .idempotent(&key)
                    .subscriptions()
                    .retry_payment(id));
                match answer {
                    // With two workers, the other one's clock may be ahead: its scheduled retry
                    // paid the invoice first, and there is nothing left to pay.
                    Ok(_)
                    | Err(BillingError::Subscription(SubscriptionError::IllegalTransition(
                        IllegalTransition {
                            from: Some(SubscriptionStatus::Active),
                            ..
                        },
                    ))) => {}
                    Err(error) => panic!("pay now for {i}: {error:?}"),
                }
            }
        }
    }
}

/// The worker: play the story from where this worker was, to the end (or until killed).
#[test]
fn crash_paths_worker() {
    let Ok(dir) = std::env::var(DIR) else {
        return; // Not the worker: nothing to do.
    };
    let dir = Path::new(&dir);
    let worker = std::env::var(WORKER).unwrap_or_else(|_| "a".into());
    if let Ok(kill) = std::env::var(KILL) {
        let parts: Vec<&str> = kill.split(':').collect();
        let target = Target {
            phase: parts[0].into(),
            path: parts[1..parts.len() - 1].join(":"),
            n: parts[parts.len() - 1].parse().unwrap(),
        };
        *TARGET.lock().unwrap() = Some((target, 0));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(dir.join("billing.db")).await.unwrap();
        let gateway = Arc::new(SqliteGateway::open(&dir.join("gateway.db")));
        let (step, now) = gateway
            .progress(&worker)
            .unwrap_or((0, utc(1, 1, 0) - TimeDelta::hours(1)));
        let clock = TestClock::new(now);
        let billing = engine(
            Arc::new(Watched(store)),
            Arc::new(WatchedGateway(Arc::clone(&gateway))),
            &clock,
        );
        let mut player = Player {
            billing,
            clock,
            gateway: &gateway,
            worker: worker.clone(),
            step,
        };
        let basic = player.price("basic", "50 USD").await;
        let pro = player.price("pro", "90 USD").await;
        let steps = story();
        for (index, (at, i, action)) in steps.iter().enumerate().skip(step) {
            player.step = index;
            player.advance(*at).await;
            Box::pin(player.play(*i, *action, basic, pro)).await;
        }
        player.step = steps.len();
        player.advance(utc(END.0, END.1, 0)).await;
        // Past the recovery grace, so nothing is left in flight.
        player.recover().await;
        println!("finished");
    });
}

// ---- the tests ---------------------------------------------------------------------------

fn spawn(dir: &Path, worker: &str, kill: Option<&Target>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "crash_paths_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR, dir)
        .env(WORKER, worker)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(kill) = kill {
        command.env(KILL, format!("{}:{}:{}", kill.phase, kill.path, kill.n));
    }
    command.spawn().unwrap()
}

/// Wait for a worker; its output. A worker that was not killed must have finished.
fn wait(mut child: Child) -> String {
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success() || output.contains("KILLED"),
        "the worker failed:\n{output}"
    );
    output
}

/// The kill a worker's output reports, as (phase, path).
fn kill_in(output: &str) -> Option<(String, String)> {
    output.lines().find_map(|line| {
        let (_, kill) = line.split_once("KILLED ")?;
        let mut words = kill.split(' ');
        Some((words.next()?.to_owned(), words.next()?.to_owned()))
    })
}

/// After the story: the invariants, the money taken, and every customer where the story
/// leaves them.
fn check_end(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(dir.join("billing.db")).await.unwrap();
        let gateway = SqliteGateway::open(&dir.join("gateway.db"));
        let audit = audit(&store, &gateway).await;
        audit.assert_settled();
        assert_eq!(audit.ledger.len(), CHARGES, "the money taken");
        assert_eq!(audit.subscriptions.len(), CUSTOMERS);
        for subscription in &audit.subscriptions {
            assert_eq!(
                subscription.status(),
                SubscriptionStatus::Active,
                "{}",
                subscription.id()
            );
            assert_eq!(subscription.charging(), None);
        }
        store.close().await.unwrap();
    });
}

#[test]
fn a_kill_in_every_phase_of_every_charging_path_loses_and_doubles_nothing() {
    let mut random = Random::from_env("COMMET_CRASH_PATHS_SEED");
    let mut hits: BTreeMap<(String, String), u32> = BTreeMap::new();
    for phase in PHASES {
        for path in PATHS {
            let dir = tempfile::tempdir().unwrap();
            let target = Target {
                phase: phase.into(),
                path: path.into(),
                n: 1 + u32::try_from(random.next() % 3).unwrap(),
            };
            let killed = wait(spawn(dir.path(), "a", Some(&target)));
            if let Some(kill) = kill_in(&killed) {
                assert_eq!(kill, (target.phase.clone(), target.path.clone()));
                *hits.entry(kill).or_default() += 1;
            }
            let finished = wait(spawn(dir.path(), "a", None));
            assert!(finished.contains("finished"), "{finished}");
            check_end(dir.path());
        }
    }
    println!("kills by (phase, path): {hits:?}");
    for phase in PHASES {
        for path in PATHS {
            assert!(
                hits.contains_key(&(phase.to_owned(), path.to_owned())),
                "no kill reached {phase} during {path}"
            );
        }
    }
}

#[test]
fn two_workers_at_once_one_killed_in_each_phase_lose_and_double_nothing() {
    let mut random = Random::from_env("COMMET_CRASH_PATHS_SEED");
    let mut phases_hit = BTreeSet::new();
    for phase in PHASES {
        // A path whose kill the concurrent worker may race past: tried until one lands.
        for attempt in 0..PATHS.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = PATHS[(usize::try_from(random.next()).unwrap() + attempt) % PATHS.len()];
            let target = Target {
                phase: phase.into(),
                path: path.into(),
                n: 1 + u32::try_from(random.next() % 2).unwrap(),
            };
            let other = spawn(dir.path(), "b", None);
            let killed = wait(spawn(dir.path(), "a", Some(&target)));
            let restarted = spawn(dir.path(), "a", None);
            let other = wait(other);
            let restarted = wait(restarted);
            assert!(other.contains("finished"), "{other}");
            assert!(restarted.contains("finished"), "{restarted}");
            check_end(dir.path());
            if kill_in(&killed).is_some() {
                phases_hit.insert(phase);
                break;
            }
        }
    }
    assert_eq!(
        phases_hit,
        BTreeSet::from(PHASES),
        "phases killed with two workers"
    );
}
