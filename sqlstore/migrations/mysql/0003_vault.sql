-- apikey schema version 3 for MySQL and MariaDB: package vault's secrets
-- (the keys customers bring, such as their provider keys), one row per
-- owner and name. No secret is stored: ciphertext is XChaCha20-Poly1305
-- under a data key of the row's own, and wrapped_key is that data key
-- wrapped by the KEK version kek_version. hint is the masked form List
-- shows ('' for short secrets). Times are DATETIME(6) in UTC; NULL
-- revealed_at is "never revealed". Owners, names and KEK versions are
-- VARBINARY, compared and sorted bytewise, as RotateKEK's paging requires.
CREATE TABLE IF NOT EXISTS {{prefix}}vault_secrets (
	owner       VARBINARY(255) NOT NULL,
	name        VARBINARY(255) NOT NULL,
	version     BIGINT         NOT NULL,
	kek_version VARBINARY(255) NOT NULL,
	wrapped_key BLOB           NOT NULL,
	nonce       VARBINARY(255) NOT NULL,
	ciphertext  MEDIUMBLOB     NOT NULL,
	hint        VARCHAR(255)   NOT NULL DEFAULT '',
	created_at  DATETIME(6),
	revealed_at DATETIME(6),
	PRIMARY KEY (owner, name),
	-- RotateKEK looks for rows not wrapped by the current KEK version.
	INDEX {{prefix}}vault_secrets_kek (kek_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
