//! Subscription items: what is subscribed to, and how many.

use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::calendar::Interval;
use crate::catalog::{Price, PricingModel};
use crate::ids::{PlanId, PriceId};
use crate::money::Currency;

/// One price on a subscription, with its quantity (seats for a per-seat price, 1 for a flat one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscriptionItem {
    /// The plan the price belongs to.
    pub plan: PlanId,
    /// The price.
    pub price: PriceId,
    /// Seats for a per-seat price; always 1 for a flat price.
    pub quantity: u32,
}

pub use crate::catalog::{MAX_ITEMS, MAX_QUANTITY};

/// Items checked against their prices: one currency, one interval, sensible quantities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedItems {
    /// The items.
    pub items: Vec<SubscriptionItem>,
    /// The interval every price shares.
    pub interval: Interval,
    /// The currency every price shares.
    pub currency: Currency,
    /// True if every price is zero: nothing is ever invoiced.
    pub free: bool,
}

impl PricedItems {
    /// Check `(price, quantity)` pairs; the error names the offending `items[i]` field.
    pub fn new(prices: &[(Price, u32)]) -> Result<PricedItems, InvalidField> {
        let Some((first, _)) = prices.first() else {
            return Err(InvalidField::new("items", "at least one item is needed"));
        };
        if prices.len() > MAX_ITEMS {
            return Err(InvalidField::new(
                "items",
                format_args!("at most {MAX_ITEMS} items are allowed"),
            ));
        }
        let mut items = Vec::with_capacity(prices.len());
        for (index, (price, quantity)) in prices.iter().enumerate() {
            let field = |name: &str| format!("items[{index}].{name}");
            if price.currency() != first.currency() {
                return Err(InvalidField::new(
                    field("price"),
                    format_args!(
                        "is in {}, but the subscription is in {}",
                        price.currency(),
                        first.currency()
                    ),
                ));
            }
            if price.interval() != first.interval() {
                return Err(InvalidField::new(
                    field("price"),
                    format_args!(
                        "bills {}, but the subscription bills {}",
                        price.interval(),
                        first.interval()
                    ),
                ));
            }
            if items
                .iter()
                .any(|item: &SubscriptionItem| item.price == price.id())
            {
                return Err(InvalidField::new(field("price"), "appears twice"));
            }
            match price.model() {
                PricingModel::Flat if *quantity != 1 => {
                    return Err(InvalidField::new(
                        field("quantity"),
                        "must be 1 for a flat price",
                    ));
                }
                PricingModel::PerSeat if !(1..=MAX_QUANTITY).contains(quantity) => {
                    return Err(InvalidField::new(
                        field("quantity"),
                        format_args!("must be 1 to {MAX_QUANTITY} seats"),
                    ));
                }
                PricingModel::Flat | PricingModel::PerSeat => {}
            }
            items.push(SubscriptionItem {
                plan: price.plan(),
                price: price.id(),
                quantity: *quantity,
            });
        }
        Ok(PricedItems {
            items,
            interval: first.interval(),
            currency: first.currency(),
            free: prices.iter().all(|(price, _)| price.is_free()),
        })
    }
}
