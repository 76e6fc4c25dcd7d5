//! `number_series`: one row per prefix, holding the next value to hand out.

use commet_core::invoice::NumberSeries;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, params};

use super::{execute, statement};
use crate::codec::{Columns, integer};
use crate::error::Result;

/// The series stored under `prefix`.
pub(crate) fn load(conn: &Connection, prefix: &str) -> Result<Option<NumberSeries>> {
    let mut stmt = statement(
        conn,
        "SELECT prefix, padding, next_value FROM number_series WHERE prefix = ?1",
    )?;
    let mut rows = stmt.query([prefix])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let columns = Columns::new(row, EntityKind::NumberSeries);
    let series = NumberSeries::resume(columns.text(0)?, columns.u32(1)?, columns.u64(2)?)
        .map_err(|e| columns.corrupt(e))?;
    Ok(Some(series))
}

/// Store a series after allocation.
pub(crate) fn save(conn: &Connection, series: &NumberSeries) -> Result<()> {
    execute(
        conn,
        "INSERT INTO number_series (prefix, padding, next_value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (prefix) DO UPDATE SET padding = excluded.padding, \
         next_value = excluded.next_value",
        params![
            series.prefix(),
            series.padding(),
            integer("number_series.next", series.next_value())?,
        ],
    )?;
    Ok(())
}
