//! The catalog: plans, and the prices they are sold at.
//!
//! A [`Plan`] is what a customer buys ("Pro"); a [`Price`] is how it is billed: an amount in a
//! currency per [`Interval`], flat or per seat, with optional trial days. A plan may have several
//! prices (monthly and yearly, USD and EUR). A price of zero makes a free plan.
//!
//! Both are validated on construction and on deserialization, so a value of these types is
//! always valid. Decisions written down here:
//! - A flat price must be payable as it is: no more decimals than its currency, because it is
//!   charged once per period. A per-seat price may be finer (0.0004 USD per seat); the line
//!   amount `seats x unit amount` is rounded once.
//! - Prices are never negative; credits and discounts are invoice lines, not prices.
//! - A price must be billable: its largest line (the flat amount, or the per-seat amount times
//!   [`MAX_QUANTITY`] seats) is at most [`MAX_LINE_MINOR_UNITS`] minor units, so every invoice
//!   of up to [`MAX_ITEMS`] items, with its proration credits and totals, fits the integers
//!   amounts travel in (`i64` minor units on the wire). A price too large ever to bill is
//!   refused when it is defined, not when the first subscription to it is billed.
//! - A trial lasts at most 730 days.
//!
//! [`Catalog`] is the catalog as a decision sees it: every plan and price, by id.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Interval;
use crate::ids::{PlanId, PriceId};
use crate::money::{Currency, UnitAmount};
use crate::validation::{InvalidField, check_text};

/// The most items a subscription may have.
pub const MAX_ITEMS: usize = 20;
/// The most seats an item may have.
pub const MAX_QUANTITY: u32 = 1_000_000;
/// The largest amount one invoice line may bill, in minor units of its currency: 10^15 (ten
/// trillion US dollars, a thousand trillion yen). See the [module docs](self).
pub const MAX_LINE_MINOR_UNITS: i64 = 1_000_000_000_000_000;

/// A product customers subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PlanRepr", into = "PlanRepr")]
pub struct Plan {
    id: PlanId,
    code: String,
    name: String,
    description: Option<String>,
}

/// What a new plan is made of; validated by [`Plan::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPlan {
    /// A stable, unique handle for code to refer to: 1 to 64 of `a-z A-Z 0-9 - _ .`.
    pub code: String,
    /// The name shown to customers: 1 to 200 characters.
    pub name: String,
    /// An optional description: up to 2,000 characters.
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PlanRepr {
    id: PlanId,
    #[serde(flatten)]
    fields: NewPlan,
}

impl TryFrom<PlanRepr> for Plan {
    type Error = InvalidField;

    fn try_from(repr: PlanRepr) -> Result<Self, Self::Error> {
        Plan::new(repr.id, repr.fields)
    }
}

impl From<Plan> for PlanRepr {
    fn from(plan: Plan) -> Self {
        PlanRepr {
            id: plan.id,
            fields: NewPlan {
                code: plan.code,
                name: plan.name,
                description: plan.description,
            },
        }
    }
}

