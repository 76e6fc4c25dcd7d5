//! The layout: every page as a list of drawing operations in points (origin top left, y down),
//! laid out in full before anything is drawn so that each page can say "Page n of m".

use commet_core::invoice::{InvoiceDocument, Party};
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};

use crate::text::{FontChain, Shaped};
use crate::{PdfError, PdfRenderer};

const MARGIN: f32 = 48.0;
const BLACK: Rgb = Rgb(0x1f, 0x29, 0x37);
const GREY: Rgb = Rgb(0x6b, 0x72, 0x80);
const RULE: Rgb = Rgb(0xd1, 0xd5, 0xdb);
const BAND: Rgb = Rgb(0xf3, 0xf4, 0xf6);

/// Body text size.
const BODY: f32 = 9.0;
/// Small text: periods, labels, footer.
const SMALL: f32 = 7.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb(u8, u8, u8);

impl Rgb {
    fn color(self) -> rgb::Color {
        rgb::Color::new(self.0, self.1, self.2)
    }
}

/// One drawing operation.
#[derive(Debug)]
enum Op {
    /// Shaped text with its baseline starting at (x, y).
    Text {
        x: f32,
        y: f32,
        size: f32,
        color: Rgb,
        text: Shaped,
    },
    /// A straight line.
    Line {
        from: (f32, f32),
        to: (f32, f32),
        width: f32,
        color: Rgb,
    },
    /// A filled rectangle.
    Band {
        rect: (f32, f32, f32, f32),
        color: Rgb,
    },
    /// An outlined rectangle.
    Frame {
        rect: (f32, f32, f32, f32),
        width: f32,
        color: Rgb,
    },
    /// The logo, its top left corner at (x, y).
    #[cfg_attr(not(feature = "logo"), allow(dead_code))]
    Logo { x: f32, y: f32 },
}

/// Where the table's columns are.
#[derive(Debug, Clone, Copy)]
struct Columns {
    description: f32,
    description_width: f32,
    quantity_right: f32,
    unit_right: f32,
    amount_right: f32,
}

struct Layout<'a> {
    regular: FontChain<'a>,
    bold: FontChain<'a>,
    width: f32,
    height: f32,
    pages: Vec<Vec<Op>>,
    /// The lowest y the content may reach on any page (the footer is below it).
    bottom: f32,
    columns: Columns,
}

/// The size of a `w` × `h` pixel image fitted in `max_w` × `max_h` points.
#[allow(
    clippy::cast_precision_loss,
    reason = "image sizes are far below 2^24 pixels"
)]
#[cfg_attr(not(feature = "logo"), allow(dead_code))]
pub(crate) fn fit(w: u32, h: u32, max_w: f32, max_h: f32) -> (f32, f32) {
    let (w, h) = (w as f32, h as f32);
    let scale = (max_w / w).min(max_h / h);
    (w * scale, h * scale)
}

/// Whether a formatted amount (`0.00 USD`, `-0 JPY`) is zero: it has no digit but zeros.
fn is_zero(amount: &str) -> bool {
    amount
        .chars()
        .filter(char::is_ascii_digit)
        .all(|digit| digit == '0')
}

