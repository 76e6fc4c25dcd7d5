//! The invoice lifecycle by example: every transition the table allows, every one it refuses,
//! and what each leaves behind (DESIGN.md section 7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use commet_core::ids::IdGenerator;
use commet_core::invoice::{
    Invoice, InvoiceError, InvoiceKind, InvoiceNumber, InvoiceRecord, InvoiceStatus,
    InvoiceTrigger, LineItem, LineKind, NewInvoice, NewLineItem, NumberSeries,
};
use commet_core::money::{Currency, Money, RoundingPolicy};

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(n)
}

fn usd(text: &str) -> Money {
    Money::parse_amount(text, Currency::USD).unwrap()
}

fn line(kind: LineKind, amount: &str) -> LineItem {
    LineItem::new(
        NewLineItem {
            kind,
            description: format!("{kind} line"),
            quantity: 1.into(),
            unit_amount: usd(amount).into(),
            period: None,
            price: None,
        },
        RoundingPolicy::default(),
    )
    .unwrap()
}

/// A draft of 120.00 USD with 20.00 of credit applied: 100.00 due.
fn draft() -> Invoice {
    let ids = IdGenerator::seeded(9);
    let mut invoice = Invoice::draft(NewInvoice {
        id: ids.next(day(0)),
        customer: ids.next(day(0)),
        subscription: None,
        currency: Currency::USD,
        kind: InvoiceKind::OneTime,
        period: None,
        created_at: day(0),
        memo: Some("Thank you".into()),
        metadata: BTreeMap::from([("order".into(), "42".into())]),
    })
    .unwrap();
    invoice.add_line(line(LineKind::OneTime, "120.00")).unwrap();
    invoice.apply_credit(usd("20.00")).unwrap();
    invoice
}

fn outstanding() -> Invoice {
    let mut invoice = draft();
    invoice
        .finalize(day(1), day(15), commet_core::fixtures::Fixtures::parties())
        .unwrap();
    invoice
        .assign_number(NumberSeries::default().peek())
        .unwrap();
    invoice
}

fn uncollectible() -> Invoice {
    let mut invoice = outstanding();
    invoice.mark_uncollectible(day(20)).unwrap();
    invoice
}

fn paid() -> Invoice {
    let mut invoice = outstanding();
    invoice.mark_paid(day(2), usd("100.00")).unwrap();
    invoice
}

fn void() -> Invoice {
    let mut invoice = outstanding();
    invoice.void(day(3)).unwrap();
    invoice
}

/// Apply `trigger` through the invoice method that fires it.
fn fire(invoice: &mut Invoice, trigger: InvoiceTrigger) -> Result<(), InvoiceError> {
    match trigger {
        InvoiceTrigger::Finalize => {
            invoice.finalize(day(30), day(40), commet_core::fixtures::Fixtures::parties())
        }
        InvoiceTrigger::Pay => invoice.mark_paid(day(30), invoice.amount_due()),
        InvoiceTrigger::Void => invoice.void(day(30)),
        InvoiceTrigger::MarkUncollectible => invoice.mark_uncollectible(day(30)),
    }
}

/// Every refused trigger is `IllegalTransition` and leaves the invoice exactly as it was.
fn assert_refused(invoice: &Invoice, triggers: &[InvoiceTrigger]) {
    for &trigger in triggers {
        let mut attempt = invoice.clone();
        assert_eq!(
            fire(&mut attempt, trigger),
            Err(InvoiceError::IllegalTransition {
                from: invoice.status(),
                trigger
            }),
            "{trigger} from {}",
            invoice.status()
        );
        assert_eq!(&attempt, invoice, "a refused {trigger} changed the invoice");
    }
}

// ---- allowed ---------------------------------------------------------------------------------

#[test]
fn draft_finalize_becomes_outstanding_with_dates_and_no_number_yet() {
    let mut invoice = draft();
    invoice
        .finalize(day(1), day(15), commet_core::fixtures::Fixtures::parties())
        .unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Outstanding);
    assert_eq!(invoice.issued_at(), Some(day(1)));
    assert_eq!(invoice.due_at(), Some(day(15)));
    assert_eq!(invoice.number(), None);
    let mut series = NumberSeries::default();
    invoice.assign_number(series.allocate().unwrap()).unwrap();
    assert_eq!(
        invoice.number().map(InvoiceNumber::as_str),
        Some("INV-000001")
    );
}

