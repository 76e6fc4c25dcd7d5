-- Schema version 4:
-- - a customer's billing details (legal name, address, tax id) as JSON, NULL when none;
-- - an invoice's parties (the seller's and the buyer's legal details, and the footer), copied
--   when it left `draft` and fixed from then on, as JSON; NULL on drafts and on invoices
--   written by earlier versions.
ALTER TABLE customers ADD COLUMN billing TEXT;
ALTER TABLE invoices ADD COLUMN parties TEXT;
