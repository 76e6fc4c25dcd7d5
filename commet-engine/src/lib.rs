//! # commet-engine
//!
//! The engine of commet: [`Billing`], the facade a service embeds to run its subscription
//! business, over a [`store::Store`] and a [`gateway::PaymentGateway`]. The business rules live
//! in `commet-core`; this crate loads, asks the domain, commits and calls the gateway.
//!
//! Every operation has the same shape (DESIGN.md section 2): **load** what it touches from the
//! [`Store`], **decide** in pure code (the subscription state machine, the money rules),
//! **commit** one [`ChangeSet`](crate::store::ChangeSet) with the expected versions, the events
//! and the invoice numbers, and only then run **effects** that leave the process (a charge),
//! whose outcome is committed the same way. A conflict (someone committed first) re-runs the
//! operation from its reads.
//!
//! | group | what it does |
//! |---|---|
//! | [`Billing::customers`] | create, update, get, find by external id, list, payment method on file |
//! | [`Billing::catalog`] | define and list plans and prices |
//! | [`Billing::subscriptions`] | create (with a checkout link), get, list, cancel now or at period end, uncancel, pause, resume, reactivate, change plan (with proration), preview, admin override |
//! | [`Billing::checkout`] | open a checkout link, complete it with a payment method, expire it |
//! | [`Billing::invoices`] | list, retrieve with lines, mark paid out of band, void |
//! | [`Billing::events_after`] | the event outbox, in order |
//! | [`Billing::access`] | should this customer be served, and why |
//! | [`Billing::run_due`], [`Billing::advance_to`] | renewals, trials, dunning, scheduled changes, checkout expiry, crash recovery |
//!
//! # Charges
//!
//! A charge is recorded before it is made: one commit finalizes and numbers the invoice and
//! records a `pending` [`PaymentAttempt`](commet_core::payment::PaymentAttempt); the gateway is
//! called with the idempotency key `{invoice}:{attempt}`; a second commit records the outcome
//! together with the subscription's transition and its events. A process that dies in between
//! leaves a pending attempt; after [`BillingConfig::recovery_grace`] the next `run_due`
//! charges it again with the same key (the gateway answers with the first outcome) and commits
//! the outcome. Nothing is charged twice and no invoice is lost. Two workers cannot bill one
//! period twice: each store keeps one recurring invoice per (subscription, period start) and
//! one attempt per key, and the intent commit claims the subscription's version.
//!
//! # Idempotency
//!
//! Every mutating call can be made through [`Billing::idempotent`] with a key: the same key
//! and the same request return the first result without a second effect; the same key with a
//! different request is [`BillingError::IdempotencyKeyReused`]. Keys are kept for
//! [`BillingConfig::idempotency_ttl`].

mod catalog;
mod charge;
mod checkout;
mod config;
mod customers;
mod due;
mod error;
pub mod gateway;
pub mod idempotency;
mod invoices;
pub mod store;
mod subscriptions;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use catalog::CatalogApi;
pub use checkout::{Checkout, CheckoutSession};
pub use config::{BillingConfig, LinkTtls, MAX_DURATION_DAYS};
pub use customers::Customers;
pub use due::RunReport;
pub use error::{BillingError, Result};
pub use invoices::Invoices;
pub use subscriptions::{
    CancelRequest, ChangeResult, CreateSubscription, SubscriptionView, Subscriptions,
};

use crate::gateway::PaymentGateway;
use crate::idempotency::IdempotencyRecord;
use crate::store::{EntityKind, StoreError, StoredEvent, SubscriptionQuery};
use crate::store::{PageRequest, Store, StoreExt};
use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::clock::{Clock, TestClock};
use commet_core::event::{Envelope, Event};
use commet_core::ids::{CustomerId, IdGenerator, PriceId};
use commet_core::subscription::{Access, Context, SubscriptionError, access};
use commet_core::token::{self, Claims, Purpose, SignedUrl};

