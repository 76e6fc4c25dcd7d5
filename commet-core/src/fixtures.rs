//! Fixtures (feature `fixtures`): a small catalog, customers, and subscriptions, invoices, attempts and events in
//! every state, all built through the real commands so they are always consistent.
//!
//! Ids come from a seeded [`IdGenerator`], so two fixture sets built alike are equal.

// Test code: a panic is how a check fails, and checks read best indexed and in one piece.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::calendar::{Frequency, Interval, Period};
use crate::catalog::{Catalog, NewPlan, NewPrice, Plan, Price, PricingModel};
use crate::customer::{Customer, CustomerDetails};
use crate::dunning::{DunningPolicy, DunningStep};
use crate::event::{DEFAULT_API_VERSION, Envelope, Event, Mode};
use crate::ids::{CustomerId, IdGenerator, InvoiceId, PlanId, PriceId, SubscriptionId};
use crate::invoice::{Invoice, InvoiceKind, InvoiceStatus, NumberSeries, PeriodInvoice};
use crate::money::{Currency, Money, RoundingPolicy, UnitAmount};
use crate::payment::{AttemptStatus, ChargePurpose, PaymentAttempt};
use crate::policy::BillingPolicy;
use crate::subscription::{
    ChargeOutcome, CheckoutCompletion, CheckoutOffer, Command, Context, Decision, FailedCharge,
    InvoiceSummary, NewSubscription, PaymentFailure, PlanChange, PricedItems, Settlement,
    Subscription,
};
use crate::token::{LinkBase, Links, SignedUrl, SigningKey};

/// Midnight UTC on a date.
#[must_use]
pub fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// A small catalog, the default billing policy, and builders for everything else.
///
/// Prices: `basic` 10 USD monthly, `pro` 50 USD monthly, `pro_trial` the same with a 14-day
/// trial, `pro_yearly` 500 USD yearly, `free` 0 USD monthly, `seats` 12.50 USD per seat
/// monthly, `euro` 45 EUR monthly.
#[derive(Debug)]
pub struct Fixtures {
    /// The id source (seeded: the same every time).
    pub ids: IdGenerator,
    /// Basic, Pro, Free and Team.
    pub plans: Vec<Plan>,
    /// 10 USD monthly.
    pub basic: Price,
    /// 50 USD monthly.
    pub pro: Price,
    /// 50 USD monthly with a 14-day trial.
    pub pro_trial: Price,
    /// 500 USD yearly.
    pub pro_yearly: Price,
    /// Free, monthly.
    pub free: Price,
    /// 12.50 USD per seat monthly.
    pub seats: Price,
    /// 45 EUR monthly.
    pub euro: Price,
    /// All of the above, as decisions see the catalog.
    pub catalog: Catalog,
    /// The default policy, links to `https://billing.example.com/...`.
    pub policy: BillingPolicy,
}

impl Default for Fixtures {
    fn default() -> Self {
        Fixtures::new()
    }
}

impl Fixtures {
    /// The catalog, with ids from a generator seeded with 1.
    #[must_use]
    pub fn new() -> Fixtures {
        let ids = IdGenerator::seeded(1);
        let at = utc(2023, 1, 1);
        let plan = |code: &str, name: &str| {
            Plan::new(
                ids.next::<PlanId>(at),
                NewPlan {
                    code: code.into(),
                    name: name.into(),
                    description: None,
                },
            )
            .unwrap()
        };
        let (basic_plan, pro_plan, free_plan, team_plan) = (
            plan("basic", "Basic"),
            plan("pro", "Pro"),
            plan("free", "Free"),
            plan("team", "Team"),
        );
        let price = |plan: &Plan, amount: &str, interval, trial_days, model| {
            Price::new(
                ids.next::<PriceId>(at),
                NewPrice {
                    plan: plan.id(),
                    unit_amount: amount.parse::<UnitAmount>().unwrap(),
                    interval,
                    trial_days,
                    model,
                },
            )
            .unwrap()
        };
        let monthly = Interval::MONTHLY;
        let mut fixtures = Fixtures {
            basic: price(&basic_plan, "10 USD", monthly, 0, PricingModel::Flat),
            pro: price(&pro_plan, "50 USD", monthly, 0, PricingModel::Flat),
            pro_trial: price(&pro_plan, "50 USD", monthly, 14, PricingModel::Flat),
            pro_yearly: price(
                &pro_plan,
                "500 USD",
                Interval::YEARLY,
                0,
                PricingModel::Flat,
            ),
            free: price(&free_plan, "0 USD", monthly, 0, PricingModel::Flat),
            seats: price(
                &team_plan,
                "12.5 USD",
                Interval::new(Frequency::Monthly, 1).unwrap(),
                0,
                PricingModel::PerSeat,
            ),
            euro: price(&pro_plan, "45 EUR", monthly, 0, PricingModel::Flat),
            plans: vec![basic_plan, pro_plan, free_plan, team_plan],
            ids,
            catalog: Catalog::default(),
            policy: Fixtures::policy(),
        };
        fixtures.catalog = Catalog::new(
            fixtures.plans.clone(),
            fixtures.prices().into_iter().cloned(),
        );
        fixtures
    }

