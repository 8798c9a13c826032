-- apikey schema version 4 for MySQL and MariaDB: keys imported from
-- another system (Manager.ImportLegacy), one row per key. Each points at
-- the row of {{prefix}}keys that holds everything else about the key
-- (owner, scopes, expiry, limits, revocation); its digest_version is
-- 'legacy'. lookup is how a presented key finds its row: 'id:' and the ID
-- the key carries (salted hashes), or the kind, the pepper version and a
-- keyed digest of the old hash (unsalted ones). hash is the old bcrypt or
-- argon2id hash, or for unsalted ones only their kind: no hash that a key
-- can be tested against without the pepper is stored. Lookups and key IDs
-- are VARBINARY, compared bytewise; created_at is DATETIME(6) in UTC.
CREATE TABLE IF NOT EXISTS {{prefix}}legacy_keys (
	lookup     VARBINARY(255) NOT NULL PRIMARY KEY,
	key_id     VARBINARY(255) NOT NULL,
	hash       TEXT           NOT NULL,
	created_at DATETIME(6),
	CONSTRAINT {{prefix}}legacy_keys_key FOREIGN KEY (key_id) REFERENCES {{prefix}}keys (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
