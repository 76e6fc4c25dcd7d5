//! The invoice of a subscription period, built from the subscription's items: one function for
//! every period commet bills (a renewal, the first period at checkout or at a trial's end, the
//! new period of a resumed or reactivated subscription).
//!
//! An item is a `(Price, quantity)` pair. A flat price makes one `plan_base` line of quantity 1
//! (the quantity is ignored, as [`PricingModel::Flat`] says); a per-seat price makes one `seats`
//! line whose quantity is the number of seats (at least one). Each line covers the period and
//! refers to its price. The same lines are what a plan change charges for the new plan
//! ([`crate::proration`]), so both are computed by [`item_lines`] and nowhere else.
//!
//! Line descriptions are generic (`Subscription (monthly)`, `3 seats × 12.00 USD (monthly)`):
//! the catalog's plan names are not part of a price, and a renderer that wants them looks them
//! up through each line's price reference.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Invoice, InvoiceError, InvoiceKind, LineItem, LineKind, NewInvoice, NewLineItem};
use crate::calendar::{Interval, Period};
use crate::catalog::{Price, PricingModel};
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::money::{Currency, Money, RoundingPolicy};

/// Everything the invoice of one subscription period is made from.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use commet_core::calendar::{BillingCycle, Interval};
/// use commet_core::catalog::{NewPrice, Price, PricingModel};
/// use commet_core::ids::IdGenerator;
/// use commet_core::invoice::{InvoiceKind, InvoiceStatus, LineKind, PeriodInvoice};
/// use commet_core::money::{Currency, Money, RoundingPolicy};
///
/// let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let ids = IdGenerator::seeded(1);
/// let seat = Price::new(ids.next(now), NewPrice {
///     plan: ids.next(now),
///     unit_amount: "12.00 USD".parse()?,
///     interval: Interval::MONTHLY,
///     trial_days: 0,
///     model: PricingModel::PerSeat,
/// })?;
/// let invoice = PeriodInvoice {
///     id: ids.next(now),
///     kind: InvoiceKind::Recurring,
///     customer: ids.next(now),
///     subscription: ids.next(now),
///     currency: Currency::USD,
///     period: BillingCycle::new(now, Interval::MONTHLY).period(0)?,
///     items: &[(seat, 3)],
///     created_at: now,
///     available_credit: "6.00 USD".parse()?,
///     policy: RoundingPolicy::default(),
/// }
/// .build()?;
/// assert_eq!(invoice.status(), InvoiceStatus::Draft);
/// assert_eq!(invoice.lines()[0].kind(), LineKind::Seats);
/// assert_eq!(invoice.subtotal().to_string(), "36.00 USD"); // 3 x 12.00
/// assert_eq!(invoice.amount_due().to_string(), "30.00 USD"); // less 6.00 of credit
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PeriodInvoice<'a> {
    /// The new invoice's id.
    pub id: InvoiceId,
    /// [`InvoiceKind::Recurring`] for a period of the subscription's cycle (a renewal, the first
    /// period): stores keep one per (subscription, period start). [`InvoiceKind::Reactivation`]
    /// for the new period a resumed or reactivated subscription starts.
    pub kind: InvoiceKind,
    /// Who pays.
    pub customer: CustomerId,
    /// The subscription billed.
    pub subscription: SubscriptionId,
    /// The subscription's currency: every item's price must be in it.
    pub currency: Currency,
    /// The period billed; every line covers it.
    pub period: Period,
    /// The subscription's items: `(price, quantity)`, at least one, all at one interval.
    pub items: &'a [(Price, u32)],
    /// When the invoice is made.
    pub created_at: DateTime<Utc>,
    /// The customer's credit balance (zero or more); as much as the total needs is applied.
    pub available_credit: Money,
    /// How line amounts are rounded.
    pub policy: RoundingPolicy,
}

