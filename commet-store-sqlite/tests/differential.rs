//! The differential test: one random sequence of operations, applied to `MemoryStore` (the
//! reference) and to `SqliteStore` on a file, must give identical results for every operation
//! (the same receipts, the same errors) and identical observable state: everything the read
//! API returns, page by page. The sequence includes operations that must fail (stale versions,
//! taken unique keys, missing references, malformed change sets) and reopens the file at
//! random points, so state must also survive a clean close.
//!
//! Failing cases are saved under `proptest-regressions/differential.txt` (committed) and run
//! first.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::catalog::Plan;
use commet_core::event::{Envelope, Event};
use commet_core::fixtures::{Fixtures, utc};
use commet_core::ids::{CustomerId, InvoiceId, PlanId, SubscriptionId};
use commet_core::invoice::{
    Invoice, InvoiceKind, InvoiceStatus, LineItem, LineKind, NewInvoice, NewLineItem, NumberSeries,
};
use commet_core::money::{Currency, Money, RoundingPolicy};
use commet_core::payment::AttemptStatus;
use commet_core::subscription::{
    ChargeOutcome, CheckoutCompletion, Command, Subscription, SubscriptionRecord,
    SubscriptionStatus,
};
use commet_engine::store::{
    ChangeSet, CommitReceipt, Cursor, ExpectedVersion, InvoiceQuery, InvoiceWrite, PageRequest,
    Put, Store, StoreError, StoreExt, SubscriptionQuery, Versioned,
};
use commet_store_memory::MemoryStore;
use commet_store_sqlite::SqliteStore;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tempfile::TempDir;

/// How a write's expected version relates to the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// The version it was loaded at: the write succeeds (if nothing else refuses it).
    Fresh,
    /// One behind (or `New` over an existing row): a conflict.
    Behind,
    /// One ahead: a conflict.
    Ahead,
}

impl Stale {
    fn expected(self, version: u64) -> ExpectedVersion {
        match self {
            Stale::Fresh => ExpectedVersion::of(version),
            Stale::Behind if version <= 1 => ExpectedVersion::New,
            Stale::Behind => ExpectedVersion::Exactly(version - 1),
            Stale::Ahead => ExpectedVersion::Exactly(version + 1),
        }
    }

    fn put<T: Versioned>(self, value: T) -> Put<T> {
        let expected = self.expected(value.version());
        Put { value, expected }
    }
}

/// One step of a sequence. Small numbers pick among what exists, so sequences shrink well.
#[derive(Debug, Clone)]
enum Op {
    CreateCustomer {
        n: u8,
        shout: bool,
    },
    UpdateCustomer {
        pick: u8,
        change: u8,
        n: u8,
        stale: Stale,
    },
    SwapExternalIds {
        a: u8,
        b: u8,
    },
    StoreCatalog,
    NewPlan {
        code: u8,
        prices: u8,
    },
    CreateSubscription {
        customer: u8,
        builder: u8,
        orphan: bool,
    },
    Drive {
        pick: u8,
        command: u8,
        events: bool,
        stale: Stale,
    },
    Renewal {
        pick: u8,
        stale: Stale,
    },
    RecurringInvoice {
        pick: u8,
        period: u8,
        series: u8,
    },
    OneTimeInvoice {
        customer: u8,
        lines: u8,
        finalize: bool,
        series: Option<u8>,
        orphan: bool,
    },
    InvoiceAction {
        pick: u8,
        action: u8,
        stale: Stale,
    },
    Attempt {
        invoice: u8,
        attempt: u8,
        orphan: bool,
    },
    CompleteAttempt {
        invoice: u8,
        pick: u8,
        success: bool,
        stale: Stale,
    },
    RenumberAttempt {
        invoice: u8,
        pick: u8,
        attempt: u8,
    },
    Events {
        customer: u8,
        count: u8,
        replay: bool,
    },
    Idempotency {
        key: u8,
        twice: bool,
    },
    /// Replace a stored idempotency record (the engine's "in progress" record replaced by the
    /// answer), at the version it was read at or a stale one; if none is stored, at version 1.
    ReplaceIdempotency {
        key: u8,
        stale: Stale,
    },
    Advance {
        hours: u16,
    },
    Reopen,
    Observe,
}

fn stale() -> impl Strategy<Value = Stale> {
    prop_oneof![6 => Just(Stale::Fresh), 1 => Just(Stale::Behind), 1 => Just(Stale::Ahead)]
}

