//! The stored rows a change set's rules depend on: its [`Lookups`] answered as [`CommitFacts`],
//! one indexed `SELECT` per entry, for the shared rules (`commet_engine::store::check`) to
//! name the rule a refused commit broke. Only the facts `check` reads are answered: the number
//! series and the last sequence number are read by the write itself, under the write lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use chrono::{DateTime, Utc};
use commet_core::ids::{DeliveryId, EndpointId, EventId, InvoiceId, SubscriptionId};
use commet_core::invoice::LineItem;
use commet_engine::store::{
    CommitFacts, EntityKind, Lookups, StoreError, StoredIdempotency, StoredInvoice,
};
use rusqlite::Connection;
use rusqlite::types::ToSql;

use crate::codec::{Columns, micros};
use crate::error::Result;
use crate::rows::{delivery, invoice, statement};

/// Answer `lookups` from the rows as they are.
pub(crate) fn answer(conn: &Connection, lookups: &Lookups) -> Result<CommitFacts> {
    Ok(CommitFacts {
        customers: each(
            conn,
            "SELECT id, version FROM customers WHERE id = ?1",
            EntityKind::Customer,
            &lookups.customers,
            version,
        )?,
        external_ids: each(
            conn,
            "SELECT id FROM customers WHERE external_id = ?1",
            EntityKind::Customer,
            &lookups.external_ids,
            id,
        )?,
        plans: present(
            conn,
            "SELECT id FROM plans WHERE id = ?1",
            EntityKind::Plan,
            &lookups.plans,
        )?,
        plan_codes: present(
            conn,
            "SELECT id FROM plans WHERE code = ?1",
            EntityKind::Plan,
            &lookups.plan_codes,
        )?,
        prices: present(
            conn,
            "SELECT id FROM prices WHERE id = ?1",
            EntityKind::Price,
            &lookups.prices,
        )?,
        subscriptions: each(
            conn,
            "SELECT id, version FROM subscriptions WHERE id = ?1",
            EntityKind::Subscription,
            &lookups.subscriptions,
            version,
        )?,
        invoices: invoices(conn, &lookups.invoices)?,
        recurring_periods: recurring_periods(conn, &lookups.recurring_periods)?,
        payment_attempts: each(
            conn,
            "SELECT id, version FROM payment_attempts WHERE id = ?1",
            EntityKind::PaymentAttempt,
            &lookups.payment_attempts,
            version,
        )?,
        attempt_keys: each(
            conn,
            "SELECT id FROM payment_attempts WHERE idempotency_key = ?1",
            EntityKind::PaymentAttempt,
            &lookups.attempt_keys,
            id,
        )?,
        events: present(
            conn,
            "SELECT id FROM events WHERE id = ?1",
            EntityKind::Event,
            &lookups.events,
        )?,
        idempotency: each(
            conn,
            "SELECT idempotency_key, version, expires_at FROM idempotency_records \
             WHERE idempotency_key = ?1",
            EntityKind::IdempotencyRecord,
            &lookups.idempotency_keys,
            |columns| {
                Ok(StoredIdempotency {
                    version: columns.u64(1)?,
                    expires_at: columns.time(2)?,
                })
            },
        )?,
        number_series: BTreeMap::new(),
        last_event_seq: 0,
        endpoints: each(
            conn,
            "SELECT id, version FROM webhook_endpoints WHERE id = ?1",
            EntityKind::WebhookEndpoint,
            &lookups.endpoints,
            version,
        )?,
        deliveries: each(
            conn,
            "SELECT id, version FROM deliveries WHERE id = ?1",
            EntityKind::Delivery,
            &lookups.deliveries,
            version,
        )?,
        delivery_keys: delivery_keys(conn, &lookups.delivery_keys)?,
        delivery_cursor: if lookups.delivery_cursor {
            delivery::cursor(conn)?.map(|cursor| cursor.version)
        } else {
            None
        },
    })
}

