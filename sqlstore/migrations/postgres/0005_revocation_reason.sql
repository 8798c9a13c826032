-- apikey schema version 5 for PostgreSQL: why a key was revoked
-- (Manager.RevokeWithReason), '' when no reason was given; and the claims
-- that let many instances emit each hygiene event (a key expiring soon, a
-- key unused for long) once: the instance whose INSERT adds the row sends
-- the event, the others find it there. The notification triggers compare
-- whole rows, so they cover the new column as they are.
ALTER TABLE {{prefix}}keys ADD COLUMN revoked_reason text NOT NULL DEFAULT '';

CREATE TABLE {{prefix}}event_claims (
	key_id     text COLLATE "C" NOT NULL,
	event      text COLLATE "C" NOT NULL,
	claimed_at timestamptz NOT NULL,
	PRIMARY KEY (key_id, event)
);