fn op() -> impl Strategy<Value = Op> {
    let byte = any::<u8>;
    prop_oneof![
        6 => (byte(), any::<bool>()).prop_map(|(n, shout)| Op::CreateCustomer { n, shout }),
        5 => (byte(), byte(), byte(), stale())
            .prop_map(|(pick, change, n, stale)| Op::UpdateCustomer { pick, change, n, stale }),
        1 => (byte(), byte()).prop_map(|(a, b)| Op::SwapExternalIds { a, b }),
        2 => Just(Op::StoreCatalog),
        1 => (byte(), byte()).prop_map(|(code, prices)| Op::NewPlan { code, prices }),
        6 => (byte(), byte(), prop::bool::weighted(0.1)).prop_map(|(customer, builder, orphan)| {
            Op::CreateSubscription { customer, builder, orphan }
        }),
        8 => (byte(), byte(), any::<bool>(), stale())
            .prop_map(|(pick, command, events, stale)| Op::Drive { pick, command, events, stale }),
        4 => (byte(), stale()).prop_map(|(pick, stale)| Op::Renewal { pick, stale }),
        4 => (byte(), byte(), byte())
            .prop_map(|(pick, period, series)| Op::RecurringInvoice { pick, period, series }),
        3 => (byte(), byte(), any::<bool>(), proptest::option::of(byte()), prop::bool::weighted(0.1))
            .prop_map(|(customer, lines, finalize, series, orphan)| Op::OneTimeInvoice {
                customer, lines, finalize, series, orphan
            }),
        4 => (byte(), byte(), stale())
            .prop_map(|(pick, action, stale)| Op::InvoiceAction { pick, action, stale }),
        4 => (byte(), byte(), prop::bool::weighted(0.1))
            .prop_map(|(invoice, attempt, orphan)| Op::Attempt { invoice, attempt, orphan }),
        3 => (byte(), byte(), any::<bool>(), stale()).prop_map(|(invoice, pick, success, stale)| {
            Op::CompleteAttempt { invoice, pick, success, stale }
        }),
        1 => (byte(), byte(), byte())
            .prop_map(|(invoice, pick, attempt)| Op::RenumberAttempt { invoice, pick, attempt }),
        3 => (byte(), byte(), prop::bool::weighted(0.2))
            .prop_map(|(customer, count, replay)| Op::Events { customer, count, replay }),
        3 => (byte(), prop::bool::weighted(0.1)).prop_map(|(key, twice)| Op::Idempotency { key, twice }),
        2 => (byte(), stale()).prop_map(|(key, stale)| Op::ReplaceIdempotency { key, stale }),
        3 => (1..2_000_u16).prop_map(|hours| Op::Advance { hours }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Observe),
    ]
}

/// Evaluate one read on both stores, assert the results are equal, and return one.
macro_rules! same {
    ($a:expr, $b:expr, $label:expr, |$s:ident| $call:expr) => {{
        let left = {
            let $s: &dyn Store = $a;
            $call.await
        };
        let right = {
            let $s: &dyn Store = $b;
            $call.await
        };
        assert_eq!(
            left, right,
            "{} differs (left: memory, right: sqlite)",
            $label
        );
        left
    }};
}

/// Walk a paginated list on both stores, page by page, comparing every page.
macro_rules! walk {
    ($a:expr, $b:expr, $label:expr, $size:expr, |$s:ident, $request:ident| $call:expr) => {{
        let mut $request = PageRequest::first($size);
        let mut pages = 0;
        loop {
            let page = same!($a, $b, format!("{} page {pages}", $label), |$s| {
                let $request = $request.clone();
                $call
            });
            pages += 1;
            match page {
                Ok(page) => match page.next {
                    Some(cursor) => $request.after = Some(cursor),
                    None => break,
                },
                Err(_) => break,
            }
            assert!(pages < 1_000, "{} never ends", $label);
        }
    }};
}

/// What exists (or was tried), so reads can ask for it.
#[derive(Debug, Default)]
struct Known {
    customers: Vec<CustomerId>,
    external_ids: BTreeSet<String>,
    emails: BTreeSet<String>,
    plans: Vec<PlanId>,
    subscriptions: Vec<SubscriptionId>,
    invoices: Vec<InvoiceId>,
    recurring: BTreeSet<(SubscriptionId, DateTime<Utc>)>,
    attempt_keys: BTreeSet<String>,
    events: Vec<Envelope>,
    idempotency_keys: BTreeSet<String>,
    prefixes: BTreeSet<String>,
}

fn pick<T: Copy>(items: &[T], n: u8) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        items.get(usize::from(n) % items.len()).copied()
    }
}

fn series(n: u8) -> NumberSeries {
    match n % 3 {
        0 => NumberSeries::default(),
        1 => NumberSeries::resume("ACME/", 3, 998).unwrap(),
        _ => NumberSeries::new("B-", 1).unwrap(),
    }
}

