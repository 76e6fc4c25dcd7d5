//! Fixtures shared by the subscription tests: a catalog, and subscriptions brought into each
//! status through real commands.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::calendar::{Frequency, Interval};
use commet_core::catalog::{NewPlan, NewPrice, Plan, Price, PricingModel};
use commet_core::dunning::DunningStep;
use commet_core::event::{Envelope, Mode};
use commet_core::ids::{CustomerId, IdGenerator, InvoiceId, PlanId, PriceId, SubscriptionId};
use commet_core::invoice::InvoiceStatus;
use commet_core::money::{Money, UnitAmount};
use commet_core::subscription::{
    ChargeOutcome, CheckoutCompletion, CheckoutOffer, Command, Context, Decision, FailedCharge,
    InvoiceSummary, NewSubscription, PaymentFailure, PlanChange, PricedItems, Settlement,
    Subscription,
};

/// Midnight UTC on a date.
pub fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// A small catalog: basic 10 USD, pro 50 USD, pro with a 14-day trial, pro yearly, free, seats.
#[derive(Debug)]
pub struct Catalog {
    pub ids: IdGenerator,
    pub plans: Vec<Plan>,
    pub basic: Price,
    pub pro: Price,
    pub pro_trial: Price,
    pub pro_yearly: Price,
    pub free: Price,
    pub seats: Price,
    pub euro: Price,
}

impl Catalog {
    pub fn new() -> Catalog {
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
        Catalog {
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
        }
    }

    pub fn context(&self, now: DateTime<Utc>) -> Context<'_> {
        Context {
            now,
            plans: &self.plans,
            provider: Some("fake"),
        }
    }

    pub fn items(&self, price: &Price) -> PricedItems {
        let quantity = if price.id() == self.seats.id() { 3 } else { 1 };
        PricedItems::new(&[(price.clone(), quantity)]).unwrap()
    }

    pub fn price(&self, id: PriceId) -> &Price {
        [
            &self.basic,
            &self.pro,
            &self.pro_trial,
            &self.pro_yearly,
            &self.free,
            &self.seats,
            &self.euro,
        ]
        .into_iter()
        .find(|price| price.id() == id)
        .unwrap()
    }

    /// True if every item of the subscription is free.
    pub fn is_free(&self, subscription: &Subscription) -> bool {
        subscription
            .items()
            .iter()
            .all(|item| self.price(item.price).is_free())
    }

    pub fn checkout(now: DateTime<Utc>, expires: bool) -> CheckoutOffer {
        CheckoutOffer {
            url: "https://billing.example.com/checkout/sub?token=t".into(),
            amount: Money::from_minor(5_000, commet_core::money::Currency::USD),
            expires_at: expires.then(|| now + TimeDelta::days(2)),
            success_url: Some("https://app.example.com/welcome".into()),
            cancel_url: None,
        }
    }

    /// An invoice settled at `now` for `amount` cents.
    pub fn invoice(&self, now: DateTime<Utc>, cents: i64, status: &str) -> InvoiceSummary {
        let usd = |minor| Money::from_minor(minor, commet_core::money::Currency::USD);
        let paid = status == "paid";
        let status = if paid {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Outstanding
        };
        InvoiceSummary {
            id: self.ids.next::<InvoiceId>(now),
            number: format!("INV-{cents:06}"),
            status,
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

    pub fn settlement(&self, subscription: &Subscription, now: DateTime<Utc>) -> Settlement {
        if self.is_free(subscription) {
            Settlement::Free
        } else {
            Settlement::Invoice(self.invoice(now, 5_000, "paid"))
        }
    }

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
            recovery_url: Some("https://billing.example.com/recover?token=r".into()),
        }
    }

    pub fn change(&self, price: &Price) -> PlanChange {
        PlanChange {
            items: self.items(price),
        }
    }

    pub fn create(&self, price: &Price, draft: bool, now: DateTime<Utc>) -> Decision {
        Subscription::create(
            NewSubscription {
                id: self.ids.next::<SubscriptionId>(now),
                customer: self.ids.next::<CustomerId>(now),
                items: self.items(price),
                draft,
                checkout: Some(Catalog::checkout(now, true)),
                metadata: BTreeMap::from([("account".into(), "acme".into())]),
            },
            &self.context(now),
        )
        .unwrap()
    }

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

    pub fn draft(&self) -> Subscription {
        self.create(&self.pro, true, utc(2024, 1, 31)).subscription
    }

    pub fn pending(&self) -> Subscription {
        self.create(&self.pro, false, utc(2024, 1, 31)).subscription
    }

    pub fn active(&self) -> Subscription {
        let now = utc(2024, 1, 31);
        let pending = self.pending();
        self.apply(
            &pending,
            &Command::CompleteCheckout(CheckoutCompletion::Paid {
                invoice: self.invoice(now, 5_000, "paid"),
            }),
            now,
        )
    }

    pub fn free(&self) -> Subscription {
        self.create(&self.free, false, utc(2024, 1, 31))
            .subscription
    }

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

    pub fn past_due(&self) -> Subscription {
        let at = utc(2024, 2, 29);
        self.apply(
            &self.active(),
            &Command::Renew(ChargeOutcome::Failed(self.failed(at, "insufficient_funds"))),
            at,
        )
    }

    pub fn paused(&self) -> Subscription {
        self.apply(&self.active(), &Command::Pause, utc(2024, 2, 10))
    }

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
}

/// Every event of a decision survives its JSON envelope unchanged.
pub fn assert_events_round_trip(decision: &Decision, ids: &IdGenerator, now: DateTime<Utc>) {
    for event in &decision.events {
        let envelope = Envelope {
            id: ids.next(now),
            timestamp: now,
            organization_id: "org_test".into(),
            mode: Mode::Sandbox,
            api_version: commet_core::event::DEFAULT_API_VERSION.into(),
            event: event.clone(),
        };
        let json = envelope.to_json().unwrap();
        assert_eq!(Envelope::from_json(&json).unwrap(), envelope, "{json}");
    }
}
