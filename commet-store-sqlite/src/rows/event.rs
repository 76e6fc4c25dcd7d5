//! `events`: the outbox. The sequence number is the primary key; the envelope is stored as
//! the exact JSON a webhook delivers, with its id, kind and timestamp also as columns.

use commet_core::event::Envelope;
use commet_engine::store::{EntityKind, StoredEvent};
use rusqlite::{Connection, params};

use super::{scalar, statement};
use crate::codec::{Columns, micros};
use crate::error::{Error, Result};
use commet_engine::store::StoreError;

/// True if an event has this id.
pub(crate) fn exists(conn: &Connection, id: &str) -> Result<bool> {
    Ok(scalar::<i64>(conn, "SELECT 1 FROM events WHERE id = ?1", [id])?.is_some())
}

/// The highest sequence number used so far (0 for an empty outbox).
pub(crate) fn last_seq(conn: &Connection) -> Result<i64> {
    Ok(
        scalar::<Option<i64>>(conn, "SELECT MAX(seq) FROM events", [])?
            .flatten()
            .unwrap_or(0),
    )
}

/// Append an event at `seq`.
pub(crate) fn insert(conn: &Connection, seq: i64, envelope: &Envelope) -> Result<()> {
    let json = envelope.to_json().map_err(|e| {
        Error::from(StoreError::backend(format_args!(
            "cannot encode event {}: {e}",
            envelope.id
        )))
    })?;
    let mut stmt = statement(
        conn,
        "INSERT INTO events (seq, id, kind, timestamp, envelope) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    stmt.execute(params![
        seq,
        envelope.id.to_string(),
        envelope.event.kind().as_str(),
        micros(envelope.timestamp),
        json,
    ])?;
    Ok(())
}

/// The events after `seq`, in order, at most `limit`.
pub(crate) fn after(conn: &Connection, seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
    let mut stmt = statement(
        conn,
        "SELECT seq, id, envelope FROM events WHERE seq > CAST(?1 AS INTEGER) ORDER BY seq \
         LIMIT CAST(?2 AS INTEGER)",
    )?;
    let mut rows = stmt.query(params![seq, limit])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let columns = Columns::new(row, EntityKind::Event, 0);
        let envelope = Envelope::from_json(columns.text(2)?).map_err(|e| columns.corrupt(e))?;
        let id = columns.text(1)?;
        if id != envelope.id.to_string() {
            return Err(columns.corrupt(format_args!(
                "column id is {id}, the envelope's is {}",
                envelope.id
            )));
        }
        events.push(StoredEvent {
            seq: columns.u64(0)?,
            envelope,
        });
    }
    Ok(events)
}