struct World {
    catalog: Fixtures,
    memory: MemoryStore,
    sqlite: Option<SqliteStore>,
    dir: TempDir,
    now: DateTime<Utc>,
    known: Known,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(dir.path().join("differential.db"))
            .await
            .unwrap();
        World {
            catalog: Fixtures::new(),
            memory: MemoryStore::new(),
            sqlite: Some(sqlite),
            dir,
            now: utc(2024, 1, 1),
            known: Known::default(),
        }
    }

    fn sqlite(&self) -> &SqliteStore {
        self.sqlite.as_ref().unwrap()
    }

    async fn reopen(&mut self) {
        self.sqlite.take().unwrap().close().await.unwrap();
        self.sqlite = Some(
            SqliteStore::open(self.dir.path().join("differential.db"))
                .await
                .unwrap(),
        );
    }

    /// Commit to both stores; the results must be identical.
    async fn commit(&mut self, changes: ChangeSet) -> Result<CommitReceipt, StoreError> {
        for put in &changes.customers {
            if let Some(external_id) = put.value.external_id() {
                self.known.external_ids.insert(external_id.to_owned());
            }
            self.known.emails.insert(put.value.email().to_owned());
        }
        for write in &changes.invoices {
            if let Some(series) = &write.number_from {
                self.known.prefixes.insert(series.prefix().to_owned());
            }
        }
        for put in &changes.payment_attempts {
            self.known.attempt_keys.insert(put.value.idempotency_key());
        }
        for put in &changes.idempotency {
            self.known.idempotency_keys.insert(put.value.key.clone());
        }
        let left = self.memory.commit(changes.clone()).await;
        let right = self.sqlite().commit(changes.clone()).await;
        assert_eq!(left, right, "the commit results differ for {changes:#?}");
        if left.is_ok() {
            for put in &changes.customers {
                if put.expected == ExpectedVersion::New {
                    self.known.customers.push(put.value.id());
                }
            }
            self.known.plans.extend(changes.plans.iter().map(Plan::id));
            for put in &changes.subscriptions {
                if put.expected == ExpectedVersion::New {
                    self.known.subscriptions.push(put.value.id());
                }
            }
            for write in &changes.invoices {
                let invoice = &write.put.value;
                if write.put.expected == ExpectedVersion::New {
                    self.known.invoices.push(invoice.id());
                }
                if let (Some(subscription), Some(period)) =
                    (invoice.subscription(), invoice.period())
                {
                    self.known.recurring.insert((subscription, period.start()));
                }
            }
            self.known.events.extend(changes.events.iter().cloned());
        }
        left
    }

    fn stores(&self) -> (&dyn Store, &dyn Store) {
        (&self.memory, self.sqlite())
    }

    async fn customer(&self, id: CustomerId) -> Option<commet_core::customer::Customer> {
        let (a, b) = self.stores();
        same!(a, b, "customer", |s| s.customer(id)).unwrap()
    }

    async fn subscription(&self, id: SubscriptionId) -> Option<Subscription> {
        let (a, b) = self.stores();
        same!(a, b, "subscription", |s| s.subscription(id)).unwrap()
    }

    async fn invoice(&self, id: InvoiceId) -> Option<Invoice> {
        let (a, b) = self.stores();
        same!(a, b, "invoice", |s| s.invoice(id)).unwrap()
    }

    fn envelope(&self, event: Event, at: DateTime<Utc>) -> Envelope {
        self.catalog.envelope(event, at)
    }

    #[allow(clippy::too_many_lines)]
    async fn run(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::CreateCustomer { n, shout } => {
                let mut customer = self.catalog.customer(u32::from(n % 12), now);
                if shout {
                    let mut details = customer.to_record().details;
                    details.email = details.email.to_ascii_uppercase();
                    customer.update(details, now).unwrap();
                }
                let _ = self
                    .commit(ChangeSet {
                        customers: vec![Put::of(customer)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::UpdateCustomer {
                pick: which,
                change,
                n,
                stale,
            } => {
                let Some(id) = pick(&self.known.customers, which) else {
                    return;
                };
                let Some(mut customer) = self.customer(id).await else {
                    return;
                };
                let mut details = customer.to_record().details;
                match change % 7 {
                    0 => details.email = details.email.to_ascii_uppercase(),
                    1 => details.external_id = Some(format!("user_{}", n % 12)),
                    2 => details.external_id = None,
                    3 => {
                        details
                            .metadata
                            .insert(format!("k{}", n % 4), n.to_string());
                    }
                    4 => customer
                        .set_payment_method(&format!("pm_{n}"), now)
                        .unwrap(),
                    5 => customer
                        .adjust_credit(Money::from_minor(i64::from(n) + 1, Currency::USD), now)
                        .unwrap(),
                    _ => details.email = format!("Shared{}@Example.com", n % 2),
                }
                if change % 7 != 4 && change % 7 != 5 {
                    customer.update(details, now).unwrap();
                }
                let _ = self
                    .commit(ChangeSet {
                        customers: vec![stale.put(customer)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::SwapExternalIds { a, b } => {
                let (Some(a), Some(b)) = (
                    pick(&self.known.customers, a),
                    pick(&self.known.customers, b),
                ) else {
                    return;
                };
                if a == b {
                    return;
                }
                let (Some(mut a), Some(mut b)) = (self.customer(a).await, self.customer(b).await)
                else {
                    return;
                };
                let mut a_details = a.to_record().details;
                let mut b_details = b.to_record().details;
                std::mem::swap(&mut a_details.external_id, &mut b_details.external_id);
                a.update(a_details, now).unwrap();
                b.update(b_details, now).unwrap();
                let _ = self
                    .commit(ChangeSet {
                        customers: vec![Put::of(a), Put::of(b)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::StoreCatalog => {
                let changes = ChangeSet {
                    plans: self.catalog.plans.clone(),
                    prices: self.catalog.prices().into_iter().cloned().collect(),
                    ..ChangeSet::default()
                };
                let _ = self.commit(changes).await;
            }
            Op::NewPlan { code, prices } => {
                let plan = commet_core::catalog::Plan::new(
                    self.catalog.ids.next(now),
                    commet_core::catalog::NewPlan {
                        code: ["pro", "extra", "more", "ünï"][usize::from(code % 4)]
                            .replace('ü', "u")
                            .replace('ï', "i"),
                        name: "Extra ✨".into(),
                        description: Some("d".repeat(usize::from(code))),
                    },
                )
                .unwrap();
                let plan_for_prices = if prices % 3 == 0 {
                    self.catalog.plans[0].id()
                } else {
                    plan.id()
                };
                let price_list = (0..prices % 3)
                    .map(|k| {
                        commet_core::catalog::Price::new(
                            self.catalog.ids.next(now),
                            commet_core::catalog::NewPrice {
                                plan: plan_for_prices,
                                unit_amount: format!("{k}.0{k}04 EUR").parse().unwrap(),
                                interval: commet_core::calendar::Interval::QUARTERLY,
                                trial_days: u32::from(k) * 7,
                                model: commet_core::catalog::PricingModel::PerSeat,
                            },
                        )
                        .unwrap()
                    })
                    .collect();
                let _ = self
                    .commit(ChangeSet {
                        plans: vec![plan],
                        prices: price_list,
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::CreateSubscription {
                customer,
                builder,
                orphan,
            } => {
                let built = match builder % 8 {
                    0 => self.catalog.draft(),
                    1 => self.catalog.pending(),
                    2 => self.catalog.trialing(),
                    3 => self.catalog.active(),
                    4 => self.catalog.past_due(),
                    5 => self.catalog.paused(),
                    6 => self.catalog.canceled(),
                    _ => self.catalog.free(),
                };
                let subscription = match (orphan, pick(&self.known.customers, customer)) {
                    (false, Some(owner)) => Subscription::from_record(SubscriptionRecord {
                        customer: owner,
                        ..built.to_record()
                    })
                    .unwrap(),
                    _ => built,
                };
                let _ = self
                    .commit(ChangeSet {
                        subscriptions: vec![Put::of(subscription)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::Drive {
                pick: which,
                command,
                events,
                stale,
            } => {
                let Some(id) = pick(&self.known.subscriptions, which) else {
                    return;
                };
                let Some(subscription) = self.subscription(id).await else {
                    return;
                };
                let at = subscription.next_due_at().map_or(now, |due| due.max(now));
                let command = self.command(&subscription, command, at);
                let Ok(decision) = subscription.decide(&command, &self.catalog.context(at)) else {
                    return;
                };
                self.now = at;
                let events = if events {
                    decision
                        .events
                        .iter()
                        .map(|event| self.envelope(event.clone(), at))
                        .collect()
                } else {
                    Vec::new()
                };
                let _ = self
                    .commit(ChangeSet {
                        subscriptions: vec![stale.put(decision.subscription)],
                        events,
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::Renewal { pick: which, stale } => {
                let Some(id) = pick(&self.known.subscriptions, which) else {
                    return;
                };
                let Some(subscription) = self.subscription(id).await else {
                    return;
                };
                if subscription.status() != SubscriptionStatus::Active
                    || self.catalog.is_free(&subscription)
                {
                    return;
                }
                let at = subscription.next_due_at().map_or(now, |due| due.max(now));
                let command = Command::Renew(ChargeOutcome::Paid {
                    settlement: self.catalog.settlement(&subscription, at),
                });
                let Ok(decision) = subscription.decide(&command, &self.catalog.context(at)) else {
                    return;
                };
                self.now = at;
                let renewed = decision.subscription;
                let Some(period) = renewed.current_period() else {
                    return;
                };
                let invoice = self.catalog.recurring_invoice(&renewed, period);
                let attempt = self.catalog.attempt(&invoice, 1, at);
                let events = decision
                    .events
                    .iter()
                    .map(|event| self.envelope(event.clone(), at))
                    .collect();
                let _ = self
                    .commit(ChangeSet {
                        subscriptions: vec![stale.put(renewed)],
                        invoices: vec![InvoiceWrite::numbered(invoice, NumberSeries::default())],
                        payment_attempts: vec![Put::of(attempt)],
                        events,
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::RecurringInvoice {
                pick: which,
                period,
                series: n,
            } => {
                let Some(id) = pick(&self.known.subscriptions, which) else {
                    return;
                };
                let Some(subscription) = self.subscription(id).await else {
                    return;
                };
                let Some(cycle) = subscription.cycle() else {
                    return;
                };
                if self.catalog.is_free(&subscription) {
                    return;
                }
                let Ok(period) = cycle.period(u64::from(period % 4)) else {
                    return;
                };
                let invoice = self.catalog.recurring_invoice(&subscription, period);
                let _ = self
                    .commit(ChangeSet {
                        invoices: vec![InvoiceWrite::numbered(invoice, series(n))],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::OneTimeInvoice {
                customer,
                lines,
                finalize,
                series: n,
                orphan,
            } => {
                let owner = match (orphan, pick(&self.known.customers, customer)) {
                    (false, Some(owner)) => owner,
                    _ => self.catalog.ids.next(now),
                };
                let mut invoice = Invoice::draft(NewInvoice {
                    id: self.catalog.ids.next(now),
                    customer: owner,
                    subscription: None,
                    currency: Currency::USD,
                    kind: InvoiceKind::OneTime,
                    period: None,
                    created_at: now,
                    memo: (lines % 2 == 0).then(|| "Mémo ☂".to_owned()),
                    metadata: BTreeMap::from([("n".to_owned(), lines.to_string())]),
                })
                .unwrap();
                for k in 0..(lines % 5) {
                    invoice
                        .add_line(
                            LineItem::new(
                                NewLineItem {
                                    kind: LineKind::OneTime,
                                    description: format!("Line {k} ✓"),
                                    quantity: (i64::from(k) + 1).into(),
                                    unit_amount: format!("{k}.{k}{k}35 USD").parse().unwrap(),
                                    period: None,
                                    price: None,
                                },
                                RoundingPolicy::HalfAwayFromZero,
                            )
                            .unwrap(),
                        )
                        .unwrap();
                }
                if finalize {
                    // An invoice without lines cannot be finalized: it stays a draft.
                    let _ = invoice.finalize(
                        now,
                        now + TimeDelta::days(14),
                        commet_core::fixtures::Fixtures::parties(),
                    );
                }
                let write = match n {
                    Some(n) => InvoiceWrite::numbered(invoice, series(n)),
                    None => InvoiceWrite::of(invoice),
                };
                let _ = self
                    .commit(ChangeSet {
                        invoices: vec![write],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::InvoiceAction {
                pick: which,
                action,
                stale,
            } => {
                let Some(id) = pick(&self.known.invoices, which) else {
                    return;
                };
                let Some(mut invoice) = self.invoice(id).await else {
                    return;
                };
                let done = match action % 3 {
                    0 => invoice.mark_paid(now, invoice.amount_due()),
                    1 => invoice.void(now),
                    _ => invoice.mark_uncollectible(now),
                };
                if done.is_err() {
                    return;
                }
                let _ = self
                    .commit(ChangeSet {
                        invoices: vec![InvoiceWrite {
                            put: stale.put(invoice),
                            number_from: None,
                        }],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::Attempt {
                invoice,
                attempt,
                orphan,
            } => {
                let invoice = match (orphan, pick(&self.known.invoices, invoice)) {
                    (false, Some(id)) => match self.invoice(id).await {
                        Some(invoice) => invoice,
                        None => return,
                    },
                    _ => Invoice::draft(NewInvoice {
                        id: self.catalog.ids.next(now),
                        customer: self.catalog.ids.next(now),
                        subscription: None,
                        currency: Currency::EUR,
                        kind: InvoiceKind::Adjustment,
                        period: None,
                        created_at: now,
                        memo: None,
                        metadata: BTreeMap::new(),
                    })
                    .unwrap(),
                };
                let attempt = self
                    .catalog
                    .attempt(&invoice, u32::from(attempt % 3) + 1, now);
                let _ = self
                    .commit(ChangeSet {
                        payment_attempts: vec![Put::of(attempt)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::CompleteAttempt {
                invoice,
                pick: which,
                success,
                stale,
            } => {
                let Some(invoice) = pick(&self.known.invoices, invoice) else {
                    return;
                };
                let (a, b) = self.stores();
                let attempts =
                    same!(a, b, "payment_attempts", |s| s.payment_attempts(invoice)).unwrap();
                let Some(mut attempt) = attempts
                    .get(usize::from(which) % attempts.len().max(1))
                    .cloned()
                else {
                    return;
                };
                attempt.status = if success {
                    AttemptStatus::Succeeded {
                        payment_id: (which % 2 == 0).then(|| format!("ch_{which}")),
                    }
                } else {
                    AttemptStatus::Failed {
                        code: "card_declined".into(),
                        message: "Declined — «no»".into(),
                    }
                };
                attempt.completed_at = Some(now);
                let _ = self
                    .commit(ChangeSet {
                        payment_attempts: vec![stale.put(attempt)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::RenumberAttempt {
                invoice,
                pick: which,
                attempt: number,
            } => {
                let Some(invoice) = pick(&self.known.invoices, invoice) else {
                    return;
                };
                let (a, b) = self.stores();
                let attempts =
                    same!(a, b, "payment_attempts", |s| s.payment_attempts(invoice)).unwrap();
                let Some(mut attempt) = attempts
                    .get(usize::from(which) % attempts.len().max(1))
                    .cloned()
                else {
                    return;
                };
                attempt.attempt = u32::from(number % 4) + 1;
                let _ = self
                    .commit(ChangeSet {
                        payment_attempts: vec![Put::of(attempt)],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::Events {
                customer,
                count,
                replay,
            } => {
                let data = match pick(&self.known.customers, customer) {
                    Some(id) => match self.customer(id).await {
                        Some(customer) => customer.event_data(),
                        None => return,
                    },
                    None => self.catalog.customer(0, now).event_data(),
                };
                let mut events: Vec<Envelope> = (0..count % 4)
                    .map(|_| self.envelope(Event::CustomerUpdated(data.clone()), now))
                    .collect();
                if replay {
                    match self
                        .known
                        .events
                        .get(usize::from(count) % self.known.events.len().max(1))
                    {
                        Some(old) => events.push(old.clone()),
                        None => {
                            if let Some(first) = events.first().cloned() {
                                events.push(first); // a duplicate within the set: invalid
                            }
                        }
                    }
                }
                let _ = self
                    .commit(ChangeSet {
                        events,
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::Idempotency { key, twice } => {
                let record = commet_engine::testkit::conformance::idempotency_record(
                    &format!("key-{}", key % 4),
                    now,
                );
                let mut records = vec![Put::of(record.clone())];
                if twice {
                    records.push(Put::of(record));
                }
                let _ = self
                    .commit(ChangeSet {
                        idempotency: records,
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::ReplaceIdempotency { key, stale } => {
                let key = format!("key-{}", key % 4);
                let (a, b) = self.stores();
                let stored =
                    same!(a, b, "idempotency_record", |s| s.idempotency_record(&key)).unwrap();
                let put = match stored {
                    Some(stored) => stale.put(commet_engine::idempotency::IdempotencyRecord {
                        response: format!("{{\"answer\":{}}}", stored.version),
                        created_at: now,
                        expires_at: now + TimeDelta::hours(30),
                        ..stored
                    }),
                    None => Put {
                        value: commet_engine::testkit::conformance::idempotency_record(&key, now),
                        expected: ExpectedVersion::Exactly(1),
                    },
                };
                let _ = self
                    .commit(ChangeSet {
                        idempotency: vec![put],
                        ..ChangeSet::default()
                    })
                    .await;
            }
            Op::Advance { hours } => self.now += TimeDelta::hours(i64::from(hours)),
            Op::Reopen => self.reopen().await,
            Op::Observe => self.observe().await,
        }
    }

    fn command(&self, subscription: &Subscription, which: u8, at: DateTime<Utc>) -> Command {
        let catalog = &self.catalog;
        let paid = || ChargeOutcome::Paid {
            settlement: catalog.settlement(subscription, at),
        };
        match which % 15 {
            0 => Command::Renew(paid()),
            1 => Command::Renew(ChargeOutcome::Failed(
                catalog.failed(at, "insufficient_funds"),
            )),
            2 => Command::CancelNow {
                comment: Some("bye".into()),
                open_invoices: Vec::new(),
            },
            3 => Command::ScheduleCancellation { comment: None },
            4 => Command::RevokeCancellation,
            5 => Command::Pause,
            6 => Command::Resume {
                settlement: catalog.settlement(subscription, at),
            },
            7 => Command::SendTrialReminder,
            8 => Command::EndTrial(paid()),
            9 => Command::CompleteCheckout(CheckoutCompletion::Paid {
                invoice: catalog.invoice(at, 5_000, "paid"),
            }),
            10 => Command::ExpireCheckout {
                open_invoices: Vec::new(),
            },
            11 => Command::Reactivate {
                settlement: catalog.settlement(subscription, at),
            },
            12 => Command::ScheduleDowngrade {
                change: catalog.change(&catalog.basic),
            },
            13 => Command::Recover {
                invoice: catalog.invoice(at, 5_000, "paid"),
            },
            _ => Command::Submit {
                checkout: Fixtures::checkout(at, true),
            },
        }
    }

    /// Compare everything the read API can say about the known objects.
    #[allow(clippy::too_many_lines)]
    async fn observe(&self) {
        let (a, b) = self.stores();
        let known = &self.known;
        let now = self.now;

        for size in [3, 100] {
            walk!(a, b, "customers", size, |s, request| s.customers(request));
        }
        for &id in &known.customers {
            let _ = same!(a, b, "customer", |s| s.customer(id));
        }
        for external_id in known
            .external_ids
            .iter()
            .map(String::as_str)
            .chain(["nobody"])
        {
            let _ = same!(
                a,
                b,
                format!("customer_by_external_id {external_id}"),
                |s| s.customer_by_external_id(external_id)
            );
        }
        for email in &known.emails {
            for variant in [
                email.clone(),
                email.to_ascii_lowercase(),
                email.to_ascii_uppercase(),
            ] {
                let _ = same!(a, b, format!("customers_by_email {variant}"), |s| s
                    .customers_by_email(&variant));
            }
        }

        let _ = same!(a, b, "plans", |s| s.plans());
        let _ = same!(a, b, "prices", |s| s.prices());
        let catalog_plans = self.catalog.plans.iter().map(Plan::id);
        for plan in known.plans.iter().copied().chain(catalog_plans) {
            let _ = same!(a, b, "plan", |s| s.plan(plan));
            let _ = same!(a, b, "prices of a plan", |s| s.prices_of(plan));
        }
        for price in self.catalog.prices() {
            let _ = same!(a, b, "price", |s| s.price(price.id()));
        }

        let mut subscription_queries = vec![SubscriptionQuery::default()];
        for &customer in &known.customers {
            subscription_queries.push(SubscriptionQuery {
                customer: Some(customer),
                status: None,
            });
        }
        for status in SubscriptionStatus::ALL {
            subscription_queries.push(SubscriptionQuery {
                customer: None,
                status: Some(status),
            });
            if let Some(&customer) = known.customers.first() {
                subscription_queries.push(SubscriptionQuery {
                    customer: Some(customer),
                    status: Some(status),
                });
            }
        }
        for query in subscription_queries {
            for size in [4, 100] {
                walk!(
                    a,
                    b,
                    format!("subscriptions {query:?}"),
                    size,
                    |s, request| s.subscriptions(query, request)
                );
            }
        }
        for &id in &known.subscriptions {
            let _ = same!(a, b, "subscription", |s| s.subscription(id));
        }
        let _ = same!(a, b, "next_due_at", |s| s.next_due_at());
        for at in [
            now - TimeDelta::days(30),
            now,
            now + TimeDelta::days(40),
            utc(2100, 1, 1),
        ] {
            for limit in [0, 1, 3, 1_000, usize::MAX] {
                let _ = same!(a, b, format!("due {at} {limit}"), |s| s.due(at, limit));
            }
        }

        let mut invoice_queries = vec![InvoiceQuery::default()];
        for &customer in &known.customers {
            invoice_queries.push(InvoiceQuery {
                customer: Some(customer),
                ..InvoiceQuery::default()
            });
        }
        for &subscription in &known.subscriptions {
            invoice_queries.push(InvoiceQuery {
                subscription: Some(subscription),
                ..InvoiceQuery::default()
            });
        }
        for status in InvoiceStatus::ALL {
            invoice_queries.push(InvoiceQuery {
                status: Some(status),
                ..InvoiceQuery::default()
            });
            if let Some(&customer) = known.customers.first() {
                invoice_queries.push(InvoiceQuery {
                    customer: Some(customer),
                    subscription: None,
                    status: Some(status),
                });
            }
        }
        for query in invoice_queries {
            for size in [2, 100] {
                walk!(a, b, format!("invoices {query:?}"), size, |s, request| s
                    .invoices(query, request));
            }
        }
        for &id in &known.invoices {
            let _ = same!(a, b, "invoice", |s| s.invoice(id));
            let _ = same!(a, b, "payment_attempts", |s| s.payment_attempts(id));
        }
        for &(subscription, start) in &known.recurring {
            let _ = same!(a, b, "recurring_invoice", |s| s
                .recurring_invoice(subscription, start));
        }
        for prefix in known
            .prefixes
            .iter()
            .map(String::as_str)
            .chain(["INV-", "none"])
        {
            // Not part of the Store trait: read from each store directly.
            assert_eq!(
                self.memory.number_series(prefix),
                self.sqlite().number_series(prefix).await.unwrap(),
                "number_series {prefix} differs (left: memory, right: sqlite)"
            );
        }

        for key in &known.attempt_keys {
            let _ = same!(a, b, format!("payment_attempt {key}"), |s| s
                .payment_attempt(key));
        }
        for at in [
            now - TimeDelta::days(60),
            now,
            now + TimeDelta::hours(1),
            utc(2100, 1, 1),
        ] {
            for limit in [0, 2, 1_000] {
                let _ = same!(
                    a,
                    b,
                    format!("pending_payment_attempts {at} {limit}"),
                    |s| s.pending_payment_attempts(at, limit)
                );
            }
        }

        let all = same!(a, b, "events_after 0", |s| s.events_after(0, usize::MAX)).unwrap();
        for seq in (0..=all.len() as u64 + 1).step_by(3) {
            let _ = same!(a, b, format!("events_after {seq}"), |s| s
                .events_after(seq, 4));
        }
        let _ = same!(a, b, "events_after max", |s| s.events_after(u64::MAX, 10));

        for key in &known.idempotency_keys {
            let _ = same!(a, b, format!("idempotency_record {key}"), |s| s
                .idempotency_record(key));
            for at in [
                now - TimeDelta::days(1),
                now,
                now + TimeDelta::hours(12),
                now + TimeDelta::days(2),
            ] {
                let _ = same!(a, b, format!("live_idempotency_record {key} {at}"), |s| s
                    .live_idempotency_record(key, at));
            }
        }

        // Bad requests are refused alike.
        let foreign = Cursor::after(self.catalog.plans[0].id());
        let _ = same!(a, b, "a foreign cursor", |s| s.customers(PageRequest {
            limit: 5,
            after: Some(foreign.clone()),
        }));
        let _ = same!(a, b, "a foreign cursor", |s| s.invoices(
            InvoiceQuery::default(),
            PageRequest {
                limit: 5,
                after: Some(Cursor::after("inv_garbage"))
            }
        ));
        for limit in [0, 101] {
            let _ = same!(a, b, format!("limit {limit}"), |s| s.subscriptions(
                SubscriptionQuery::default(),
                PageRequest::first(limit)
            ));
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Run a sequence on both stores, then compare all state, reopen the file, and compare again.
fn check(ops: &[Op]) {
    runtime().block_on(async {
        let mut world = World::new().await;
        for op in ops {
            world.run(op).await;
        }
        world.observe().await;
        world.reopen().await;
        world.observe().await;
    });
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/differential.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn memory_and_sqlite_agree_on_every_operation_and_all_state(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        check(&ops);
    }
}

/// The case saved in `proptest-regressions/differential.txt` (two customers swapping external
/// ids in one change set), replayed as written: the saved seed draws other operations once the
/// strategy gains operations.
#[test]
fn swapping_external_ids_in_one_change_set_agrees() {
    check(&[
        Op::CreateCustomer { n: 0, shout: false },
        Op::CreateCustomer { n: 1, shout: false },
        Op::SwapExternalIds { a: 223, b: 158 },
    ]);
}

/// Every idempotency write the engine makes, in order, on both stores: new, replaced at its
/// version, replaced at a stale one, new over a live one, new once expired, replaced when
/// none is stored.
#[test]
fn idempotency_writes_agree() {
    check(&[
        Op::Idempotency {
            key: 1,
            twice: false,
        },
        Op::ReplaceIdempotency {
            key: 1,
            stale: Stale::Fresh,
        },
        Op::ReplaceIdempotency {
            key: 1,
            stale: Stale::Behind,
        },
        Op::ReplaceIdempotency {
            key: 1,
            stale: Stale::Ahead,
        },
        Op::Idempotency {
            key: 1,
            twice: false,
        },
        Op::Advance { hours: 31 },
        Op::Idempotency {
            key: 1,
            twice: false,
        },
        Op::ReplaceIdempotency {
            key: 2,
            stale: Stale::Fresh,
        },
        Op::Idempotency {
            key: 3,
            twice: true,
        },
        Op::Observe,
    ]);
}

/// Reopening after a clean close returns identical state: a long fixed sequence touching every
/// table, compared with the reference store before the close and after the reopen, and then
/// continued (numbering and the outbox carry on from where they were).
#[test]
fn reopening_after_a_clean_close_returns_identical_state() {
    let mut ops = vec![Op::StoreCatalog];
    for n in 0..10_u8 {
        ops.extend([
            Op::CreateCustomer {
                n,
                shout: n % 3 == 0,
            },
            Op::CreateSubscription {
                customer: n,
                builder: n,
                orphan: false,
            },
            Op::UpdateCustomer {
                pick: n,
                change: n,
                n,
                stale: Stale::Fresh,
            },
            Op::Renewal {
                pick: n,
                stale: Stale::Fresh,
            },
            Op::RecurringInvoice {
                pick: n,
                period: n,
                series: n,
            },
            Op::OneTimeInvoice {
                customer: n,
                lines: n,
                finalize: true,
                series: Some(n),
                orphan: false,
            },
            Op::Attempt {
                invoice: n,
                attempt: n,
                orphan: false,
            },
            Op::CompleteAttempt {
                invoice: n,
                pick: 0,
                success: n % 2 == 0,
                stale: Stale::Fresh,
            },
            Op::InvoiceAction {
                pick: n,
                action: n,
                stale: Stale::Fresh,
            },
            Op::Drive {
                pick: n,
                command: n,
                events: true,
                stale: Stale::Fresh,
            },
            Op::Events {
                customer: n,
                count: 3,
                replay: false,
            },
            Op::Idempotency {
                key: n,
                twice: false,
            },
            Op::ReplaceIdempotency {
                key: n,
                stale: Stale::Fresh,
            },
            Op::Advance { hours: 30 },
        ]);
    }
    let before = ops.len();
    ops.push(Op::Observe);
    ops.push(Op::Reopen);
    ops.push(Op::Observe);
    ops.extend_from_within(..before);
    runtime().block_on(async {
        let mut world = World::new().await;
        for op in &ops {
            world.run(op).await;
        }
        assert!(world.known.invoices.len() > 20, "the script wrote invoices");
        assert!(world.known.events.len() > 20, "the script wrote events");
        world.observe().await;
    });
}
