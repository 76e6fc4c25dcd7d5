//! Plan changes and proration, Commet's way (DESIGN.md section 7).
//!
//! - An **upgrade** takes effect at once. Each old item is credited for the unused part of its
//!   current period (a `proration_credit` line), and the new items are charged in full for a
//!   **new period starting at the change** (`plan_base` / `seats` lines), so the billing anchor
//!   moves to the instant of the change. The result is a `plan_change` invoice.
//! - A **downgrade** is scheduled for the end of the current period and prorates nothing: the
//!   customer keeps what they paid for until then, and the new items bill from that instant.
//! - A **negative total** (the credit outweighs the new charge, e.g. from a yearly plan to a
//!   dearer monthly one) is owed to nobody: the amount due is zero and the difference becomes
//!   customer credit, applied to the next invoices (see [`Totals`]).
//!
//! [`PlanChange::preview`] computes all of this and commits nothing: the engine shows the
//! preview, and applying the change turns the very same lines into an invoice with
//! [`Upgrade::into_invoice`].
//!
//! # The unused fraction, to the second
//!
//! The unused part of a period `[start, end)` at instant `at` is the [`TimeFraction`]
//! `(end - at) / (end - start)`, a ratio of whole seconds. Every instant is first truncated to
//! its whole second (the sub-second part is dropped, so a change at `10:00:00.700` counts as
//! `10:00:00`); spans measured that way add up exactly, so the credits of consecutive spans add
//! up to the credit of their union, up to rounding. A change inside the first second of a
//! period credits the whole period, one inside its last second credits that one second.
//!
//! The credit for an item is `charged x unused / whole`, where `charged` is what the item's
//! recurring line charged for the period (its rounded amount, so a credit never exceeds what
//! was paid). It is computed as an exact rational number in integer minor units and rounded
//! once with the engine's [`RoundingPolicy`]: no floating point, and no intermediate decimal
//! rounding either. A 50.00 USD month of 31 days left on Jan 16 credits
//! `5000 x 16 / 31 = 2580.645...` cents, so 25.81 USD.
//!
//! # Upgrade or downgrade
//!
//! A change is an upgrade when the new items cost strictly more **per unit of time** than the
//! old ones; anything else (cheaper, or the same rate on another plan or interval) is a
//! downgrade, scheduled for the period end, so no money moves before the customer has used what
//! they paid for. The cost per period of a set of items is the sum of their recurring line
//! amounts; rates are compared over a Gregorian cycle of 400 years (146,097 days, which is
//! exactly 20,871 weeks, 4,800 months, 1,600 quarters and 400 years), by cross-multiplying
//! exact decimals. So 10.00 USD monthly to 100.00 USD yearly is a downgrade (cheaper per year),
//! 10.00 USD monthly to 120.00 USD yearly too (the same rate), and 10.00 USD monthly to 3.00 USD
//! weekly an upgrade (156.53 USD a year against 120.00 USD).
//!
//! The preview assumes the current period was paid at the old items' prices. When nothing was
//! paid for it (a trial), pass no old items: nothing is credited, and any paid plan is an
//! upgrade.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{BillingCycle, CalendarError, Frequency, Interval, Period};
use crate::catalog::Price;
use crate::ids::{CustomerId, InvoiceId, SubscriptionId};
use crate::invoice::{
    Invoice, InvoiceError, InvoiceKind, LineItem, LineKind, NewInvoice, NewLineItem, Totals,
    check_items, describe_item, item_charge, item_lines,
};
use crate::money::{Currency, Money, MoneyError, RoundingPolicy};

/// Why a plan change could not be previewed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProrationError {
    /// The items, lines or totals were refused (no new items, another currency, zero seats,
    /// mixed intervals, a negative credit balance ...): a caller error.
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    /// An amount is beyond the money range.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The new period cannot be computed (beyond the representable dates).
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// The instant is not inside the span it should be in: a change must happen within the
    /// current period `[start, end)`; a span must lie within its period. Reload the
    /// subscription: its period has probably moved on.
    #[error("{at} is outside the period {start} to {end}")]
    OutsidePeriod {
        /// The instant given.
        at: DateTime<Utc>,
        /// The period's start.
        start: DateTime<Utc>,
        /// The period's end.
        end: DateTime<Utc>,
    },
    /// The period is shorter than one whole second, so no fraction of it can be measured.
    #[error("the period {start} to {end} is shorter than a second")]
    PeriodTooShort {
        /// The period's start.
        start: DateTime<Utc>,
        /// The period's end.
        end: DateTime<Utc>,
    },
    /// The new items are the old items: there is nothing to change.
    #[error("the new items are the current items")]
    NoChange,
}

