-- apikey schema version 7 for PostgreSQL: credits (issue 14). A key's own
-- credit policy (Key.Credits: grant, refill period in nanoseconds with -1
-- for calendar months and -2 for never, day of the month) and the day its
-- monthly quota's months start on (Quota.Day), 0 when not set; and the
-- balances of the Store's Ledger, one row per ledger key:
-- window_start (Unix nanoseconds) is the start of the refill period the
-- row counts in, used the units spent in it, extra the top-ups left at its
-- start and bought since. The balance is grant + extra - used. The
-- notification triggers compare whole rows, so they cover the new columns
-- as they are.
ALTER TABLE {{prefix}}keys
	ADD COLUMN quota_day bigint NOT NULL DEFAULT 0,
	ADD COLUMN credits_grant bigint NOT NULL DEFAULT 0,
	ADD COLUMN credits_period_ns bigint NOT NULL DEFAULT 0,
	ADD COLUMN credits_day bigint NOT NULL DEFAULT 0;

CREATE TABLE {{prefix}}credits (
	ledger_key   text COLLATE "C" NOT NULL PRIMARY KEY,
	window_start bigint NOT NULL,
	used         bigint NOT NULL,
	extra        bigint NOT NULL
);
