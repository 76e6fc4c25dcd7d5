//! One module per table: how an aggregate becomes a row, and how a row is rebuilt through the
//! aggregate's validating constructor (a row that fails validation is `Corrupt`).
//!
//! Every statement goes through [`statement`] (the connection's statement cache), so a hot
//! path parses its SQL once per connection.

pub(crate) mod attempt;
pub(crate) mod catalog;
pub(crate) mod customer;
pub(crate) mod delivery;
pub(crate) mod endpoint;
pub(crate) mod event;
pub(crate) mod idempotency;
pub(crate) mod invoice;
pub(crate) mod series;
pub(crate) mod subscription;

use rusqlite::{CachedStatement, Connection, OptionalExtension, Params, Row, params_from_iter};

use crate::codec::{Bound, owned};
use crate::error::Result;

/// The statements that write the rows of a versioned table, made from its column list (`id`
/// first, `version` last, the order of each module's `values`): an `INSERT` of every column,
/// and an `UPDATE` of every column but `id`, at an expected version (optionally only where a
/// further condition holds).
pub(crate) struct Writes {
    insert: String,
    update: String,
}

impl Writes {
    /// The statements of `table`, whose `columns` are listed as in a `SELECT`.
    pub(crate) fn new(table: &str, columns: &str) -> Writes {
        let names: Vec<&str> = columns.split(',').map(str::trim).collect();
        let placeholders: Vec<String> = (1..=names.len()).map(|n| format!("?{n}")).collect();
        let sets: Vec<String> = (1..)
            .zip(&names)
            .skip(1)
            .map(|(n, name)| format!("{name} = ?{n}"))
            .collect();
        Writes {
            insert: format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            ),
            update: format!(
                "UPDATE {table} SET {} WHERE id = ?1 AND version = ?{}",
                sets.join(", "),
                names.len() + 1
            ),
        }
    }

    /// The same statements, the `UPDATE` applying only where `condition` also holds (an SQL
    /// condition over the stored row and the statement's parameters).
    pub(crate) fn with_condition(table: &str, columns: &str, condition: &str) -> Writes {
        let mut writes = Writes::new(table, columns);
        writes.update = format!("{} AND {condition}", writes.update);
        writes
    }

    /// Insert a row of `values`, in column order.
    pub(crate) fn insert(&self, conn: &Connection, values: Vec<Bound<'_>>) -> Result<()> {
        execute(conn, &self.insert, params_from_iter(values))?;
        Ok(())
    }

    /// Rewrite the row whose id is the first of `values`, if it is at version `expected`;
    /// false if it is not (or does not exist).
    pub(crate) fn update(
        &self,
        conn: &Connection,
        mut values: Vec<Bound<'_>>,
        expected: i64,
    ) -> Result<bool> {
        values.push(owned(expected));
        Ok(execute(conn, &self.update, params_from_iter(values))? == 1)
    }
}

/// `sql`, prepared once per connection and then taken from its statement cache.
///
/// In a statement with an `ORDER BY`, a bare parameter (`column = ?1`, `seq > ?1`,
/// `LIMIT ?2`) makes SQLite note that the plan may depend on its value; rusqlite clears a
/// statement's bindings when it goes back to the cache, which marks such a statement expired,
/// and SQLite prepares it again at its next use: every time. So the parameters of an ordered
/// statement are written `CAST(?1 AS TEXT)` (or `INTEGER`), which keeps the same index and plan
/// and is never prepared again; a test checks every statement the store runs.
pub(crate) fn statement<'conn>(
    conn: &'conn Connection,
    sql: &str,
) -> Result<CachedStatement<'conn>> {
    #[cfg(test)]
    tests::prepared(sql);
    Ok(conn.prepare_cached(sql)?)
}

/// Every row `sql` selects, each rebuilt by `decode`.
pub(crate) fn query<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = statement(conn, sql)?;
    let mut rows = stmt.query(params)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(decode(row)?);
    }
    Ok(found)
}

/// The first column of the first row, if there is a row.
pub(crate) fn scalar<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>> {
    let mut stmt = statement(conn, sql)?;
    Ok(stmt.query_row(params, |row| row.get(0)).optional()?)
}

