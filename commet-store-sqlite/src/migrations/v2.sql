-- Schema version 2:
-- - idempotency records are versioned (a record is replaced at the version it was stored at).
--   Records written by version 1 were written once: they are at version 1.
-- - a subscription records the charge it has in flight (JSON, NULL when none): recorded by the
--   commit that records the charge, cleared by the one that settles it.
-- - an invoice keeps a digest of its lines, so a rewrite whose lines are unchanged (every
--   rewrite of a finalized invoice) is checked by the UPDATE itself, without reading the lines.
--   Invoices written by version 1 have none until their next rewrite.
ALTER TABLE idempotency_records ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE subscriptions ADD COLUMN charging TEXT;
ALTER TABLE invoices ADD COLUMN lines_digest BLOB;
