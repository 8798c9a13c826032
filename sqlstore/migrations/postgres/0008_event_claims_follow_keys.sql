-- apikey schema version 8 for PostgreSQL: a key's event claims go with
-- the key. The Store never deletes a key, but an operator may delete rows
-- by hand; the claims of each deleted key are then deleted in the same
-- statement. The claims table is named in the keys table's own schema,
-- whatever the search_path of the session that deletes. (The claims that
-- can no longer matter are deleted by the sweeps through
-- Store.PruneEvents, which needs no schema of its own.)
CREATE OR REPLACE FUNCTION {{prefix}}delete_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DELETE FROM %I.%I WHERE key_id = $1', TG_TABLE_SCHEMA, '{{prefix}}event_claims') USING OLD.id;
	RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS {{prefix}}keys_delete_claims ON {{prefix}}keys;
CREATE TRIGGER {{prefix}}keys_delete_claims
	AFTER DELETE ON {{prefix}}keys
	FOR EACH ROW EXECUTE FUNCTION {{prefix}}delete_claims();