/// How many times an operation that lost a race is re-run before giving up.
const MAX_CONFLICT_RETRIES: usize = 16;

/// The billing engine. Build one per process and share it (it is `Send + Sync`).
///
/// In production the store is a `commet_store_sqlite::SqliteStore`, the gateway your
/// payment provider's adapter and the clock [`SystemClock`](commet_core::clock::SystemClock); in
/// tests, as here, an in-memory store, the test kit's fake gateway and a [`TestClock`] that
/// the test moves.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use commet_core::clock::TestClock;
/// use commet_core::customer::CustomerDetails;
/// use commet_engine::{Billing, BillingConfig};
/// use commet_engine::testkit::gateway::FakeGateway;
/// use commet_core::token::SigningKey;
/// use commet_store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = TestClock::new(Utc.with_ymd_and_hms(2025, 1, 31, 12, 0, 0).unwrap());
/// let billing = Billing::new(
///     Arc::new(MemoryStore::new()),
///     Arc::new(FakeGateway::new()),
///     Arc::new(clock.clone()),
///     BillingConfig::new("org_acme", SigningKey::generate()?),
/// )?;
/// let customer = billing
///     .customers()
///     .create(CustomerDetails {
///         external_id: Some("user_42".into()),
///         email: "ana@example.com".into(),
///         full_name: None,
///         metadata: Default::default(),
///     })
///     .await?;
/// let found = billing.customers().find_by_external_id("user_42").await?;
/// assert_eq!(found.id(), customer.id());
/// // No subscription yet: not served.
/// assert!(!billing.access(customer.id()).await?.granted);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Billing {
    store: Arc<dyn Store>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    ids: IdGenerator,
    config: BillingConfig,
    catalog: CatalogCache,
}

/// The catalog as read so far. Plans and prices are insert-only, so nothing read here goes
/// stale; a plan or price defined since (by this engine or another process) is read when
/// first needed.
#[derive(Debug, Default)]
struct CatalogCache {
    prices: Mutex<HashMap<PriceId, Price>>,
    plans: Mutex<Option<Arc<[Plan]>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache holds only complete values: a panic elsewhere leaves nothing half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Billing {
    /// An engine over a store, a payment gateway and a clock.
    pub fn new(
        store: Arc<dyn Store>,
        gateway: Arc<dyn PaymentGateway>,
        clock: Arc<dyn Clock>,
        config: BillingConfig,
    ) -> Result<Billing> {
        config.validate()?;
        Ok(Billing {
            store,
            gateway,
            clock,
            ids: IdGenerator::random(),
            config,
            catalog: CatalogCache::default(),
        })
    }

    /// The same engine with another id generator (a seeded one makes ids reproducible, so two
    /// runs of a scenario can be compared byte for byte).
    #[must_use]
    pub fn with_ids(mut self, ids: IdGenerator) -> Billing {
        self.ids = ids;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &BillingConfig {
        &self.config
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The engine's current instant.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Customers.
    #[must_use]
    pub fn customers(&self) -> Customers<'_> {
        Customers::new(self, None)
    }

    /// Plans and prices.
    #[must_use]
    pub fn catalog(&self) -> CatalogApi<'_> {
        CatalogApi::new(self, None)
    }

    /// Subscriptions.
    #[must_use]
    pub fn subscriptions(&self) -> Subscriptions<'_> {
        Subscriptions::new(self, None)
    }

