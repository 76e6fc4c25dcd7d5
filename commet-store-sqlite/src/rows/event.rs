//! `events`: the outbox. The sequence number is the primary key; the envelope is stored as
//! the exact JSON a webhook delivers, with its id, kind and timestamp also as columns.

use commet_core::event::Envelope;
use commet_engine::store::{EntityKind, StoredEvent};
use rusqlite::{Connection, params};

use super::{query, scalar, statement};
use crate::codec::{Columns, integer, micros};
use crate::error::{Error, Result};
use commet_engine::store::StoreError;

/// The highest sequence number used so far (0 for an empty outbox).
pub(crate) fn last_seq(conn: &Connection) -> Result<u64> {
    let last = scalar::<Option<i64>>(conn, "SELECT MAX(seq) FROM events", [])?
        .flatten()
        .unwrap_or(0);
    u64::try_from(last).map_err(|_| {
        StoreError::corrupt(EntityKind::Event, last, "a negative sequence number").into()
    })
}

/// Append an event at `seq`.
pub(crate) fn insert(conn: &Connection, seq: u64, envelope: &Envelope) -> Result<()> {
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
        integer("event.seq", seq)?,
        envelope.id.to_string(),
        envelope.event.kind().as_str(),
        micros(envelope.timestamp),
        json,
    ])?;
    Ok(())
}

/// The events after `seq`, in order, at most `limit`.
pub(crate) fn after(conn: &Connection, seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
    query(
        conn,
        "SELECT seq, id, envelope FROM events WHERE seq > CAST(?1 AS INTEGER) ORDER BY seq \
         LIMIT CAST(?2 AS INTEGER)",
        params![seq, limit],
        |row| {
            let columns = Columns::new(row, EntityKind::Event);
            let envelope = Envelope::from_json(columns.text(2)?).map_err(|e| columns.corrupt(e))?;
            let id = columns.text(1)?;
            if id != envelope.id.to_string() {
                return Err(columns.corrupt(format_args!(
                    "column id is {id}, the envelope's is {}",
                    envelope.id
                )));
            }
            Ok(StoredEvent {
                seq: columns.u64(0)?,
                envelope,
            })
        },
    )
}
