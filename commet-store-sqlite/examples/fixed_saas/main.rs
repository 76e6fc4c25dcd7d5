//! The fixed-price `SaaS` story, on SQLite: a 50 USD/month plan, a year of it.
//!
//! ```text
//! cargo run -p commet-store-sqlite --example fixed_saas            # a database in a temporary directory
//! cargo run -p commet-store-sqlite --example fixed_saas -- ./data  # or in a directory of your choice
//! ```
//!
//! Seven customers sign up through checkout on 2025-01-01. Over the year: Ben's card is declined
//! once and recovers on the first retry; Chloe's card is reported stolen and she puts a new one
//! on file; Dan's card keeps failing until dunning gives up; Eve cancels at the end of a period;
//! Fay upgrades to Pro mid-month; Gus never finishes checkout and support activates him by hand
//! (he was migrated from another system), then he puts a card on file. The engine runs on a
//! test clock, so the year takes a moment; the payment provider is the test kit's fake one.
//!
//! Two webhook endpoints receive the events over HTTP from a server the story starts on
//! 127.0.0.1 (`receiver.rs`), which verifies every delivery with Commet's scheme and with
//! Standard Webhooks: a CRM that takes every event, and a data warehouse that takes payments
//! and invoices and is down for two hours on Jan 16, so its deliveries are retried on the
//! schedule until it is back.
//!
//! It prints the timeline of events, then every invoice, then the webhook delivery log, and
//! writes every issued invoice as a PDF (`commet-pdf`, US Letter) into `invoices/` beside the
//! database: the seller's details come from the engine's issuer, Ana's from her company's
//! billing details.

mod receiver;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use commet_core::calendar::Interval;
use commet_core::catalog::{NewPlan, NewPrice, Price, PricingModel};
use commet_core::clock::TestClock;
use commet_core::customer::CustomerDetails;
use commet_core::delivery::{AttemptOutcome, EventFilter, NewEndpoint, WebhookEndpoint};
use commet_core::event::{Event, EventKind};
use commet_core::ids::{CustomerId, SubscriptionId};
use commet_core::invoice::{BillingDetails, Issuer, PostalAddress};
use commet_core::subscription::{AdminUpdate, SubscriptionStatus};
use commet_core::token::SigningKey;
use commet_engine::store::{DeliveryQuery, InvoiceQuery, Store, every_page};
use commet_engine::testkit::gateway::{Behaviour, FakeGateway};
use commet_engine::{Billing, BillingConfig, CancelRequest, CreateSubscription, SubscriptionView};
use commet_pdf::{PaperSize, PdfRenderer};
use commet_store_sqlite::SqliteStore;
use commet_webhooks::HttpTransport;
use receiver::Server;

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

struct Story {
    billing: Billing,
    gateway: Arc<FakeGateway>,
    names: BTreeMap<CustomerId, String>,
    printed: u64,
    receivers: Server,
    endpoints: Vec<(&'static str, WebhookEndpoint)>,
}

impl Story {
    async fn customer(&mut self, name: &str) -> Result<CustomerId, Failure> {
        let customer = self
            .billing
            .customers()
            .create(CustomerDetails {
                external_id: Some(name.to_lowercase()),
                email: format!("{}@example.com", name.to_lowercase()),
                full_name: Some(name.into()),
                metadata: BTreeMap::new(),
            })
            .await?;
        self.names.insert(customer.id(), name.into());
        Ok(customer.id())
    }

    /// Create a subscription; it waits on its checkout link.
    async fn subscribe(
        &mut self,
        customer: CustomerId,
        price: &Price,
    ) -> Result<SubscriptionView, Failure> {
        Ok(self
            .billing
            .subscriptions()
            .create(CreateSubscription {
                customer,
                items: vec![(price.id(), 1)],
                draft: false,
                success_url: Some("https://fixed.example.com/welcome".into()),
                cancel_url: None,
                metadata: BTreeMap::new(),
            })
            .await?)
    }

    /// Sign up through checkout: create the subscription, open its link, pay.
    async fn sign_up(
        &mut self,
        customer: CustomerId,
        price: &Price,
        card: &str,
    ) -> Result<SubscriptionId, Failure> {
        let view = self.subscribe(customer, price).await?;
        let id = view.subscription.id();
        if let Some(url) = view.checkout_url {
            let token = url.token().ok_or("the checkout link has no token")?;
            self.billing.checkout().complete(id, token, card).await?;
        }
        Ok(id)
    }

