//! Golden figures for proration and customer credit, each worked out by hand in the comments
//! (DESIGN.md section 7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::calendar::{BillingCycle, Interval, Period};
use commet_core::catalog::{NewPrice, Price, PricingModel};
use commet_core::ids::{CustomerId, IdGenerator, SubscriptionId};
use commet_core::invoice::{Invoice, InvoiceKind, LineKind, PeriodInvoice};
use commet_core::money::{Currency, Money, RoundingPolicy};
use commet_core::proration::{ChangePreview, Downgrade, PlanChange, Upgrade};
use rust_decimal::Decimal;

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

fn ids() -> IdGenerator {
    IdGenerator::seeded(42)
}

/// Each price gets its own ids.
fn price(amount: &str, model: PricingModel, interval: Interval) -> Price {
    static SEED: AtomicU64 = AtomicU64::new(1);
    let ids = IdGenerator::seeded(SEED.fetch_add(1, Ordering::Relaxed));
    Price::new(
        ids.next(utc(2024, 1, 1)),
        NewPrice {
            plan: ids.next(utc(2024, 1, 1)),
            unit_amount: amount.parse().unwrap(),
            interval,
            trial_days: 0,
            model,
        },
    )
    .unwrap()
}

fn monthly(amount: &str) -> Price {
    price(amount, PricingModel::Flat, Interval::MONTHLY)
}

fn money(text: &str) -> Money {
    text.parse().unwrap()
}

/// January 2024: `[Jan 1, Feb 1)`, 31 days.
fn january() -> Period {
    BillingCycle::new(utc(2024, 1, 1), Interval::MONTHLY)
        .period(0)
        .unwrap()
}

fn preview(
    period: Period,
    at: DateTime<Utc>,
    from: &[(Price, u32)],
    to: &[(Price, u32)],
    credit: Money,
) -> ChangePreview {
    PlanChange {
        period,
        at,
        from,
        to,
        currency: credit.currency(),
        available_credit: credit,
        policy: RoundingPolicy::HalfAwayFromZero,
    }
    .preview()
    .unwrap()
}

fn upgrade(preview: ChangePreview) -> Upgrade {
    match preview {
        ChangePreview::Upgrade(upgrade) => upgrade,
        ChangePreview::Downgrade(downgrade) => panic!("expected an upgrade, got {downgrade:?}"),
    }
}

fn downgrade(preview: ChangePreview) -> Downgrade {
    match preview {
        ChangePreview::Downgrade(downgrade) => downgrade,
        ChangePreview::Upgrade(upgrade) => panic!("expected a downgrade, got {upgrade:?}"),
    }
}

fn amounts(lines: &[commet_core::invoice::LineItem]) -> Vec<String> {
    lines.iter().map(|l| l.amount().to_string()).collect()
}

fn plan_change_invoice(upgrade: Upgrade) -> Invoice {
    let ids = ids();
    let now = upgrade.effective_at();
    upgrade
        .into_invoice(
            ids.next(now),
            ids.next::<CustomerId>(now),
            ids.next::<SubscriptionId>(now),
            now,
        )
        .unwrap()
}

