//! [`Billing`]: the engine a service embeds, and what its parts share (the catalog as last read,
//! the decision context, envelopes, the reads every flow makes).

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use commet_core::catalog::Catalog;
use commet_core::clock::Clock;
use commet_core::event::{Envelope, Event};
use commet_core::ids::{CustomerId, IdGenerator, SubscriptionId};
use commet_core::invoice::{Invoice, InvoiceStatus};
use commet_core::policy::BillingPolicy;
use commet_core::subscription::{Access, Context, access_for};
use commet_core::token::{Links, Purpose, SignedUrl};

use crate::api::{CatalogApi, Checkout, Customers, Invoices, Subscriptions, Webhooks};
use crate::config::BillingConfig;
use crate::error::Result;
use crate::gateway::PaymentGateway;
use crate::render::InvoiceRenderer;
use crate::store::{InvoiceQuery, Store, StoredEvent, SubscriptionQuery, every_page};
use crate::webhooks::Transport;

/// How many times an operation that lost a race is run again before giving up.
pub(crate) const MAX_RUNS: usize = 16;

/// The billing engine. Build one per process and share it (it is `Send + Sync`).
///
/// In production the store is a `commet_store_sqlite::SqliteStore`, the gateway your
/// payment provider's adapter and the clock [`SystemClock`](commet_core::clock::SystemClock); in
/// tests, as here, an in-memory store, the test kit's fake gateway and a
/// [`TestClock`](commet_core::clock::TestClock) that [`Billing::advance_to`] moves.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use commet_core::clock::TestClock;
/// use commet_core::customer::CustomerDetails;
/// use commet_core::token::SigningKey;
/// use commet_engine::testkit::gateway::FakeGateway;
/// use commet_engine::{Billing, BillingConfig};
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
    pub(crate) store: Arc<dyn Store>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    pub(crate) ids: IdGenerator,
    config: BillingConfig,
    pub(crate) policy: BillingPolicy,
    catalog: Mutex<Option<Arc<Catalog>>>,
    pub(crate) transport: Option<Arc<dyn Transport>>,
    pub(crate) renderer: Option<Arc<dyn InvoiceRenderer>>,
}

impl Billing {
    /// An engine over a store, a payment gateway and a clock. The configuration is checked
    /// first: the error names the field.
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
            policy: config.policy(),
            config,
            catalog: Mutex::new(None),
            transport: None,
            renderer: None,
        })
    }

    /// The same engine, rendering invoices with `renderer` (`commet_pdf::PdfRenderer` for
    /// PDFs): [`Invoices::pdf`](crate::Invoices::pdf) needs one.
    #[must_use]
    pub fn with_renderer(mut self, renderer: Arc<dyn InvoiceRenderer>) -> Billing {
        self.renderer = Some(renderer);
        self
    }

    /// The same engine, delivering webhooks through `transport` (`commet_webhooks::HttpTransport`
    /// in production, a fake in tests). Without one, endpoints cannot be registered and no
    /// delivery is made.
    #[must_use]
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Billing {
        self.transport = Some(transport);
        self
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

    /// Webhook endpoints and their deliveries.
    #[must_use]
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks::new(self)
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
        let query = SubscriptionQuery {
            customer: Some(customer),
            status: None,
        };
        let subscriptions = every_page(|page| self.store.subscriptions(query, page)).await?;
        Ok(access_for(&subscriptions, self.now(), self.config.access))
    }

    // ---- what the parts share --------------------------------------------------------------

    /// Move the clock (see [`Billing::advance_to`]).
    pub(crate) fn move_clock(&self, to: DateTime<Utc>) -> Result<()> {
        Ok(self.clock.move_to(to)?)
    }

    /// The catalog as last read (read now if never, or again if `refresh`). Plans and prices
    /// are insert-only, so what was read never goes stale; something defined since is read
    /// when a decision asks for it ([`SubscriptionError::NotInCatalog`](commet_core::subscription::SubscriptionError::NotInCatalog)).
    pub(crate) async fn catalog_view(&self, refresh: bool) -> Result<Arc<Catalog>> {
        if !refresh
            && let Some(catalog) = self
                .catalog
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        {
            return Ok(catalog);
        }
        let catalog = Arc::new(Catalog::new(
            self.store.plans().await?,
            self.store.prices().await?,
        ));
        *self.catalog.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&catalog));
        Ok(catalog)
    }

    /// The context of a decision at `now` over `catalog`.
    pub(crate) fn context<'a>(&'a self, catalog: &'a Catalog, now: DateTime<Utc>) -> Context<'a> {
        Context {
            now,
            catalog,
            policy: &self.policy,
            provider: Some(self.gateway.name()),
            ids: &self.ids,
        }
    }

    /// Events in envelopes stamped `now`.
    pub(crate) fn envelopes(
        &self,
        events: impl IntoIterator<Item = Event>,
        now: DateTime<Utc>,
    ) -> Vec<Envelope> {
        events
            .into_iter()
            .map(|event| Envelope {
                id: self.ids.next(now),
                timestamp: now,
                organization_id: self.config.organization_id.clone(),
                mode: self.config.mode,
                api_version: self.config.api_version.clone(),
                event,
            })
            .collect()
    }

    /// The engine's signed links.
    pub(crate) fn links(&self) -> &Links {
        &self.policy.links
    }

    /// The checkout link of a subscription: the provider's hosted page if it has one, commet's
    /// signed link otherwise.
    pub(crate) async fn checkout_url(
        &self,
        subscription: SubscriptionId,
        amount: commet_core::money::Money,
        now: DateTime<Utc>,
    ) -> Result<SignedUrl> {
        if let Some(hosted) = self
            .gateway
            .hosted_checkout_url(subscription, amount)
            .await?
        {
            return Ok(SignedUrl::external(hosted));
        }
        Ok(self
            .links()
            .issue(Purpose::Checkout, &subscription.to_string(), now)?)
    }

    /// The outstanding invoices of a subscription.
    pub(crate) async fn outstanding_invoices(&self, id: SubscriptionId) -> Result<Vec<Invoice>> {
        let query = InvoiceQuery {
            customer: None,
            subscription: Some(id),
            status: Some(InvoiceStatus::Outstanding),
        };
        Ok(every_page(|page| self.store.invoices(query, page)).await?)
    }
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