impl Layout<'_> {
    fn push(&mut self, op: Op) {
        match self.pages.last_mut() {
            Some(page) => page.push(op),
            None => self.pages.push(vec![op]),
        }
    }

    fn fonts(&self, bold: bool) -> &FontChain<'_> {
        if bold { &self.bold } else { &self.regular }
    }

    /// Draw `shaped` with its top at `top` (the baseline follows from the size).
    fn put(&mut self, x: f32, top: f32, size: f32, color: Rgb, text: Shaped) {
        self.push(Op::Text {
            x,
            y: top + size * 0.93,
            size,
            color,
            text,
        });
    }

    /// Draw `text` left-aligned at `x`; its width.
    fn left(&mut self, x: f32, top: f32, size: f32, bold: bool, color: Rgb, text: &str) -> f32 {
        let shaped = self.fonts(bold).shape(text);
        let width = shaped.width_at(size);
        self.put(x, top, size, color, shaped);
        width
    }

    /// Draw `text` ending at `right`; its width.
    fn right(
        &mut self,
        right: f32,
        top: f32,
        size: f32,
        bold: bool,
        color: Rgb,
        text: &str,
    ) -> f32 {
        let shaped = self.fonts(bold).shape(text);
        let width = shaped.width_at(size);
        self.put(right - width, top, size, color, shaped);
        width
    }

    /// Draw `text` wrapped to `max` points from `x`; the y under it.
    #[allow(clippy::too_many_arguments)]
    fn paragraph(
        &mut self,
        x: f32,
        mut top: f32,
        max: f32,
        size: f32,
        bold: bool,
        color: Rgb,
        text: &str,
    ) -> f32 {
        for line in self.fonts(bold).wrap(text, size, max) {
            self.put(x, top, size, color, line);
            top += size * 1.3;
        }
        top
    }

    fn line(&mut self, from: (f32, f32), to: (f32, f32), width: f32, color: Rgb) {
        self.push(Op::Line {
            from,
            to,
            width,
            color,
        });
    }

    /// A party: the legal name in bold, then address lines, tax id and e-mail; the y under it.
    fn party(&mut self, x: f32, mut top: f32, max: f32, party: &Party) -> f32 {
        top = self.paragraph(x, top, max, 11.0, true, BLACK, &party.legal_name);
        top += 1.0;
        let mut lines = party
            .address
            .as_ref()
            .map(commet_core::invoice::PostalAddress::lines)
            .unwrap_or_default();
        lines.extend(party.tax_id.as_ref().map(|id| format!("Tax ID: {id}")));
        lines.extend(party.email.clone());
        for line in lines {
            top = self.paragraph(x, top, max, BODY, false, BLACK, &line);
        }
        top
    }

    /// The first page's head: parties, invoice number, dates, mark; the y under it.
    fn head(&mut self, document: &InvoiceDocument, logo: Option<(f32, f32)>) -> f32 {
        let right = self.width - MARGIN;
        let meta_left = right - 200.0;
        let left_width = meta_left - 24.0 - MARGIN;

        // Left: logo, seller, "Bill to", customer.
        let mut y = MARGIN;
        if let Some((_, height)) = logo {
            self.push(Op::Logo { x: MARGIN, y });
            y += height + 14.0;
        }
        y = self.party(MARGIN, y, left_width, &document.issuer);
        y += 18.0;
        self.left(MARGIN, y, SMALL, true, GREY, "BILL TO");
        y += SMALL * 1.6;
        y = self.party(MARGIN, y, left_width, &document.customer);

        // Right: number, dates, mark.
        let mut r = MARGIN;
        let title = format!("Invoice {}", document.number);
        let title = self.bold.wrap(&title, 18.0, right - meta_left);
        for line in title {
            let width = line.width_at(18.0);
            self.put(right - width, r, 18.0, BLACK, line);
            r += 18.0 * 1.25;
        }
        r += 8.0;
        let facts = [
            ("Issue date", Some(&document.issued_on)),
            ("Due date", Some(&document.due_on)),
            ("Period", document.period.as_ref()),
            ("Paid on", document.paid_on.as_ref()),
        ];
        for (label, value) in facts {
            let Some(value) = value else { continue };
            self.left(meta_left, r, BODY, false, GREY, label);
            self.right(right, r, BODY, false, BLACK, value);
            r += BODY * 1.5;
        }
        if let Some(mark) = &document.mark {
            let color = match mark.as_str() {
                "PAID" => Rgb(0x15, 0x80, 0x3d),
                "VOID" => GREY,
                _ => Rgb(0xb9, 0x1c, 0x1c),
            };
            let size = 22.0;
            let shaped = self.bold.shape(mark);
            let width = shaped.width_at(size);
            let (pad_x, pad_y) = (12.0, 7.0);
            r += 10.0;
            let (box_w, box_h) = (width + 2.0 * pad_x, size + 2.0 * pad_y);
            let box_x = right - box_w;
            self.push(Op::Frame {
                rect: (box_x, r, box_w, box_h),
                width: 2.5,
                color,
            });
            self.put(box_x + pad_x, r + pad_y - 1.0, size, color, shaped);
            r += box_h;
        }
        y.max(r) + 28.0
    }

    /// The table header at `top`; the y under it.
    fn table_header(&mut self, top: f32) -> f32 {
        let c = self.columns;
        let height = 18.0;
        self.push(Op::Band {
            rect: (MARGIN, top, self.width - 2.0 * MARGIN, height),
            color: BAND,
        });
        let text_top = top + (height - 8.0) / 2.0;
        self.left(c.description, text_top, 8.0, true, GREY, "Description");
        self.right(c.quantity_right, text_top, 8.0, true, GREY, "Quantity");
        self.right(c.unit_right, text_top, 8.0, true, GREY, "Unit price");
        self.right(c.amount_right, text_top, 8.0, true, GREY, "Amount");
        top + height + 2.0
    }

    /// A fresh page continuing the table; the y to go on at.
    fn next_page(&mut self) -> f32 {
        self.pages.push(Vec::new());
        self.table_header(MARGIN)
    }

    /// The totals' rows: label, value, bold.
    fn totals(document: &InvoiceDocument) -> Vec<(&'static str, &str, bool)> {
        let mut rows = vec![("Subtotal", document.subtotal.as_str(), false)];
        if !is_zero(&document.credit_applied) {
            rows.push(("Credit applied", document.credit_applied.as_str(), false));
        }
        rows.push(("Total", document.total.as_str(), true));
        rows.push(("Amount paid", document.amount_paid.as_str(), false));
        rows
    }

    fn totals_height(document: &InvoiceDocument) -> f32 {
        // Rows of 15 pt, the amount-due band of 24, the gaps around.
        #[allow(clippy::cast_precision_loss, reason = "at most five rows")]
        let rows = Layout::totals(document).len() as f32;
        12.0 + rows * 15.0 + 6.0 + 24.0
    }

    fn draw_totals(&mut self, document: &InvoiceDocument, mut y: f32) -> f32 {
        let right = self.columns.amount_right;
        let label_x = right - 224.0;
        y += 12.0;
        for (label, value, bold) in Layout::totals(document) {
            if bold {
                self.line((label_x, y - 4.5), (right, y - 4.5), 0.5, RULE);
            }
            self.left(
                label_x,
                y,
                BODY,
                bold,
                if bold { BLACK } else { GREY },
                label,
            );
            self.right(right, y, BODY, bold, BLACK, value);
            y += 15.0;
        }
        y += 6.0;
        self.push(Op::Band {
            rect: (label_x - 6.0, y, right - label_x + 12.0, 24.0),
            color: BAND,
        });
        self.left(label_x, y + 6.5, 11.0, true, BLACK, "Amount due");
        self.right(
            right - 6.0,
            y + 6.5,
            11.0,
            true,
            BLACK,
            &document.amount_due,
        );
        y + 24.0
    }
}

