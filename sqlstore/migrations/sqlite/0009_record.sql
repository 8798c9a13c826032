-- apikey schema version 9 for SQLite: each key's row also holds, in
-- record, all its columns as one JSON array, which Get and List read in
-- place of 29 columns: SQLite's driver spends more on each column of a
-- result (its name, its type, its conversion) than on finding the row.
-- (PostgreSQL's version 9 does the same with a trigger function.)
--
-- record_now computes the array (a virtual column, never stored); record
-- is its stored copy, which the triggers below refresh after every INSERT
-- and every UPDATE, by any client: a Manager, the apikey command line, an
-- operator's sqlite3 shell. (SQLite cannot add a stored generated column
-- to a table that exists, hence the pair.) The array holds the columns in
-- the order the Store reads them, the digest in hex, since JSON holds no
-- bytes, and null in last_used_at's place: the Store reads that one from
-- its column, so that RecordLastUsed, which writes it for thousands of
-- keys every few seconds, does not rewrite their records too (that took
-- its UPDATE of 10,000 keys from about 0.2 s to 0.35 s). Never write
-- record yourself; an UPDATE of any other column of a row rebuilds it. A
-- later version that adds a column replaces record_now and the update
-- trigger.
ALTER TABLE {{prefix}}keys ADD COLUMN record_now TEXT GENERATED ALWAYS AS (json_array(
	id, prefix, owner, name, scopes, hex(digest), digest_version,
	created_at, expires_at, not_before, revoked_at, suspended_at, NULL,
	rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit, quota_period_ns,
	allowed_ips, metadata, rotated_from, replaced_by, revoked_reason,
	quota_day, credits_grant, credits_period_ns, credits_day, lineage, revision)) VIRTUAL;
ALTER TABLE {{prefix}}keys ADD COLUMN record TEXT;

CREATE TRIGGER {{prefix}}keys_record_insert AFTER INSERT ON {{prefix}}keys
BEGIN
	UPDATE {{prefix}}keys SET record = record_now WHERE id = NEW.id;
END;

CREATE TRIGGER {{prefix}}keys_record_update AFTER UPDATE OF
	id, prefix, owner, name, scopes, digest, digest_version, created_at,
	expires_at, not_before, revoked_at, revoked_reason, suspended_at,
	rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit,
	quota_period_ns, quota_day, credits_grant, credits_period_ns, credits_day,
	allowed_ips, metadata, rotated_from, replaced_by, lineage, revision
ON {{prefix}}keys
BEGIN
	UPDATE {{prefix}}keys SET record = record_now WHERE id = NEW.id;
END;

UPDATE {{prefix}}keys SET record = record_now;
