-- apikey schema version 5 for SQLite: why a key was revoked
-- (Manager.RevokeWithReason), '' when no reason was given; and the claims
-- that let many instances emit each hygiene event (a key expiring soon, a
-- key unused for long) once: the instance whose INSERT adds the row sends
-- the event, the others find it there. Times are Unix microseconds (UTC).
ALTER TABLE {{prefix}}keys ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';

CREATE TABLE {{prefix}}event_claims (
	key_id     TEXT    NOT NULL,
	event      TEXT    NOT NULL,
	claimed_at INTEGER NOT NULL,
	PRIMARY KEY (key_id, event)
);

-- The change log's update trigger names its columns: it must name the new
-- one too, so that an operator's plain UPDATE of it reaches every Manager.
DROP TRIGGER IF EXISTS {{prefix}}keys_changed_update;
CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE OF
	id, prefix, owner, name, scopes, digest, digest_version, created_at,
	expires_at, not_before, revoked_at, revoked_reason, suspended_at,
	rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit,
	quota_period_ns, allowed_ips, metadata, rotated_from, replaced_by, revision
ON {{prefix}}keys
BEGIN
	INSERT INTO {{prefix}}changes (id) SELECT OLD.id UNION SELECT NEW.id;
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT max(seq) FROM {{prefix}}changes) - 1000;
END;