#[test]
fn upgrade_on_jan_16_credits_25_81_and_charges_100() {
    // Jan 1 to Feb 1 is 31 days = 2,678,400 s; Jan 16 to Feb 1 is 16 days = 1,382,400 s.
    // Credit: 50.00 x 16/31 = 25.806451... -> 25.81 (half away from zero).
    // Charge: 100.00 for the new period Jan 16 to Feb 16.
    // Due: 100.00 - 25.81 = 74.19.
    let (basic, pro) = (monthly("50.00 USD"), monthly("100.00 USD"));
    assert_ne!(basic.id(), pro.id());
    let up = upgrade(preview(
        january(),
        utc(2024, 1, 16),
        &[(basic.clone(), 1)],
        &[(pro.clone(), 1)],
        Money::zero(Currency::USD),
    ));
    assert_eq!(
        (up.unused().part_seconds(), up.unused().whole_seconds()),
        (1_382_400, 2_678_400)
    );
    assert_eq!(amounts(up.lines()), ["-25.81 USD", "100.00 USD"]);
    let [credit, charge] = up.lines() else {
        panic!("two lines")
    };
    assert_eq!(credit.kind(), LineKind::ProrationCredit);
    assert_eq!(credit.price(), Some(basic.id()));
    assert_eq!(
        credit.period(),
        Some(Period::new(utc(2024, 1, 16), utc(2024, 2, 1)).unwrap())
    );
    assert_eq!(
        credit.description(),
        "Unused time on Subscription (monthly)"
    );
    assert_eq!(charge.kind(), LineKind::PlanBase);
    assert_eq!(charge.price(), Some(pro.id()));
    assert_eq!(
        up.new_period(),
        Period::new(utc(2024, 1, 16), utc(2024, 2, 16)).unwrap()
    );
    assert_eq!(charge.period(), Some(up.new_period()));
    assert_eq!(up.totals().subtotal(), money("74.19 USD"));
    assert_eq!(up.totals().total(), money("74.19 USD"));
    assert_eq!(up.totals().amount_due(), money("74.19 USD"));
    assert_eq!(up.totals().credit_issued(), money("0.00 USD"));

    // The invoice carries exactly the previewed lines and totals.
    let totals = *up.totals();
    let lines = up.lines().to_vec();
    let invoice = plan_change_invoice(up);
    assert_eq!(invoice.kind(), InvoiceKind::PlanChange);
    assert_eq!(invoice.lines(), lines);
    assert_eq!(*invoice.totals(), totals);
}

#[test]
fn the_same_upgrade_in_yen_credits_2581_and_leaves_7419_due() {
    // JPY has no minor unit: 5000 x 16/31 = 2580.645... -> 2581; 10000 - 2581 = 7419.
    let up = upgrade(preview(
        january(),
        utc(2024, 1, 16),
        &[(monthly("5000 JPY"), 1)],
        &[(monthly("10000 JPY"), 1)],
        Money::zero(Currency::JPY),
    ));
    assert_eq!(amounts(up.lines()), ["-2581 JPY", "10000 JPY"]);
    assert_eq!(up.totals().amount_due(), money("7419 JPY"));
}

#[test]
fn a_three_seat_plan_bills_36_and_going_to_five_seats_on_jan_16_leaves_41_42_due() {
    // Recurring: 3 seats x 12.00 = 36.00 for January.
    let seat = price("12.00 USD", PricingModel::PerSeat, Interval::MONTHLY);
    let ids = ids();
    let invoice = PeriodInvoice {
        kind: InvoiceKind::Recurring,
        id: ids.next(utc(2024, 1, 1)),
        customer: ids.next(utc(2024, 1, 1)),
        subscription: ids.next(utc(2024, 1, 1)),
        currency: Currency::USD,
        period: january(),
        items: &[(seat.clone(), 3)],
        created_at: utc(2024, 1, 1),
        available_credit: Money::zero(Currency::USD),
        policy: RoundingPolicy::HalfAwayFromZero,
    }
    .build()
    .unwrap();
    let [line] = invoice.lines() else {
        panic!("one line")
    };
    assert_eq!(line.kind(), LineKind::Seats);
    assert_eq!(line.quantity(), Decimal::from(3));
    assert_eq!(line.description(), "3 seats × 12.00 USD (monthly)");
    assert_eq!(invoice.amount_due(), money("36.00 USD"));

    // Five seats from Jan 16: credit 36.00 x 16/31 = 18.580645... -> 18.58;
    // charge 5 x 12.00 = 60.00 for Jan 16 to Feb 16; due 60.00 - 18.58 = 41.42.
    let up = upgrade(preview(
        january(),
        utc(2024, 1, 16),
        &[(seat.clone(), 3)],
        &[(seat, 5)],
        Money::zero(Currency::USD),
    ));
    assert_eq!(amounts(up.lines()), ["-18.58 USD", "60.00 USD"]);
    assert_eq!(up.lines()[1].quantity(), Decimal::from(5));
    assert_eq!(up.totals().amount_due(), money("41.42 USD"));
}

