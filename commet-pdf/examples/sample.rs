//! Writes a typical invoice (USD, four lines, a credit, a memo and a footer) as a PDF to the
//! path given as the only argument: `cargo run -p commet-pdf --example sample -- invoice.pdf`.
//! Add `--paid` for the PAID mark, `--letter` for US Letter paper.

#[path = "../tests/common/mod.rs"]
mod common;

use commet_pdf::{PaperSize, PdfRenderer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut path = None;
    let mut paid = false;
    let mut paper = PaperSize::A4;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--paid" => paid = true,
            "--letter" => paper = PaperSize::Letter,
            _ => path = Some(argument),
        }
    }
    let path = path.ok_or("usage: sample [--paid] [--letter] <output.pdf>")?;
    let mut document = common::usd();
    if paid {
        document.mark = Some("PAID".into());
        document.paid_on = Some("2025-04-03".into());
    }
    let pdf = PdfRenderer::new().paper(paper).render(&document)?;
    std::fs::write(&path, &pdf)?;
    println!("{path}: {} bytes", pdf.len());
    Ok(())
}
