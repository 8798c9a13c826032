-- apikey schema version 9 for PostgreSQL: each key's row also holds, in
-- record, all its columns as one JSON array, which Get and List read in
-- place of 29 columns, each of which costs the driver and database/sql a
-- conversion. A trigger sets it before every INSERT and every UPDATE of a
-- column it holds, by any client: a Manager, the apikey command line, an
-- operator's psql. The array holds the columns in the order the Store
-- reads them, the digest in hex, times in UTC without an offset (so that
-- the session's TimeZone cannot change them), and null in last_used_at's
-- place: the Store reads that one from its column, so that RecordLastUsed,
-- which writes it for thousands of keys every few seconds, does not
-- rewrite their records too. Never write record yourself; an UPDATE of
-- any other column of a row rebuilds it. A later version that adds a
-- column replaces the function and the trigger.
ALTER TABLE {{prefix}}keys ADD COLUMN record text;

CREATE FUNCTION {{prefix}}keys_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.record := json_build_array(
		NEW.id, NEW.prefix, NEW.owner, NEW.name, NEW.scopes, encode(NEW.digest, 'hex'), NEW.digest_version,
		NEW.created_at AT TIME ZONE 'UTC', NEW.expires_at AT TIME ZONE 'UTC', NEW.not_before AT TIME ZONE 'UTC',
		NEW.revoked_at AT TIME ZONE 'UTC', NEW.suspended_at AT TIME ZONE 'UTC', NULL,
		NEW.rate_limit_rate, NEW.rate_limit_period_ns, NEW.rate_limit_burst, NEW.quota_limit, NEW.quota_period_ns,
		NEW.allowed_ips, NEW.metadata, NEW.rotated_from, NEW.replaced_by, NEW.revoked_reason,
		NEW.quota_day, NEW.credits_grant, NEW.credits_period_ns, NEW.credits_day, NEW.lineage, NEW.revision)::text;
	RETURN NEW;
END
$$;

CREATE TRIGGER {{prefix}}keys_record
	BEFORE INSERT OR UPDATE OF
		id, prefix, owner, name, scopes, digest, digest_version, created_at,
		expires_at, not_before, revoked_at, revoked_reason, suspended_at,
		rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit,
		quota_period_ns, quota_day, credits_grant, credits_period_ns, credits_day,
		allowed_ips, metadata, rotated_from, replaced_by, lineage, revision
	ON {{prefix}}keys
	FOR EACH ROW EXECUTE FUNCTION {{prefix}}keys_record();

-- Fill the records of the keys already there: the trigger does it.
UPDATE {{prefix}}keys SET id = id;