#[test]
fn a_credit_balance_of_25_is_consumed_across_two_invoices_of_20() {
    // Invoice 1 (February): total 20.00, credit applied 20.00, due 0.00, balance 25 -> 5.
    // Invoice 2 (March):    total 20.00, credit applied  5.00, due 15.00, balance 5 -> 0.
    let plan = monthly("20.00 USD");
    let cycle = BillingCycle::new(utc(2024, 1, 1), Interval::MONTHLY);
    let ids = ids();
    let mut balance = money("25.00 USD");
    let mut seen = Vec::new();
    for n in 1..=2 {
        let period = cycle.period(n).unwrap();
        let invoice = PeriodInvoice {
            kind: InvoiceKind::Recurring,
            id: ids.next(period.start()),
            customer: ids.next(period.start()),
            subscription: ids.next(period.start()),
            currency: Currency::USD,
            period,
            items: &[(plan.clone(), 1)],
            created_at: period.start(),
            available_credit: balance,
            policy: RoundingPolicy::HalfAwayFromZero,
        }
        .build()
        .unwrap();
        balance = invoice.totals().customer_credit_after(balance).unwrap();
        seen.push((
            invoice.credit_applied().to_string(),
            invoice.amount_due().to_string(),
            balance.to_string(),
        ));
    }
    let row = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        seen,
        [
            row("20.00 USD", "0.00 USD", "5.00 USD"),
            row("5.00 USD", "15.00 USD", "0.00 USD"),
        ]
    );
}

#[test]
fn a_yearly_plan_upgraded_to_a_dearer_monthly_one_turns_the_surplus_into_credit() {
    // 1,200.00 a year (2024, 366 days) to 150.00 a month (1,800.00 a year: an upgrade) on
    // Mar 2, 61 days in: credit 1200 x 305/366 = 1000.00 exactly; charge 150.00 for Mar 2 to
    // Apr 2; total -850.00, so nothing is due and 850.00 becomes customer credit. With 10.00
    // of credit already on the account, none is applied and the balance becomes 860.00.
    let yearly = price("1200.00 USD", PricingModel::Flat, Interval::YEARLY);
    let year = BillingCycle::new(utc(2024, 1, 1), Interval::YEARLY)
        .period(0)
        .unwrap();
    let up = upgrade(preview(
        year,
        utc(2024, 3, 2),
        &[(yearly, 1)],
        &[(monthly("150.00 USD"), 1)],
        money("10.00 USD"),
    ));
    assert_eq!(amounts(up.lines()), ["-1000.00 USD", "150.00 USD"]);
    assert_eq!(up.totals().total(), money("-850.00 USD"));
    assert_eq!(up.totals().amount_due(), money("0.00 USD"));
    assert_eq!(up.totals().credit_applied(), money("0.00 USD"));
    assert_eq!(up.totals().credit_issued(), money("850.00 USD"));
    assert_eq!(
        up.totals().customer_credit_after(money("10.00 USD")),
        Ok(money("860.00 USD"))
    );
    assert_eq!(up.new_period().end(), utc(2024, 4, 2));
}

#[test]
fn a_downgrade_on_jan_16_is_scheduled_for_feb_1_and_prorates_nothing() {
    let preview = preview(
        january(),
        utc(2024, 1, 16),
        &[(monthly("100.00 USD"), 1)],
        &[(monthly("50.00 USD"), 1)],
        money("10.00 USD"),
    );
    assert!(preview.lines().is_empty());
    assert_eq!(preview.effective_at(), utc(2024, 2, 1));
    let down = downgrade(preview);
    assert_eq!(
        down.next_period(),
        Period::new(utc(2024, 2, 1), utc(2024, 3, 1)).unwrap()
    );
}

