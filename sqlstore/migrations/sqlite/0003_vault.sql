-- apikey schema version 3 for SQLite: package vault's secrets (the keys
-- customers bring, such as their provider keys), one row per owner and
-- name. No secret is stored: ciphertext is XChaCha20-Poly1305 under a data
-- key of the row's own, and wrapped_key is that data key wrapped by the
-- KEK version kek_version. hint is the masked form List shows ('' for
-- short secrets). Times are Unix microseconds (UTC); NULL revealed_at is
-- "never revealed". Owners and names compare bytewise (BINARY).
CREATE TABLE {{prefix}}vault_secrets (
	owner       TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	kek_version TEXT    NOT NULL,
	wrapped_key BLOB    NOT NULL,
	nonce       BLOB    NOT NULL,
	ciphertext  BLOB    NOT NULL,
	hint        TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER,
	revealed_at INTEGER,
	PRIMARY KEY (owner, name)
);

-- RotateKEK looks for rows not wrapped by the current KEK version.
CREATE INDEX {{prefix}}vault_secrets_kek ON {{prefix}}vault_secrets (kek_version);
