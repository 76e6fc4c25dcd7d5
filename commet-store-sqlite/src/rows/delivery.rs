//! `deliveries` and `delivery_cursor` (schema version 3).
//!
//! A delivery is one row: the queried fields as columns (endpoint, event, status, the
//! due-delivery deadline `next_attempt_at`), its attempt log as JSON text, oldest first. One
//! delivery per (endpoint, event) is the schema's unique key. The cursor is the one row of
//! `delivery_cursor` (id 1), versioned like any row.

use std::sync::LazyLock;

use commet_core::delivery::{Delivery, DeliveryRecord};
use commet_engine::store::{DeliveryCursor, EntityKind};
use rusqlite::{Connection, Row};

use super::{Writes, query};
use crate::codec::{self, Bound, Columns, borrowed, integer, micros, opt_micros, owned};
use crate::error::Result;

/// The columns every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "id, endpoint, event, event_seq, event_kind, status, \
                                  next_attempt_at, failure, round_start, round_trigger, \
                                  attempts, created_at, version";

static WRITES: LazyLock<Writes> = LazyLock::new(|| Writes::new("deliveries", COLUMNS));

/// The values of [`COLUMNS`] for a delivery stored at `version`.
fn values(delivery: &Delivery, version: i64) -> Result<Vec<Bound<'_>>> {
    Ok(vec![
        owned(delivery.id().to_string()),
        owned(delivery.endpoint().to_string()),
        owned(delivery.event().to_string()),
        owned(integer("delivery.event_seq", delivery.event_seq())?),
        borrowed(delivery.event_kind().as_str()),
        borrowed(delivery.status().as_str()),
        owned(opt_micros(delivery.next_attempt_at())),
        owned(delivery.failure().map(|f| codec::name(&f)).transpose()?),
        owned(i64::from(delivery.round_start())),
        owned(codec::name(&delivery.round_trigger())?),
        owned(codec::json(&delivery.attempts())?),
        owned(micros(delivery.created_at())),
        owned(version),
    ])
}

/// Insert a new delivery at `version`.
pub(crate) fn insert(conn: &Connection, delivery: &Delivery, version: i64) -> Result<()> {
    WRITES.insert(conn, values(delivery, version)?)
}

/// Rewrite a delivery stored at `expected`; false if it is not at that version.
pub(crate) fn update(
    conn: &Connection,
    delivery: &Delivery,
    expected: i64,
    version: i64,
) -> Result<bool> {
    WRITES.update(conn, values(delivery, version)?, expected)
}

/// Rebuild a delivery from a row of [`COLUMNS`]: every column must decode (ids, names,
/// instants, the attempt log's JSON) and the fields must agree ([`Delivery::from_record`]);
/// anything else is a corrupt row.
pub(crate) fn decode(row: &Row<'_>) -> Result<Delivery> {
    let columns = Columns::new(row, EntityKind::Delivery);
    let record = DeliveryRecord {
        id: columns.parse(0)?,
        endpoint: columns.parse(1)?,
        event: columns.parse(2)?,
        event_seq: columns.u64(3)?,
        event_kind: columns.parse(4)?,
        status: columns.name(5)?,
        next_attempt_at: columns.opt_time(6)?,
        failure: columns.opt_name(7)?,
        round_start: columns.u32(8)?,
        round_trigger: columns.name(9)?,
        attempts: columns.json(10)?,
        created_at: columns.time(11)?,
        version: columns.u64(12)?,
    };
    Delivery::from_record(record).map_err(|e| columns.corrupt(e))
}

/// The cursor's columns: its fixed id, how far it is, its version.
const CURSOR_COLUMNS: &str = "id, seq, version";

/// The cursor's one row.
const CURSOR_ID: i64 = 1;

static CURSOR_WRITES: LazyLock<Writes> =
    LazyLock::new(|| Writes::new("delivery_cursor", CURSOR_COLUMNS));

fn cursor_values(cursor: &DeliveryCursor, version: i64) -> Result<Vec<Bound<'static>>> {
    Ok(vec![
        owned(CURSOR_ID),
        owned(integer("delivery_cursor.seq", cursor.seq)?),
        owned(version),
    ])
}

/// Store the cursor for the first time, at `version` (its primary key refuses a second row).
pub(crate) fn insert_cursor(
    conn: &Connection,
    cursor: &DeliveryCursor,
    version: i64,
) -> Result<()> {
    CURSOR_WRITES.insert(conn, cursor_values(cursor, version)?)
}

/// Move the cursor stored at `expected`; false if it is not at that version.
pub(crate) fn update_cursor(
    conn: &Connection,
    cursor: &DeliveryCursor,
    expected: i64,
    version: i64,
) -> Result<bool> {
    CURSOR_WRITES.update(conn, cursor_values(cursor, version)?, expected)
}

/// The stored cursor, if it was ever written. A bad row is `Corrupt` under the cursor's key,
/// `delivery_cursor`, as conflicts name it.
pub(crate) fn cursor(conn: &Connection) -> Result<Option<DeliveryCursor>> {
    let sql = "SELECT 'delivery_cursor', seq, version FROM delivery_cursor WHERE id = 1";
    let found = query(conn, sql, [], |row| {
        let columns = Columns::new(row, EntityKind::DeliveryCursor);
        Ok(DeliveryCursor {
            seq: columns.u64(1)?,
            version: columns.u64(2)?,
        })
    })?;
    Ok(found.into_iter().next())
}
