-- apikey schema version 5 for MySQL and MariaDB: why a key was revoked
-- (Manager.RevokeWithReason), '' when no reason was given; and the claims
-- that let many instances emit each hygiene event (a key expiring soon, a
-- key unused for long) once: the instance whose INSERT adds the row sends
-- the event, the others find it there. Times are DATETIME(6) in UTC. The
-- reason's default is an expression, as MySQL requires for a TEXT column.
ALTER TABLE {{prefix}}keys ADD COLUMN revoked_reason MEDIUMTEXT NOT NULL DEFAULT ('');

CREATE TABLE IF NOT EXISTS {{prefix}}event_claims (
	key_id     VARBINARY(255) NOT NULL,
	event      VARBINARY(255) NOT NULL,
	claimed_at DATETIME(6)    NOT NULL,
	PRIMARY KEY (key_id, event)
) ENGINE=InnoDB;

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
		AND CAST(OLD.revoked_reason AS BINARY) <=> CAST(NEW.revoked_reason AS BINARY)
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
