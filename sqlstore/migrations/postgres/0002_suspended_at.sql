-- apikey schema version 2 for PostgreSQL: keys can be suspended
-- (Manager.Suspend). NULL is "not suspended". The notification triggers
-- compare whole rows, so they cover the new column as they are.
ALTER TABLE {{prefix}}keys ADD COLUMN suspended_at timestamptz;
