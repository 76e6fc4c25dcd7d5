//! The reads, with `MemoryStore`'s semantics: newest-first pages by id (ids are time-sortable
//! TypeID text, so text order is creation order), the due-work index by (deadline, id),
//! attempts and events in their orders.

use chrono::{DateTime, Utc};
use commet_core::InvalidField;
use commet_core::catalog::{Plan, Price};
use commet_core::customer::Customer;
use commet_core::delivery::{Delivery, WebhookEndpoint};
use commet_core::ids::{InvoiceId, SubscriptionId, TypedId};
use commet_core::invoice::Invoice;
use commet_core::payment::PaymentAttempt;
use commet_core::subscription::Subscription;
use commet_engine::store::{
    Cursor, DeliveryQuery, InvoiceQuery, Page, PageRequest, StoreError, SubscriptionQuery,
};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::codec::micros;
use crate::error::Result;
use crate::rows::{self, attempt, catalog, customer, delivery, endpoint, invoice, subscription};

/// A checked page request: the limit, and the id to continue below.
#[derive(Debug)]
pub(crate) struct PageBounds {
    limit: usize,
    after: Option<String>,
}

impl PageBounds {
    /// Check a request for a list of `T` ids: the limit first, then the cursor.
    pub(crate) fn of<T: TypedId>(request: &PageRequest) -> Result<PageBounds, StoreError> {
        let limit = request.checked_limit()?;
        let after = match &request.after {
            Some(cursor) => Some(
                cursor
                    .as_str()
                    .parse::<T>()
                    .map_err(|_| InvalidField::new("after", "is not a cursor of this list"))?
                    .to_string(),
            ),
            None => None,
        };
        Ok(PageBounds { limit, after })
    }
}

/// A limit as an SQLite integer (a `usize` beyond `i64::MAX` means "all").
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// One newest-first page from `table` selecting `columns`, filtered by `filters` (SQL
/// conditions with one `?` each, and their values; an equality is `column = CAST(? AS TEXT)`,
/// see [`statement`]).
fn page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    mut filters: Vec<(&str, Value)>,
    bounds: &PageBounds,
    read: impl FnOnce(&Connection, &str, Vec<Value>) -> Result<Vec<T>>,
    id_of: impl Fn(&T) -> String,
) -> Result<Page<T>> {
    if let Some(after) = &bounds.after {
        filters.push(("id < CAST(? AS TEXT)", Value::Text(after.clone())));
    }
    let conditions: Vec<&str> = filters.iter().map(|(condition, _)| *condition).collect();
    let sql = page_sql(table, columns, &conditions);
    let mut values: Vec<Value> = filters.into_iter().map(|(_, value)| value).collect();
    // One more than asked: its presence says whether there is a next page.
    values.push(Value::Integer(limit(bounds.limit).saturating_add(1)));
    let mut items = read(conn, &sql, values)?;
    let next = if items.len() > bounds.limit {
        items.truncate(bounds.limit);
        items.last().map(|item| Cursor::after(id_of(item)))
    } else {
        None
    };
    Ok(Page { items, next })
}

/// The statement of a newest-first page of `table` under `conditions` (each with one `?`),
/// the limit its last parameter.
fn page_sql(table: &str, columns: &str, conditions: &[&str]) -> String {
    let mut sql = format!("SELECT {columns} FROM {table}");
    for (n, condition) in conditions.iter().enumerate() {
        sql.push_str(if n == 0 { " WHERE " } else { " AND " });
        sql.push_str(condition);
    }
    sql.push_str(" ORDER BY id DESC LIMIT CAST(? AS INTEGER)");
    sql
}

/// One statement, run once per id, in one call from the executor.
pub(crate) fn customers_by_id(conn: &mut Connection, ids: &[String]) -> Result<Vec<Customer>> {
    let sql = format!("SELECT {} FROM customers WHERE id = ?1", customer::COLUMNS);
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        found.extend(rows::query(conn, &sql, [id], customer::decode)?);
    }
    Ok(found)
}

pub(crate) fn customer_by_external_id(
    conn: &mut Connection,
    external_id: &str,
) -> Result<Option<Customer>> {
    let sql = format!(
        "SELECT {} FROM customers WHERE external_id = ?1",
        customer::COLUMNS
    );
    Ok(rows::query(conn, &sql, [external_id], customer::decode)?
        .into_iter()
        .next())
}

/// `email` is declared `COLLATE NOCASE`, which folds exactly the 26 ASCII letters: the same
/// comparison as `str::eq_ignore_ascii_case`.
pub(crate) fn customers_by_email(conn: &mut Connection, email: &str) -> Result<Vec<Customer>> {
    let sql = format!(
        "SELECT {} FROM customers WHERE email = CAST(?1 AS TEXT) ORDER BY id DESC",
        customer::COLUMNS
    );
    rows::query(conn, &sql, [email], customer::decode)
}