    /// The parties of the fixtures' invoices: Acme Inc. sells to Ana.
    #[must_use]
    pub fn parties() -> crate::invoice::InvoiceParties {
        crate::invoice::InvoiceParties {
            issuer: crate::invoice::Party {
                legal_name: "Acme Inc.".into(),
                email: Some("billing@acme.example".into()),
                address: None,
                tax_id: None,
            },
            customer: crate::invoice::Party {
                legal_name: "Ana".into(),
                email: Some("ana@example.com".into()),
                address: None,
                tax_id: None,
            },
            footer: None,
        }
    }

    /// The default billing policy, with links to `https://billing.example.com/...` signed by a
    /// fixed key.
    #[must_use]
    pub fn policy() -> BillingPolicy {
        let base = |path: &str, ttl| LinkBase {
            base_url: format!("https://billing.example.com/{path}"),
            ttl,
        };
        BillingPolicy {
            dunning: DunningPolicy::default(),
            rounding: RoundingPolicy::default(),
            checkout_expires_after: None,
            links: Links {
                key: SigningKey::from_bytes(&[42; 32]).unwrap(),
                checkout: base("checkout", TimeDelta::hours(24)),
                portal: base("portal", TimeDelta::hours(1)),
                recovery: base("recover", TimeDelta::days(7)),
            },
            seller: Fixtures::parties().issuer,
            footer: None,
        }
    }

    /// Every price.
    #[must_use]
    pub fn prices(&self) -> Vec<&Price> {
        vec![
            &self.basic,
            &self.pro,
            &self.pro_trial,
            &self.pro_yearly,
            &self.free,
            &self.seats,
            &self.euro,
        ]
    }

