//! Invoices rendered and read back with poppler's `pdftotext -layout`, as a person's tools
//! would read them. These tests fail (they do not skip) when poppler-utils is missing.
// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use commet_core::invoice::InvoiceDocument;
use commet_pdf::{PaperSize, PdfRenderer};
use common::pdftotext;

fn render(document: &InvoiceDocument) -> Vec<u8> {
    PdfRenderer::new().render(document).unwrap()
}

/// Everything a reader needs is in the text: number, parties, lines, totals.
fn assert_readable(document: &InvoiceDocument) {
    let pages = pdftotext(&render(document));
    let text = pages.join("\n");
    let mut expected = vec![
        format!("Invoice {}", document.number),
        document.issued_on.clone(),
        document.due_on.clone(),
        document.subtotal.clone(),
        document.total.clone(),
        document.amount_paid.clone(),
        document.amount_due.clone(),
    ];
    for party in [&document.issuer, &document.customer] {
        expected.push(party.legal_name.clone());
        expected.extend(party.address.as_ref().unwrap().lines());
        expected.extend(party.tax_id.clone());
        expected.extend(party.email.clone());
    }
    for line in &document.lines {
        // Long descriptions wrap: every word is there.
        expected.extend(line.description.split(' ').map(str::to_owned));
        expected.push(line.amount.clone());
        expected.push(line.unit_amount.clone());
    }
    expected.extend(document.mark.clone());
    for wanted in expected {
        assert!(
            text.contains(&wanted),
            "{wanted:?} is missing from:\n{text}"
        );
    }
    assert!(text.contains("Page 1 of 1"), "{text}");
}

#[test]
fn a_usd_invoice_reads_back() {
    let document = common::usd();
    assert_readable(&document);
    let text = pdftotext(&render(&document)).join("\n");
    assert!(text.contains("Credit applied"), "{text}");
    assert!(text.contains("100.00 USD"), "{text}");
    assert!(text.contains("Thank you for your business."), "{text}");
    assert!(text.contains("HRB 123456 B"), "the footer: {text}");
    assert!(
        text.contains("Description") && text.contains("Unit price"),
        "{text}"
    );
}

#[test]
fn a_paid_jpy_invoice_reads_back_with_its_mark_and_no_zero_credit() {
    let document = common::jpy();
    assert_readable(&document);
    let text = pdftotext(&render(&document)).join("\n");
    assert!(text.contains("PAID"), "{text}");
    assert!(
        !text.contains("Credit applied"),
        "a zero credit is not shown: {text}"
    );
}

#[test]
fn a_void_kwd_invoice_reads_back() {
    let document = common::kwd();
    assert_readable(&document);
    assert!(pdftotext(&render(&document)).join("\n").contains("VOID"));
}

#[test]
fn an_uncollectible_invoice_is_marked() {
    let mut document = common::usd();
    document.mark = Some("UNCOLLECTIBLE".into());
    assert!(
        pdftotext(&render(&document))
            .join("\n")
            .contains("UNCOLLECTIBLE")
    );
}

#[test]
fn a_thousand_lines_paginate_with_headers_and_page_numbers() {
    let document = common::many(1_000);
    let pages = pdftotext(&render(&document));
    let count = pages.len();
    assert!(count > 10, "1,000 lines on only {count} pages");
    for (index, page) in pages.iter().enumerate() {
        let header = page.lines().any(|line| {
            line.contains("Description") && line.contains("Quantity") && line.contains("Amount")
        });
        assert!(header, "page {} has no table header:\n{page}", index + 1);
        let label = format!("Page {} of {count}", index + 1);
        assert!(
            page.contains(&label),
            "page {} lacks {label:?}:\n{page}",
            index + 1
        );
        assert!(page.contains(&document.number));
    }
    let text = pages.join("\n");
    for i in 1..=1_000 {
        let description = format!("Usage item {i:05}");
        assert_eq!(
            text.matches(&description).count(),
            1,
            "{description} should appear exactly once"
        );
        assert!(text.contains(&format!("{i}.00 USD")));
    }
    // The totals come after the last line, on the last page.
    let last = pages.last().unwrap();
    assert!(
        last.contains("Usage item 01000") && last.contains("Amount due"),
        "{last}"
    );
}

#[test]
fn accented_names_round_trip() {
    let mut document = common::usd();
    document.customer.legal_name = "Zoë Müller–Straße".into();
    let text = pdftotext(&render(&document)).join("\n");
    assert!(text.contains("Zoë Müller–Straße"), "{text}");
    assert!(text.contains("Friedrichstraße 123"), "{text}");
    assert!(text.contains("2025-03-01 – 2025-04-01"), "{text}");
}

#[test]
fn the_same_document_gives_the_same_bytes() {
    let renderer = PdfRenderer::new();
    for document in [common::usd(), common::jpy(), common::many(120)] {
        let first = renderer.render(&document).unwrap();
        let second = renderer.render(&document).unwrap();
        assert!(
            first == second,
            "{} rendered twice differs",
            document.number
        );
        // A fresh renderer too.
        assert!(first == PdfRenderer::new().render(&document).unwrap());
        assert!(first.starts_with(b"%PDF-"));
    }
    let text = String::from_utf8_lossy(&renderer.render(&common::usd()).unwrap()).into_owned();
    assert!(
        !text.contains("/CreationDate"),
        "no clock reading is written"
    );
}

