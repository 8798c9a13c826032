-- apikey schema version 6 for MySQL and MariaDB: usage, as the Manager
-- meters it, one row per key and hour. hour_start is Unix seconds (UTC),
-- a multiple of 3600; owner is the key's owner when the hour was counted;
-- units sum the requests' costs. Rows outlive their keys: usage is a
-- bill's record. Key IDs and owners are VARBINARY, compared bytewise.
CREATE TABLE IF NOT EXISTS {{prefix}}usage (
	key_id     VARBINARY(255) NOT NULL,
	hour_start BIGINT         NOT NULL,
	owner      VARBINARY(255) NOT NULL,
	requests   BIGINT         NOT NULL,
	units      BIGINT         NOT NULL,
	PRIMARY KEY (key_id, hour_start),
	-- An owner's usage over a range of hours.
	INDEX {{prefix}}usage_owner (owner, hour_start)
) ENGINE=InnoDB;