    /// A decision context at `now` with this catalog and policy.
    #[must_use]
    pub fn context(&self, now: DateTime<Utc>) -> Context<'_> {
        Context {
            now,
            catalog: &self.catalog,
            policy: &self.policy,
            provider: Some("fake"),
            ids: &self.ids,
        }
    }

    /// The items of a subscription to one price (3 seats for the per-seat price).
    #[must_use]
    pub fn items(&self, price: &Price) -> PricedItems {
        let quantity = if price.id() == self.seats.id() { 3 } else { 1 };
        PricedItems::new(&[(price.clone(), quantity)]).unwrap()
    }

    /// A price of this catalog by id.
    #[must_use]
    pub fn price(&self, id: PriceId) -> &Price {
        self.prices()
            .into_iter()
            .find(|price| price.id() == id)
            .unwrap()
    }

    /// True if every item of the subscription is free.
    #[must_use]
    pub fn is_free(&self, subscription: &Subscription) -> bool {
        subscription
            .items()
            .iter()
            .all(|item| self.price(item.price).is_free())
    }

    /// A customer numbered `n` (unique external id and e-mail per `n`), created at `now`.
    #[must_use]
    pub fn customer(&self, n: u32, now: DateTime<Utc>) -> Customer {
        Customer::new(
            self.ids.next(now),
            CustomerDetails {
                external_id: Some(format!("user_{n}")),
                email: format!("user{n}@example.com"),
                full_name: Some(format!("Customer {n}")),
                metadata: BTreeMap::new(),
            },
            now,
        )
        .unwrap()
    }

    /// Customer `n`, but with the given id (to own a subscription built for that id).
    #[must_use]
    pub fn customer_with_id(&self, id: CustomerId, n: u32, now: DateTime<Utc>) -> Customer {
        Customer::from_record(crate::customer::CustomerRecord {
            id,
            ..self.customer(n, now).to_record()
        })
        .unwrap()
    }

    /// A checkout offer (expiring two days after `now` if `expires`).
    #[must_use]
    pub fn checkout(now: DateTime<Utc>, expires: bool) -> CheckoutOffer {
        CheckoutOffer {
            url: SignedUrl::new("https://billing.example.com/checkout", "sub", "t"),
            amount: Money::from_minor(5_000, Currency::USD),
            expires_at: expires.then(|| now + TimeDelta::days(2)),
            success_url: Some("https://app.example.com/welcome".into()),
            cancel_url: None,
        }
    }

    /// The summary of a USD invoice of `cents`, paid or outstanding.
    #[must_use]
    pub fn invoice(&self, now: DateTime<Utc>, cents: i64, status: &str) -> InvoiceSummary {
        let usd = |minor| Money::from_minor(minor, Currency::USD);
        let paid = status == "paid";
        InvoiceSummary {
            id: self.ids.next::<InvoiceId>(now),
            number: format!("INV-{cents:06}"),
            status: if paid {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Outstanding
            },
            subtotal: usd(cents),
            total: usd(cents),
            credited: usd(0),
            issued_at: now,
            due_at: now,
            amount_due: usd(cents),
            amount_paid: usd(if paid { cents } else { 0 }),
            period: None,
            payment_id: paid.then(|| "pay_1".to_owned()),
        }
    }

    /// How a subscription's next period is settled: free, or a paid 50 USD invoice.
    #[must_use]
    pub fn settlement(&self, subscription: &Subscription, now: DateTime<Utc>) -> Settlement {
        if self.is_free(subscription) {
            Settlement::Free
        } else {
            Settlement::Invoice(self.invoice(now, 5_000, "paid"))
        }
    }

    /// A soft decline at `now`, retried a day later.
    #[must_use]
    pub fn failed(&self, now: DateTime<Utc>, code: &str) -> FailedCharge {
        FailedCharge {
            invoice: self.invoice(now, 5_000, "outstanding"),
            failure: PaymentFailure {
                code: code.into(),
                message: "Your card was declined.".into(),
            },
            next: DunningStep::RetryAt {
                at: now + TimeDelta::days(1),
                attempt: 2,
                last: false,
            },
            recovery_url: Some(SignedUrl::new(
                "https://billing.example.com/recover",
                "sub",
                "r",
            )),
        }
    }

    /// A change to one price.
    #[must_use]
    pub fn change(&self, price: &Price) -> PlanChange {
        PlanChange {
            items: self.items(price),
        }
    }

    /// Create a subscription to `price` for a new customer.
    #[must_use]
    pub fn create(&self, price: &Price, draft: bool, now: DateTime<Utc>) -> Decision {
        self.create_for(self.ids.next(now), price, draft, now)
    }

    /// Create a subscription to `price` for `customer`.
    #[must_use]
    pub fn create_for(
        &self,
        customer: CustomerId,
        price: &Price,
        draft: bool,
        now: DateTime<Utc>,
    ) -> Decision {
        Subscription::create(
            NewSubscription {
                id: self.ids.next::<SubscriptionId>(now),
                customer,
                items: self.items(price),
                draft,
                checkout: Some(Fixtures::checkout(now, true)),
                metadata: BTreeMap::from([("account".into(), "acme".into())]),
            },
            &self.context(now),
        )
        .unwrap()
    }

    /// Apply a command that must succeed.
    #[must_use]
    pub fn apply(
        &self,
        subscription: &Subscription,
        command: &Command,
        now: DateTime<Utc>,
    ) -> Subscription {
        subscription
            .decide(command, &self.context(now))
            .unwrap_or_else(|e| panic!("{command:?} from {}: {e}", subscription.status()))
            .subscription
    }

    // Subscriptions in each status, created on 2024-01-31 (a month end).

    /// A draft.
    #[must_use]
    pub fn draft(&self) -> Subscription {
        self.create(&self.pro, true, utc(2024, 1, 31)).subscription
    }

    /// Waiting for checkout (expiring on Feb 2).
    #[must_use]
    pub fn pending(&self) -> Subscription {
        self.create(&self.pro, false, utc(2024, 1, 31)).subscription
    }

    /// Active on Pro from Jan 31: the period ends Feb 29.
    #[must_use]
    pub fn active(&self) -> Subscription {
        self.active_for(self.ids.next(utc(2024, 1, 31)))
    }

    /// Active on Pro from Jan 31, for `customer`.
    #[must_use]
    pub fn active_for(&self, customer: CustomerId) -> Subscription {
        let now = utc(2024, 1, 31);
        let pending = self
            .create_for(customer, &self.pro, false, now)
            .subscription;
        self.apply(
            &pending,
            &Command::CompleteCheckout(CheckoutCompletion::Paid {
                invoice: self.invoice(now, 5_000, "paid"),
            }),
            now,
        )
    }

    /// Active on the free plan from Jan 31.
    #[must_use]
    pub fn free(&self) -> Subscription {
        self.create(&self.free, false, utc(2024, 1, 31))
            .subscription
    }

    /// Trialing from Jan 31 to Feb 14.
    #[must_use]
    pub fn trialing(&self) -> Subscription {
        let now = utc(2024, 1, 31);
        let pending = self.create(&self.pro_trial, false, now).subscription;
        self.apply(
            &pending,
            &Command::CompleteCheckout(CheckoutCompletion::Trial {
                ends_at: now + TimeDelta::days(14),
            }),
            now,
        )
    }

    /// Past due since the Feb 29 renewal failed.
    #[must_use]
    pub fn past_due(&self) -> Subscription {
        let at = utc(2024, 2, 29);
        self.apply(
            &self.active(),
            &Command::Renew(ChargeOutcome::Failed(self.failed(at, "insufficient_funds"))),
            at,
        )
    }

    /// Paused on Feb 10.
    #[must_use]
    pub fn paused(&self) -> Subscription {
        self.apply(&self.active(), &Command::Pause, utc(2024, 2, 10))
    }

    /// Canceled on Feb 10.
    #[must_use]
    pub fn canceled(&self) -> Subscription {
        self.apply(
            &self.active(),
            &Command::CancelNow {
                comment: Some("too expensive".into()),
                open_invoices: vec![],
            },
            utc(2024, 2, 10),
        )
    }

    /// The finalized (outstanding, unnumbered) recurring invoice of `subscription` for
    /// `period`.
    #[must_use]
    pub fn recurring_invoice(&self, subscription: &Subscription, period: Period) -> Invoice {
        let items: Vec<(Price, u32)> = subscription
            .items()
            .iter()
            .map(|item| (self.price(item.price).clone(), item.quantity))
            .collect();
        let mut invoice = PeriodInvoice {
            id: self.ids.next(period.start()),
            kind: InvoiceKind::Recurring,
            customer: subscription.customer(),
            subscription: subscription.id(),
            currency: subscription.currency(),
            period,
            items: &items,
            created_at: period.start(),
            available_credit: Money::zero(subscription.currency()),
            policy: RoundingPolicy::default(),
        }
        .build()
        .unwrap();
        invoice
            .finalize(
                period.start(),
                period.start() + TimeDelta::days(7),
                Fixtures::parties(),
            )
            .unwrap();
        invoice
    }

    /// A pending attempt to charge `invoice`.
    #[must_use]
    pub fn attempt(&self, invoice: &Invoice, attempt: u32, now: DateTime<Utc>) -> PaymentAttempt {
        PaymentAttempt {
            id: self.ids.next(now),
            invoice: invoice.id(),
            customer: invoice.customer(),
            subscription: invoice.subscription(),
            purpose: ChargePurpose::Renewal,
            attempt,
            amount: invoice.amount_due(),
            payment_method: Some("pm_card_visa".into()),
            status: AttemptStatus::Pending,
            created_at: now,
            completed_at: None,
            version: 0,
        }
    }

    /// An envelope around `event` at `now`.
    #[must_use]
    pub fn envelope(&self, event: Event, now: DateTime<Utc>) -> Envelope {
        Envelope {
            id: self.ids.next(now),
            timestamp: now,
            organization_id: "org_test".into(),
            mode: Mode::Sandbox,
            api_version: DEFAULT_API_VERSION.into(),
            event,
        }
    }

    /// The default invoice number series.
    #[must_use]
    pub fn series() -> NumberSeries {
        NumberSeries::default()
    }
}

/// Assert that every event of a decision survives its JSON envelope unchanged.
pub fn assert_events_round_trip(decision: &Decision, ids: &IdGenerator, now: DateTime<Utc>) {
    for event in &decision.events {
        let envelope = Envelope {
            id: ids.next(now),
            timestamp: now,
            organization_id: "org_test".into(),
            mode: Mode::Sandbox,
            api_version: DEFAULT_API_VERSION.into(),
            event: event.clone(),
        };
        let json = envelope.to_json().unwrap();
        assert_eq!(Envelope::from_json(&json).unwrap(), envelope, "{json}");
    }
}
