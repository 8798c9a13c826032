-- apikey schema version 8 for SQLite: a key's event claims go with the
-- key. The Store never deletes a key, but an operator may delete rows by
-- hand; the claims of each deleted key are then deleted in the same
-- statement. (The claims that can no longer matter are deleted by the
-- sweeps through Store.PruneEvents, which needs no schema of its own.)
CREATE TRIGGER IF NOT EXISTS {{prefix}}keys_delete_claims AFTER DELETE ON {{prefix}}keys
BEGIN
	DELETE FROM {{prefix}}event_claims WHERE key_id = OLD.id;
END;
