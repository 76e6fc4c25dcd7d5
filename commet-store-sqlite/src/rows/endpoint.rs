//! `webhook_endpoints` (schema version 3): one row per endpoint, deleted ones included; the
//! event filter as JSON text, the secrets as their `whsec_` text (the retired one next to the
//! instant it stops signing).

use std::sync::LazyLock;

use commet_core::delivery::{EndpointRecord, RetiredSecret, WebhookEndpoint};
use commet_core::webhook::WebhookSecret;
use commet_engine::store::EntityKind;
use rusqlite::{Connection, Row};

use super::Writes;
use crate::codec::{
    self, Bound, Columns, borrowed, integer, micros, opt_borrowed, opt_micros, owned,
};
use crate::error::Result;

/// The columns every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "id, url, events, description, enabled, disabled_reason, \
                                  secret, retired_secret, retired_until, after_seq, \
                                  failing_since, created_at, deleted_at, version";

static WRITES: LazyLock<Writes> = LazyLock::new(|| Writes::new("webhook_endpoints", COLUMNS));

/// The values of [`COLUMNS`] for an endpoint stored at `version`.
fn values(endpoint: &WebhookEndpoint, version: i64) -> Result<Vec<Bound<'_>>> {
    let retired = endpoint.retired_secret();
    Ok(vec![
        owned(endpoint.id().to_string()),
        borrowed(endpoint.url()),
        owned(codec::json(endpoint.events())?),
        opt_borrowed(endpoint.description()),
        owned(endpoint.enabled()),
        owned(
            endpoint
                .disabled_reason()
                .map(|r| codec::name(&r))
                .transpose()?,
        ),
        borrowed(endpoint.secret().expose()),
        opt_borrowed(retired.map(|retired| retired.secret.expose())),
        owned(retired.map(|retired| micros(retired.until))),
        owned(integer("endpoint.after_seq", endpoint.after_seq())?),
        owned(opt_micros(endpoint.failing_since())),
        owned(micros(endpoint.created_at())),
        owned(opt_micros(endpoint.deleted_at())),
        owned(version),
    ])
}

/// Insert a new endpoint at `version`.
pub(crate) fn insert(conn: &Connection, endpoint: &WebhookEndpoint, version: i64) -> Result<()> {
    WRITES.insert(conn, values(endpoint, version)?)
}

/// Rewrite an endpoint stored at `expected`; false if it is not at that version.
pub(crate) fn update(
    conn: &Connection,
    endpoint: &WebhookEndpoint,
    expected: i64,
    version: i64,
) -> Result<bool> {
    WRITES.update(conn, values(endpoint, version)?, expected)
}

/// Rebuild an endpoint from a row of [`COLUMNS`], through its validating constructor. A secret
/// that does not parse is corrupt (the message never repeats it).
pub(crate) fn decode(row: &Row<'_>) -> Result<WebhookEndpoint> {
    let columns = Columns::new(row, EntityKind::WebhookEndpoint);
    let enabled = match columns.get::<i64>(4)? {
        0 => false,
        1 => true,
        other => {
            return Err(columns.corrupt(format_args!("column enabled: {other} is not 0 or 1")));
        }
    };
    let retired_secret: Option<WebhookSecret> = columns.parse_opt(7)?;
    let retired = match (retired_secret, columns.opt_time(8)?) {
        (Some(secret), Some(until)) => Some(RetiredSecret { secret, until }),
        (None, None) => None,
        _ => {
            return Err(columns.corrupt(
                "columns retired_secret and retired_until are set together or not at all",
            ));
        }
    };
    let record = EndpointRecord {
        id: columns.parse(0)?,
        url: columns.get(1)?,
        events: columns.json(2)?,
        description: columns.get(3)?,
        enabled,
        disabled_reason: columns.opt_name(5)?,
        secret: columns.parse(6)?,
        retired,
        after_seq: columns.u64(9)?,
        failing_since: columns.opt_time(10)?,
        created_at: columns.time(11)?,
        deleted_at: columns.opt_time(12)?,
        version: columns.u64(13)?,
    };
    WebhookEndpoint::from_record(record).map_err(|e| columns.corrupt(e))
}
