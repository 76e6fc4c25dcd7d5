//! Rendering speed: single-page invoices per second (and their size), then a 1,000-line one.
//! The goal is a month of invoices for 100,000 customers in under 10 minutes on one core,
//! i.e. at least 167 single-page invoices per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use commet_pdf::PdfRenderer;
use divan::{Bencher, black_box};

fn main() {
    let renderer = PdfRenderer::new();
    for (name, document) in [
        ("usd", common::usd()),
        ("jpy (paid)", common::jpy()),
        ("1,000 lines", common::many(1_000)),
    ] {
        let pdf = renderer.render(&document).expect("renders");
        println!("{name}: {} bytes per PDF", pdf.len());
    }
    divan::main();
}

#[divan::bench]
fn single_page_usd(bencher: Bencher) {
    let renderer = PdfRenderer::new();
    let document = common::usd();
    bencher.bench(|| renderer.render(black_box(&document)).unwrap());
}

#[divan::bench]
fn single_page_paid_jpy(bencher: Bencher) {
    let renderer = PdfRenderer::new();
    let document = common::jpy();
    bencher.bench(|| renderer.render(black_box(&document)).unwrap());
}

#[divan::bench(sample_count = 10)]
fn thousand_lines(bencher: Bencher) {
    let renderer = PdfRenderer::new();
    let document = common::many(1_000);
    bencher.bench(|| renderer.render(black_box(&document)).unwrap());
}
