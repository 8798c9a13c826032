-- apikey schema version 1 for MySQL and MariaDB. {{prefix}} is the table
-- prefix (default "apikey_"). Applied by (*sqlstore.Store).Migrate under
-- a named lock (GET_LOCK), one statement at a time: MySQL commits each DDL
-- statement at once. A statement ends with a line that ends with ";" and
-- is not indented (a trigger's inner statements are indented).

-- One row per key. No secret is stored: digest is a keyed digest of it.
-- Times are DATETIME(6) in UTC; NULL is the zero time ("not set").
-- scopes, allowed_ips and metadata are JSON text; NULL is a nil slice or
-- map and '[]' / '{}' an empty one. Durations are nanoseconds. IDs,
-- owners and the other identifiers are VARBINARY: they compare and sort
-- bytewise, as List's cursor requires, and without the trailing-space
-- padding of MySQL's text collations.
CREATE TABLE IF NOT EXISTS {{prefix}}keys (
	id                   VARBINARY(255) NOT NULL PRIMARY KEY,
	prefix               VARBINARY(255) NOT NULL,
	owner                VARBINARY(255) NOT NULL,
	name                 TEXT           NOT NULL,
	scopes               MEDIUMTEXT,
	digest               VARBINARY(255) NOT NULL,
	digest_version       VARBINARY(255) NOT NULL,
	created_at           DATETIME(6),
	expires_at           DATETIME(6),
	not_before           DATETIME(6),
	revoked_at           DATETIME(6),
	last_used_at         DATETIME(6),
	rate_limit_rate      BIGINT NOT NULL DEFAULT 0,
	rate_limit_period_ns BIGINT NOT NULL DEFAULT 0,
	rate_limit_burst     BIGINT NOT NULL DEFAULT 0,
	quota_limit          BIGINT NOT NULL DEFAULT 0,
	quota_period_ns      BIGINT NOT NULL DEFAULT 0,
	allowed_ips          MEDIUMTEXT,
	metadata             MEDIUMTEXT,
	rotated_from         VARBINARY(255) NOT NULL DEFAULT '',
	replaced_by          VARBINARY(255) NOT NULL DEFAULT '',
	revision             BIGINT NOT NULL,
	-- A zero date ('0000-00-00', which a non-strict sql_mode lets through)
	-- would read as "not set": a key revoked that way would verify.
	CONSTRAINT {{prefix}}keys_dates CHECK ((expires_at IS NULL OR expires_at >= '1000-01-01')
		AND (not_before IS NULL OR not_before >= '1000-01-01')
		AND (revoked_at IS NULL OR revoked_at >= '1000-01-01')),
	-- List by owner pages through this index: WHERE owner = ? AND id > ?.
	INDEX {{prefix}}keys_owner (owner, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Change log for Watch: every client of the database (a server, the apikey
-- command line, an operator's plain SQL) appends here through the
-- triggers below, and Watch polls it. It keeps the last 1000 changes; a
-- watcher that falls further behind drops its whole cache.
--
-- seq comes from the one row of changes_seq, not AUTO_INCREMENT: the
-- row's lock, held until the writer commits, makes changes commit in the
-- order of their seq, so a poller that has read seq N can never later
-- see a smaller one appear (with AUTO_INCREMENT, a transaction that took
-- N-1 could commit after the one that took N, and its change be missed).
CREATE TABLE IF NOT EXISTS {{prefix}}changes (
	seq BIGINT         NOT NULL PRIMARY KEY,
	id  VARBINARY(255) NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}changes_seq (
	one TINYINT NOT NULL PRIMARY KEY,
	seq BIGINT  NOT NULL
) ENGINE=InnoDB;

INSERT INTO {{prefix}}changes_seq (one, seq) VALUES (1, 0) ON DUPLICATE KEY UPDATE one = one;

DROP TRIGGER IF EXISTS {{prefix}}keys_changed_insert;

CREATE TRIGGER {{prefix}}keys_changed_insert AFTER INSERT ON {{prefix}}keys FOR EACH ROW
BEGIN
	UPDATE {{prefix}}changes_seq SET seq = seq + 1 WHERE one = 1;
	INSERT INTO {{prefix}}changes (seq, id) SELECT seq, NEW.id FROM {{prefix}}changes_seq WHERE one = 1;
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT seq - 1000 FROM {{prefix}}changes_seq WHERE one = 1);
END;

-- Every column but last_used_at: RecordLastUsed must not make every
-- Manager drop its cache entries every few seconds. Text is compared as
-- bytes, so that a change of trailing spaces counts too.
DROP TRIGGER IF EXISTS {{prefix}}keys_changed_update;

CREATE TRIGGER {{prefix}}keys_changed_update AFTER UPDATE ON {{prefix}}keys FOR EACH ROW
BEGIN
	IF NOT (OLD.id <=> NEW.id AND OLD.prefix <=> NEW.prefix AND OLD.owner <=> NEW.owner
		AND CAST(OLD.name AS BINARY) <=> CAST(NEW.name AS BINARY)
		AND CAST(OLD.scopes AS BINARY) <=> CAST(NEW.scopes AS BINARY)
		AND OLD.digest <=> NEW.digest AND OLD.digest_version <=> NEW.digest_version
		AND OLD.created_at <=> NEW.created_at AND OLD.expires_at <=> NEW.expires_at
		AND OLD.not_before <=> NEW.not_before AND OLD.revoked_at <=> NEW.revoked_at
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

DROP TRIGGER IF EXISTS {{prefix}}keys_changed_delete;

CREATE TRIGGER {{prefix}}keys_changed_delete AFTER DELETE ON {{prefix}}keys FOR EACH ROW
BEGIN
	UPDATE {{prefix}}changes_seq SET seq = seq + 1 WHERE one = 1;
	INSERT INTO {{prefix}}changes (seq, id) SELECT seq, OLD.id FROM {{prefix}}changes_seq WHERE one = 1;
	DELETE FROM {{prefix}}changes WHERE seq <= (SELECT seq - 1000 FROM {{prefix}}changes_seq WHERE one = 1);
END;

-- Quota usage per counter key and fixed window (Unix nanoseconds, aligned
-- to the period). Rows whose window has ended are deleted now and then.
CREATE TABLE IF NOT EXISTS {{prefix}}quota_usage (
	counter_key  VARBINARY(255) NOT NULL,
	window_start BIGINT NOT NULL,
	window_end   BIGINT NOT NULL,
	used         BIGINT NOT NULL,
	PRIMARY KEY (counter_key, window_start),
	INDEX {{prefix}}quota_usage_end (window_end)
) ENGINE=InnoDB;
