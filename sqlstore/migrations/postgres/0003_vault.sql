-- apikey schema version 3 for PostgreSQL: package vault's secrets (the
-- keys customers bring, such as their provider keys), one row per owner
-- and name. No secret is stored: ciphertext is XChaCha20-Poly1305 under a
-- data key of the row's own, and wrapped_key is that data key wrapped by
-- the KEK version kek_version. hint is the masked form List shows ('' for
-- short secrets). Owners and names sort bytewise (COLLATE "C"), as
-- RotateKEK's paging requires whatever the database's locale. NULL
-- revealed_at is "never revealed".
CREATE TABLE {{prefix}}vault_secrets (
	owner       text COLLATE "C" NOT NULL,
	name        text COLLATE "C" NOT NULL,
	version     bigint NOT NULL,
	kek_version text   NOT NULL,
	wrapped_key bytea  NOT NULL,
	nonce       bytea  NOT NULL,
	ciphertext  bytea  NOT NULL,
	hint        text   NOT NULL DEFAULT '',
	created_at  timestamptz,
	revealed_at timestamptz,
	PRIMARY KEY (owner, name)
);

-- RotateKEK looks for rows not wrapped by the current KEK version.
CREATE INDEX {{prefix}}vault_secrets_kek ON {{prefix}}vault_secrets (kek_version);
