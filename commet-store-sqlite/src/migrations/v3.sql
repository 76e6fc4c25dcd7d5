-- Schema version 3: webhook endpoints, their deliveries, and the delivery cursor.
-- - an endpoint's event filter is JSON; its secrets are their `whsec_` text (the retired one
--   with the instant it stops signing, both NULL when there is none).
-- - a delivery's attempt log is JSON (oldest first); one delivery per (endpoint, event). The
--   event is the outbox event's id, not a foreign key: the commit rules do not require the
--   event to be stored, and the outbox is append-only anyway.
-- - pending deliveries are indexed by when they are due (the delivery work index).
-- - the delivery cursor is one row (id 1), written at its version like any row.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    description     TEXT,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT,
    secret          TEXT NOT NULL,
    retired_secret  TEXT,
    retired_until   INTEGER,
    after_seq       INTEGER NOT NULL,
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    version         INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    endpoint        TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event           TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,
    event_kind      TEXT NOT NULL,
    status          TEXT NOT NULL,
    next_attempt_at INTEGER,
    failure         TEXT,
    round_start     INTEGER NOT NULL,
    round_trigger   TEXT NOT NULL,
    attempts        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    UNIQUE (endpoint, event)
);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint, id);
CREATE INDEX deliveries_event ON deliveries (event, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE delivery_cursor (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    version INTEGER NOT NULL
);