#[test]
fn a4_and_letter_have_their_sizes() {
    let document = common::usd();
    let a4 = PdfRenderer::new()
        .paper(PaperSize::A4)
        .render(&document)
        .unwrap();
    let letter = PdfRenderer::new()
        .paper(PaperSize::Letter)
        .render(&document)
        .unwrap();
    match (
        common::pdfinfo_page_size(&a4),
        common::pdfinfo_page_size(&letter),
    ) {
        (Some(a4), Some(letter)) => {
            assert!(a4.contains("595.28 x 841.89") && a4.contains("A4"), "{a4}");
            assert!(
                letter.contains("612 x 792") && letter.contains("letter"),
                "{letter}"
            );
        }
        _ => {
            let media = |pdf: &[u8]| {
                let text = String::from_utf8_lossy(pdf).into_owned();
                let at = text.find("/MediaBox").expect("a MediaBox");
                text[at..at + 40].to_owned()
            };
            assert!(media(&a4).contains("595.28"), "{}", media(&a4));
            assert!(media(&letter).contains("612 792"), "{}", media(&letter));
        }
    }
    assert!(pdftotext(&letter).join("\n").contains("Invoice INV-000042"));
}

#[test]
fn an_invoice_without_lines_addresses_or_extras_renders() {
    let mut document = common::usd();
    document.lines.clear();
    document.memo = None;
    document.footer = None;
    document.period = None;
    document.customer.address = None;
    document.customer.tax_id = None;
    let text = pdftotext(&render(&document)).join("\n");
    assert!(
        text.contains("Globex Corporation") && text.contains("Amount due"),
        "{text}"
    );
}

#[test]
fn long_text_wraps_instead_of_overflowing() {
    let mut document = common::usd();
    let word = "Supercalifragilisticexpialidocious".repeat(4);
    document.lines[0].description = format!("{word} and then some ordinary words after it");
    document.memo = Some("A long memo. ".repeat(80));
    let pages = pdftotext(&render(&document));
    let text = pages.join("\n");
    assert!(text.contains("ordinary words"), "{text}");
    assert!(text.matches("A long memo.").count() >= 70, "{text}");
}

#[test]
fn fallback_fonts_draw_the_characters_dejavu_sans_lacks() {
    // No CJK font ships with the tests; DejaVu Sans Mono has symbols DejaVu Sans lacks (U+2312
    // ARC, U+2315 TELEPHONE RECORDER), which is enough to see the per-character fallback work.
    let mut document = common::usd();
    document.customer.legal_name = "Arc \u{2312} Recorder \u{2315} GmbH".into();
    let plain = PdfRenderer::new().render(&document).unwrap();
    let fallback = PdfRenderer::new()
        .with_font(dejavu::sans_mono::regular())
        .unwrap()
        .render(&document)
        .unwrap();
    let embeds_mono = |pdf: &[u8]| pdf.windows(14).any(|w| w == b"DejaVuSansMono");
    assert!(!embeds_mono(&plain));
    assert!(
        embeds_mono(&fallback),
        "the fallback font is embedded (subset) for two glyphs"
    );
    let text = pdftotext(&fallback).join("\n");
    assert!(
        text.contains("Arc \u{2312} Recorder \u{2315} GmbH"),
        "{text}"
    );
    // Text DejaVu Sans has stays in DejaVu Sans: the fallback subset is tiny.
    assert!(
        fallback.len() < plain.len() + 8_000,
        "{} vs {}",
        fallback.len(),
        plain.len()
    );
}

#[cfg(feature = "logo")]
#[test]
fn a_logo_is_drawn_and_the_text_stays_readable() {
    // Any PNG will do: the committed picture of page 1.
    let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/invoice-1.png")).unwrap();
    let renderer = PdfRenderer::new().logo(png).unwrap();
    let pdf = renderer.render(&common::usd()).unwrap();
    assert!(
        pdf.windows(13)
            .any(|w| w == b"/Subtype /Ima" || w == b"/Subtype/Imag")
    );
    assert_eq!(pdf, renderer.render(&common::usd()).unwrap());
    let text = pdftotext(&pdf).join("\n");
    assert!(
        text.contains("Acme Cloud GmbH") && text.contains("Invoice INV-000042"),
        "{text}"
    );
}

#[test]
fn the_engine_renderer_trait_is_implemented() {
    use commet_engine::render::InvoiceRenderer;
    let renderer: &dyn InvoiceRenderer = &PdfRenderer::new();
    assert_eq!(renderer.content_type(), "application/pdf");
    let bytes = renderer.render(&common::usd()).unwrap();
    assert_eq!(bytes, PdfRenderer::new().render(&common::usd()).unwrap());
}
