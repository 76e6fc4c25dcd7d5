//! Invoice PDFs for commet: an [`InvoiceDocument`] laid out on A4 or US Letter with
//! [krilla](https://docs.rs/krilla), ready to attach to an e-mail or serve for download.
//!
//! ```no_run
//! # fn doc(document: &commet_core::invoice::InvoiceDocument) -> Result<(), commet_pdf::PdfError> {
//! use commet_pdf::{PaperSize, PdfRenderer};
//!
//! let renderer = PdfRenderer::new().paper(PaperSize::Letter);
//! let pdf: Vec<u8> = renderer.render(document)?;
//! # Ok(()) }
//! ```
//!
//! # What it renders
//!
//! Everything comes from the [`InvoiceDocument`], whose text is already formatted (amounts by
//! their currency's minor units, dates as `YYYY-MM-DD`): this crate formats nothing, it places
//! text. All measures are in PDF points (1/72 inch), margins 48 pt.
//!
//! - **Page 1, top left:** the issuer's logo if one was given ([`PdfRenderer::logo`], feature
//!   `logo`), the seller (legal name, address lines, tax id, e-mail), then under "Bill to" the
//!   customer the same way.
//! - **Page 1, top right:** "Invoice INV-000042", then the issue date, due date, billing period
//!   and payment date when there are any; under them the mark of a settled invoice (`PAID` in
//!   green, `VOID` in grey, `UNCOLLECTIBLE` in red: large, boxed) when
//!   [`InvoiceDocument::mark`] is set.
//! - **The line table:** description (wrapped to its column; the line's period under it in
//!   smaller grey text), quantity, unit price and amount, the numbers right-aligned on widths
//!   measured from the shaped glyphs. Rows never split; the table continues on as many pages as
//!   it needs, its header repeated at the top of each, and the last row always shares its page
//!   with the totals.
//! - **Totals:** subtotal, credit applied (when it is not zero), total, amount paid and amount
//!   due, right-aligned under the table; then the memo.
//! - **Every page:** the footer ([`InvoiceDocument::footer`], e.g. bank details) at the foot,
//!   the invoice number bottom left and "Page n of m" bottom right (the whole document is laid
//!   out before anything is drawn, so `m` is known).
//!
//! # Fonts
//!
//! Text is set in `DejaVu Sans` (regular and bold, from the `dejavu` crate, compiled in: no font
//! files are read at run time), which covers Latin, Greek and Cyrillic (it has Arabic and
//! Hebrew glyphs too, but text is laid out left to right only: there is no bidirectional
//! layout), and no Chinese, Japanese or Korean. krilla embeds every font used and subsets it to the
//! glyphs drawn, so a typical one-page invoice is about 31 KB (1,000 lines: 125 KB).
//!
//! For other scripts, register fonts with [`PdfRenderer::with_font`] (TrueType or OpenType
//! bytes, e.g. Noto Sans CJK): text is split into runs, each character going to the first font
//! that has a glyph for it (`DejaVu Sans` first, then the registered fonts in the order they were
//! added), and each run is shaped and measured in its own font. Characters no font has are drawn
//! with the missing-glyph box of `DejaVu Sans`. Registered fonts serve both regular and bold text.
//!
//! # Determinism
//!
//! The same document rendered by the same renderer gives the same bytes: no creation date or
//! other clock reading is written, and krilla derives the file identifier from a hash of the
//! content. The documents can be cached, compared, or rendered again on demand.
//!
//! # Rust version
//!
//! krilla 0.8 needs Rust 1.92, so this crate's `rust-version` is 1.92 while the rest of the
//! workspace needs 1.85; it is a separate crate so that the engine does not inherit that.
// Layout is geometry in f32 points; no money goes near these floats (amounts arrive as text).
#![allow(clippy::float_arithmetic)]

mod layout;
mod text;

use std::fmt;

use commet_core::invoice::InvoiceDocument;
use commet_engine::render::{InvoiceRenderer, RenderError};

use crate::text::FontSource;

/// The paper an invoice is laid out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaperSize {
    /// ISO A4, 210 × 297 mm (595.28 × 841.89 pt).
    #[default]
    A4,
    /// US Letter, 8.5 × 11 in (612 × 792 pt).
    Letter,
}

impl PaperSize {
    /// Width and height in points.
    #[must_use]
    pub fn points(self) -> (f32, f32) {
        match self {
            PaperSize::A4 => (595.28, 841.89),
            PaperSize::Letter => (612.0, 792.0),
        }
    }
}

