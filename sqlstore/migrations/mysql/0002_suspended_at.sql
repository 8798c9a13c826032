-- apikey schema version 2 for MySQL and MariaDB: keys can be suspended
-- (Manager.Suspend). NULL is "not suspended".
-- A zero date would read as "not suspended" (see 0001).
ALTER TABLE {{prefix}}keys ADD COLUMN suspended_at DATETIME(6),
ADD CONSTRAINT {{prefix}}keys_suspended_date CHECK (suspended_at IS NULL OR suspended_at >= '1000-01-01');

-- The change log's update trigger names its columns: it must name the new
-- one too, so that an operator's plain UPDATE of it reaches every Manager.
DROP TRIGGER IF EXISTS {{prefix}}keys_changed_update;

CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE ON {{prefix}}keys FOR EACH ROW
BEGIN
	IF NOT (OLD.id <=> NEW.id AND OLD.prefix <=> NEW.prefix AND OLD.owner <=> NEW.owner
		AND CAST(OLD.name AS BINARY) <=> CAST(NEW.name AS BINARY)
		AND CAST(OLD.scopes AS BINARY) <=> CAST(NEW.scopes AS BINARY)
		AND OLD.digest <=> NEW.digest AND OLD.digest_version <=> NEW.digest_version
		AND OLD.created_at <=> NEW.created_at AND OLD.expires_at <=> NEW.expires_at
		AND OLD.not_before <=> NEW.not_before AND OLD.revoked_at <=> NEW.revoked_at
		AND OLD.suspended_at <=> NEW.suspended_at
		AND OLD.rate_limit_rate <=> NEW.rate_limit_rate AND OLD.rate_limit_period_ns <=> NEW.rate_limit_period_ns
		AND OLD.rate_limit_burst <=> NEW.rate_limit_burst AND OLD.quota_limit <=> NEW.quota_limit
		AND OLD.quota_period_ns <=> NEW.quota_period_ns
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