#[test]
fn rates_are_compared_per_unit_of_time_across_intervals() {
    use commet_core::proration::ChangeDirection::{Downgrade, Upgrade};
    let at = utc(2024, 1, 16);
    let from = [(monthly("10.00 USD"), 1)];
    let direction = |to: Price| {
        preview(january(), at, &from, &[(to, 1)], Money::zero(Currency::USD)).direction()
    };
    // 100.00 a year is less than 10.00 x 12 = 120.00: a downgrade.
    assert_eq!(
        direction(price("100.00 USD", PricingModel::Flat, Interval::YEARLY)),
        Downgrade
    );
    // 120.00 a year is the same rate: not an upgrade, so scheduled.
    assert_eq!(
        direction(price("120.00 USD", PricingModel::Flat, Interval::YEARLY)),
        Downgrade
    );
    // 120.01 a year is dearer.
    assert_eq!(
        direction(price("120.01 USD", PricingModel::Flat, Interval::YEARLY)),
        Upgrade
    );
    // 3.00 a week is 3 x 20,871 / 400 = 156.53 a year > 120.00.
    assert_eq!(
        direction(price("3.00 USD", PricingModel::Flat, Interval::WEEKLY)),
        Upgrade
    );
    // 2.30 a week is 120.01 a year (52.18 weeks) > 120.00; 2.29 a week is 119.49 a year.
    assert_eq!(
        direction(price("2.30 USD", PricingModel::Flat, Interval::WEEKLY)),
        Upgrade
    );
    assert_eq!(
        direction(price("2.29 USD", PricingModel::Flat, Interval::WEEKLY)),
        Downgrade
    );
}

#[test]
fn sub_second_instants_count_from_their_whole_second() {
    // Jan 16 00:00:00.999 counts as Jan 16 00:00:00: the same 25.81 credit.
    let at = utc(2024, 1, 16) + TimeDelta::milliseconds(999);
    let up = upgrade(preview(
        january(),
        at,
        &[(monthly("50.00 USD"), 1)],
        &[(monthly("100.00 USD"), 1)],
        Money::zero(Currency::USD),
    ));
    assert_eq!(up.unused().part_seconds(), 16 * 86_400);
    assert_eq!(amounts(up.lines()), ["-25.81 USD", "100.00 USD"]);
}

#[test]
fn a_trial_upgrade_credits_nothing_and_charges_the_new_period() {
    let up = upgrade(preview(
        january(),
        utc(2024, 1, 16),
        &[],
        &[(monthly("100.00 USD"), 1)],
        Money::zero(Currency::USD),
    ));
    assert_eq!(amounts(up.lines()), ["100.00 USD"]);
}

#[test]
fn changes_outside_the_period_or_to_the_same_items_are_refused() {
    use commet_core::proration::ProrationError;
    let basic = [(monthly("50.00 USD"), 1)];
    let change = |at, to: &[(Price, u32)]| {
        PlanChange {
            period: january(),
            at,
            from: &basic,
            to,
            currency: Currency::USD,
            available_credit: Money::zero(Currency::USD),
            policy: RoundingPolicy::default(),
        }
        .preview()
    };
    assert_eq!(
        change(utc(2024, 2, 1), &[(monthly("100.00 USD"), 1)]),
        Err(ProrationError::OutsidePeriod {
            at: utc(2024, 2, 1),
            start: utc(2024, 1, 1),
            end: utc(2024, 2, 1)
        })
    );
    assert_eq!(
        change(utc(2024, 1, 16), &basic),
        Err(ProrationError::NoChange)
    );
    assert_eq!(
        change(utc(2024, 1, 16), &[]),
        Err(ProrationError::Invoice(
            commet_core::invoice::InvoiceError::NoItems
        ))
    );
}
