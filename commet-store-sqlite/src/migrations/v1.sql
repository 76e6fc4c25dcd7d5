-- Schema version 1: one table per entity.
CREATE TABLE customers (
    id             TEXT PRIMARY KEY,
    external_id    TEXT UNIQUE,
    email          TEXT NOT NULL COLLATE NOCASE,
    full_name      TEXT,
    payment_method TEXT,
    credit         TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL
);
CREATE INDEX customers_email ON customers (email);

CREATE TABLE plans (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT
);

CREATE TABLE prices (
    id                 TEXT PRIMARY KEY,
    plan               TEXT NOT NULL REFERENCES plans (id),
    currency           TEXT NOT NULL,
    unit_amount        TEXT NOT NULL,
    interval_frequency TEXT NOT NULL,
    interval_count     INTEGER NOT NULL,
    trial_days         INTEGER NOT NULL,
    model              TEXT NOT NULL
);
CREATE INDEX prices_plan ON prices (plan, id);

CREATE TABLE subscriptions (
    id                 TEXT PRIMARY KEY,
    customer           TEXT NOT NULL REFERENCES customers (id),
    status             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    interval_frequency TEXT NOT NULL,
    interval_count     INTEGER NOT NULL,
    items              TEXT NOT NULL,
    state              TEXT NOT NULL,
    next_due_at        INTEGER,
    metadata           TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer, id);
CREATE INDEX subscriptions_status ON subscriptions (status, id);
CREATE INDEX subscriptions_due ON subscriptions (next_due_at, id) WHERE next_due_at IS NOT NULL;

CREATE TABLE invoices (
    id                      TEXT PRIMARY KEY,
    number                  TEXT,
    customer                TEXT NOT NULL REFERENCES customers (id),
    subscription            TEXT,
    currency                TEXT NOT NULL,
    status                  TEXT NOT NULL,
    kind                    TEXT NOT NULL,
    period_start            INTEGER,
    period_end              INTEGER,
    subtotal                TEXT NOT NULL,
    discount                TEXT NOT NULL,
    tax                     TEXT NOT NULL,
    total                   TEXT NOT NULL,
    credit_applied          TEXT NOT NULL,
    amount_due              TEXT NOT NULL,
    amount_paid             TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    issued_at               INTEGER,
    due_at                  INTEGER,
    paid_at                 INTEGER,
    voided_at               INTEGER,
    marked_uncollectible_at INTEGER,
    memo                    TEXT,
    metadata                TEXT NOT NULL,
    version                 INTEGER NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer, id);
CREATE INDEX invoices_subscription ON invoices (subscription, id) WHERE subscription IS NOT NULL;
CREATE INDEX invoices_status ON invoices (status, id);
CREATE UNIQUE INDEX invoices_recurring_period ON invoices (subscription, period_start)
    WHERE kind = 'recurring';

CREATE TABLE invoice_lines (
    invoice      TEXT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    description  TEXT NOT NULL,
    quantity     TEXT NOT NULL,
    unit_amount  TEXT NOT NULL,
    amount       TEXT NOT NULL,
    period_start INTEGER,
    period_end   INTEGER,
    price        TEXT,
    PRIMARY KEY (invoice, position)
) WITHOUT ROWID;

CREATE TABLE payment_attempts (
    id              TEXT PRIMARY KEY,
    invoice         TEXT NOT NULL REFERENCES invoices (id),
    customer        TEXT NOT NULL,
    subscription    TEXT,
    purpose         TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    currency        TEXT NOT NULL,
    amount          TEXT NOT NULL,
    payment_method  TEXT,
    status          TEXT NOT NULL,
    payment_id      TEXT,
    failure_code    TEXT,
    failure_message TEXT,
    created_at      INTEGER NOT NULL,
    completed_at    INTEGER,
    version         INTEGER NOT NULL
);
CREATE INDEX payment_attempts_invoice ON payment_attempts (invoice, attempt, id);
CREATE INDEX payment_attempts_pending ON payment_attempts (created_at, id)
    WHERE status = 'pending';

CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    envelope  TEXT NOT NULL
);

CREATE TABLE idempotency_records (
    idempotency_key TEXT PRIMARY KEY,
    fingerprint     TEXT NOT NULL,
    response        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

CREATE TABLE number_series (
    prefix     TEXT PRIMARY KEY,
    padding    INTEGER NOT NULL,
    next_value INTEGER NOT NULL
);
