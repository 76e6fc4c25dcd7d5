//! `idempotency_records`: one row per key; an expired key is reused by replacing its row.

use chrono::{DateTime, Utc};
use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, params};

use super::{execute, scalar, statement};
use crate::codec::{Columns, micros};
use crate::error::Result;

/// When the record stored under `key` expires, if there is one.
pub(crate) fn expires_at(conn: &Connection, key: &str) -> Result<Option<i64>> {
    scalar(
        conn,
        "SELECT expires_at FROM idempotency_records WHERE idempotency_key = ?1",
        [key],
    )
}

/// Store a record, replacing an (expired) one under the same key.
pub(crate) fn upsert(conn: &Connection, record: &IdempotencyRecord) -> Result<()> {
    execute(
        conn,
        "INSERT INTO idempotency_records (idempotency_key, fingerprint, response, created_at, \
         expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (idempotency_key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         response = excluded.response, created_at = excluded.created_at, \
         expires_at = excluded.expires_at",
        params![
            record.key,
            record.fingerprint,
            record.response,
            micros(record.created_at),
            micros(record.expires_at),
        ],
    )?;
    Ok(())
}

/// The record for `key` if it is live at `now`.
pub(crate) fn live(
    conn: &Connection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotencyRecord>> {
    let mut stmt = statement(
        conn,
        "SELECT idempotency_key, fingerprint, response, created_at, expires_at \
         FROM idempotency_records WHERE idempotency_key = ?1 AND expires_at > ?2",
    )?;
    let mut rows = stmt.query(params![key, micros(now)])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let columns = Columns::new(row, EntityKind::IdempotencyRecord, 0);
    let record = IdempotencyRecord {
        key: columns.get(0)?,
        fingerprint: columns.get(1)?,
        response: columns.get(2)?,
        created_at: columns.time(3)?,
        expires_at: columns.time(4)?,
    };
    record.validate().map_err(|e| columns.corrupt(e))?;
    Ok(Some(record))
}