impl Plan {
    /// A plan with id `id`; the error names the first invalid field.
    pub fn new(id: PlanId, plan: NewPlan) -> Result<Plan, InvalidField> {
        check_code("code", &plan.code)?;
        check_text("name", &plan.name, true, 200)?;
        if let Some(description) = &plan.description {
            check_text("description", description, false, 2_000)?;
        }
        Ok(Plan {
            id,
            code: plan.code,
            name: plan.name,
            description: plan.description,
        })
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> PlanId {
        self.id
    }

    /// The unique code, such as `pro`.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The name shown to customers.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description, if any.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

fn check_code(field: &str, code: &str) -> Result<(), InvalidField> {
    if code.is_empty() || code.len() > 64 {
        return Err(InvalidField::new(field, "must be 1 to 64 characters"));
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(InvalidField::new(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// Whether a price is charged once per period or once per seat per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingModel {
    /// One charge of the unit amount per period, whatever the quantity.
    Flat,
    /// The unit amount times the number of seats, per period.
    PerSeat,
}

/// How a plan is billed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PriceRepr", into = "PriceRepr")]
pub struct Price {
    id: PriceId,
    plan: PlanId,
    unit_amount: UnitAmount,
    interval: Interval,
    trial_days: u32,
    model: PricingModel,
}

/// What a new price is made of; validated by [`Price::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPrice {
    /// The plan this price bills.
    pub plan: PlanId,
    /// The amount per period (flat) or per seat per period (per seat); zero for a free plan.
    pub unit_amount: UnitAmount,
    /// How often it bills.
    pub interval: Interval,
    /// Days of free trial before the first charge: 0 to 730.
    pub trial_days: u32,
    /// Flat or per seat.
    pub model: PricingModel,
}

#[derive(Serialize, Deserialize)]
struct PriceRepr {
    id: PriceId,
    #[serde(flatten)]
    fields: NewPrice,
}

impl TryFrom<PriceRepr> for Price {
    type Error = InvalidField;

    fn try_from(repr: PriceRepr) -> Result<Self, Self::Error> {
        Price::new(repr.id, repr.fields)
    }
}

impl From<Price> for PriceRepr {
    fn from(price: Price) -> Self {
        PriceRepr {
            id: price.id,
            fields: NewPrice {
                plan: price.plan,
                unit_amount: price.unit_amount,
                interval: price.interval,
                trial_days: price.trial_days,
                model: price.model,
            },
        }
    }
}

/// The longest trial a price may offer.
pub const MAX_TRIAL_DAYS: u32 = 730;

impl Price {
    /// A price with id `id`; the error names the first invalid field.
    pub fn new(id: PriceId, price: NewPrice) -> Result<Price, InvalidField> {
        if price.unit_amount.is_negative() {
            return Err(InvalidField::new("unit_amount", "must not be negative"));
        }
        if price.model == PricingModel::Flat && !price.unit_amount.is_payable() {
            return Err(InvalidField::new(
                "unit_amount",
                format_args!(
                    "a flat price is charged as it is, so it may have at most {} decimal places \
                     in {}",
                    price.unit_amount.currency().decimals(),
                    price.unit_amount.currency()
                ),
            ));
        }
        check_billable(price.unit_amount, price.model)?;
        if price.trial_days > MAX_TRIAL_DAYS {
            return Err(InvalidField::new(
                "trial_days",
                format_args!("must be at most {MAX_TRIAL_DAYS}"),
            ));
        }
        Ok(Price {
            id,
            plan: price.plan,
            unit_amount: price.unit_amount,
            interval: price.interval,
            trial_days: price.trial_days,
            model: price.model,
        })
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> PriceId {
        self.id
    }

    /// The plan this price bills.
    #[must_use]
    pub fn plan(&self) -> PlanId {
        self.plan
    }

    /// The amount per period (flat) or per seat per period.
    #[must_use]
    pub fn unit_amount(&self) -> UnitAmount {
        self.unit_amount
    }

    /// The currency.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.unit_amount.currency()
    }

    /// How often it bills.
    #[must_use]
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// Free trial days before the first charge.
    #[must_use]
    pub fn trial_days(&self) -> u32 {
        self.trial_days
    }

    /// Flat or per seat.
    #[must_use]
    pub fn model(&self) -> PricingModel {
        self.model
    }

    /// True if the price is zero: subscribing needs no payment.
    #[must_use]
    pub fn is_free(&self) -> bool {
        self.unit_amount.is_zero()
    }
}

/// The largest line a price can make must fit [`MAX_LINE_MINOR_UNITS`].
fn check_billable(unit_amount: UnitAmount, model: PricingModel) -> Result<(), InvalidField> {
    let currency = unit_amount.currency();
    let (seats, per) = match model {
        PricingModel::Flat => (Decimal::ONE, "period"),
        PricingModel::PerSeat => (Decimal::from(MAX_QUANTITY), "seat"),
    };
    let limit =
        Decimal::from_i128_with_scale(i128::from(MAX_LINE_MINOR_UNITS), currency.decimals());
    let largest_line = unit_amount.amount().checked_mul(seats);
    if largest_line.is_some_and(|line| line <= limit) {
        return Ok(());
    }
    let most = limit
        .checked_div(seats)
        .unwrap_or(limit)
        .round_dp_with_strategy(
            currency.decimals().max(unit_amount.amount().scale()),
            rust_decimal::RoundingStrategy::ToZero,
        )
        .normalize();
    Err(InvalidField::new(
        "unit_amount",
        format_args!(
            "{unit_amount} is too large ever to bill: at most {most} {currency} per {per} (a line \
             bills at most {limit} {currency}, and a per-seat item has up to {MAX_QUANTITY} seats)",
        ),
    ))
}

/// A plan or price that a decision needs is not in the catalog it was given: defined since
/// the catalog was read (read it again), or never.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {id} is not in the catalog")]
pub struct NotInCatalog {
    /// `plan` or `price`.
    pub what: &'static str,
    /// Its id.
    pub id: String,
}

/// The catalog as a decision sees it: every plan and price, by id. The engine reads it once and
/// keeps it (plans and prices are insert-only), reading it again when a decision names
/// something it does not hold ([`NotInCatalog`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    plans: BTreeMap<PlanId, Plan>,
    prices: BTreeMap<PriceId, Price>,
}

impl Catalog {
    /// A catalog of these plans and prices.
    #[must_use]
    pub fn new(
        plans: impl IntoIterator<Item = Plan>,
        prices: impl IntoIterator<Item = Price>,
    ) -> Catalog {
        Catalog {
            plans: plans.into_iter().map(|plan| (plan.id(), plan)).collect(),
            prices: prices
                .into_iter()
                .map(|price| (price.id(), price))
                .collect(),
        }
    }

    /// Every plan, in creation order (ids sort by creation time).
    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }

    /// Every price, in creation order.
    pub fn prices(&self) -> impl Iterator<Item = &Price> {
        self.prices.values()
    }

    /// A plan.
    pub fn plan(&self, id: PlanId) -> Result<&Plan, NotInCatalog> {
        self.plans.get(&id).ok_or_else(|| NotInCatalog {
            what: "plan",
            id: id.to_string(),
        })
    }

    /// A price.
    pub fn price(&self, id: PriceId) -> Result<&Price, NotInCatalog> {
        self.prices.get(&id).ok_or_else(|| NotInCatalog {
            what: "price",
            id: id.to_string(),
        })
    }

    /// True if every one of these prices (and their plans) is in the catalog.
    #[must_use]
    pub fn has_prices(&self, ids: impl IntoIterator<Item = PriceId>) -> bool {
        ids.into_iter().all(|id| {
            self.prices
                .get(&id)
                .is_some_and(|price| self.plans.contains_key(&price.plan()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Frequency;

    fn plan_id() -> PlanId {
        "pln_01h455vb4pex5vsknk084sn02q".parse().unwrap()
    }

    fn price_id() -> PriceId {
        "pri_01h455vb4pex5vsknk084sn02q".parse().unwrap()
    }

    fn new_price(amount: &str, model: PricingModel) -> NewPrice {
        NewPrice {
            plan: plan_id(),
            unit_amount: amount.parse().unwrap(),
            interval: Interval::MONTHLY,
            trial_days: 0,
            model,
        }
    }

    fn pro() -> NewPlan {
        NewPlan {
            code: "pro".into(),
            name: "Pro".into(),
            description: Some("Everything, for teams ✨".into()),
        }
    }

    #[test]
    fn a_valid_plan_round_trips_through_json() {
        let plan = Plan::new(plan_id(), pro()).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
    }

    #[test]
    fn invalid_plan_fields_are_named() {
        let field = |plan: NewPlan| Plan::new(plan_id(), plan).unwrap_err().field;
        assert_eq!(
            field(NewPlan {
                code: String::new(),
                ..pro()
            }),
            "code"
        );
        assert_eq!(
            field(NewPlan {
                code: "pro plan".into(),
                ..pro()
            }),
            "code"
        );
        assert_eq!(
            field(NewPlan {
                name: "  ".into(),
                ..pro()
            }),
            "name"
        );
        assert_eq!(
            field(NewPlan {
                name: "x".repeat(201),
                ..pro()
            }),
            "name"
        );
        assert_eq!(
            field(NewPlan {
                description: Some("\u{0}".into()),
                ..pro()
            }),
            "description"
        );
        let json =
            r#"{"id":"pln_01h455vb4pex5vsknk084sn02q","code":"","name":"Pro","description":null}"#;
        assert!(serde_json::from_str::<Plan>(json).is_err());
    }

    #[test]
    fn a_flat_price_must_be_payable_but_a_seat_price_may_be_finer() {
        let err = Price::new(price_id(), new_price("0.0004 USD", PricingModel::Flat)).unwrap_err();
        assert_eq!(err.field, "unit_amount");
        let seat = Price::new(price_id(), new_price("0.0004 USD", PricingModel::PerSeat)).unwrap();
        assert_eq!(seat.unit_amount().to_string(), "0.0004 USD");
    }

    #[test]
    fn a_price_too_large_ever_to_bill_is_refused_naming_the_field() {
        let err = Price::new(
            price_id(),
            new_price("100000000000000000 USD", PricingModel::Flat),
        )
        .unwrap_err();
        assert_eq!(err.field, "unit_amount");
        assert!(err.reason.contains("too large ever to bill"), "{err}");
        assert!(
            err.reason.contains("at most 10000000000000 USD per period"),
            "{err}"
        );
        // The largest billable flat price, and the largest per-seat one (a million seats).
        Price::new(
            price_id(),
            new_price("10000000000000 USD", PricingModel::Flat),
        )
        .unwrap();
        Price::new(
            price_id(),
            new_price("10000000000000.01 USD", PricingModel::Flat),
        )
        .unwrap_err();
        Price::new(price_id(), new_price("10000000 USD", PricingModel::PerSeat)).unwrap();
        let err = Price::new(
            price_id(),
            new_price("10000000.0001 USD", PricingModel::PerSeat),
        )
        .unwrap_err();
        assert!(
            err.reason.contains("at most 10000000 USD per seat"),
            "{err}"
        );
        // Yen have no minor unit: a thousand trillion yen per line.
        Price::new(
            price_id(),
            new_price("1000000000000000 JPY", PricingModel::Flat),
        )
        .unwrap();
        Price::new(
            price_id(),
            new_price("1000000000000001 JPY", PricingModel::Flat),
        )
        .unwrap_err();
    }

    #[test]
    fn negative_prices_and_long_trials_are_refused() {
        let err = Price::new(price_id(), new_price("-1 USD", PricingModel::Flat)).unwrap_err();
        assert_eq!(err.field, "unit_amount");
        let err = Price::new(
            price_id(),
            NewPrice {
                trial_days: 731,
                ..new_price("10 USD", PricingModel::Flat)
            },
        )
        .unwrap_err();
        assert_eq!(err.field, "trial_days");
    }

    #[test]
    fn a_valid_price_round_trips_and_a_zero_price_is_free() {
        let price = Price::new(
            price_id(),
            NewPrice {
                interval: Interval::new(Frequency::Quarterly, 2).unwrap(),
                trial_days: 14,
                ..new_price("0 JPY", PricingModel::PerSeat)
            },
        )
        .unwrap();
        assert!(price.is_free());
        let json = serde_json::to_string(&price).unwrap();
        assert_eq!(serde_json::from_str::<Price>(&json).unwrap(), price);
        let bad = json.replace("\"count\":2", "\"count\":0");
        let err = serde_json::from_str::<Price>(&bad).unwrap_err();
        assert!(err.to_string().contains("interval_count"), "{err}");
    }
}
