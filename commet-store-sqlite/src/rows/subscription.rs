//! `subscriptions`: the queried fields as columns (customer, status, the due-work deadline);
//! the items, the status-specific state and the charge in flight as JSON text.

use std::sync::LazyLock;

use commet_core::calendar::Interval;
use commet_core::subscription::{Subscription, SubscriptionRecord, SubscriptionStatus};
use commet_engine::store::EntityKind;
use rusqlite::{Connection, Row};

use super::Writes;
use crate::codec::{self, Bound, Columns, borrowed, micros, opt_micros, owned};
use crate::error::Result;

/// The columns every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "id, customer, status, currency, interval_frequency, \
                                  interval_count, items, state, next_due_at, metadata, \
                                  created_at, updated_at, charging, version";

static WRITES: LazyLock<Writes> = LazyLock::new(|| Writes::new("subscriptions", COLUMNS));

/// The values of [`COLUMNS`] for a subscription stored at `version`.
fn values(subscription: &Subscription, version: i64) -> Result<Vec<Bound<'_>>> {
    Ok(vec![
        owned(subscription.id().to_string()),
        owned(subscription.customer().to_string()),
        borrowed(subscription.status().as_str()),
        borrowed(subscription.currency().code()),
        borrowed(subscription.interval().frequency().as_str()),
        owned(i64::from(subscription.interval().count())),
        owned(codec::json(subscription.items())?),
        owned(codec::json(subscription.state())?),
        owned(opt_micros(subscription.next_due_at())),
        owned(codec::json(subscription.metadata())?),
        owned(micros(subscription.created_at())),
        owned(micros(subscription.updated_at())),
        owned(subscription.charging().map(codec::json).transpose()?),
        owned(version),
    ])
}

/// Insert a new subscription at `version`.
pub(crate) fn insert(conn: &Connection, subscription: &Subscription, version: i64) -> Result<()> {
    WRITES.insert(conn, values(subscription, version)?)
}

/// Rewrite a subscription stored at `expected`; false if it is not at that version.
pub(crate) fn update(
    conn: &Connection,
    subscription: &Subscription,
    expected: i64,
    version: i64,
) -> Result<bool> {
    WRITES.update(conn, values(subscription, version)?, expected)
}

/// Rebuild a subscription from a row of [`COLUMNS`], checking that the status and due-work
/// columns agree with the state they are derived from.
pub(crate) fn decode(row: &Row<'_>) -> Result<Subscription> {
    let columns = Columns::new(row, EntityKind::Subscription);
    let interval =
        Interval::new(columns.parse(4)?, columns.u32(5)?).map_err(|e| columns.corrupt(e))?;
    let record = SubscriptionRecord {
        id: columns.parse(0)?,
        customer: columns.parse(1)?,
        items: columns.json(6)?,
        interval,
        currency: columns.parse(3)?,
        state: columns.json(7)?,
        created_at: columns.time(10)?,
        updated_at: columns.time(11)?,
        metadata: columns.json(9)?,
        charging: columns.opt_json(12)?,
        version: columns.u64(13)?,
    };
    let subscription = Subscription::from_record(record).map_err(|e| columns.corrupt(e))?;
    let status: SubscriptionStatus = columns.parse(2)?;
    if status != subscription.status() {
        return Err(columns.corrupt(format_args!(
            "column status says {status}, the state is {}",
            subscription.status()
        )));
    }
    if columns.opt_time(8)? != subscription.next_due_at() {
        return Err(columns.corrupt("column next_due_at does not match the state"));
    }
    Ok(subscription)
}