    /// Checkout links.
    #[must_use]
    pub fn checkout(&self) -> Checkout<'_> {
        Checkout::new(self, None)
    }

    /// Invoices.
    #[must_use]
    pub fn invoices(&self) -> Invoices<'_> {
        Invoices::new(self, None)
    }

    /// The same operations, made idempotent with `key` (1 to 255 characters): repeating a call
    /// with the same key and request returns the first result and changes nothing.
    #[must_use]
    pub fn idempotent<'a>(&'a self, key: &'a str) -> Idempotent<'a> {
        Idempotent { billing: self, key }
    }

    /// Outbox events after sequence number `seq`, in order, at most `limit`.
    pub async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        Ok(self.store.events_after(seq, limit).await?)
    }

    /// Should `customer` be served now? Granted if any of their subscriptions grants (the one
    /// granting longest wins); otherwise the reason of their newest subscription, or
    /// `no_subscription`.
    pub async fn access(&self, customer: CustomerId) -> Result<Access> {
        let now = self.now();
        let mut best: Option<Access> = None;
        let mut request = PageRequest::first(crate::store::MAX_PAGE);
        loop {
            let page = self
                .store
                .subscriptions(
                    SubscriptionQuery {
                        customer: Some(customer),
                        status: None,
                    },
                    request.clone(),
                )
                .await?;
            for subscription in &page.items {
                let answer = access(subscription, now, self.config.access);
                best = Some(match best {
                    None => answer,
                    Some(current)
                        if answer.granted && (!current.granted || answer.until > current.until) =>
                    {
                        answer
                    }
                    Some(current) => current,
                });
            }
            match page.next {
                Some(cursor) => request.after = Some(cursor),
                None => break,
            }
        }
        Ok(best.unwrap_or_else(Access::no_subscription))
    }

    // ---- internals shared by the groups ---------------------------------------------------

    /// An envelope around `event`, stamped now.
    fn envelope(&self, event: Event, now: DateTime<Utc>) -> Envelope {
        Envelope {
            id: self.ids.next(now),
            timestamp: now,
            organization_id: self.config.organization_id.clone(),
            mode: self.config.mode,
            api_version: self.config.api_version.clone(),
            event,
        }
    }

    fn envelopes(&self, events: Vec<Event>, now: DateTime<Utc>) -> Vec<Envelope> {
        events
            .into_iter()
            .map(|event| self.envelope(event, now))
            .collect()
    }

    /// The decision context: every plan (the catalog is small), the provider's name.
    async fn plans(&self) -> Result<Vec<Plan>> {
        Ok(self.store.plans().await?)
    }

    /// A price, read from the store once (a price never changes once defined).
    pub(crate) async fn price(&self, id: PriceId) -> Result<Price> {
        if let Some(price) = self.cached_price(id) {
            return Ok(price);
        }
        let price = self.store.get_price(id).await?;
        lock(&self.catalog.prices).insert(id, price.clone());
        Ok(price)
    }

    fn cached_price(&self, id: PriceId) -> Option<Price> {
        lock(&self.catalog.prices).get(&id).cloned()
    }

    /// Run `decide` with the plans as last read (read now if never); if it names a plan that
    /// is not among them (defined since), read the plans again and decide again.
    async fn decide_with_plans<T>(
        &self,
        decide: impl Fn(&[Plan]) -> Result<T, SubscriptionError>,
    ) -> Result<Result<T, SubscriptionError>> {
        let cached = lock(&self.catalog.plans).clone();
        if let Some(plans) = cached {
            match decide(&plans) {
                Err(SubscriptionError::Invalid(InvalidField { field, .. })) if field == "plans" => {
                }
                decided => return Ok(decided),
            }
        }
        let plans: Arc<[Plan]> = self.store.plans().await?.into();
        *lock(&self.catalog.plans) = Some(Arc::clone(&plans));
        Ok(decide(&plans))
    }

    fn context<'a>(&'a self, plans: &'a [Plan], now: DateTime<Utc>) -> Context<'a> {
        Context {
            now,
            plans,
            provider: Some(self.gateway.name()),
        }
    }

    /// A signed link `{base}/{subject}?token=...` for `purpose`, valid for `ttl` from `now`.
    fn link(
        &self,
        purpose: Purpose,
        base: &str,
        subject: &str,
        ttl: chrono::TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<SignedUrl> {
        let token = token::issue(
            &self.config.signing_key,
            &Claims {
                purpose,
                subject: subject.to_owned(),
                expires_at: now + ttl,
            },
        )?;
        Ok(SignedUrl::new(base, subject, &token))
    }

    /// Re-run `operation` while it loses races (a store conflict), up to a limit.
    ///
    /// `operation` returns a fresh future per attempt (rather than being an async closure) so
    /// that the futures of the public API stay `Send`: the compiler cannot yet prove that of a
    /// future that calls an `AsyncFnMut` (rust-lang/rust#110338).
    async fn retrying<T, F>(&self, what: &str, mut operation: impl FnMut() -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        for _ in 0..MAX_CONFLICT_RETRIES {
            match operation().await {
                Err(error) if error.is_conflict() => {}
                other => return other,
            }
        }
        Err(BillingError::Contention {
            what: what.to_owned(),
        })
    }

    /// The stored result of an earlier identical request made with `key`, if any.
    async fn replay<T: DeserializeOwned>(
        &self,
        key: Option<&str>,
        fingerprint: &str,
    ) -> Result<Option<T>> {
        let Some(key) = key else { return Ok(None) };
        let Some(record) = self.store.live_idempotency_record(key, self.now()).await? else {
            return Ok(None);
        };
        if record.fingerprint != fingerprint {
            return Err(BillingError::IdempotencyKeyReused {
                key: key.to_owned(),
            });
        }
        serde_json::from_str(&record.response)
            .map(Some)
            .map_err(|e| {
                BillingError::Store(StoreError::corrupt(EntityKind::IdempotencyRecord, key, e))
            })
    }

    /// The record that makes `result` the answer to every repeat of this request.
    fn idempotency_record(
        &self,
        key: Option<&str>,
        fingerprint: &str,
        result: &impl Serialize,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        let Some(key) = key else { return Ok(None) };
        let response =
            serde_json::to_string(result).map_err(|e| InvalidField::new("response", e))?;
        Ok(Some(IdempotencyRecord {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            response,
            created_at: now,
            expires_at: now + self.config.idempotency_ttl,
            version: 0,
        }))
    }

    /// Run a single-commit operation: replay it if `key` has a result; otherwise build the
    /// change set at the current instant, attach the idempotency record, and commit, re-running
    /// on conflicts. `build` returns the result and the change set.
    async fn commit_once<T, F>(
        &self,
        key: Option<&str>,
        operation: &str,
        request: &impl Serialize,
        mut build: impl FnMut(DateTime<Utc>) -> F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<(T, crate::store::ChangeSet)>>,
    {
        let fingerprint = &fingerprint(operation, request)?;
        if let Some(done) = self.replay(key, fingerprint).await? {
            return Ok(done);
        }
        self.retrying(operation, || {
            let now = self.now();
            let outcome = build(now);
            async move {
                let (result, mut changes) = outcome.await?;
                changes.idempotency.extend(
                    self.idempotency_record(key, fingerprint, &result, now)?
                        .map(crate::store::Put::of),
                );
                match self.store.commit(changes).await {
                    Ok(_) => Ok(result),
                    // A concurrent call with the same key committed first: answer as it did.
                    Err(StoreError::AlreadyExists {
                        kind: EntityKind::IdempotencyRecord,
                        ..
                    }) => self.replay(key, fingerprint).await?.ok_or_else(|| {
                        BillingError::Contention {
                            what: operation.to_owned(),
                        }
                    }),
                    Err(error) => Err(error.into()),
                }
            }
        })
        .await
    }

    /// Run an operation that charges: replay it if `key` has a result; otherwise commit the
    /// intent `prepare` builds (re-run on conflicts), charge, and settle, recording the answer
    /// `respond` gives under `key` in the settling commit. A decline is
    /// [`BillingError::PaymentDeclined`] (and is not recorded under the key, so the customer can
    /// try again).
    async fn charge_flow<T, F>(
        &self,
        key: Option<&str>,
        operation: &str,
        request: &impl Serialize,
        mut prepare: impl FnMut(DateTime<Utc>) -> F,
        respond: impl Fn(&charge::Settled) -> Result<T> + Send + Sync,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<charge::Intent>>,
    {
        let fingerprint = fingerprint(operation, request)?;
        if let Some(done) = self.replay(key, &fingerprint).await? {
            return Ok(done);
        }
        let attempt = self
            .retrying(operation, || {
                let prepared = prepare(self.now());
                async move {
                    let intent = prepared.await?;
                    self.store.commit(intent.changes).await?;
                    Ok(intent.attempt)
                }
            })
            .await?;
        let serialize = |settled: &charge::Settled| -> Result<String> {
            serde_json::to_string(&respond(settled)?)
                .map_err(|e| InvalidField::new("response", e).into())
        };
        let finish = key.map(|key| Finish {
            key,
            fingerprint: &fingerprint,
            respond: &serialize,
        });
        let settled = self
            .charge_and_settle(&attempt, finish.as_ref())
            .await?
            .into_paid()?;
        respond(&settled)
    }

    /// The engine's test clock is moved to `until`, processing every deadline on the way. See
    /// [`Billing::advance_to`].
    fn check_test_clock(&self, clock: &TestClock) -> Result<()> {
        if clock.now() == self.now() {
            Ok(())
        } else {
            Err(InvalidField::new("clock", "is not the clock this engine was built with").into())
        }
    }
}

/// The idempotency record an API call adds to the commit that settles its charge (when paid),
/// so a repeat finds the answer even if the process stops right after.
pub(crate) struct Finish<'a> {
    key: &'a str,
    fingerprint: &'a str,
    respond: &'a (dyn Fn(&charge::Settled) -> Result<String> + Send + Sync),
}

impl std::fmt::Debug for Finish<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finish")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Finish<'_> {
    fn attach(
        &self,
        billing: &Billing,
        changes: &mut crate::store::ChangeSet,
        settled: &charge::Settled,
        now: DateTime<Utc>,
    ) -> Result<()> {
        changes
            .idempotency
            .push(crate::store::Put::of(IdempotencyRecord {
                key: self.key.to_owned(),
                fingerprint: self.fingerprint.to_owned(),
                response: (self.respond)(settled)?,
                created_at: now,
                expires_at: now + billing.config.idempotency_ttl,
                version: 0,
            }));
        Ok(())
    }
}

