-- apikey schema version 7 for SQLite: credits (issue 14). A key's own
-- credit policy (Key.Credits: grant, refill period in nanoseconds with -1
-- for calendar months and -2 for never, day of the month) and the day its
-- monthly quota's months start on (Quota.Day), 0 when not set; and the
-- balances of the Store's Ledger, one row per ledger key:
-- window_start (Unix nanoseconds) is the start of the refill period the
-- row counts in, used the units spent in it, extra the top-ups left at its
-- start and bought since. The balance is grant + extra - used.
ALTER TABLE {{prefix}}keys ADD COLUMN quota_day INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}keys ADD COLUMN credits_grant INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}keys ADD COLUMN credits_period_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{prefix}}keys ADD COLUMN credits_day INTEGER NOT NULL DEFAULT 0;

CREATE TABLE {{prefix}}credits (
	ledger_key   TEXT    NOT NULL PRIMARY KEY,
	window_start INTEGER NOT NULL,
	used         INTEGER NOT NULL,
	extra        INTEGER NOT NULL
);

-- The change log's update trigger names its columns: it must name the new
-- ones too, so that an operator's plain UPDATE of them reaches every Manager.
DROP TRIGGER IF EXISTS {{prefix}}keys_changed_update;
CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE OF
	id, prefix, owner, name, scopes, digest, digest_version, created_at,
	expires_at, not_before, revoked_at, revoked_reason, suspended_at,
	rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit,
	quota_period_ns, quota_day, credits_grant, credits_period_ns, credits_day,
	allowed_ips, metadata, rotated_from, replaced_by, revision
ON {{prefix}}keys
BEGIN
	INSERT INTO {{prefix}}changes (id) SELECT OLD.id UNION SELECT NEW.id;
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT max(seq) FROM {{prefix}}changes) - 1000;
END;