pub(crate) fn customers(conn: &mut Connection, bounds: &PageBounds) -> Result<Page<Customer>> {
    page(
        conn,
        "customers",
        customer::COLUMNS,
        Vec::new(),
        bounds,
        |conn, sql, values| rows::query(conn, sql, params_from_iter(values), customer::decode),
        |c| c.id().to_string(),
    )
}

pub(crate) fn plans(conn: &mut Connection) -> Result<Vec<Plan>> {
    let sql = format!("SELECT {} FROM plans ORDER BY id", catalog::PLAN_COLUMNS);
    rows::query(conn, &sql, [], catalog::decode_plan)
}

pub(crate) fn prices(conn: &mut Connection) -> Result<Vec<Price>> {
    let sql = format!("SELECT {} FROM prices ORDER BY id", catalog::PRICE_COLUMNS);
    rows::query(conn, &sql, [], catalog::decode_price)
}

pub(crate) fn subscription_by_id(conn: &mut Connection, id: &str) -> Result<Option<Subscription>> {
    let sql = format!(
        "SELECT {} FROM subscriptions WHERE id = ?1",
        subscription::COLUMNS
    );
    Ok(rows::query(conn, &sql, [id], subscription::decode)?
        .into_iter()
        .next())
}

pub(crate) fn subscriptions(
    conn: &mut Connection,
    query: SubscriptionQuery,
    bounds: &PageBounds,
) -> Result<Page<Subscription>> {
    let mut filters = Vec::new();
    if let Some(customer) = query.customer {
        filters.push((
            "customer = CAST(? AS TEXT)",
            Value::Text(customer.to_string()),
        ));
    }
    if let Some(status) = query.status {
        filters.push((
            "status = CAST(? AS TEXT)",
            Value::Text(status.as_str().to_owned()),
        ));
    }
    page(
        conn,
        "subscriptions",
        subscription::COLUMNS,
        filters,
        bounds,
        |conn, sql, values| rows::query(conn, sql, params_from_iter(values), subscription::decode),
        |s| s.id().to_string(),
    )
}

pub(crate) fn due(
    conn: &mut Connection,
    now: DateTime<Utc>,
    max: usize,
) -> Result<Vec<Subscription>> {
    let sql = format!(
        "SELECT {} FROM subscriptions WHERE next_due_at <= CAST(?1 AS INTEGER) \
         ORDER BY next_due_at, id LIMIT CAST(?2 AS INTEGER)",
        subscription::COLUMNS
    );
    rows::query(
        conn,
        &sql,
        params![micros(now), limit(max)],
        subscription::decode,
    )
}

pub(crate) fn invoice_by_id(conn: &mut Connection, id: &str) -> Result<Option<Invoice>> {
    let tx = conn.transaction()?;
    let sql = format!("SELECT {} FROM invoices WHERE id = ?1", invoice::COLUMNS);
    let found = invoice::read(&tx, &sql, [id])?.into_iter().next();
    tx.finish()?;
    Ok(found)
}

pub(crate) fn invoices(
    conn: &mut Connection,
    query: InvoiceQuery,
    bounds: &PageBounds,
) -> Result<Page<Invoice>> {
    let mut filters = Vec::new();
    if let Some(customer) = query.customer {
        filters.push((
            "customer = CAST(? AS TEXT)",
            Value::Text(customer.to_string()),
        ));
    }
    if let Some(subscription) = query.subscription {
        filters.push((
            "subscription = CAST(? AS TEXT)",
            Value::Text(subscription.to_string()),
        ));
    }
    if let Some(status) = query.status {
        filters.push((
            "status = CAST(? AS TEXT)",
            Value::Text(status.as_str().to_owned()),
        ));
    }
    let tx = conn.transaction()?;
    let found = page(
        &tx,
        "invoices",
        invoice::COLUMNS,
        filters,
        bounds,
        |conn, sql, values| invoice::read(conn, sql, params_from_iter(values)),
        |i| i.id().to_string(),
    )?;
    tx.finish()?;
    Ok(found)
}

pub(crate) fn recurring_invoice(
    conn: &mut Connection,
    subscription: SubscriptionId,
    period_start: DateTime<Utc>,
) -> Result<Option<Invoice>> {
    let tx = conn.transaction()?;
    let sql = format!(
        "SELECT {} FROM invoices \
         WHERE kind = 'recurring' AND subscription = ?1 AND period_start = ?2",
        invoice::COLUMNS
    );
    let found = invoice::read(
        &tx,
        &sql,
        params![subscription.to_string(), micros(period_start)],
    )?
    .into_iter()
    .next();
    tx.finish()?;
    Ok(found)
}

pub(crate) fn payment_attempts(
    conn: &mut Connection,
    invoice: InvoiceId,
) -> Result<Vec<PaymentAttempt>> {
    let sql = format!(
        "SELECT {} FROM payment_attempts WHERE invoice = CAST(?1 AS TEXT) ORDER BY attempt, id",
        attempt::COLUMNS
    );
    rows::query(conn, &sql, [invoice.to_string()], attempt::decode)
}

