//! Queries: filters, pages and cursors.

use serde::{Deserialize, Serialize};

use commet_core::InvalidField;
use commet_core::delivery::DeliveryStatus;
use commet_core::ids::{CustomerId, EndpointId, EventId, SubscriptionId};
use commet_core::invoice::InvoiceStatus;
use commet_core::subscription::SubscriptionStatus;

/// The largest page a store returns.
pub const MAX_PAGE: u32 = 100;

/// A position in a list: the id of the last item of the previous page. Opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor after an item with this id.
    #[must_use]
    pub fn after(id: impl std::fmt::Display) -> Cursor {
        Cursor(id.to_string())
    }

    /// The id it points after.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which page to read: up to `limit` items after `after` (from the start if `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// How many items at most: 1 to [`MAX_PAGE`].
    pub limit: u32,
    /// Continue after this cursor (the previous page's `next`).
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `limit` items.
    #[must_use]
    pub fn first(limit: u32) -> PageRequest {
        PageRequest { limit, after: None }
    }

    /// The limit, checked: the error names `limit`.
    pub fn checked_limit(&self) -> Result<usize, InvalidField> {
        if (1..=MAX_PAGE).contains(&self.limit) {
            Ok(self.limit as usize)
        } else {
            Err(InvalidField::new(
                "limit",
                format_args!("must be 1 to {MAX_PAGE}"),
            ))
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::first(25)
    }
}

/// One page of a list, newest first, and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, newest first (by id, which is creation time).
    pub items: Vec<T>,
    /// The cursor for the next page, if there may be one.
    pub next: Option<Cursor>,
}

/// Every item of a paged list, newest first: `read` is asked for pages of [`MAX_PAGE`] items,
/// each after the last one's cursor, until a page has no next cursor.
///
/// ```
/// use commet_engine::store::{InvoiceQuery, Store, every_page};
/// use commet_store_memory::MemoryStore;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let invoices = every_page(|page| store.invoices(InvoiceQuery::default(), page)).await?;
/// assert!(invoices.is_empty());
/// # Ok::<(), commet_engine::store::StoreError>(())
/// # }).unwrap();
/// ```
///
/// # Errors
///
/// The first error `read` answers.
pub async fn every_page<T, E, F>(mut read: impl FnMut(PageRequest) -> F) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<Page<T>, E>>,
{
    let mut items = Vec::new();
    let mut request = PageRequest::first(MAX_PAGE);
    loop {
        let page = read(request.clone()).await?;
        items.extend(page.items);
        match page.next {
            Some(cursor) => request.after = Some(cursor),
            None => return Ok(items),
        }
    }
}

/// Which invoices to list. Empty filters match everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InvoiceQuery {
    /// Only this customer's.
    pub customer: Option<CustomerId>,
    /// Only this subscription's.
    pub subscription: Option<SubscriptionId>,
    /// Only in this status.
    pub status: Option<InvoiceStatus>,
}

/// Which subscriptions to list. Empty filters match everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubscriptionQuery {
    /// Only this customer's.
    pub customer: Option<CustomerId>,
    /// Only in this status.
    pub status: Option<SubscriptionStatus>,
}

/// Which webhook deliveries to list: every filter given must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryQuery {
    /// Deliveries to this endpoint.
    pub endpoint: Option<EndpointId>,
    /// Deliveries of this event.
    pub event: Option<EventId>,
    /// Deliveries in this status.
    pub status: Option<DeliveryStatus>,
}

impl DeliveryQuery {
    /// Does `delivery` match?
    #[must_use]
    pub fn matches(&self, delivery: &commet_core::delivery::Delivery) -> bool {
        self.endpoint
            .is_none_or(|endpoint| delivery.endpoint() == endpoint)
            && self.event.is_none_or(|event| delivery.event() == event)
            && self.status.is_none_or(|status| delivery.status() == status)
    }
}
