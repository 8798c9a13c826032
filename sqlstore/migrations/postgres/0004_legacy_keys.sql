-- apikey schema version 4 for PostgreSQL: keys imported from another
-- system (Manager.ImportLegacy), one row per key. Each points at the row
-- of {{prefix}}keys that holds everything else about the key (owner,
-- scopes, expiry, limits, revocation); its digest_version is 'legacy'.
-- lookup is how a presented key finds its row: 'id:' and the ID the key
-- carries (salted hashes), or the kind, the pepper version and a keyed
-- digest of the old hash (unsalted ones). hash is the old bcrypt or
-- argon2id hash, or for unsalted ones only their kind: no hash that a key
-- can be tested against without the pepper is stored.
CREATE TABLE {{prefix}}legacy_keys (
	lookup     text COLLATE "C" NOT NULL PRIMARY KEY,
	key_id     text COLLATE "C" NOT NULL REFERENCES {{prefix}}keys (id),
	hash       text NOT NULL,
	created_at timestamptz
);