pub(crate) fn pending_payment_attempts(
    conn: &mut Connection,
    created_before: DateTime<Utc>,
    max: usize,
) -> Result<Vec<PaymentAttempt>> {
    let sql = format!(
        "SELECT {} FROM payment_attempts WHERE status = 'pending' \
         AND created_at < CAST(?1 AS INTEGER) ORDER BY created_at, id LIMIT CAST(?2 AS INTEGER)",
        attempt::COLUMNS
    );
    rows::query(
        conn,
        &sql,
        params![micros(created_before), limit(max)],
        attempt::decode,
    )
}

/// Every endpoint, deleted ones included, in creation order.
pub(crate) fn webhook_endpoints(conn: &mut Connection) -> Result<Vec<WebhookEndpoint>> {
    let sql = format!(
        "SELECT {} FROM webhook_endpoints ORDER BY id",
        endpoint::COLUMNS
    );
    rows::query(conn, &sql, [], endpoint::decode)
}

pub(crate) fn delivery_by_id(conn: &mut Connection, id: &str) -> Result<Option<Delivery>> {
    let sql = format!("SELECT {} FROM deliveries WHERE id = ?1", delivery::COLUMNS);
    Ok(rows::query(conn, &sql, [id], delivery::decode)?
        .into_iter()
        .next())
}

/// Newest first, by the (endpoint, id) or (event, id) index when filtered by either.
pub(crate) fn deliveries(
    conn: &mut Connection,
    query: DeliveryQuery,
    bounds: &PageBounds,
) -> Result<Page<Delivery>> {
    let mut filters = Vec::new();
    if let Some(endpoint) = query.endpoint {
        filters.push((
            "endpoint = CAST(? AS TEXT)",
            Value::Text(endpoint.to_string()),
        ));
    }
    if let Some(event) = query.event {
        filters.push(("event = CAST(? AS TEXT)", Value::Text(event.to_string())));
    }
    if let Some(status) = query.status {
        filters.push((
            "status = CAST(? AS TEXT)",
            Value::Text(status.as_str().to_owned()),
        ));
    }
    page(
        conn,
        "deliveries",
        delivery::COLUMNS,
        filters,
        bounds,
        |conn, sql, values| rows::query(conn, sql, params_from_iter(values), delivery::decode),
        |d| d.id().to_string(),
    )
}

/// Pending deliveries due at or before `now`, soonest first (ties by id): a range of the
/// partial index `deliveries_due`, whose condition (`status = 'pending'`) the query repeats
/// word for word so that SQLite uses it.
pub(crate) fn due_deliveries(
    conn: &mut Connection,
    now: DateTime<Utc>,
    max: usize,
) -> Result<Vec<Delivery>> {
    let sql = due_deliveries_sql();
    rows::query(
        conn,
        &sql,
        params![micros(now), limit(max)],
        delivery::decode,
    )
}

fn due_deliveries_sql() -> String {
    format!(
        "SELECT {} FROM deliveries WHERE status = 'pending' \
         AND next_attempt_at <= CAST(?1 AS INTEGER) \
         ORDER BY next_attempt_at, id LIMIT CAST(?2 AS INTEGER)",
        delivery::COLUMNS
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    /// SQLite's plan for `sql`: one line per step.
    fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
        store
            .db
            .with(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                // Unbound parameters are NULL: the plan does not depend on them.
                let mut rows = stmt.raw_query();
                let mut steps = Vec::new();
                while let Some(row) = rows.next()? {
                    steps.push(row.get::<_, String>(3)?);
                }
                Ok(steps)
            })
            .unwrap()
    }

    /// The delivery reads are index range scans in the order they return, never a scan of
    /// the table or a sort: due deliveries through the partial index of pending ones, lists by
    /// endpoint and by event through theirs.
    #[tokio::test]
    async fn delivery_reads_use_their_indexes() {
        let store = SqliteStore::in_memory().await.unwrap();
        let due = plan(&store, &due_deliveries_sql());
        assert_eq!(
            due,
            vec!["SEARCH deliveries USING INDEX deliveries_due (next_attempt_at<?)".to_owned()],
            "{due:?}"
        );
        for (condition, index) in [
            ("endpoint = CAST(? AS TEXT)", "deliveries_endpoint"),
            ("event = CAST(? AS TEXT)", "deliveries_event"),
        ] {
            for conditions in [vec![condition], vec![condition, "id < CAST(? AS TEXT)"]] {
                let sql = page_sql("deliveries", delivery::COLUMNS, &conditions);
                let steps = plan(&store, &sql);
                assert_eq!(steps.len(), 1, "{steps:?}");
                assert!(
                    steps[0].starts_with(&format!("SEARCH deliveries USING INDEX {index} (")),
                    "{steps:?}"
                );
            }
        }
    }
}
