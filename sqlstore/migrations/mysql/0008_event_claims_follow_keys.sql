-- apikey schema version 8 for MySQL and MariaDB: a key's event claims go
-- with the key. The Store never deletes a key, but an operator may delete
-- rows by hand; the claims of each deleted key are then deleted in the
-- same statement. A second AFTER DELETE trigger beside the change log's
-- (MySQL 5.7.2 and MariaDB 10.2.3 on). (The claims that can no longer
-- matter are deleted by the sweeps through Store.PruneEvents, which needs
-- no schema of its own.)
DROP TRIGGER IF EXISTS {{prefix}}keys_delete_claims;

CREATE TRIGGER {{prefix}}keys_delete_claims AFTER DELETE ON {{prefix}}keys FOR EACH ROW
BEGIN
	DELETE FROM {{prefix}}event_claims WHERE key_id = OLD.id;
END;