#[test]
fn outstanding_pay_becomes_paid_for_exactly_the_amount_due() {
    let mut invoice = outstanding();
    assert_eq!(
        invoice.mark_paid(day(2), usd("120.00")),
        Err(InvoiceError::PaymentMismatch {
            expected: usd("100.00"),
            actual: usd("120.00")
        })
    );
    invoice.mark_paid(day(2), usd("100.00")).unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    assert_eq!(invoice.amount_paid(), usd("100.00"));
    assert_eq!(invoice.paid_at(), Some(day(2)));
}

#[test]
fn outstanding_void_becomes_void() {
    let invoice = void();
    assert_eq!(invoice.status(), InvoiceStatus::Void);
    assert_eq!(invoice.voided_at(), Some(day(3)));
    assert_eq!(invoice.amount_paid(), usd("0.00"));
}

#[test]
fn outstanding_mark_uncollectible_becomes_uncollectible() {
    let invoice = uncollectible();
    assert_eq!(invoice.status(), InvoiceStatus::Uncollectible);
    assert_eq!(invoice.marked_uncollectible_at(), Some(day(20)));
}

#[test]
fn uncollectible_pay_becomes_paid_and_keeps_the_write_off_date() {
    let mut invoice = uncollectible();
    invoice.mark_paid(day(25), usd("100.00")).unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    assert_eq!(invoice.marked_uncollectible_at(), Some(day(20)));
    assert_eq!(invoice.paid_at(), Some(day(25)));
}

#[test]
fn uncollectible_void_becomes_void() {
    let mut invoice = uncollectible();
    invoice.void(day(25)).unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Void);
    assert_eq!(invoice.voided_at(), Some(day(25)));
}

// ---- refused ---------------------------------------------------------------------------------

#[test]
fn a_draft_cannot_be_paid_voided_or_written_off() {
    use InvoiceTrigger::{MarkUncollectible, Pay, Void};
    assert_refused(&draft(), &[Pay, Void, MarkUncollectible]);
}

#[test]
fn an_outstanding_invoice_cannot_be_finalized_again() {
    assert_refused(&outstanding(), &[InvoiceTrigger::Finalize]);
}

#[test]
fn an_uncollectible_invoice_cannot_be_finalized_or_written_off_again() {
    use InvoiceTrigger::{Finalize, MarkUncollectible};
    assert_refused(&uncollectible(), &[Finalize, MarkUncollectible]);
}

#[test]
fn paid_and_void_invoices_accept_no_trigger() {
    assert_refused(&paid(), &InvoiceTrigger::ALL);
    assert_refused(&void(), &InvoiceTrigger::ALL);
}

#[test]
fn an_empty_draft_cannot_be_finalized_nor_be_due_before_it_is_issued() {
    let mut empty = draft();
    empty.remove_line(0).unwrap();
    assert_eq!(
        empty.finalize(day(1), day(2), commet_core::fixtures::Fixtures::parties()),
        Err(InvoiceError::NoLines)
    );
    let mut invoice = draft();
    assert!(matches!(
        invoice.finalize(day(2), day(1), commet_core::fixtures::Fixtures::parties()),
        Err(InvoiceError::Invalid(invalid)) if invalid.field == "due_at"
    ));
    assert_eq!(invoice.status(), InvoiceStatus::Draft);
}

// ---- what freezes --------------------------------------------------------------------------

#[test]
fn lines_amounts_and_memo_are_frozen_once_the_invoice_leaves_draft() {
    for mut invoice in [outstanding(), paid(), void(), uncollectible()] {
        let frozen = Err(InvoiceError::LinesFrozen {
            status: invoice.status(),
        });
        let before = invoice.clone();
        assert_eq!(
            invoice.add_line(line(LineKind::Adjustment, "-1.00")),
            frozen
        );
        assert_eq!(invoice.remove_line(0).map(|_| ()), frozen);
        assert_eq!(invoice.set_discount(usd("1.00")), frozen);
        assert_eq!(invoice.set_tax(usd("1.00")), frozen);
        assert_eq!(invoice.apply_credit(usd("1.00")), frozen);
        assert_eq!(invoice.set_memo(None), frozen);
        assert_eq!(invoice, before);
        // Metadata belongs to the integrator and stays editable.
        invoice.set_metadata("crm", "x").unwrap();
    }
}