/// Run a write statement and return how many rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    let mut stmt = statement(conn, sql)?;
    Ok(stmt.execute(params)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex, PoisonError};

    use commet_core::delivery::{
        Delivery, DeliveryStatus, EventFilter, NewEndpoint, UrlPolicy, WebhookEndpoint,
    };
    use commet_core::event::{EventKind, Mode};
    use commet_core::fixtures::utc;
    use commet_core::ids::{EventId, IdGenerator};
    use commet_core::subscription::SubscriptionStatus;
    use commet_core::webhook::WebhookSecret;
    use commet_engine::store::{
        ChangeSet, DeliveryCursor, DeliveryQuery, InvoiceQuery, PageRequest, Put, Store,
        SubscriptionQuery,
    };
    use commet_engine::testkit::scenarios;
    use rusqlite::StatementStatus;

    use crate::SqliteStore;

    /// Every SQL text [`super::statement`] was asked for, by any test of this crate.
    static PREPARED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

    pub(crate) fn prepared(sql: &str) {
        let mut seen = PREPARED.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.contains(sql) {
            seen.insert(sql.to_owned());
        }
    }

    /// The statements of `store`'s connection that SQLite prepared again after their first
    /// preparation, with how often.
    fn reprepared(store: &SqliteStore) -> Vec<(String, i32)> {
        let known = PREPARED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        store
            .db
            .with(|conn| {
                let mut found = Vec::new();
                for sql in known {
                    let count = conn
                        .prepare_cached(&sql)?
                        .get_status(StatementStatus::RePrepare);
                    if count > 0 {
                        found.push((sql, count));
                    }
                }
                Ok(found)
            })
            .unwrap()
    }

    /// Write an endpoint, deliveries and the cursor, rewrite them, and read them back with
    /// every filter, each read twice with different values.
    async fn webhook_rows(store: &SqliteStore) {
        let ids = IdGenerator::seeded(11);
        let now = utc(2026, 1, 1);
        let new = NewEndpoint {
            url: "https://hooks.example.com/commet".into(),
            events: EventFilter::All,
            description: None,
            enabled: true,
        };
        let policy = UrlPolicy {
            mode: Mode::Live,
            allow_http: false,
            allow_private_addresses: false,
        };
        let secret = WebhookSecret::from_bytes(&[7; 32]).unwrap();
        let endpoint = WebhookEndpoint::new(ids.next(now), new, secret, 0, policy, now).unwrap();
        let events: [EventId; 2] = [ids.next(now), ids.next(now)];
        let deliveries: Vec<Delivery> = events
            .iter()
            .map(|event| {
                let kind = EventKind::CustomerCreated;
                Delivery::new(ids.next(now), endpoint.id(), *event, 1, kind, now)
            })
            .collect();
        let changes = ChangeSet {
            endpoints: vec![Put::of(endpoint.clone())],
            deliveries: deliveries.iter().cloned().map(Put::of).collect(),
            delivery_cursor: Some(Put::of(DeliveryCursor::default())),
            ..ChangeSet::default()
        };
        let rewrite = ChangeSet {
            endpoints: changes
                .endpoints
                .iter()
                .map(|p| Put::of(p.stored()))
                .collect(),
            deliveries: changes
                .deliveries
                .iter()
                .map(|p| Put::of(p.stored()))
                .collect(),
            delivery_cursor: changes
                .delivery_cursor
                .as_ref()
                .map(|p| Put::of(p.stored())),
            ..ChangeSet::default()
        };
        store.commit(changes).await.unwrap();
        store.commit(rewrite).await.unwrap();
        for (delivery, event) in deliveries.iter().zip(events) {
            let status = Some(DeliveryStatus::Pending);
            for query in [
                DeliveryQuery::default(),
                DeliveryQuery {
                    endpoint: Some(endpoint.id()),
                    status,
                    ..DeliveryQuery::default()
                },
                DeliveryQuery {
                    event: Some(event),
                    ..DeliveryQuery::default()
                },
            ] {
                store
                    .deliveries(query, PageRequest::first(1))
                    .await
                    .unwrap();
            }
            store.delivery(delivery.id()).await.unwrap();
            store
                .due_deliveries(delivery.created_at(), 1)
                .await
                .unwrap();
        }
        store.webhook_endpoints().await.unwrap();
        store.delivery_cursor().await.unwrap();
        store.last_event_seq().await.unwrap();
    }

    /// Each engine scenario, then the ordered lists with every filter, then the webhook rows
    /// written, rewritten and read, on a store of its own: no statement is ever prepared twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The scenarios' futures are large (whole stories); awaited once each, in a test.
    #[allow(clippy::large_futures)]
    async fn no_statement_is_prepared_again() {
        for run in 0..7 {
            let store = Arc::new(SqliteStore::in_memory().await.unwrap());
            let shared: Arc<dyn Store> = store.clone();
            match run {
                0 => drop(scenarios::jan_31_anchor_renews_on_feb_29_mar_31_apr_30(shared).await),
                1 => drop(scenarios::upgrade_mid_period_prorates_to_the_cent(shared).await),
                2 => drop(
                    scenarios::trial_reminder_then_declined_first_charge_recovers_on_second_retry(
                        shared,
                    )
                    .await,
                ),
                3 => drop(
                    scenarios::dunning_exhausted_on_day_7_marks_the_invoice_uncollectible(shared)
                        .await,
                ),
                4 => drop(scenarios::cancel_at_period_end_then_uncancel(shared).await),
                5 => drop(scenarios::reactivate_after_cancel(shared).await),
                _ => drop(scenarios::admin_override_activates_a_pending_subscription(shared).await),
            }
            // The ordered reads, each filter at least twice with different values.
            let customers = store.customers(PageRequest::first(100)).await.unwrap();
            for customer in customers.items.iter().chain(customers.items.iter().rev()) {
                let query = SubscriptionQuery {
                    customer: Some(customer.id()),
                    status: Some(SubscriptionStatus::Active),
                };
                store
                    .subscriptions(query, PageRequest::first(2))
                    .await
                    .unwrap();
                let invoices = store
                    .invoices(
                        InvoiceQuery {
                            customer: Some(customer.id()),
                            ..InvoiceQuery::default()
                        },
                        PageRequest::first(100),
                    )
                    .await
                    .unwrap();
                for invoice in &invoices.items {
                    store.payment_attempts(invoice.id()).await.unwrap();
                    let query = InvoiceQuery {
                        subscription: invoice.subscription(),
                        status: Some(invoice.status()),
                        ..InvoiceQuery::default()
                    };
                    store.invoices(query, PageRequest::first(1)).await.unwrap();
                }
                store.customers_by_email(customer.email()).await.unwrap();
            }
            store.plans().await.unwrap();
            store.prices().await.unwrap();
            webhook_rows(&store).await;
            assert_eq!(reprepared(&store), Vec::new(), "scenario {run}");
        }
    }
}