/// Why an invoice could not be rendered, or a renderer configured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PdfError {
    /// Font bytes that are not a TrueType or OpenType font.
    #[error("not a TrueType or OpenType font")]
    Font,
    /// A logo that is not a PNG or JPEG image krilla can read.
    #[error("the logo is not a PNG or JPEG image: {0}")]
    Logo(String),
    /// krilla refused to write the document.
    #[error("the PDF could not be written: {0}")]
    Write(String),
}

/// Renders [`InvoiceDocument`]s as PDF. Build it once (fonts are parsed once) and share it:
/// rendering takes `&self`.
#[derive(Clone)]
pub struct PdfRenderer {
    paper: PaperSize,
    regular: Vec<FontSource>,
    bold: Vec<FontSource>,
    logo: Option<Logo>,
}

#[derive(Clone)]
struct Logo {
    #[cfg(feature = "logo")]
    image: krilla::image::Image,
    width: f32,
    height: f32,
}

impl fmt::Debug for PdfRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdfRenderer")
            .field("paper", &self.paper)
            .field("fonts", &self.regular.len())
            .field("logo", &self.logo.as_ref().map(|l| (l.width, l.height)))
            .finish_non_exhaustive()
    }
}

impl Default for PdfRenderer {
    fn default() -> Self {
        PdfRenderer::new()
    }
}

impl PdfRenderer {
    /// A renderer for A4 paper, with `DejaVu Sans` and no logo.
    #[must_use]
    pub fn new() -> PdfRenderer {
        let regular = FontSource::new(dejavu::sans::regular().into());
        let bold = FontSource::new(dejavu::sans::bold().into());
        PdfRenderer {
            paper: PaperSize::A4,
            // `DejaVu Sans` ships with the crate and parses: these are never empty.
            regular: regular.into_iter().collect(),
            bold: bold.into_iter().collect(),
            logo: None,
        }
    }

    /// The same renderer laying out on `paper`.
    #[must_use]
    pub fn paper(mut self, paper: PaperSize) -> PdfRenderer {
        self.paper = paper;
        self
    }

    /// The paper it lays out on.
    #[must_use]
    pub fn paper_size(&self) -> PaperSize {
        self.paper
    }

    /// The same renderer with a fallback font (TrueType or OpenType bytes; the first face of a
    /// collection) for characters `DejaVu Sans` lacks, such as Chinese, Japanese or Korean. Fonts
    /// are tried in the order they were added, after `DejaVu Sans`; see the crate documentation.
    pub fn with_font(mut self, bytes: impl Into<Vec<u8>>) -> Result<PdfRenderer, PdfError> {
        let source = FontSource::new(bytes.into().into())?;
        self.regular.push(source.clone());
        self.bold.push(source);
        Ok(self)
    }

    /// The same renderer with the issuer's logo (PNG or JPEG bytes), drawn top left on the
    /// first page, at most 48 pt high and 180 pt wide, keeping its proportions.
    #[cfg(feature = "logo")]
    pub fn logo(mut self, bytes: impl Into<Vec<u8>>) -> Result<PdfRenderer, PdfError> {
        use krilla::image::Image;
        let bytes: Vec<u8> = bytes.into();
        let image = if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            Image::from_jpeg(bytes.into(), true)
        } else {
            Image::from_png(bytes.into(), true)
        }
        .map_err(PdfError::Logo)?;
        let (w, h) = image.size();
        if w == 0 || h == 0 {
            return Err(PdfError::Logo("it has no pixels".to_owned()));
        }
        let (width, height) = layout::fit(w, h, 180.0, 48.0);
        self.logo = Some(Logo {
            image,
            width,
            height,
        });
        Ok(self)
    }

    /// The PDF of `document`.
    pub fn render(&self, document: &InvoiceDocument) -> Result<Vec<u8>, PdfError> {
        layout::render(self, document)
    }
}

/// The engine's renderer: plug it in with `Billing::with_renderer`.
impl InvoiceRenderer for PdfRenderer {
    fn content_type(&self) -> &'static str {
        "application/pdf"
    }

    fn render(&self, document: &InvoiceDocument) -> Result<Vec<u8>, RenderError> {
        PdfRenderer::render(self, document).map_err(|error| RenderError(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fonts_are_refused() {
        assert_eq!(
            PdfRenderer::new()
                .with_font(b"not a font".to_vec())
                .unwrap_err(),
            PdfError::Font
        );
        assert!(
            PdfRenderer::new()
                .with_font(dejavu::sans::regular())
                .is_ok()
        );
    }

    #[cfg(feature = "logo")]
    #[test]
    fn bad_logos_are_refused() {
        assert!(matches!(
            PdfRenderer::new().logo(b"GIF89a".to_vec()),
            Err(PdfError::Logo(_))
        ));
    }

    #[test]
    fn renderers_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<PdfRenderer>();
    }
}
