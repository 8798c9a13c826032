-- apikey schema version 2 for SQLite: keys can be suspended
-- (Manager.Suspend). NULL is "not suspended".
ALTER TABLE {{prefix}}keys ADD COLUMN suspended_at INTEGER;

-- The change log's update trigger names its columns: it must name the new
-- one too, so that an operator's plain UPDATE of it reaches every Manager.
DROP TRIGGER {{prefix}}keys_changed_update;
CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE OF
	id, prefix, owner, name, scopes, digest, digest_version, created_at,
	expires_at, not_before, revoked_at, suspended_at, rate_limit_rate,
	rate_limit_period_ns, rate_limit_burst, quota_limit, quota_period_ns,
	allowed_ips, metadata, rotated_from, replaced_by, revision
ON {{prefix}}keys
BEGIN
	INSERT INTO {{prefix}}changes (id) SELECT OLD.id UNION SELECT NEW.id;
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT max(seq) FROM {{prefix}}changes) - 1000;
END;