/// A part of a period as an exact ratio of whole seconds, `part / whole`, with
/// `0 <= part <= whole` and `whole > 0`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use commet_core::calendar::{BillingCycle, Interval};
/// use commet_core::money::{Money, RoundingPolicy};
/// use commet_core::proration::unused_fraction;
///
/// let jan = BillingCycle::new(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(), Interval::MONTHLY)
///     .period(0)?;
/// let unused = unused_fraction(jan, Utc.with_ymd_and_hms(2024, 1, 16, 0, 0, 0).unwrap())?;
/// assert_eq!((unused.part_seconds(), unused.whole_seconds()), (16 * 86_400, 31 * 86_400));
/// let credit = unused.apply("50.00 USD".parse::<Money>()?, RoundingPolicy::HalfAwayFromZero)?;
/// assert_eq!(credit.to_string(), "25.81 USD"); // 50 x 16/31 = 25.806...
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeFraction {
    part: i64,
    whole: i64,
}

impl TimeFraction {
    /// The fraction of `period` that `[from, to)` covers, in whole seconds (each instant
    /// truncated to its second). Requires `start <= from <= to <= end`.
    pub fn of_span(
        period: Period,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<TimeFraction, ProrationError> {
        let outside = |at| ProrationError::OutsidePeriod {
            at,
            start: period.start(),
            end: period.end(),
        };
        if from < period.start() || from > period.end() {
            return Err(outside(from));
        }
        if to < from || to > period.end() {
            return Err(outside(to));
        }
        let whole = period.end().timestamp() - period.start().timestamp();
        if whole <= 0 {
            return Err(ProrationError::PeriodTooShort {
                start: period.start(),
                end: period.end(),
            });
        }
        Ok(TimeFraction {
            part: to.timestamp() - from.timestamp(),
            whole,
        })
    }

    /// The unused fraction of `period` at `at`: `(end - at) / (end - start)`, in whole
    /// seconds. `at` must be inside the period, `start <= at < end`.
    pub fn unused(period: Period, at: DateTime<Utc>) -> Result<TimeFraction, ProrationError> {
        if !period.contains(at) {
            return Err(ProrationError::OutsidePeriod {
                at,
                start: period.start(),
                end: period.end(),
            });
        }
        TimeFraction::of_span(period, at, period.end())
    }

    /// The seconds covered.
    #[must_use]
    pub fn part_seconds(self) -> i64 {
        self.part
    }

    /// The seconds of the whole period.
    #[must_use]
    pub fn whole_seconds(self) -> i64 {
        self.whole
    }

    /// The fraction as a decimal, for display: exact when it terminates, otherwise correct to
    /// 28 significant digits. [`apply`](TimeFraction::apply) does not go through it.
    #[must_use]
    pub fn to_decimal(self) -> Decimal {
        // whole > 0 and both fit in i64, so the division cannot fail.
        Decimal::from(self.part)
            .checked_div(Decimal::from(self.whole))
            .unwrap_or(Decimal::ZERO)
    }

    /// `amount x part / whole`, computed exactly in minor units and rounded once with `policy`.
    /// The result is never larger in size than `amount`.
    pub fn apply(self, amount: Money, policy: RoundingPolicy) -> Result<Money, ProrationError> {
        // |minor| < 2^63 and part <= whole < 2^63, so the product fits in an i128.
        let numerator = i128::from(amount.minor_units())
            .checked_mul(i128::from(self.part))
            .ok_or(MoneyError::Overflow)?;
        let minor = round_ratio(numerator, i128::from(self.whole), policy);
        // |minor| <= |amount.minor_units()| because part <= whole.
        let minor = i64::try_from(minor).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, amount.currency()))
    }
}

/// The unused fraction of `period` at `at`; see [`TimeFraction::unused`].
pub fn unused_fraction(period: Period, at: DateTime<Utc>) -> Result<TimeFraction, ProrationError> {
    TimeFraction::unused(period, at)
}