impl PeriodInvoice<'_> {
    /// The draft: one line per item, totals computed, credit applied.
    ///
    /// Refused: a kind other than `recurring` or `reactivation` (field `kind`), no items ([`InvoiceError::NoItems`]), a price in another currency
    /// ([`InvoiceError::CurrencyMismatch`]), a per-seat item with no seats
    /// ([`InvoiceError::ZeroQuantity`]), items at different intervals
    /// ([`InvoiceError::MixedIntervals`]), a negative or foreign credit.
    pub fn build(&self) -> Result<Invoice, InvoiceError> {
        if !matches!(
            self.kind,
            InvoiceKind::Recurring | InvoiceKind::Reactivation
        ) {
            return Err(crate::InvalidField::new(
                "kind",
                format_args!(
                    "a period invoice is recurring or reactivation, not {}",
                    self.kind
                ),
            )
            .into());
        }
        if check_items(self.items, self.currency)?.is_none() {
            return Err(InvoiceError::NoItems);
        }
        let mut invoice = Invoice::draft(NewInvoice {
            id: self.id,
            customer: self.customer,
            subscription: Some(self.subscription),
            currency: self.currency,
            kind: self.kind,
            period: Some(self.period),
            created_at: self.created_at,
            memo: None,
            metadata: std::collections::BTreeMap::new(),
        })?;
        for line in item_lines(self.items, self.currency, self.period, self.policy)? {
            invoice.add_line(line)?;
        }
        invoice.apply_credit(self.available_credit)?;
        Ok(invoice)
    }
}

/// The lines that charge `items` for `period`: for each item, a `plan_base` line (flat price,
/// quantity 1) or a `seats` line (per-seat price, quantity = seats), amount rounded once with
/// `policy`. Refused as in [`PeriodInvoice::build`]; no items make no lines.
pub fn item_lines(
    items: &[(Price, u32)],
    currency: Currency,
    period: Period,
    policy: RoundingPolicy,
) -> Result<Vec<LineItem>, InvoiceError> {
    check_items(items, currency)?;
    items
        .iter()
        .map(|(price, quantity)| item_line(price, *quantity, Some(period), policy))
        .collect()
}

/// What one item charges per period: the amount of its line. The caller has checked the item.
pub(crate) fn item_charge(
    price: &Price,
    quantity: u32,
    policy: RoundingPolicy,
) -> Result<Money, InvoiceError> {
    Ok(item_line(price, quantity, None, policy)?.amount())
}

/// The line charging one item for `period`; the caller has checked the item.
pub(crate) fn item_line(
    price: &Price,
    quantity: u32,
    period: Option<Period>,
    policy: RoundingPolicy,
) -> Result<LineItem, InvoiceError> {
    let (kind, line_quantity) = match price.model() {
        PricingModel::Flat => (LineKind::PlanBase, Decimal::ONE),
        PricingModel::PerSeat => (LineKind::Seats, Decimal::from(quantity)),
    };
    LineItem::new(
        NewLineItem {
            kind,
            description: describe_item(price, quantity),
            quantity: line_quantity,
            unit_amount: price.unit_amount(),
            period,
            price: Some(price.id()),
        },
        policy,
    )
}

/// How an item is described on an invoice: `Subscription (monthly)` for a flat price (the
/// quantity is ignored), `3 seats × 12.00 USD (monthly)` for a per-seat price.
#[must_use]
pub fn describe_item(price: &Price, quantity: u32) -> String {
    match price.model() {
        PricingModel::Flat => format!("Subscription ({})", price.interval()),
        PricingModel::PerSeat => {
            let seats = if quantity == 1 { "seat" } else { "seats" };
            format!(
                "{quantity} {seats} × {} ({})",
                price.unit_amount(),
                price.interval()
            )
        }
    }
}

