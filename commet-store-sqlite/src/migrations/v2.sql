-- Schema version 2:
-- - idempotency records are versioned (a record is replaced at the version it was stored at).
--   Records written by version 1 were written once: they are at version 1.
-- - a subscription records the charge it has in flight (JSON, NULL when none): recorded by the
--   commit that records the charge, cleared by the one that settles it.
ALTER TABLE idempotency_records ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE subscriptions ADD COLUMN charging TEXT;