/// `numerator / denominator` rounded to an integer with `policy`; `denominator > 0`.
fn round_ratio(numerator: i128, denominator: i128, policy: RoundingPolicy) -> i128 {
    let magnitude = numerator.unsigned_abs();
    let denominator = denominator.unsigned_abs().max(1);
    let (quotient, remainder) = (magnitude / denominator, magnitude % denominator);
    // Compare the remainder with half the denominator without overflow: 2r vs d.
    let twice = remainder.saturating_mul(2);
    let round_up = match twice.cmp(&denominator) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => match policy {
            RoundingPolicy::HalfAwayFromZero => true,
            RoundingPolicy::HalfEven => quotient % 2 == 1,
        },
    };
    let rounded = quotient + u128::from(round_up);
    // |rounded| <= |numerator| <= i128::MAX, so this conversion does not saturate.
    let rounded = i128::try_from(rounded).unwrap_or(i128::MAX);
    if numerator < 0 { -rounded } else { rounded }
}

/// The `proration_credit` lines of an upgrade at `at`: one per old item, crediting the unused
/// fraction of what the item charged for `period`, each covering `[at, end)`. Every price must
/// be in `currency`.
pub fn credit_lines(
    items: &[(Price, u32)],
    currency: Currency,
    period: Period,
    at: DateTime<Utc>,
    policy: RoundingPolicy,
) -> Result<Vec<LineItem>, ProrationError> {
    check_items(items, currency)?;
    let unused = TimeFraction::unused(period, at)?;
    let covered = Period::new(at, period.end()).map_err(InvoiceError::from)?;
    items
        .iter()
        .map(|(price, quantity)| {
            let charged = item_charge(price, *quantity, policy)?;
            let credit = unused.apply(charged, policy)?.checked_neg()?;
            let line = LineItem::new(
                NewLineItem {
                    kind: LineKind::ProrationCredit,
                    description: format!("Unused time on {}", describe_item(price, *quantity)),
                    quantity: Decimal::ONE,
                    unit_amount: credit.into(),
                    period: Some(covered),
                    price: Some(price.id()),
                },
                policy,
            )?;
            Ok(line)
        })
        .collect()
}

/// The period that starts at a plan change: `[at, at + interval)`, as period 0 of a billing
/// cycle anchored at `at` (so month ends clamp as usual).
pub fn new_period(at: DateTime<Utc>, interval: Interval) -> Result<Period, ProrationError> {
    Ok(BillingCycle::new(at, interval).period(0)?)
}

/// Whether a change takes effect now or at the period end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeDirection {
    /// The new items cost strictly more per unit of time: immediate, prorated.
    Upgrade,
    /// The same or less per unit of time: scheduled for the period end, nothing prorated.
    Downgrade,
}

/// Classify a change from `from` to `to` by cost per unit of time (see the
/// [module docs](self)). `from` may be empty (nothing paid); `to` may not.
pub fn direction(
    from: &[(Price, u32)],
    to: &[(Price, u32)],
    currency: Currency,
    policy: RoundingPolicy,
) -> Result<ChangeDirection, ProrationError> {
    let old = Rate::of(from, currency, policy)?;
    let new = Rate::of(to, currency, policy)?;
    if new.interval.is_none() {
        return Err(InvoiceError::NoItems.into());
    }
    Ok(if new.exceeds(&old)? {
        ChangeDirection::Upgrade
    } else {
        ChangeDirection::Downgrade
    })
}

/// A cost per period and the period's interval.
struct Rate {
    cost: Decimal,
    interval: Option<Interval>,
}

impl Rate {
    fn of(
        items: &[(Price, u32)],
        currency: Currency,
        policy: RoundingPolicy,
    ) -> Result<Rate, ProrationError> {
        let interval = check_items(items, currency)?;
        let mut cost = Money::zero(currency);
        for (price, quantity) in items {
            cost = cost.checked_add(item_charge(price, *quantity, policy)?)?;
        }
        Ok(Rate {
            cost: cost.amount(),
            interval,
        })
    }

    /// Periods of this interval in 400 Gregorian years, as `(periods of count 1, count)`.
    fn periods_per_cycle(interval: Option<Interval>) -> (Decimal, Decimal) {
        match interval {
            None => (Decimal::ONE, Decimal::ONE),
            Some(interval) => {
                let per_cycle = match interval.frequency() {
                    Frequency::Weekly => 20_871,
                    Frequency::Monthly => 4_800,
                    Frequency::Quarterly => 1_600,
                    Frequency::Yearly => 400,
                };
                (Decimal::from(per_cycle), Decimal::from(interval.count()))
            }
        }
    }