/// A fingerprint of a request: the operation and its arguments, hashed.
fn fingerprint(operation: &str, request: &impl Serialize) -> Result<String> {
    let body = serde_json::to_string(request).map_err(|e| InvalidField::new("request", e))?;
    let digest = Sha256::new()
        .chain_update(operation.as_bytes())
        .chain_update(b"\n")
        .chain_update(body.as_bytes())
        .finalize();
    Ok(digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
}

/// The operations of [`Billing`], made idempotent with a key. See [`Billing::idempotent`].
#[derive(Debug, Clone, Copy)]
pub struct Idempotent<'a> {
    billing: &'a Billing,
    key: &'a str,
}

impl<'a> Idempotent<'a> {
    /// Customers, idempotently.
    #[must_use]
    pub fn customers(self) -> Customers<'a> {
        Customers::new(self.billing, Some(self.key))
    }

    /// Plans and prices, idempotently.
    #[must_use]
    pub fn catalog(self) -> CatalogApi<'a> {
        CatalogApi::new(self.billing, Some(self.key))
    }

    /// Subscriptions, idempotently.
    #[must_use]
    pub fn subscriptions(self) -> Subscriptions<'a> {
        Subscriptions::new(self.billing, Some(self.key))
    }

    /// Checkout, idempotently.
    #[must_use]
    pub fn checkout(self) -> Checkout<'a> {
        Checkout::new(self.billing, Some(self.key))
    }

    /// Invoices, idempotently.
    #[must_use]
    pub fn invoices(self) -> Invoices<'a> {
        Invoices::new(self.billing, Some(self.key))
    }
}

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