/// The delivery holding each (endpoint, event).
fn delivery_keys(
    conn: &Connection,
    keys: &[(EndpointId, EventId)],
) -> Result<BTreeMap<(EndpointId, EventId), DeliveryId>> {
    let mut found = BTreeMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let mut stmt = statement(
        conn,
        "SELECT id FROM deliveries WHERE endpoint = ?1 AND event = ?2",
    )?;
    for key @ (endpoint, event) in keys {
        let mut rows = stmt.query((endpoint.to_string(), event.to_string()))?;
        if let Some(row) = rows.next()? {
            found.insert(*key, Columns::new(row, EntityKind::Delivery).parse(0)?);
        }
    }
    Ok(found)
}

/// The version in column 1.
fn version(columns: &Columns<'_, '_>) -> Result<u64> {
    columns.u64(1)
}

/// The id in column 0.
fn id<T>(columns: &Columns<'_, '_>) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: Display,
{
    columns.parse(0)
}

/// The entries of `keys` for which `sql` selects a row.
fn present<K>(conn: &Connection, sql: &str, kind: EntityKind, keys: &[K]) -> Result<BTreeSet<K>>
where
    K: Ord + Clone + Display,
{
    Ok(each(conn, sql, kind, keys, |_| Ok(()))?
        .into_keys()
        .collect())
}

/// The recurring invoice holding each (subscription, period start).
fn recurring_periods(
    conn: &Connection,
    keys: &[(SubscriptionId, DateTime<Utc>)],
) -> Result<BTreeMap<(SubscriptionId, DateTime<Utc>), InvoiceId>> {
    let mut stmt = statement(
        conn,
        "SELECT id FROM invoices \
         WHERE kind = 'recurring' AND subscription = ?1 AND period_start = ?2",
    )?;
    let mut found = BTreeMap::new();
    for key @ (subscription, start) in keys {
        let mut rows = stmt.query((subscription.to_string(), micros(*start)))?;
        if let Some(row) = rows.next()? {
            found.insert(*key, Columns::new(row, EntityKind::Invoice).parse(0)?);
        }
    }
    Ok(found)
}

/// For each of `keys`, the first row `sql` selects with it bound to `?1`, read by `read`.
fn each<K, V>(
    conn: &Connection,
    sql: &str,
    kind: EntityKind,
    keys: &[K],
    read: impl Fn(&Columns<'_, '_>) -> Result<V>,
) -> Result<BTreeMap<K, V>>
where
    K: Ord + Clone + Display,
{
    let mut stmt = statement(conn, sql)?;
    let mut found = BTreeMap::new();
    for key in keys {
        let text = key.to_string();
        let mut rows = stmt.query([&text as &dyn ToSql])?;
        if let Some(row) = rows.next()? {
            found.insert(key.clone(), read(&Columns::new(row, kind))?);
        }
    }
    Ok(found)
}

/// The stored version of each invoice, and the lines of those that left `draft`.
fn invoices(conn: &Connection, ids: &[InvoiceId]) -> Result<BTreeMap<InvoiceId, StoredInvoice>> {
    let headers = each(
        conn,
        "SELECT id, version, status, currency FROM invoices WHERE id = ?1",
        EntityKind::Invoice,
        ids,
        |columns| {
            Ok((
                columns.u64(1)?,
                columns.text(2)? == "draft",
                columns.parse(3)?,
            ))
        },
    )?;
    let mut found = BTreeMap::new();
    for (id, (version, draft, currency)) in headers {
        let fixed_lines = if draft {
            None
        } else {
            let text = id.to_string();
            let lines = invoice::lines(conn, &text, currency)?
                .into_iter()
                .map(|line| {
                    LineItem::from_record(line)
                        .map_err(|e| StoreError::corrupt(EntityKind::Invoice, &text, e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(lines)
        };
        found.insert(
            id,
            StoredInvoice {
                version,
                fixed_lines,
            },
        );
    }
    Ok(found)
}
