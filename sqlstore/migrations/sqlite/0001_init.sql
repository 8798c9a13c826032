-- apikey schema version 1 for SQLite. {{prefix}} is the table prefix
-- (default "apikey_"). Applied by (*sqlstore.Store).Migrate inside one
-- BEGIN IMMEDIATE transaction.

-- One row per key. No secret is stored: digest is a keyed digest of it.
-- Times are Unix microseconds (UTC); NULL is the zero time ("not set").
-- scopes, allowed_ips and metadata are JSON text; NULL is a nil slice or
-- map and '[]' / '{}' an empty one. Durations are nanoseconds.
CREATE TABLE {{prefix}}keys (
	id                   TEXT    NOT NULL PRIMARY KEY,
	prefix               TEXT    NOT NULL,
	owner                TEXT    NOT NULL,
	name                 TEXT    NOT NULL,
	scopes               TEXT,
	digest               BLOB    NOT NULL,
	digest_version       TEXT    NOT NULL,
	created_at           INTEGER,
	expires_at           INTEGER,
	not_before           INTEGER,
	revoked_at           INTEGER,
	last_used_at         INTEGER,
	rate_limit_rate      INTEGER NOT NULL DEFAULT 0,
	rate_limit_period_ns INTEGER NOT NULL DEFAULT 0,
	rate_limit_burst     INTEGER NOT NULL DEFAULT 0,
	quota_limit          INTEGER NOT NULL DEFAULT 0,
	quota_period_ns      INTEGER NOT NULL DEFAULT 0,
	allowed_ips          TEXT,
	metadata             TEXT,
	rotated_from         TEXT    NOT NULL DEFAULT '',
	replaced_by          TEXT    NOT NULL DEFAULT '',
	revision             INTEGER NOT NULL
);

-- List by owner pages through this index: WHERE owner = ? AND id > ?.
CREATE INDEX {{prefix}}keys_owner ON {{prefix}}keys (owner, id);

-- Change log for Watch: every process sharing the file (a server, the
-- apikey command line, an operator's sqlite3 shell) appends here through
-- the triggers below, and Watch polls it. It keeps the last 1000 changes;
-- a watcher that falls further behind drops its whole cache.
CREATE TABLE {{prefix}}changes (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id  TEXT NOT NULL
);

CREATE TRIGGER {{prefix}}keys_changed_insert AFTER INSERT ON {{prefix}}keys
BEGIN
	INSERT INTO {{prefix}}changes (id) VALUES (NEW.id);
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT max(seq) FROM {{prefix}}changes) - 1000;
END;

-- Every column but last_used_at: RecordLastUsed must not make every
-- Manager drop its cache entries every few seconds.
CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE OF
	id, prefix, owner, name, scopes, digest, digest_version, created_at,
	expires_at, not_before, revoked_at, rate_limit_rate, rate_limit_period_ns,
	rate_limit_burst, quota_limit, quota_period_ns, allowed_ips, metadata,
	rotated_from, replaced_by, revision
ON {{prefix}}keys
BEGIN
	INSERT INTO {{prefix}}changes (id) SELECT OLD.id UNION SELECT NEW.id;
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT max(seq) FROM {{prefix}}changes) - 1000;
END;

CREATE TRIGGER {{prefix}}keys_changed_delete AFTER DELETE ON {{prefix}}keys
BEGIN
	INSERT INTO {{prefix}}changes (id) VALUES (OLD.id);
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT max(seq) FROM {{prefix}}changes) - 1000;
END;

-- Quota usage per counter key and fixed window (Unix nanoseconds, aligned
-- to the period). Rows whose window has ended are deleted now and then.
CREATE TABLE {{prefix}}quota_usage (
	counter_key  TEXT    NOT NULL,
	window_start INTEGER NOT NULL,
	window_end   INTEGER NOT NULL,
	used         INTEGER NOT NULL,
	PRIMARY KEY (counter_key, window_start)
);
CREATE INDEX {{prefix}}quota_usage_end ON {{prefix}}quota_usage (window_end);
