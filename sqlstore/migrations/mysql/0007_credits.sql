-- apikey schema version 7 for MySQL and MariaDB: credits (issue 14). A
-- key's own credit policy (Key.Credits: grant, refill period in
-- nanoseconds with -1 for calendar months and -2 for never, day of the
-- month) and the day its monthly quota's months start on (Quota.Day), 0
-- when not set; and the balances of the Store's Ledger, one row per ledger
-- key: window_start (Unix nanoseconds) is the start of the refill period
-- the row counts in, used the units spent in it, extra the top-ups left at
-- its start and bought since. The balance is grant + extra - used.
-- last_ok is the outcome of the row's last Spend or TopUp: MySQL has no
-- RETURNING for an upsert and assigns its columns left to right, so the
-- upsert decides into last_ok first, the other columns follow it, and the
-- Ledger reads the row back in the same transaction. Ledger keys are
-- 512 bytes at most: "owner-credits:" and an owner of up to 255.
ALTER TABLE {{prefix}}keys ADD COLUMN quota_day BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN credits_grant BIGINT NOT NULL DEFAULT 0, ADD COLUMN credits_period_ns BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN credits_day BIGINT NOT NULL DEFAULT 0
;

CREATE TABLE IF NOT EXISTS {{prefix}}credits (
	ledger_key   VARBINARY(512) NOT NULL PRIMARY KEY,
	window_start BIGINT  NOT NULL,
	used         BIGINT  NOT NULL,
	extra        BIGINT  NOT NULL,
	last_ok      TINYINT NOT NULL DEFAULT 0
) ENGINE=InnoDB;

-- The change log's update trigger names its columns: it must name the new
-- ones too, so that an operator's plain UPDATE of them reaches every Manager.
DROP TRIGGER IF EXISTS {{prefix}}keys_changed_update;

CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE ON {{prefix}}keys FOR EACH ROW
BEGIN
	IF NOT (OLD.id <=> NEW.id AND OLD.prefix <=> NEW.prefix AND OLD.owner <=> NEW.owner
		AND CAST(OLD.name AS BINARY) <=> CAST(NEW.name AS BINARY)
		AND CAST(OLD.scopes AS BINARY) <=> CAST(NEW.scopes AS BINARY)
		AND OLD.digest <=> NEW.digest AND OLD.digest_version <=> NEW.digest_version
		AND OLD.created_at <=> NEW.created_at AND OLD.expires_at <=> NEW.expires_at
		AND OLD.not_before <=> NEW.not_before AND OLD.revoked_at <=> NEW.revoked_at
		AND CAST(OLD.revoked_reason AS BINARY) <=> CAST(NEW.revoked_reason AS BINARY)
		AND OLD.suspended_at <=> NEW.suspended_at
		AND OLD.rate_limit_rate <=> NEW.rate_limit_rate AND OLD.rate_limit_period_ns <=> NEW.rate_limit_period_ns
		AND OLD.rate_limit_burst <=> NEW.rate_limit_burst AND OLD.quota_limit <=> NEW.quota_limit
		AND OLD.quota_period_ns <=> NEW.quota_period_ns AND OLD.quota_day <=> NEW.quota_day
		AND OLD.credits_grant <=> NEW.credits_grant AND OLD.credits_period_ns <=> NEW.credits_period_ns
		AND OLD.credits_day <=> NEW.credits_day
		AND CAST(OLD.allowed_ips AS BINARY) <=> CAST(NEW.allowed_ips AS BINARY)
		AND CAST(OLD.metadata AS BINARY) <=> CAST(NEW.metadata AS BINARY)
		AND OLD.rotated_from <=> NEW.rotated_from AND OLD.replaced_by <=> NEW.replaced_by
		AND OLD.revision <=> NEW.revision) THEN
		UPDATE {{prefix}}changes_seq SET seq = seq + 1 WHERE one = 1;
		INSERT INTO {{prefix}}changes (seq, id) SELECT seq, OLD.id FROM {{prefix}}changes_seq WHERE one = 1;
		IF NOT (OLD.id <=> NEW.id) THEN
			UPDATE {{prefix}}changes_seq SET seq = seq + 1 WHERE one = 1;
			INSERT INTO {{prefix}}changes (seq, id) SELECT seq, NEW.id FROM {{prefix}}changes_seq WHERE one = 1;
		END IF;
		DELETE FROM {{prefix}}changes WHERE seq <= (SELECT seq - 1000 FROM {{prefix}}changes_seq WHERE one = 1);
	END IF;
END;
