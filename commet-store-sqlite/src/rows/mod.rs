//! One module per table: how an aggregate becomes a row, and how a row is rebuilt through the
//! aggregate's validating constructor (a row that fails validation is `Corrupt`).
//!
//! Every statement goes through `prepare_cached`, so a hot path parses its SQL once per
//! connection.

pub(crate) mod attempt;
pub(crate) mod catalog;
pub(crate) mod customer;
pub(crate) mod event;
pub(crate) mod idempotency;
pub(crate) mod invoice;
pub(crate) mod series;
pub(crate) mod subscription;

use rusqlite::{Connection, OptionalExtension, Params};

use crate::error::Result;

/// The first column of the first row, if there is a row.
pub(crate) fn scalar<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.query_row(params, |row| row.get(0)).optional()?)
}

/// Run a write statement and return how many rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.execute(params)?)
}
