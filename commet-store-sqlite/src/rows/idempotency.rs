//! `idempotency_records`: one row per key, versioned (schema version 2; rows from version 1 are
//! at version 1). A new record replaces an expired one under its key.

use commet_engine::idempotency::IdempotencyRecord;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, params};

use super::{execute, query};
use crate::codec::{Columns, micros};
use crate::error::Result;

/// Store a new record at version 1, replacing one under its key that has expired when the new
/// one is made. False (nothing written) if the stored one is still live then.
pub(crate) fn insert(conn: &Connection, record: &IdempotencyRecord) -> Result<bool> {
    let changed = execute(
        conn,
        "INSERT INTO idempotency_records (idempotency_key, fingerprint, response, created_at, \
         expires_at, version) VALUES (?1, ?2, ?3, ?4, ?5, 1) \
         ON CONFLICT (idempotency_key) DO UPDATE SET fingerprint = excluded.fingerprint, \
         response = excluded.response, created_at = excluded.created_at, \
         expires_at = excluded.expires_at, version = 1 \
         WHERE idempotency_records.expires_at <= excluded.created_at",
        params![
            record.key,
            record.fingerprint,
            record.response,
            micros(record.created_at),
            micros(record.expires_at),
        ],
    )?;
    Ok(changed == 1)
}

/// Replace the record stored at `expected`; false if it is not at that version.
pub(crate) fn update(
    conn: &Connection,
    record: &IdempotencyRecord,
    expected: i64,
    version: i64,
) -> Result<bool> {
    let changed = execute(
        conn,
        "UPDATE idempotency_records SET fingerprint = ?2, response = ?3, created_at = ?4, \
         expires_at = ?5, version = ?6 WHERE idempotency_key = ?1 AND version = ?7",
        params![
            record.key,
            record.fingerprint,
            record.response,
            micros(record.created_at),
            micros(record.expires_at),
            version,
            expected,
        ],
    )?;
    Ok(changed == 1)
}

/// The record stored under `key`, live or expired.
pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<IdempotencyRecord>> {
    let found = query(
        conn,
        "SELECT idempotency_key, fingerprint, response, created_at, expires_at, version \
         FROM idempotency_records WHERE idempotency_key = ?1",
        [key],
        |row| {
            let columns = Columns::new(row, EntityKind::IdempotencyRecord);
            let record = IdempotencyRecord {
                key: columns.get(0)?,
                fingerprint: columns.get(1)?,
                response: columns.get(2)?,
                created_at: columns.time(3)?,
                expires_at: columns.time(4)?,
                version: columns.u64(5)?,
            };
            record.validate().map_err(|e| columns.corrupt(e))?;
            Ok(record)
        },
    )?;
    Ok(found.into_iter().next())
}
