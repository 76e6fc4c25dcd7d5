//! Laws of invoices (DESIGN.md sections 7 and 12): totals are exact sums of lines rounded once,
//! in currencies with 0, 2 and 3 decimals; the lifecycle never leaves its table; stored
//! invoices round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // strategies build values known valid

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::ids::IdGenerator;
use commet_core::invoice::{
    Invoice, InvoiceError, InvoiceKind, InvoiceStatus, InvoiceTrigger, LineItem, LineKind,
    NewInvoice, NewLineItem,
};
use commet_core::money::{Currency, Money, RoundingPolicy, UnitAmount};
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

fn kind() -> impl Strategy<Value = LineKind> {
    proptest::sample::select(LineKind::ALL.to_vec())
}

/// A line's parts: a kind, a quantity with up to 3 decimals, and a unit amount of up to 6
/// decimals whose sign suits the kind.
fn line_parts() -> impl Strategy<Value = (LineKind, Decimal, Decimal)> {
    (
        kind(),
        (0i64..100_000, 0u32..=3),
        (0i64..1_000_000_000, 0u32..=6),
        any::<bool>(),
    )
        .prop_map(|(kind, (q, q_scale), (u, u_scale), negative)| {
            let unit = Decimal::new(u, u_scale);
            let unit = match kind {
                LineKind::ProrationCredit | LineKind::Discount => -unit,
                LineKind::Adjustment if negative => -unit,
                _ => unit,
            };
            (kind, Decimal::new(q, q_scale), unit)
        })
}

/// Everything a random draft is made of.
#[derive(Debug, Clone)]
struct DraftPlan {
    currency: Currency,
    policy: RoundingPolicy,
    lines: Vec<(LineKind, Decimal, Decimal)>,
    /// The discount, in thousandths of the positive subtotal.
    discount_permille: u64,
    tax_minor: i64,
    credit_minor: i64,
}

fn draft_plan() -> impl Strategy<Value = DraftPlan> {
    (
        currency(),
        policy(),
        prop::collection::vec(line_parts(), 0..12),
        0u64..=1000,
        0i64..10_000_000,
        0i64..100_000_000_000,
    )
        .prop_map(
            |(currency, policy, lines, discount_permille, tax_minor, credit_minor)| DraftPlan {
                currency,
                policy,
                lines,
                discount_permille,
                tax_minor,
                credit_minor,
            },
        )
}

fn at(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(day)
}

fn build(plan: &DraftPlan) -> Invoice {
    let ids = IdGenerator::seeded(5);
    let mut invoice = Invoice::draft(NewInvoice {
        id: ids.next(at(0)),
        customer: ids.next(at(0)),
        subscription: None,
        currency: plan.currency,
        kind: InvoiceKind::Adjustment,
        period: None,
        created_at: at(0),
        memo: None,
        metadata: BTreeMap::new(),
    })
    .unwrap();
    for (index, &(kind, quantity, unit)) in plan.lines.iter().enumerate() {
        let line = LineItem::new(
            NewLineItem {
                kind,
                description: format!("line {index}"),
                quantity,
                unit_amount: UnitAmount::new(unit, plan.currency),
                period: None,
                price: None,
            },
            plan.policy,
        )
        .unwrap();
        invoice.add_line(line).unwrap();
    }
    let subtotal = invoice.subtotal().minor_units().max(0);
    let discount =
        i64::try_from(i128::from(subtotal) * i128::from(plan.discount_permille) / 1000).unwrap();
    invoice
        .set_discount(Money::from_minor(discount, plan.currency))
        .unwrap();
    invoice
        .set_tax(Money::from_minor(plan.tax_minor, plan.currency))
        .unwrap();
    invoice
        .apply_credit(Money::from_minor(plan.credit_minor, plan.currency))
        .unwrap();
    invoice
}

/// The transitions DESIGN.md section 7 allows, written out independently of the code.
const TABLE: [(InvoiceStatus, InvoiceTrigger, InvoiceStatus); 6] = [
    (
        InvoiceStatus::Draft,
        InvoiceTrigger::Finalize,
        InvoiceStatus::Outstanding,
    ),
    (
        InvoiceStatus::Outstanding,
        InvoiceTrigger::Pay,
        InvoiceStatus::Paid,
    ),
    (
        InvoiceStatus::Outstanding,
        InvoiceTrigger::Void,
        InvoiceStatus::Void,
    ),
    (
        InvoiceStatus::Outstanding,
        InvoiceTrigger::MarkUncollectible,
        InvoiceStatus::Uncollectible,
    ),
    (
        InvoiceStatus::Uncollectible,
        InvoiceTrigger::Pay,
        InvoiceStatus::Paid,
    ),
    (
        InvoiceStatus::Uncollectible,
        InvoiceTrigger::Void,
        InvoiceStatus::Void,
    ),
];

fn trigger() -> impl Strategy<Value = InvoiceTrigger> {
    proptest::sample::select(InvoiceTrigger::ALL.to_vec())
}