/// Lay out `document` and write it.
#[allow(
    clippy::too_many_lines,
    reason = "one pass down the page: head, rows, totals, memo, then page furniture"
)]
pub(crate) fn render(
    renderer: &PdfRenderer,
    document: &InvoiceDocument,
) -> Result<Vec<u8>, PdfError> {
    let (width, height) = renderer.paper.points();
    let regular = FontChain::new(&renderer.regular)?;
    let bold = FontChain::new(&renderer.bold)?;
    let right = width - MARGIN;
    let columns = Columns {
        description: MARGIN + 6.0,
        description_width: right - 265.0 - (MARGIN + 6.0),
        quantity_right: right - 205.0,
        unit_right: right - 105.0,
        amount_right: right - 6.0,
    };

    // The footer, the same on every page, above the page number line.
    let footer = document
        .footer
        .as_deref()
        .map(|text| regular.wrap(text, SMALL, width - 2.0 * MARGIN))
        .unwrap_or_default();
    #[allow(clippy::cast_precision_loss, reason = "a footer has few lines")]
    let footer_height = footer.len() as f32 * SMALL * 1.3;
    let number_line = height - MARGIN + 12.0;
    let footer_top = number_line - 10.0 - footer_height;
    let bottom = footer_top - 14.0;

    let mut layout = Layout {
        regular,
        bold,
        width,
        height,
        pages: vec![Vec::new()],
        bottom,
        columns,
    };
    let logo = renderer.logo.as_ref().map(|l| (l.width, l.height));
    let mut y = layout.head(document, logo);
    y = layout.table_header(y);

    let totals_height = Layout::totals_height(document);
    let count = document.lines.len();
    for (index, line) in document.lines.iter().enumerate() {
        let description = layout
            .regular
            .wrap(&line.description, BODY, columns.description_width);
        let period = line
            .period
            .as_deref()
            .map(|p| layout.regular.wrap(p, SMALL, columns.description_width))
            .unwrap_or_default();
        #[allow(clippy::cast_precision_loss, reason = "a description has few lines")]
        let row_height =
            5.0 + description.len() as f32 * BODY * 1.3 + period.len() as f32 * SMALL * 1.35 + 5.0;
        // The last row stays with the totals.
        let needed = if index + 1 == count {
            row_height + totals_height
        } else {
            row_height
        };
        let page_top = MARGIN + 20.0;
        if y + needed > layout.bottom && y > page_top {
            y = layout.next_page();
        }
        let mut top = y + 5.0;
        layout.right(
            columns.quantity_right,
            top,
            BODY,
            false,
            BLACK,
            &line.quantity,
        );
        layout.right(
            columns.unit_right,
            top,
            BODY,
            false,
            BLACK,
            &line.unit_amount,
        );
        layout.right(columns.amount_right, top, BODY, false, BLACK, &line.amount);
        for shaped in description {
            layout.put(columns.description, top, BODY, BLACK, shaped);
            top += BODY * 1.3;
        }
        for shaped in period {
            layout.put(columns.description, top, SMALL, GREY, shaped);
            top += SMALL * 1.35;
        }
        y += row_height;
        layout.line((MARGIN, y), (right, y), 0.5, RULE);
    }
    if count == 0 && y + totals_height > layout.bottom {
        y = layout.next_page();
    }
    y = layout.draw_totals(document, y);

    if let Some(memo) = document.memo.as_deref() {
        y += 20.0;
        let lines = layout.regular.wrap(memo, BODY, width - 2.0 * MARGIN);
        if y + SMALL * 1.6 + BODY * 1.3 > layout.bottom {
            layout.pages.push(Vec::new());
            y = MARGIN;
        }
        layout.left(MARGIN, y, SMALL, true, GREY, "MEMO");
        y += SMALL * 1.6;
        for line in lines {
            if y + BODY * 1.3 > layout.bottom {
                layout.pages.push(Vec::new());
                y = MARGIN;
            }
            layout.put(MARGIN, y, BODY, BLACK, line);
            y += BODY * 1.3;
        }
    }

    // Footer and page numbers, now that the pages are counted.
    let total = layout.pages.len();
    for number in 1..=total {
        let page_index = number - 1;
        let mut ops = std::mem::take(
            layout
                .pages
                .get_mut(page_index)
                .ok_or_else(|| PdfError::Write("page out of range".to_owned()))?,
        );
        let mut top = footer_top;
        for line in &footer {
            ops.push(Op::Text {
                x: MARGIN,
                y: top + SMALL * 0.93,
                size: SMALL,
                color: GREY,
                text: line.clone(),
            });
            top += SMALL * 1.3;
        }
        let baseline = number_line + SMALL * 0.93;
        let label = layout.regular.shape(&format!("Page {number} of {total}"));
        let label_width = label.width_at(SMALL);
        ops.push(Op::Text {
            x: right - label_width,
            y: baseline,
            size: SMALL,
            color: GREY,
            text: label,
        });
        ops.push(Op::Text {
            x: MARGIN,
            y: baseline,
            size: SMALL,
            color: GREY,
            text: layout.regular.shape(&document.number),
        });
        ops.push(Op::Line {
            from: (MARGIN, number_line - 4.0),
            to: (right, number_line - 4.0),
            width: 0.5,
            color: RULE,
        });
        if let Some(page) = layout.pages.get_mut(page_index) {
            *page = ops;
        }
    }

    draw(renderer, document, &layout)
}