#[test]
fn a_number_is_assigned_once_and_never_to_a_draft() {
    let mut series = NumberSeries::default();
    let mut invoice = draft();
    assert_eq!(
        invoice.assign_number(series.peek()),
        Err(InvoiceError::NotFinalized)
    );
    invoice
        .finalize(day(1), day(1), commet_core::fixtures::Fixtures::parties())
        .unwrap();
    invoice.mark_paid(day(1), invoice.amount_due()).unwrap();
    // Finalized and paid in one decision: the store numbers it in the same commit.
    invoice.assign_number(series.allocate().unwrap()).unwrap();
    assert_eq!(
        invoice.assign_number(series.allocate().unwrap()),
        Err(InvoiceError::AlreadyNumbered {
            number: "INV-000001".parse().unwrap()
        })
    );
}

#[test]
fn draft_edits_recompute_the_totals() {
    let mut invoice = draft();
    // 120.00 with 20.00 of credit.
    invoice
        .add_line(line(LineKind::Discount, "-30.00"))
        .unwrap();
    // 90.00: the credit applied stays 20.00.
    assert_eq!(invoice.subtotal(), usd("90.00"));
    assert_eq!(invoice.amount_due(), usd("70.00"));
    invoice.set_discount(usd("10.00")).unwrap();
    invoice.set_tax(usd("8.00")).unwrap();
    // 90.00 - 10.00 + 8.00 = 88.00; less 20.00 of credit = 68.00.
    assert_eq!(invoice.total(), usd("88.00"));
    assert_eq!(invoice.amount_due(), usd("68.00"));
    // Removing the 120.00 line would leave a subtotal of -30.00, below the 10.00 discount.
    assert_eq!(
        invoice.remove_line(0),
        Err(InvoiceError::DiscountExceedsSubtotal {
            discount: usd("10.00"),
            subtotal: usd("-30.00")
        })
    );
    assert_eq!(invoice.lines().len(), 2);
    assert_eq!(
        invoice.remove_line(5).map(|_| ()),
        Err(InvoiceError::NoSuchLine { index: 5, len: 2 })
    );
    assert_eq!(
        invoice.add_line(
            LineItem::new(
                NewLineItem {
                    kind: LineKind::OneTime,
                    description: "in euros".into(),
                    quantity: 1.into(),
                    unit_amount: "1 EUR".parse().unwrap(),
                    period: None,
                    price: None,
                },
                RoundingPolicy::default()
            )
            .unwrap()
        ),
        Err(InvoiceError::CurrencyMismatch {
            expected: Currency::USD,
            actual: Currency::EUR
        })
    );
}

#[test]
fn subscription_kinds_need_a_subscription_and_recurring_needs_a_period() {
    let ids = IdGenerator::seeded(1);
    let header = |kind| NewInvoice {
        id: ids.next(day(0)),
        customer: ids.next(day(0)),
        subscription: None,
        currency: Currency::USD,
        kind,
        period: None,
        created_at: day(0),
        memo: None,
        metadata: BTreeMap::new(),
    };
    for kind in [
        InvoiceKind::Recurring,
        InvoiceKind::PlanChange,
        InvoiceKind::Reactivation,
    ] {
        assert!(matches!(
            Invoice::draft(header(kind)),
            Err(InvoiceError::Invalid(invalid)) if invalid.field == "subscription"
        ));
    }
    let recurring = NewInvoice {
        subscription: Some(ids.next(day(0))),
        ..header(InvoiceKind::Recurring)
    };
    assert!(matches!(
        Invoice::draft(recurring),
        Err(InvoiceError::Invalid(invalid)) if invalid.field == "period"
    ));
    let too_much = NewInvoice {
        metadata: (0..51).map(|i| (i.to_string(), String::new())).collect(),
        ..header(InvoiceKind::OneTime)
    };
    assert!(matches!(
        Invoice::draft(too_much),
        Err(InvoiceError::Invalid(invalid)) if invalid.field == "metadata"
    ));
}

// ---- rebuilding from storage ------------------------------------------------------------------