/// Check a subscription's items: every price in `currency`, at least one seat on per-seat
/// prices, one interval for all. Returns that interval, or `None` if there are no items.
pub(crate) fn check_items(
    items: &[(Price, u32)],
    currency: Currency,
) -> Result<Option<Interval>, InvoiceError> {
    let mut interval: Option<Interval> = None;
    for (index, (price, quantity)) in items.iter().enumerate() {
        if price.currency() != currency {
            return Err(InvoiceError::CurrencyMismatch {
                expected: currency,
                actual: price.currency(),
            });
        }
        if price.model() == PricingModel::PerSeat && *quantity == 0 {
            return Err(InvoiceError::ZeroQuantity { index });
        }
        match interval {
            None => interval = Some(price.interval()),
            Some(first) if first != price.interval() => {
                return Err(InvoiceError::MixedIntervals {
                    first,
                    other: price.interval(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::calendar::BillingCycle;
    use crate::catalog::NewPrice;
    use crate::ids::IdGenerator;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    }

    fn price(amount: &str, model: PricingModel, interval: Interval) -> Price {
        let ids = IdGenerator::seeded(3);
        Price::new(
            ids.next(now()),
            NewPrice {
                plan: ids.next(now()),
                unit_amount: amount.parse().unwrap(),
                interval,
                trial_days: 0,
                model,
            },
        )
        .unwrap()
    }

    fn recurring(items: &[(Price, u32)], currency: Currency) -> Result<Invoice, InvoiceError> {
        let ids = IdGenerator::seeded(4);
        PeriodInvoice {
            id: ids.next(now()),
            kind: InvoiceKind::Recurring,
            customer: ids.next(now()),
            subscription: ids.next(now()),
            currency,
            period: BillingCycle::new(now(), Interval::MONTHLY)
                .period(0)
                .unwrap(),
            items,
            created_at: now(),
            available_credit: Money::zero(currency),
            policy: RoundingPolicy::default(),
        }
        .build()
    }

    #[test]
    fn a_flat_price_is_one_plan_base_line_whatever_the_quantity() {
        let flat = price("50.00 USD", PricingModel::Flat, Interval::MONTHLY);
        let invoice = recurring(&[(flat.clone(), 4)], Currency::USD).unwrap();
        let [line] = invoice.lines() else {
            panic!("one line expected")
        };
        assert_eq!(line.kind(), LineKind::PlanBase);
        assert_eq!(line.quantity(), Decimal::ONE);
        assert_eq!(line.amount().to_string(), "50.00 USD");
        assert_eq!(line.description(), "Subscription (monthly)");
        assert_eq!(line.price(), Some(flat.id()));
        assert_eq!(line.period(), invoice.period());
        assert_eq!(invoice.kind(), InvoiceKind::Recurring);
    }

    #[test]
    fn a_per_seat_price_is_one_seats_line_rounded_once() {
        let seat = price("0.125 USD", PricingModel::PerSeat, Interval::MONTHLY);
        let invoice = recurring(&[(seat, 3)], Currency::USD).unwrap();
        // 3 x 0.125 = 0.375 -> 0.38.
        assert_eq!(invoice.total().to_string(), "0.38 USD");
        assert_eq!(
            invoice.lines()[0].description(),
            "3 seats × 0.125 USD (monthly)"
        );
    }

    #[test]
    fn items_are_checked() {
        let monthly = price("10 USD", PricingModel::Flat, Interval::MONTHLY);
        let yearly = price("100 USD", PricingModel::Flat, Interval::YEARLY);
        let seat = price("10 USD", PricingModel::PerSeat, Interval::MONTHLY);
        let euro = price("10 EUR", PricingModel::Flat, Interval::MONTHLY);
        assert_eq!(recurring(&[], Currency::USD), Err(InvoiceError::NoItems));
        assert_eq!(
            recurring(&[(monthly.clone(), 1), (euro, 1)], Currency::USD),
            Err(InvoiceError::CurrencyMismatch {
                expected: Currency::USD,
                actual: Currency::EUR
            })
        );
        assert_eq!(
            recurring(&[(monthly.clone(), 1), (seat, 0)], Currency::USD),
            Err(InvoiceError::ZeroQuantity { index: 1 })
        );
        assert_eq!(
            recurring(&[(monthly, 1), (yearly, 1)], Currency::USD),
            Err(InvoiceError::MixedIntervals {
                first: Interval::MONTHLY,
                other: Interval::YEARLY
            })
        );
    }
}