fn fire(
    invoice: &mut Invoice,
    trigger: InvoiceTrigger,
    now: DateTime<Utc>,
) -> Result<(), InvoiceError> {
    match trigger {
        InvoiceTrigger::Finalize => invoice.finalize(
            now,
            now + TimeDelta::days(14),
            commet_core::fixtures::Fixtures::parties(),
        ),
        InvoiceTrigger::Pay => invoice.mark_paid(now, invoice.amount_due()),
        InvoiceTrigger::Void => invoice.void(now),
        InvoiceTrigger::MarkUncollectible => invoice.mark_uncollectible(now),
    }
}

/// Failures are saved under `proptest-regressions/` (committed) and re-run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/invoice_laws.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn totals_are_exact_sums_of_lines_rounded_once(plan in draft_plan()) {
        let invoice = build(&plan);
        let c = plan.currency;
        let mut sum: i128 = 0;
        for line in invoice.lines() {
            prop_assert_eq!(line.currency(), c);
            let exact = line.unit_amount().amount() * line.quantity();
            prop_assert_eq!(line.amount(), Money::round(exact, c, plan.policy)?);
            sum += i128::from(line.amount().minor_units());
        }
        let totals = invoice.totals();
        prop_assert_eq!(i128::from(totals.subtotal().minor_units()), sum);
        prop_assert_eq!(
            totals.total().minor_units(),
            totals.subtotal().minor_units() - totals.discount().minor_units() + totals.tax().minor_units()
        );
        let payable = totals.total().minor_units().max(0);
        prop_assert_eq!(totals.credit_applied().minor_units(), plan.credit_minor.min(payable));
        prop_assert_eq!(totals.amount_due().minor_units(), payable - totals.credit_applied().minor_units());
        prop_assert!(!totals.amount_due().is_negative());
        prop_assert_eq!(totals.credit_issued().minor_units(), (-totals.total().minor_units()).max(0));
        // total == amount_due + credit_applied - credit_issued, and the balance moves by the same.
        prop_assert_eq!(
            totals.total().minor_units(),
            totals.amount_due().minor_units() + totals.credit_applied().minor_units()
                - totals.credit_issued().minor_units()
        );
        let before = Money::from_minor(plan.credit_minor, c);
        let after = totals.customer_credit_after(before)?;
        prop_assert_eq!(
            after.minor_units(),
            plan.credit_minor - totals.credit_applied().minor_units() + totals.credit_issued().minor_units()
        );
    }

    #[test]
    fn no_trigger_outside_the_table_ever_moves_an_invoice(
        plan in draft_plan(),
        triggers in prop::collection::vec(trigger(), 1..16),
    ) {
        let mut invoice = build(&plan);
        for (step, trigger) in triggers.into_iter().enumerate() {
            let now = at(i64::try_from(step).unwrap() + 1);
            let from = invoice.status();
            let before = invoice.clone();
            let allowed = TABLE.iter().find(|(f, t, _)| *f == from && *t == trigger);
            let result = fire(&mut invoice, trigger, now);
            match allowed {
                // An empty draft is the one legal finalize that is refused, for its own reason.
                Some(_) if trigger == InvoiceTrigger::Finalize && before.lines().is_empty() => {
                    prop_assert_eq!(result, Err(InvoiceError::NoLines));
                    prop_assert_eq!(&invoice, &before);
                }
                Some(&(_, _, to)) => {
                    prop_assert_eq!(result, Ok(()));
                    prop_assert_eq!(invoice.status(), to);
                    prop_assert_eq!(invoice.lines(), before.lines());
                    prop_assert_eq!(invoice.totals(), before.totals());
                }
                None => {
                    prop_assert_eq!(result, Err(InvoiceError::IllegalTransition { from, trigger }));
                    prop_assert_eq!(&invoice, &before);
                }
            }
            // Whatever happened, what is stored can be rebuilt.
            prop_assert_eq!(Invoice::from_record(invoice.to_record())?, invoice.clone());
        }
    }

    #[test]
    fn stored_invoices_round_trip_through_records_and_json(
        plan in draft_plan(),
        triggers in prop::collection::vec(trigger(), 0..4),
        version in any::<u64>(),
    ) {
        let mut invoice = build(&plan);
        for (step, trigger) in triggers.into_iter().enumerate() {
            let _ = fire(&mut invoice, trigger, at(i64::try_from(step).unwrap()));
        }
        invoice.set_version(version);
        prop_assert_eq!(Invoice::from_record(invoice.to_record())?, invoice.clone());
        let json = serde_json::to_string(&invoice).unwrap();
        prop_assert_eq!(serde_json::from_str::<Invoice>(&json).unwrap(), invoice);
    }

    #[test]
    fn a_tampered_amount_is_always_refused(plan in draft_plan(), delta in 1i64..1_000, which in 0usize..4) {
        let invoice = build(&plan);
        let mut record = invoice.to_record();
        let c = plan.currency;
        let bump = |m: Money| Money::from_minor(m.minor_units() + delta, c);
        match which {
            0 => record.subtotal = bump(record.subtotal),
            1 => record.total = bump(record.total),
            2 => record.amount_due = bump(record.amount_due),
            _ => record.credit_applied = bump(record.credit_applied),
        }
        prop_assert!(Invoice::from_record(record).is_err());
    }
}
