-- apikey schema version 1 for PostgreSQL. {{prefix}} is the table prefix
-- (default "apikey_"). Applied by (*sqlstore.Store).Migrate inside one
-- transaction that holds a pg_advisory_xact_lock, so several processes
-- may migrate at once.

-- One row per key. No secret is stored: digest is a keyed digest of it.
-- NULL times are the zero time ("not set"). scopes, allowed_ips and
-- metadata are JSON in text columns, not jsonb: metadata may hold NUL
-- bytes, which JSON escapes as \u0000 and jsonb rejects. NULL is a nil
-- slice or map, '[]' / '{}' an empty one. Durations are nanoseconds.
-- IDs sort bytewise (COLLATE "C"), as List's cursor requires whatever the
-- database's locale.
CREATE TABLE {{prefix}}keys (
	id                   text COLLATE "C" NOT NULL PRIMARY KEY,
	prefix               text   NOT NULL,
	owner                text COLLATE "C" NOT NULL,
	name                 text   NOT NULL,
	scopes               text,
	digest               bytea  NOT NULL,
	digest_version       text   NOT NULL,
	created_at           timestamptz,
	expires_at           timestamptz,
	not_before           timestamptz,
	revoked_at           timestamptz,
	last_used_at         timestamptz,
	rate_limit_rate      bigint NOT NULL DEFAULT 0,
	rate_limit_period_ns bigint NOT NULL DEFAULT 0,
	rate_limit_burst     bigint NOT NULL DEFAULT 0,
	quota_limit          bigint NOT NULL DEFAULT 0,
	quota_period_ns      bigint NOT NULL DEFAULT 0,
	allowed_ips          text,
	metadata             text,
	rotated_from         text   NOT NULL DEFAULT '',
	replaced_by          text   NOT NULL DEFAULT '',
	revision             bigint NOT NULL
);

-- List by owner pages through this index: WHERE owner = $1 AND id > $2.
CREATE INDEX {{prefix}}keys_owner ON {{prefix}}keys (owner, id);

-- Every change to a key, by any client (a Manager, the apikey command
-- line, an operator's plain SQL), is announced on channel
-- {{prefix}}changes with the key's ID as payload; Watch listens there.
CREATE FUNCTION {{prefix}}notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM pg_notify('{{prefix}}changes', OLD.id);
	END IF;
	IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id) THEN
		PERFORM pg_notify('{{prefix}}changes', NEW.id);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER {{prefix}}keys_notify_insert_delete
	AFTER INSERT OR DELETE ON {{prefix}}keys
	FOR EACH ROW EXECUTE FUNCTION {{prefix}}notify_change();

-- An update that changes nothing but last_used_at (RecordLastUsed) is not
-- announced: it would make every Manager drop its cache entries every few
-- seconds. Comparing whole rows keeps this right when columns are added.
CREATE TRIGGER {{prefix}}keys_notify_update
	AFTER UPDATE ON {{prefix}}keys
	FOR EACH ROW
	WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
	EXECUTE FUNCTION {{prefix}}notify_change();

-- Quota usage per counter key and fixed window (Unix nanoseconds, aligned
-- to the period). Rows whose window has ended are deleted now and then.
CREATE TABLE {{prefix}}quota_usage (
	counter_key  text COLLATE "C" NOT NULL,
	window_start bigint NOT NULL,
	window_end   bigint NOT NULL,
	used         bigint NOT NULL,
	PRIMARY KEY (counter_key, window_start)
);
CREATE INDEX {{prefix}}quota_usage_end ON {{prefix}}quota_usage (window_end);
