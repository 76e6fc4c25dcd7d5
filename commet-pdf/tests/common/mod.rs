//! Invoice documents for the tests, the example and the benchmark, built field by field (no
//! engine), and the poppler tools that read the PDFs back.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::missing_panics_doc,
    clippy::expect_used,
    clippy::panic
)]

use std::io::Write as _;
use std::process::Command;

use commet_core::invoice::{DocumentLine, InvoiceDocument, InvoiceStatus, Party, PostalAddress};

/// The seller.
pub fn issuer() -> Party {
    Party {
        legal_name: "Acme Cloud GmbH".into(),
        email: Some("billing@acme.example".into()),
        address: Some(PostalAddress {
            line1: "Friedrichstraße 123".into(),
            line2: Some("Building B, 4th floor".into()),
            city: "Berlin".into(),
            postal_code: Some("10117".into()),
            region: None,
            country: "DE".into(),
        }),
        tax_id: Some("DE123456789".into()),
    }
}

/// The buyer.
pub fn customer() -> Party {
    Party {
        legal_name: "Globex Corporation".into(),
        email: Some("accounts@globex.example".into()),
        address: Some(PostalAddress {
            line1: "500 Market Street".into(),
            line2: None,
            city: "San Francisco".into(),
            postal_code: Some("94105".into()),
            region: Some("CA".into()),
            country: "US".into(),
        }),
        tax_id: Some("US 12-3456789".into()),
    }
}

fn line(
    description: &str,
    period: Option<&str>,
    quantity: &str,
    unit: &str,
    amount: &str,
) -> DocumentLine {
    DocumentLine {
        description: description.into(),
        period: period.map(str::to_owned),
        quantity: quantity.into(),
        unit_amount: unit.into(),
        amount: amount.into(),
    }
}

/// A typical monthly invoice in USD.
pub fn usd() -> InvoiceDocument {
    let period = Some("2025-03-01 – 2025-04-01");
    InvoiceDocument {
        number: "INV-000042".into(),
        status: InvoiceStatus::Outstanding,
        mark: None,
        issued_on: "2025-04-01".into(),
        due_on: "2025-04-15".into(),
        paid_on: None,
        period: period.map(str::to_owned),
        issuer: issuer(),
        customer: customer(),
        footer: Some(
            "Acme Cloud GmbH · IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX · \
             Registered at Amtsgericht Berlin-Charlottenburg, HRB 123456 B"
                .into(),
        ),
        memo: Some("Thank you for your business. Questions? Write to billing@acme.example.".into()),
        currency: "USD".into(),
        lines: vec![
            line("Pro plan (5 seats)", period, "5", "49.00 USD", "245.00 USD"),
            line(
                "API requests",
                period,
                "1,250,000",
                "0.0004 USD",
                "500.00 USD",
            ),
            line(
                "Additional storage, billed per started gigabyte above the 100 GB included in the plan",
                period,
                "37",
                "0.25 USD",
                "9.25 USD",
            ),
            line(
                "Onboarding workshop",
                None,
                "1",
                "1,200.00 USD",
                "1,200.00 USD",
            ),
        ],
        subtotal: "1,954.25 USD".into(),
        credit_applied: "100.00 USD".into(),
        total: "1,854.25 USD".into(),
        amount_paid: "0.00 USD".into(),
        amount_due: "1,854.25 USD".into(),
    }
}

/// A paid invoice in JPY (no minor units).
pub fn jpy() -> InvoiceDocument {
    let mut doc = usd();
    doc.number = "INV-000043".into();
    doc.status = InvoiceStatus::Paid;
    doc.mark = Some("PAID".into());
    doc.paid_on = Some("2025-04-03".into());
    doc.currency = "JPY".into();
    doc.lines = vec![
        line(
            "Standard plan",
            Some("2025-03-01 – 2025-04-01"),
            "1",
            "1,980 JPY",
            "1,980 JPY",
        ),
        line("Extra seats", None, "3", "500 JPY", "1,500 JPY"),
    ];
    doc.subtotal = "3,480 JPY".into();
    doc.credit_applied = "0 JPY".into();
    doc.total = "3,480 JPY".into();
    doc.amount_paid = "3,480 JPY".into();
    doc.amount_due = "0 JPY".into();
    doc
}

/// A void invoice in KWD (three minor digits).
pub fn kwd() -> InvoiceDocument {
    let mut doc = usd();
    doc.number = "INV-000044".into();
    doc.status = InvoiceStatus::Void;
    doc.mark = Some("VOID".into());
    doc.currency = "KWD".into();
    doc.memo = None;
    doc.lines = vec![
        line("Consulting hours", None, "2.5", "12.345 KWD", "30.863 KWD"),
        line("Support plan", None, "1", "5.000 KWD", "5.000 KWD"),
    ];
    doc.subtotal = "35.863 KWD".into();
    doc.credit_applied = "0.000 KWD".into();
    doc.total = "35.863 KWD".into();
    doc.amount_paid = "0.000 KWD".into();
    doc.amount_due = "35.863 KWD".into();
    doc
}

/// An invoice of `count` usage lines (`Usage item 00001` ...).
pub fn many(count: usize) -> InvoiceDocument {
    let mut doc = usd();
    doc.number = "INV-001000".into();
    doc.memo = None;
    doc.lines = (1..=count)
        .map(|i| {
            line(
                &format!("Usage item {i:05}"),
                Some("2025-03-01 – 2025-04-01"),
                "1",
                "1.00 USD",
                &format!("{i}.00 USD"),
            )
        })
        .collect();
    doc
}

/// The text poppler's `pdftotext -layout` reads from `pdf`, one string per page. Fails (does
/// not skip) when poppler-utils is not installed.
pub fn pdftotext(pdf: &[u8]) -> Vec<String> {
    let mut file = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("a tempfile");
    file.write_all(pdf).expect("write the PDF");
    let output = Command::new("pdftotext")
        .arg("-layout")
        .arg(file.path())
        .arg("-")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "pdftotext could not be run ({error}): these tests read the PDFs back with \
                 poppler-utils; install it (Debian/Ubuntu: apt-get install -y poppler-utils)"
            )
        });
    assert!(
        output.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("pdftotext writes UTF-8");
    // Pages are separated by form feeds; the last one is followed by one.
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    if pages.last().is_some_and(|last| last.trim().is_empty()) {
        pages.pop();
    }
    pages
}

/// `pdfinfo`'s "Page size" line, if pdfinfo is installed.
pub fn pdfinfo_page_size(pdf: &[u8]) -> Option<String> {
    let mut file = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("a tempfile");
    file.write_all(pdf).expect("write the PDF");
    let output = Command::new("pdfinfo").arg(file.path()).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find(|line| line.starts_with("Page size:"))
        .map(str::to_owned)
}
