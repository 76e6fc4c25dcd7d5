//! How an invoice becomes a file: the [`InvoiceRenderer`] trait. The engine builds the
//! [`InvoiceDocument`] (pure data, the same for every rendering) and hands it to the renderer
//! the host plugged in with [`Billing::with_renderer`](crate::Billing::with_renderer); the
//! engine never depends on a PDF library. `commet-pdf`'s `PdfRenderer` is the PDF one.

use std::fmt;

use commet_core::invoice::InvoiceDocument;

/// Renders invoice documents.
pub trait InvoiceRenderer: Send + Sync + fmt::Debug {
    /// The media type of what it renders (`application/pdf`).
    fn content_type(&self) -> &'static str;

    /// Render one document. The same document must render to the same bytes.
    fn render(&self, document: &InvoiceDocument) -> Result<Vec<u8>, RenderError>;
}

/// A rendering that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the invoice could not be rendered: {0}")]
pub struct RenderError(pub String);

/// A rendered invoice.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedInvoice {
    /// The media type (`application/pdf`).
    pub content_type: &'static str,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for RenderedInvoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedInvoice")
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}
