//! Laws of proration (DESIGN.md sections 7 and 12): splitting a period never creates or loses
//! more than rounding, an upgrade never credits more than was paid for the unused time, a
//! downgrade moves no money, and a preview is exactly the invoice it becomes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // strategies build values known valid

use chrono::{DateTime, TimeDelta, Utc};
use commet_core::calendar::{BillingCycle, Frequency, Interval, Period};
use commet_core::catalog::{NewPrice, Price, PricingModel};
use commet_core::ids::IdGenerator;
use commet_core::invoice::LineKind;
use commet_core::money::{Currency, Money, RoundingPolicy};
use commet_core::proration::{ChangePreview, PlanChange, TimeFraction};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rust_decimal::Decimal;

/// Currencies with 0, 2 and 3 decimal places.
fn currency() -> impl Strategy<Value = Currency> {
    prop_oneof![
        Just(Currency::JPY),
        Just(Currency::USD),
        Just(Currency::KWD)
    ]
}

fn policy() -> impl Strategy<Value = RoundingPolicy> {
    prop_oneof![
        Just(RoundingPolicy::HalfAwayFromZero),
        Just(RoundingPolicy::HalfEven)
    ]
}

/// Instants between 1970 and 2200, to the microsecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..7_258_118_400, 0u32..1_000_000).prop_map(|(secs, micros)| {
        DateTime::from_timestamp(secs, micros * 1_000).expect("in range")
    })
}

fn interval() -> impl Strategy<Value = Interval> {
    prop_oneof![
        Just(Frequency::Weekly),
        Just(Frequency::Monthly),
        Just(Frequency::Quarterly),
        Just(Frequency::Yearly),
    ]
    .prop_flat_map(|frequency| {
        (1..=frequency.max_count())
            .prop_map(move |count| Interval::new(frequency, count).expect("valid"))
    })
}

/// A billing period of a random cycle.
fn period() -> impl Strategy<Value = Period> {
    (instant(), interval(), 0u64..24)
        .prop_map(|(anchor, interval, n)| BillingCycle::new(anchor, interval).period(n).unwrap())
}

/// The instant `millionths` (0 to 1,000,000) of the way through `period`.
fn point_in(period: Period, millionths: i64) -> DateTime<Utc> {
    let micros = period.duration().num_microseconds().unwrap();
    let offset = i64::try_from(i128::from(micros) * i128::from(millionths) / 1_000_000).unwrap();
    period.start() + TimeDelta::microseconds(offset)
}

/// A price: flat (payable amount) or per seat (up to 4 extra decimals), in `currency`.
fn price(currency: Currency, interval: Interval) -> impl Strategy<Value = Price> {
    (any::<bool>(), 0i64..100_000_000, 0u32..=4, any::<u64>()).prop_map(
        move |(flat, mantissa, extra, seed)| {
            let (model, scale) = if flat {
                (PricingModel::Flat, currency.decimals())
            } else {
                (PricingModel::PerSeat, currency.decimals() + extra)
            };
            let ids = IdGenerator::seeded(seed);
            let now = DateTime::<Utc>::UNIX_EPOCH;
            Price::new(
                ids.next(now),
                NewPrice {
                    plan: ids.next(now),
                    unit_amount: commet_core::money::UnitAmount::new(
                        Decimal::new(mantissa, scale),
                        currency,
                    ),
                    interval,
                    trial_days: 0,
                    model,
                },
            )
            .unwrap()
        },
    )
}

/// Items: one to three prices of one currency and interval, with 1 to 50 seats each.
fn items(currency: Currency, interval: Interval) -> impl Strategy<Value = Vec<(Price, u32)>> {
    prop::collection::vec((price(currency, interval), 1u32..50), 1..4)
}

/// What an item charges per period: the recurring line amount.
fn charged(items: &[(Price, u32)], policy: RoundingPolicy) -> i128 {
    items
        .iter()
        .map(|(price, quantity)| {
            let quantity = match price.model() {
                PricingModel::Flat => Decimal::ONE,
                PricingModel::PerSeat => Decimal::from(*quantity),
            };
            i128::from(
                price
                    .unit_amount()
                    .times(quantity, policy)
                    .unwrap()
                    .minor_units(),
            )
        })
        .sum()
}

/// A plan change scenario: a currency, the current period, the change instant, old and new
/// items (the new ones at their own interval), a credit balance and a policy.
#[derive(Debug, Clone)]
struct Scenario {
    currency: Currency,
    period: Period,
    at: DateTime<Utc>,
    from: Vec<(Price, u32)>,
    to: Vec<(Price, u32)>,
    credit: Money,
    policy: RoundingPolicy,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (currency(), interval(), interval(), instant(), policy())
        .prop_flat_map(|(currency, old, new, anchor, policy)| {
            let period = BillingCycle::new(anchor, old).period(0).unwrap();
            (
                Just((currency, period, policy)),
                0i64..1_000_000,
                items(currency, old),
                items(currency, new),
                0i64..1_000_000_000,
            )
        })
        .prop_map(
            |((currency, period, policy), where_, from, to, credit)| Scenario {
                currency,
                period,
                at: point_in(period, where_),
                from,
                to,
                credit: Money::from_minor(credit, currency),
                policy,
            },
        )
}

fn preview(s: &Scenario) -> ChangePreview {
    PlanChange {
        period: s.period,
        at: s.at,
        from: &s.from,
        to: &s.to,
        currency: s.currency,
        available_credit: s.credit,
        policy: s.policy,
    }
    .preview()
    .unwrap()
}