#[test]
fn every_status_round_trips_through_records_and_json() {
    for invoice in [draft(), outstanding(), paid(), void(), uncollectible()] {
        let mut stored = invoice.clone();
        stored.set_version(3);
        assert_eq!(Invoice::from_record(stored.to_record()).unwrap(), stored);
        let json = serde_json::to_string(&stored).unwrap();
        assert_eq!(serde_json::from_str::<Invoice>(&json).unwrap(), stored);
    }
}

/// Rebuild `invoice` after `tamper` changed its record.
fn rebuild(invoice: &Invoice, tamper: impl FnOnce(&mut InvoiceRecord)) -> InvoiceError {
    let mut record = invoice.to_record();
    tamper(&mut record);
    Invoice::from_record(record).unwrap_err()
}

fn field_of(error: &InvoiceError) -> &str {
    match error {
        InvoiceError::Invalid(invalid) => &invalid.field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn inconsistent_records_are_refused() {
    assert_eq!(
        rebuild(&draft(), |r| r.subtotal = usd("119.99")),
        InvoiceError::TotalsMismatch {
            field: "subtotal",
            computed: usd("120.00"),
            stored: usd("119.99")
        }
    );
    assert!(matches!(
        rebuild(&draft(), |r| r.total = usd("1.00")),
        InvoiceError::TotalsMismatch { field: "total", .. }
    ));
    // More credit than the total is not what the rule gives.
    assert!(matches!(
        rebuild(&draft(), |r| {
            r.credit_applied = usd("130.00");
            r.amount_due = usd("-10.00");
        }),
        InvoiceError::TotalsMismatch {
            field: "credit_applied",
            ..
        }
    ));
    assert!(matches!(
        rebuild(&draft(), |r| r.amount_due = usd("120.00")),
        InvoiceError::TotalsMismatch {
            field: "amount_due",
            ..
        }
    ));
    assert_eq!(
        field_of(&rebuild(&draft(), |r| r.number = Some("INV-000001".into()))),
        "number"
    );
    assert_eq!(
        field_of(&rebuild(&outstanding(), |r| r.number = Some("INV 1".into()))),
        "number"
    );
    assert_eq!(
        field_of(&rebuild(&outstanding(), |r| r.issued_at = None)),
        "issued_at"
    );
    assert_eq!(
        field_of(&rebuild(&draft(), |r| r.due_at = Some(day(3)))),
        "due_at"
    );
    assert_eq!(
        field_of(&rebuild(&outstanding(), |r| r.due_at = Some(day(0)))),
        "due_at"
    );
    assert_eq!(field_of(&rebuild(&paid(), |r| r.paid_at = None)), "paid_at");
    assert_eq!(
        field_of(&rebuild(&paid(), |r| r.amount_paid = usd("99.00"))),
        "amount_paid"
    );
    assert_eq!(
        field_of(&rebuild(&outstanding(), |r| r.amount_paid = usd("100.00"))),
        "amount_paid"
    );
    assert_eq!(
        field_of(&rebuild(&void(), |r| r.voided_at = None)),
        "voided_at"
    );
    assert_eq!(
        field_of(&rebuild(&outstanding(), |r| r.voided_at = Some(day(3)))),
        "voided_at"
    );
    assert_eq!(
        field_of(&rebuild(&uncollectible(), |r| r.marked_uncollectible_at = None)),
        "marked_uncollectible_at"
    );
    assert_eq!(
        field_of(&rebuild(&draft(), |r| r.lines[0].description = String::new())),
        "lines[0].description"
    );
    assert_eq!(
        field_of(&rebuild(&draft(), |r| r.discount = usd("-1.00"))),
        "discount"
    );
    assert_eq!(
        rebuild(&draft(), |r| {
            r.lines[0].unit_amount = "120 EUR".parse().unwrap();
            r.lines[0].amount = "120 EUR".parse().unwrap();
        }),
        InvoiceError::CurrencyMismatch {
            expected: Currency::USD,
            actual: Currency::EUR
        }
    );
    // The same refusals apply to JSON.
    let mut json = serde_json::to_value(draft()).unwrap();
    json["subtotal"]["amount"] = "1.00".into();
    assert!(serde_json::from_value::<Invoice>(json).is_err());
}