    /// `self.cost / self.length > other.cost / other.length`, cross-multiplied exactly.
    fn exceeds(&self, other: &Rate) -> Result<bool, MoneyError> {
        let (mine, my_count) = Rate::periods_per_cycle(self.interval);
        let (theirs, their_count) = Rate::periods_per_cycle(other.interval);
        let product = |cost: Decimal, per_cycle: Decimal, count: Decimal| {
            cost.checked_mul(per_cycle)
                .and_then(|x| x.checked_mul(count))
                .ok_or(MoneyError::Overflow)
        };
        Ok(product(self.cost, mine, their_count)? > product(other.cost, theirs, my_count)?)
    }
}

/// A plan change to preview: the subscription's current period and items, the new items, and
/// the instant of the change.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use commet_core::calendar::{BillingCycle, Interval};
/// use commet_core::catalog::{NewPrice, Price, PricingModel};
/// use commet_core::ids::IdGenerator;
/// use commet_core::money::{Currency, Money, RoundingPolicy};
/// use commet_core::proration::{ChangePreview, PlanChange};
///
/// let jan_1 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let ids = IdGenerator::seeded(1);
/// let monthly = |amount: &str| Price::new(ids.next(jan_1), NewPrice {
///     plan: ids.next(jan_1),
///     unit_amount: amount.parse().unwrap(),
///     interval: Interval::MONTHLY,
///     trial_days: 0,
///     model: PricingModel::Flat,
/// });
/// let (basic, pro) = (monthly("50.00 USD")?, monthly("100.00 USD")?);
/// let change = PlanChange {
///     period: BillingCycle::new(jan_1, Interval::MONTHLY).period(0)?,
///     at: Utc.with_ymd_and_hms(2024, 1, 16, 0, 0, 0).unwrap(),
///     from: &[(basic, 1)],
///     to: &[(pro, 1)],
///     currency: Currency::USD,
///     available_credit: Money::zero(Currency::USD),
///     policy: RoundingPolicy::default(),
/// };
/// let ChangePreview::Upgrade(upgrade) = change.preview()? else { panic!("an upgrade") };
/// let amounts: Vec<String> = upgrade.lines().iter().map(|l| l.amount().to_string()).collect();
/// assert_eq!(amounts, ["-25.81 USD", "100.00 USD"]);
/// assert_eq!(upgrade.totals().amount_due().to_string(), "74.19 USD");
/// assert_eq!(upgrade.new_period().end(), Utc.with_ymd_and_hms(2024, 2, 16, 0, 0, 0).unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PlanChange<'a> {
    /// The current period, `[start, end)`, which the old items paid for.
    pub period: Period,
    /// When the change happens: inside the current period.
    pub at: DateTime<Utc>,
    /// The current items; empty when nothing was paid for the period (a trial).
    pub from: &'a [(Price, u32)],
    /// The new items: at least one, all at one interval.
    pub to: &'a [(Price, u32)],
    /// The subscription's currency: every price must be in it.
    pub currency: Currency,
    /// The customer's credit balance, applied to an upgrade's invoice.
    pub available_credit: Money,
    /// How amounts are rounded.
    pub policy: RoundingPolicy,
}

impl PlanChange<'_> {
    /// What the change would do, committing nothing: the exact lines and totals of an upgrade,
    /// or the date of a downgrade.
    pub fn preview(&self) -> Result<ChangePreview, ProrationError> {
        check_items(self.from, self.currency)?;
        let to_interval = check_items(self.to, self.currency)?.ok_or(InvoiceError::NoItems)?;
        if !self.period.contains(self.at) {
            return Err(ProrationError::OutsidePeriod {
                at: self.at,
                start: self.period.start(),
                end: self.period.end(),
            });
        }
        if self.from == self.to {
            return Err(ProrationError::NoChange);
        }
        match direction(self.from, self.to, self.currency, self.policy)? {
            ChangeDirection::Downgrade => Ok(ChangePreview::Downgrade(Downgrade {
                effective_at: self.period.end(),
                next_period: new_period(self.period.end(), to_interval)?,
            })),
            ChangeDirection::Upgrade => {
                let unused = TimeFraction::unused(self.period, self.at)?;
                let period = new_period(self.at, to_interval)?;
                let mut lines =
                    credit_lines(self.from, self.currency, self.period, self.at, self.policy)?;
                lines.extend(item_lines(self.to, self.currency, period, self.policy)?);
                let zero = Money::zero(self.currency);
                let totals =
                    Totals::compute(self.currency, &lines, zero, zero, self.available_credit)?;
                Ok(ChangePreview::Upgrade(Upgrade {
                    effective_at: self.at,
                    unused,
                    new_period: period,
                    lines,
                    totals,
                }))
            }
        }
    }
}

