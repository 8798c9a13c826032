-- apikey schema version 6 for SQLite: usage, as the Manager meters it,
-- one row per key and hour. hour_start is Unix seconds (UTC), a multiple
-- of 3600; owner is the key's owner when the hour was counted; units sum
-- the requests' costs. Rows outlive their keys: usage is a bill's record.
CREATE TABLE {{prefix}}usage (
	key_id     TEXT    NOT NULL,
	hour_start INTEGER NOT NULL,
	owner      TEXT    NOT NULL,
	requests   INTEGER NOT NULL,
	units      INTEGER NOT NULL,
	PRIMARY KEY (key_id, hour_start)
);

-- An owner's usage over a range of hours.
CREATE INDEX {{prefix}}usage_owner ON {{prefix}}usage (owner, hour_start);