    async fn advance_to(&mut self, until: DateTime<Utc>) -> Result<(), Failure> {
        self.billing.advance_to(until).await?;
        self.print_new_events().await
    }

    fn name(&self, customer: CustomerId) -> &str {
        self.names.get(&customer).map_or("?", String::as_str)
    }

    /// Print the events committed since the last call, one line each.
    async fn print_new_events(&mut self) -> Result<(), Failure> {
        let events = self.billing.events_after(self.printed, 10_000).await?;
        for stored in events {
            self.printed = stored.seq;
            let at = stored.envelope.timestamp.format("%Y-%m-%d");
            let kind = stored.envelope.event.kind();
            let detail = self.describe(&stored.envelope.event);
            println!("  {at}  {:<36} {detail}", kind.as_str());
        }
        Ok(())
    }

    fn describe(&self, event: &Event) -> String {
        let cents = |minor: i64| format!("{}.{:02}", minor / 100, (minor % 100).abs());
        match event {
            Event::CustomerCreated(data) => data.email.clone(),
            Event::SubscriptionCreated(data) => {
                format!("{} on {}", self.name(data.customer_id), data.plan_name)
            }
            Event::SubscriptionActivated(data) | Event::SubscriptionReactivated(data) => {
                self.name(data.customer_id).to_owned()
            }
            Event::CheckoutReady(data) => format!(
                "{} pays {} USD at {}",
                self.name(data.customer_id),
                cents(data.invoice_total),
                data.checkout_url
                    .as_str()
                    .split('?')
                    .next()
                    .unwrap_or_default()
            ),
            Event::InvoiceCreated(data) => format!(
                "{} {} USD ({})",
                data.invoice_number,
                cents(data.total),
                data.invoice_status
            ),
            Event::InvoiceVoided(data) => data.invoice_number.clone(),
            Event::PaymentReceived(data) => format!(
                "{} paid {} USD",
                data.invoice_number,
                cents(data.gross_amount)
            ),
            Event::PaymentFailed(data) => format!(
                "{} {}: {}, retry {}",
                self.name(data.customer_id),
                data.invoice_number,
                data.failure_code,
                data.retry_at.map_or("when the card changes".into(), |at| at
                    .format("%Y-%m-%d")
                    .to_string())
            ),
            Event::SubscriptionPaymentFailed(data) => {
                format!("{} attempt {}", self.name(data.customer_id), data.attempt)
            }
            Event::PaymentRecovered(data) => format!(
                "{} {} after {} failed attempts",
                self.name(data.customer_id),
                data.invoice_number,
                data.failed_attempts
            ),
            Event::PaymentRetryFailed(data) => {
                format!(
                    "{}: dunning exhausted ({})",
                    self.name(data.customer_id),
                    data.reason
                )
            }
            Event::SubscriptionPastDue(data) => self.name(data.customer_id).to_owned(),
            Event::SubscriptionCanceled(data) | Event::SubscriptionUpdated(data) => format!(
                "{} {}{}",
                self.name(data.customer_id),
                data.status,
                data.cancel_reason
                    .as_ref()
                    .map_or(String::new(), |reason| format!(" ({reason})"))
            ),
            Event::SubscriptionCancellationScheduled(data) => format!(
                "{} leaves on {}",
                self.name(data.customer_id),
                data.effective_at.format("%Y-%m-%d")
            ),
            Event::SubscriptionPlanChanged(data) => format!(
                "{} {} -> {}: credit {}, charge {}",
                self.name(data.customer_id),
                data.previous_plan.name,
                data.current_plan.name,
                cents(data.credit),
                cents(data.charge)
            ),
            Event::CustomerUpdated(data) => format!("{} updated", data.email),
            other => self.name_of(other),
        }
    }