/// What a plan change would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangePreview {
    /// Immediate, with a `plan_change` invoice.
    Upgrade(Upgrade),
    /// Scheduled for the period end, with nothing to pay now.
    Downgrade(Downgrade),
}

impl ChangePreview {
    /// Upgrade or downgrade.
    #[must_use]
    pub fn direction(&self) -> ChangeDirection {
        match self {
            ChangePreview::Upgrade(_) => ChangeDirection::Upgrade,
            ChangePreview::Downgrade(_) => ChangeDirection::Downgrade,
        }
    }

    /// When the new items take effect.
    #[must_use]
    pub fn effective_at(&self) -> DateTime<Utc> {
        match self {
            ChangePreview::Upgrade(upgrade) => upgrade.effective_at,
            ChangePreview::Downgrade(downgrade) => downgrade.effective_at,
        }
    }

    /// The lines invoiced now: none for a downgrade.
    #[must_use]
    pub fn lines(&self) -> &[LineItem] {
        match self {
            ChangePreview::Upgrade(upgrade) => &upgrade.lines,
            ChangePreview::Downgrade(_) => &[],
        }
    }
}

/// An immediate change: credit for the unused time, a charge for a new period from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    effective_at: DateTime<Utc>,
    unused: TimeFraction,
    new_period: Period,
    lines: Vec<LineItem>,
    totals: Totals,
}

impl Upgrade {
    /// When the change happens: the instant previewed.
    #[must_use]
    pub fn effective_at(&self) -> DateTime<Utc> {
        self.effective_at
    }

    /// The unused fraction of the current period that is credited.
    #[must_use]
    pub fn unused(&self) -> TimeFraction {
        self.unused
    }

    /// The subscription's new period, from the change: its new billing anchor.
    #[must_use]
    pub fn new_period(&self) -> Period {
        self.new_period
    }

    /// The `proration_credit` lines, then the lines charging the new items.
    #[must_use]
    pub fn lines(&self) -> &[LineItem] {
        &self.lines
    }

    /// The totals of those lines, with the customer's credit applied; a negative total is
    /// [`credit_issued`](Totals::credit_issued).
    #[must_use]
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The `plan_change` draft invoice with exactly these lines and totals, covering the new
    /// period.
    pub fn into_invoice(
        self,
        id: InvoiceId,
        customer: CustomerId,
        subscription: SubscriptionId,
        created_at: DateTime<Utc>,
    ) -> Result<Invoice, InvoiceError> {
        let mut invoice = Invoice::draft(NewInvoice {
            id,
            customer,
            subscription: Some(subscription),
            currency: self.totals.total().currency(),
            kind: InvoiceKind::PlanChange,
            period: Some(self.new_period),
            created_at,
            memo: None,
            metadata: std::collections::BTreeMap::new(),
        })?;
        for line in self.lines {
            invoice.add_line(line)?;
        }
        // The preview applied at most the total, so applying the same amount gives the same
        // totals.
        invoice.apply_credit(self.totals.credit_applied())?;
        Ok(invoice)
    }
}

/// A change scheduled for the end of the current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downgrade {
    effective_at: DateTime<Utc>,
    next_period: Period,
}

impl Downgrade {
    /// The end of the current period, when the new items take over.
    #[must_use]
    pub fn effective_at(&self) -> DateTime<Utc> {
        self.effective_at
    }

    /// The first period billed at the new items: from the current period's end, one new
    /// interval long.
    #[must_use]
    pub fn next_period(&self) -> Period {
        self.next_period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_exactly_by_the_policy() {
        let half_away = RoundingPolicy::HalfAwayFromZero;
        let half_even = RoundingPolicy::HalfEven;
        assert_eq!(round_ratio(5, 2, half_away), 3);
        assert_eq!(round_ratio(5, 2, half_even), 2);
        assert_eq!(round_ratio(7, 2, half_even), 4);
        assert_eq!(round_ratio(-5, 2, half_away), -3);
        assert_eq!(round_ratio(-5, 2, half_even), -2);
        assert_eq!(round_ratio(80_000, 31, half_away), 2581); // 2580.645...
        assert_eq!(round_ratio(1, 3, half_away), 0);
        assert_eq!(round_ratio(2, 3, half_away), 1);
        // A midpoint whose fraction does not terminate in decimal: 3 x 1/6 = 0.5 exactly.
        assert_eq!(round_ratio(3, 6, half_even), 0);
        assert_eq!(round_ratio(3, 6, half_away), 1);
    }
}