/// Failures are saved under `proptest-regressions/` (committed) and re-run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/proration_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn a_period_split_at_k_instants_prorates_to_the_full_price_within_k_minor_units(
        period in period(),
        minor in 0i64..1_000_000_000_000,
        c in currency(),
        p in policy(),
        cuts in prop::collection::vec(0i64..=1_000_000, 1..10),
    ) {
        let price = Money::from_minor(minor, c);
        let mut points: Vec<DateTime<Utc>> = cuts.iter().map(|&m| point_in(period, m)).collect();
        points.push(period.start());
        points.push(period.end());
        points.sort();
        let k = i64::try_from(cuts.len()).unwrap();
        let mut seconds = 0;
        let mut sum: i64 = 0;
        for span in points.windows(2) {
            let fraction = TimeFraction::of_span(period, span[0], span[1])?;
            seconds += fraction.part_seconds();
            let part = fraction.apply(price, p)?;
            prop_assert!(!part.is_negative() && part <= price);
            sum += part.minor_units();
        }
        // Whole seconds add up exactly; money adds up within one rounding per cut.
        prop_assert_eq!(seconds, period.end().timestamp() - period.start().timestamp());
        prop_assert!((sum - minor).abs() <= k, "sum {} vs {} with {} cuts", sum, minor, k);
    }

    #[test]
    fn credits_of_consecutive_spans_add_up_to_the_credit_of_their_union(
        period in period(),
        minor in 0i64..1_000_000_000_000,
        c in currency(),
        p in policy(),
        at in 0i64..1_000_000,
        cuts in prop::collection::vec(0i64..=1_000_000, 1..10),
    ) {
        let price = Money::from_minor(minor, c);
        let at = point_in(period, at); // before the end: at < 1,000,000 millionths
        let unused = TimeFraction::unused(period, at)?.apply(price, p)?;
        let unused_span = Period::new(at, period.end())?;
        let mut points: Vec<DateTime<Utc>> =
            cuts.iter().map(|&m| point_in(unused_span, m)).collect();
        points.push(at);
        points.push(period.end());
        points.sort();
        let mut sum = 0;
        for span in points.windows(2) {
            sum += TimeFraction::of_span(period, span[0], span[1])?.apply(price, p)?.minor_units();
        }
        let k = i64::try_from(cuts.len()).unwrap();
        prop_assert!((sum - unused.minor_units()).abs() <= k);
    }

    #[test]
    fn an_upgrade_then_a_downgrade_back_never_creates_money(s in scenario(), later in 0i64..1_000_000) {
        let paid_before = charged(&s.from, s.policy);
        match preview(&s) {
            ChangePreview::Upgrade(up) => {
                let fraction = up.unused();
                let (part, whole) = (i128::from(fraction.part_seconds()), i128::from(fraction.whole_seconds()));
                let credits: Vec<_> = up.lines().iter().filter(|l| l.kind() == LineKind::ProrationCredit).collect();
                prop_assert_eq!(credits.len(), s.from.len());
                let credit: i128 = credits.iter().map(|l| -i128::from(l.amount().minor_units())).sum();
                // Never more than what was paid, nor more than the unused time is worth (each
                // line at most half a minor unit above its exact share, by rounding).
                prop_assert!(credit >= 0 && credit <= paid_before);
                let slack = i128::try_from(s.from.len()).unwrap() * whole;
                prop_assert!(2 * credit * whole <= 2 * paid_before * part + slack);
                // The new items are charged in full, for a new period starting now.
                let charges: i128 = up.lines().iter().filter(|l| l.kind() != LineKind::ProrationCredit)
                    .map(|l| i128::from(l.amount().minor_units())).sum();
                prop_assert_eq!(charges, charged(&s.to, s.policy));
                prop_assert_eq!(up.new_period().start(), s.at);
                // Totals: due + applied - issued == charges - credits.
                let t = up.totals();
                prop_assert_eq!(i128::from(t.total().minor_units()), charges - credit);
                prop_assert!(!t.amount_due().is_negative());
                prop_assert!(t.credit_applied() <= s.credit);

                // Going back is strictly cheaper per unit of time, so it is a downgrade at the
                // end of the new period that moves no money at all.
                let back = Scenario {
                    period: up.new_period(),
                    at: point_in(up.new_period(), later),
                    from: s.to.clone(),
                    to: s.from.clone(),
                    ..s.clone()
                };
                match preview(&back) {
                    ChangePreview::Downgrade(down) => {
                        prop_assert_eq!(down.effective_at(), up.new_period().end());
                    }
                    ChangePreview::Upgrade(_) => prop_assert!(false, "going back was an upgrade"),
                }
            }
            ChangePreview::Downgrade(down) => {
                prop_assert_eq!(down.effective_at(), s.period.end());
                prop_assert_eq!(down.next_period().start(), s.period.end());
            }
        }
    }

    #[test]
    fn an_upgrade_becomes_exactly_the_invoice_it_previewed(s in scenario()) {
        if let ChangePreview::Upgrade(up) = preview(&s) {
            let ids = IdGenerator::seeded(1);
            let (lines, totals) = (up.lines().to_vec(), *up.totals());
            let invoice = up.into_invoice(ids.next(s.at), ids.next(s.at), ids.next(s.at), s.at)?;
            prop_assert_eq!(invoice.lines(), &lines[..]);
            prop_assert_eq!(invoice.totals(), &totals);
        }
    }
}