fn draw(
    renderer: &PdfRenderer,
    document: &InvoiceDocument,
    layout: &Layout<'_>,
) -> Result<Vec<u8>, PdfError> {
    let mut pdf = Document::new();
    pdf.set_metadata(
        Metadata::new()
            .title(format!("Invoice {}", document.number))
            .producer("commet-pdf".to_owned()),
    );
    let settings = PageSettings::from_wh(layout.width, layout.height)
        .ok_or_else(|| PdfError::Write("invalid paper size".to_owned()))?;
    for ops in &layout.pages {
        let mut page = pdf.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    color,
                    text,
                } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(fill(*color)));
                    let mut x = *x;
                    for run in &text.runs {
                        surface.draw_glyphs(
                            Point::from_xy(x, *y),
                            &run.glyphs,
                            run.font.clone(),
                            &run.text,
                            *size,
                            false,
                        );
                        x += run.width * size;
                    }
                }
                Op::Line {
                    from,
                    to,
                    width,
                    color,
                } => {
                    let mut path = PathBuilder::new();
                    path.move_to(from.0, from.1);
                    path.line_to(to.0, to.1);
                    if let Some(path) = path.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(stroke(*color, *width)));
                        surface.draw_path(&path);
                    }
                }
                Op::Band { rect, color } => {
                    if let Some(path) = rectangle(*rect) {
                        surface.set_stroke(None);
                        surface.set_fill(Some(fill(*color)));
                        surface.draw_path(&path);
                    }
                }
                Op::Frame { rect, width, color } => {
                    if let Some(path) = rectangle(*rect) {
                        surface.set_fill(None);
                        surface.set_stroke(Some(stroke(*color, *width)));
                        surface.draw_path(&path);
                    }
                }
                Op::Logo { x, y } => {
                    #[cfg(feature = "logo")]
                    if let Some(logo) = &renderer.logo {
                        use krilla::geom::{Size, Transform};
                        if let Some(size) = Size::from_wh(logo.width, logo.height) {
                            surface.push_transform(&Transform::from_translate(*x, *y));
                            surface.draw_image(logo.image.clone(), size);
                            surface.pop();
                        }
                    }
                    #[cfg(not(feature = "logo"))]
                    let _ = (x, y, renderer);
                }
            }
        }
        surface.finish();
        page.finish();
    }
    pdf.finish()
        .map_err(|error| PdfError::Write(format!("{error:?}")))
}

fn fill(color: Rgb) -> Fill {
    Fill {
        paint: color.color().into(),
        ..Fill::default()
    }
}

fn stroke(color: Rgb, width: f32) -> Stroke {
    Stroke {
        paint: color.color().into(),
        width,
        ..Stroke::default()
    }
}

fn rectangle((x, y, w, h): (f32, f32, f32, f32)) -> Option<krilla::geom::Path> {
    let mut path = PathBuilder::new();
    path.push_rect(Rect::from_xywh(x, y, w, h)?);
    path.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_amounts_are_recognised() {
        assert!(is_zero("0.00 USD"));
        assert!(is_zero("0 JPY"));
        assert!(is_zero("-0.000 KWD"));
        assert!(!is_zero("0.01 USD"));
        assert!(!is_zero("-5.00 EUR"));
    }

    #[test]
    fn images_are_fitted_keeping_proportions() {
        assert_eq!(fit(200, 100, 180.0, 48.0), (96.0, 48.0));
        assert_eq!(fit(400, 50, 180.0, 48.0), (180.0, 22.5));
    }
}