    fn name_of(&self, event: &Event) -> String {
        serde_json::to_value(event)
            .ok()
            .and_then(|json| {
                json.pointer("/data/customerId")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            })
            .and_then(|id| id.parse().ok())
            .map_or(String::new(), |id: CustomerId| self.name(id).to_owned())
    }
}

async fn define(billing: &Billing, code: &str, name: &str, amount: &str) -> Result<Price, Failure> {
    let plan = billing
        .catalog()
        .define_plan(NewPlan {
            code: code.into(),
            name: name.into(),
            description: None,
        })
        .await?;
    Ok(billing
        .catalog()
        .define_price(NewPrice {
            plan: plan.id(),
            unit_amount: amount.parse()?,
            interval: Interval::MONTHLY,
            trial_days: 0,
            model: PricingModel::Flat,
        })
        .await?)
}

fn lookup<T: Copy>(map: &BTreeMap<&str, T>, name: &str) -> Result<T, Failure> {
    map.get(name)
        .copied()
        .ok_or_else(|| format!("nobody called {name} in the story").into())
}

async fn run() -> Result<(), Failure> {
    let (directory, _temporary) = match std::env::args().nth(1) {
        Some(directory) => {
            std::fs::create_dir_all(&directory)?;
            (PathBuf::from(directory), None)
        }
        None => {
            let temporary = tempfile::tempdir()?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let path = directory.join("fixed_saas.db");
    if path.exists() {
        return Err(format!("{} exists already: give an empty directory", path.display()).into());
    }
    let database: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    let clock = TestClock::new(day(2025, 1, 1));
    let gateway = Arc::new(FakeGateway::new());
    let mut config = BillingConfig::new("org_fixed_saas", SigningKey::generate()?);
    config.checkout_base_url = "https://billing.fixed.example.com/checkout".into();
    // The receivers listen on http://127.0.0.1 (a sandbox engine may reach private addresses).
    config.webhooks.allow_http = true;
    config.issuer = Some(Issuer {
        legal_name: "Fixed SaaS Inc.".into(),
        address: PostalAddress {
            line1: "500 Market Street".into(),
            line2: Some("Suite 200".into()),
            city: "San Francisco".into(),
            postal_code: Some("94105".into()),
            region: Some("CA".into()),
            country: "US".into(),
        },
        tax_id: Some("EIN 12-3456789".into()),
        email: "billing@fixed.example.com".into(),
        logo: None,
        footer: Some("Thank you for your business. Questions: billing@fixed.example.com".into()),
    });
    let (receivers, server) = Server::start(clock.clone()).await?;
    let billing = Billing::new(database, gateway.clone(), Arc::new(clock), config)?
        .with_transport(Arc::new(HttpTransport::new()?))
        .with_renderer(Arc::new(PdfRenderer::new().paper(PaperSize::Letter)));
    let mut story = Story {
        billing,
        gateway,
        names: BTreeMap::new(),
        printed: 0,
        receivers,
        endpoints: Vec::new(),
    };
    println!(
        "Fixed SaaS, a year on commet (database: {})\n",
        path.display()
    );
    story.register_endpoints().await?;
    Box::pin(live_the_year(&mut story)).await?;
    print_invoices(&story).await?;
    print_deliveries(&story).await?;
    write_pdfs(&story, &directory).await?;
    server.abort();
    Ok(())
}

/// Every issued invoice as a PDF, in `invoices/` beside the database.
async fn write_pdfs(story: &Story, directory: &std::path::Path) -> Result<(), Failure> {
    let folder = directory.join("invoices");
    std::fs::create_dir_all(&folder)?;
    let list = story.billing.invoices();
    let invoices = every_page(|page| list.list(InvoiceQuery::default(), page)).await?;
    let (mut files, mut bytes) = (0, 0);
    for invoice in &invoices {
        let Some(number) = invoice.number() else {
            continue;
        };
        let pdf = list.pdf(invoice.id()).await?;
        std::fs::write(folder.join(format!("{}.pdf", number.as_str())), &pdf.bytes)?;
        files += 1;
        bytes += pdf.bytes.len();
    }
    println!(
        "\n{files} invoice PDFs ({} KiB in all) written to {}",
        bytes / 1024,
        folder.display()
    );
    Ok(())
}

impl Story {
    /// Ana bills through her company: its legal details go on her invoices.
    async fn bill_ana_through_her_company(&self, ana: CustomerId) -> Result<(), Failure> {
        self.billing
            .customers()
            .set_billing_details(
                ana,
                Some(BillingDetails {
                    legal_name: "Zoë Müller–Straße Consulting GmbH".into(),
                    address: PostalAddress {
                        line1: "Friedrichstraße 123".into(),
                        line2: None,
                        city: "Berlin".into(),
                        postal_code: Some("10117".into()),
                        region: None,
                        country: "DE".into(),
                    },
                    tax_id: Some("DE987654321".into()),
                }),
            )
            .await?;
        Ok(())
    }

    /// A CRM that takes every event, and a warehouse that takes payments and invoices.
    async fn register_endpoints(&mut self) -> Result<(), Failure> {
        let warehouse_events = [
            EventKind::InvoiceCreated,
            EventKind::InvoiceVoided,
            EventKind::PaymentReceived,
            EventKind::PaymentFailed,
            EventKind::PaymentRecovered,
            EventKind::PaymentRetryFailed,
        ];
        for (name, events) in [
            ("crm", EventFilter::All),
            ("warehouse", EventFilter::Only(warehouse_events.into())),
        ] {
            let endpoint = self
                .billing
                .webhooks()
                .create(NewEndpoint {
                    url: self.receivers.url(name),
                    events,
                    description: Some(format!("the {name}")),
                    enabled: true,
                })
                .await?;
            // The secret is shown once: the receiver keeps it.
            self.receivers.trust(name, endpoint.secret().clone());
            self.endpoints.push((name, endpoint));
        }
        // The warehouse is down for two hours on the morning of Jan 16.
        let outage = day(2025, 1, 16);
        self.receivers
            .down_between("warehouse", outage, outage + chrono::TimeDelta::hours(2));
        Ok(())
    }
}

/// The delivery log, per endpoint, and the retries of the warehouse's outage.
async fn print_deliveries(story: &Story) -> Result<(), Failure> {
    println!("\nWebhooks\n");
    println!(
        "  {:<10} {:>10} {:>10} {:>7} {:>9} {:>10} {:>9} {:>7}",
        "endpoint",
        "deliveries",
        "delivered",
        "failed",
        "attempts",
        "retried",
        "verified",
        "forged"
    );
    let webhooks = story.billing.webhooks();
    let mut outage = Vec::new();
    for (name, endpoint) in &story.endpoints {
        let query = DeliveryQuery {
            endpoint: Some(endpoint.id()),
            ..DeliveryQuery::default()
        };
        let mut deliveries = every_page(|page| webhooks.deliveries(query, page)).await?;
        deliveries.reverse();
        let delivered = deliveries
            .iter()
            .filter(|d| d.status() == commet_core::delivery::DeliveryStatus::Succeeded)
            .count();
        let attempts: usize = deliveries.iter().map(|d| d.attempts().len()).sum();
        let retried: Vec<_> = deliveries
            .iter()
            .filter(|d| d.attempts().len() > 1)
            .collect();
        let seen = story.receivers.seen(name);
        println!(
            "  {:<10} {:>10} {:>10} {:>7} {:>9} {:>10} {:>9} {:>7}",
            name,
            deliveries.len(),
            delivered,
            deliveries.len() - delivered,
            attempts,
            retried.len(),
            seen.verified,
            seen.forged
        );
        if seen.events.len() != delivered {
            return Err(format!(
                "{name} received {} events, {delivered} delivered",
                seen.events.len()
            )
            .into());
        }
        if let Some(first) = retried.first() {
            outage.push(((*name).to_owned(), (*first).clone()));
        }
    }
    for (name, delivery) in outage {
        println!(
            "\n  The {name}'s outage: {} ({}), event {}",
            delivery.id(),
            delivery.event_kind().as_str(),
            delivery.event()
        );
        for attempt in delivery.attempts() {
            let outcome = match &attempt.outcome {
                Some(AttemptOutcome::Response { status, .. }) => format!("HTTP {status}"),
                Some(AttemptOutcome::NoResponse { error, .. }) => error.clone(),
                Some(AttemptOutcome::Interrupted) => "interrupted".into(),
                None => "in flight".into(),
            };
            println!(
                "    attempt {}  {}  {:<9} {} ms",
                attempt.number,
                attempt.started_at.format("%Y-%m-%d %H:%M"),
                outcome,
                attempt.latency_ms.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The year, told in the order it happens.
async fn live_the_year(story: &mut Story) -> Result<(), Failure> {
    let fixed = define(&story.billing, "fixed", "Fixed", "50 USD").await?;
    let pro = define(&story.billing, "pro", "Pro", "100 USD").await?;
    // Ben's card fails its second charge (the first renewal) once; Chloe's third is refused as
    // stolen; Dan's works for the checkout and fails from February.
    story.gateway.register(
        "pm_ben",
        Behaviour::DeclineNth {
            n: 2,
            code: "insufficient_funds".into(),
        },
    );
    story.gateway.register(
        "pm_chloe",
        Behaviour::DeclineNth {
            n: 3,
            code: "stolen_card".into(),
        },
    );
    story.gateway.register("pm_dan", Behaviour::Succeed);

    let mut customers = BTreeMap::new();
    let mut signups = BTreeMap::new();
    for (name, card) in [
        ("Ana", "pm_card_visa"),
        ("Ben", "pm_ben"),
        ("Chloe", "pm_chloe"),
        ("Dan", "pm_dan"),
        ("Eve", "pm_card_visa"),
        ("Fay", "pm_card_visa"),
    ] {
        let customer = story.customer(name).await?;
        if name == "Ana" {
            story.bill_ana_through_her_company(customer).await?;
        }
        customers.insert(name, customer);
        signups.insert(name, story.sign_up(customer, &fixed, card).await?);
    }
    let gus = story.customer("Gus").await?;
    // Gus gets a checkout link too, but never opens it.
    let gus_subscription = story.subscribe(gus, &fixed).await?.subscription.id();
    story.print_new_events().await?;

    // Fay upgrades to Pro on Jan 16: 16 of January's 31 days unused, so 50 x 16/31 = 25.81 is
    // credited against 100.00 for a new month from Jan 16.
    story.advance_to(day(2025, 1, 16)).await?;
    story
        .billing
        .subscriptions()
        .change_plan(lookup(&signups, "Fay")?, vec![(pro.id(), 1)])
        .await?;
    story.print_new_events().await?;

    // Gus was migrated from another billing system: support activates him by hand.
    story
        .billing
        .subscriptions()
        .update(
            gus_subscription,
            AdminUpdate {
                status: SubscriptionStatus::Active,
                reason: "migrated from the old billing system".into(),
                actor: "support:maria".into(),
                invoice_policy: None,
            },
        )
        .await?;
    story.print_new_events().await?;

    // From February on, Dan's card is declined every time: dunning retries 1, 3, 5 and 7 days
    // after the first failure, then cancels.
    story.gateway.register(
        "pm_dan",
        Behaviour::Decline {
            code: "card_declined".into(),
        },
    );
    // Gus puts a card on file before his first renewal on Feb 16.
    story.advance_to(day(2025, 2, 1)).await?;
    story
        .billing
        .customers()
        .set_payment_method(gus, "pm_card_visa")
        .await?;
    story.print_new_events().await?;
    story.advance_to(day(2025, 3, 5)).await?;

    // Chloe's card was reported stolen at the March renewal (a hard decline: nothing is retried
    // until the card changes, for up to 7 days); she puts a new one on file, which retries her
    // invoice at once.
    story
        .billing
        .customers()
        .set_payment_method(lookup(&customers, "Chloe")?, "pm_card_visa")
        .await?;
    story.print_new_events().await?;

    // Eve leaves at the end of her current period.
    story.advance_to(day(2025, 4, 10)).await?;
    story
        .billing
        .subscriptions()
        .cancel(
            lookup(&signups, "Eve")?,
            CancelRequest {
                at_period_end: true,
                comment: Some("moving to a competitor".into()),
            },
        )
        .await?;
    story.print_new_events().await?;

    story.advance_to(day(2025, 12, 31)).await?;
    Ok(())
}

/// Every invoice of the year, oldest first.
async fn print_invoices(story: &Story) -> Result<(), Failure> {
    println!("\nInvoices\n");
    println!(
        "  {:<12} {:<6} {:<25} {:<14} {:>10} {:>10}",
        "number", "who", "period", "status", "total", "paid"
    );
    let list = story.billing.invoices();
    let mut invoices = every_page(|page| list.list(InvoiceQuery::default(), page)).await?;
    invoices.reverse();
    for invoice in &invoices {
        let period = invoice.period().map_or(String::new(), |p| {
            format!(
                "{} to {}",
                p.start().format("%Y-%m-%d"),
                p.end().format("%Y-%m-%d")
            )
        });
        println!(
            "  {:<12} {:<6} {:<25} {:<14} {:>10} {:>10}",
            invoice.number().map_or("-", |n| n.as_str()),
            story.name(invoice.customer()),
            period,
            invoice.status().as_str(),
            invoice.total().amount(),
            invoice.amount_paid().amount()
        );
    }
    let taken: i64 = story
        .gateway
        .ledger()
        .iter()
        .map(|c| c.amount.minor_units())
        .sum();
    println!(
        "\n{} invoices, {} events, {}.{:02} USD collected.",
        invoices.len(),
        story.printed,
        taken / 100,
        taken % 100
    );
    Ok(())
}
