package sqlstore

import "strings"

// columns lists the keys table's columns in the order scanKey reads them.
const columns = `id, prefix, owner, name, scopes, digest, digest_version,
	created_at, expires_at, not_before, revoked_at, suspended_at, last_used_at,
	rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit, quota_period_ns,
	allowed_ips, metadata, rotated_from, replaced_by, revoked_reason,
	quota_day, credits_grant, credits_period_ns, credits_day, lineage, revision`

// queries are built once per Store, for its dialect and table prefix.
type queries struct {
	get, exists, insert, update       string
	revoke, claimEvent                string
	pruneEvents, pruneEventsAll       string // claims.go
	list, listOwner                   string
	lastUsed                          string
	quotaAdd, quotaGet, quotaCleanup  string
	changesMax, changesSince          string
	tableExists, schemaVersion        string
	createVersionTable, insertVersion string

	// record is set when get, list and listOwner read the keys table's
	// id, its record column (one JSON array) and last_used_at instead of
	// all its columns (SQLite and PostgreSQL; recordRow decodes the
	// record).
	record bool
}

func buildQueries(d Dialect, p string) queries {
	t := p + "keys"
	q := queries{
		get:    `SELECT ` + columns + ` FROM ` + t + ` WHERE id = $1`,
		exists: `SELECT 1 FROM ` + t + ` WHERE id = $1`,
		// ON CONFLICT DO NOTHING, not a constraint error: drivers report
		// those differently, and RowsAffected says the same portably.
		insert: `INSERT INTO ` + t + ` (` + columns + `) VALUES
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, 1)
			ON CONFLICT (id) DO NOTHING`,
		update: `UPDATE ` + t + ` SET prefix = $2, owner = $3, name = $4, scopes = $5,
			digest = $6, digest_version = $7, created_at = $8, expires_at = $9, not_before = $10,
			revoked_at = $11, suspended_at = $12, last_used_at = $13, rate_limit_rate = $14,
			rate_limit_period_ns = $15, rate_limit_burst = $16, quota_limit = $17, quota_period_ns = $18,
			allowed_ips = $19, metadata = $20, rotated_from = $21, replaced_by = $22, revoked_reason = $23,
			quota_day = $24, credits_grant = $25, credits_period_ns = $26, credits_day = $27, lineage = $28,
			revision = revision + 1
			WHERE id = $1 AND revision = $29`,
		// Revoke touches nothing but the revocation, so that it works on a
		// row whose other columns do not decode.
		revoke:     `UPDATE ` + t + ` SET revoked_at = $2, revoked_reason = $3, revision = revision + 1 WHERE id = $1 AND revoked_at IS NULL`,
		claimEvent: `INSERT INTO ` + p + `event_claims (key_id, event, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (key_id, event) DO NOTHING`,
		// Cursor pagination on the primary key or the (owner, id) index;
		// one row more than the page tells whether another page follows.
		list:      `SELECT ` + columns + ` FROM ` + t + ` WHERE id > $1 ORDER BY id LIMIT $2`,
		listOwner: `SELECT ` + columns + ` FROM ` + t + ` WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3`,

		quotaGet:      `SELECT used FROM ` + p + `quota_usage WHERE counter_key = $1 AND window_start = $2`,
		quotaCleanup:  `DELETE FROM ` + p + `quota_usage WHERE window_end <= $1`,
		insertVersion: `INSERT INTO ` + p + `schema_version (version) VALUES ($1)`,
		schemaVersion: `SELECT COALESCE(MAX(version), 0) FROM ` + p + `schema_version`,
	}
	q.pruneEvents, q.pruneEventsAll = pruneEventsSQL(p, true), pruneEventsSQL(p, false)
	if d != MySQL { // schema version 9
		q.record = true
		q.get = `SELECT id, record, last_used_at FROM ` + t + ` WHERE id = $1`
		q.list = `SELECT id, record, last_used_at FROM ` + t + ` WHERE id > $1 ORDER BY id LIMIT $2`
		q.listOwner = `SELECT id, record, last_used_at FROM ` + t + ` WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3`
	}
	// quotaAdd's INSERT … SELECT … WHERE refuses a first add larger than
	// the limit; its DO UPDATE … WHERE refuses one that would pass it. A
	// refused add returns no row and writes nothing. Parameters: $1 the
	// counter key, $2 and $3 the window's start and end, $4 the units to
	// add, $5 the limit.
	switch d {
	case SQLite:
		q.quotaAdd = `INSERT INTO ` + p + `quota_usage AS u (counter_key, window_start, window_end, used)
			SELECT $1, $2, $3, $4 WHERE $4 <= $5
			ON CONFLICT (counter_key, window_start) DO UPDATE SET used = u.used + excluded.used
			WHERE u.used + excluded.used <= $5
			RETURNING used`
		q.lastUsed = `UPDATE ` + t + ` AS k SET last_used_at = u.at
			FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at FROM json_each(?1)) AS u
			WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`
		q.changesMax = `SELECT COALESCE(MAX(seq), 0) FROM ` + p + `changes`
		q.changesSince = `SELECT seq, id FROM ` + p + `changes WHERE seq > $1 ORDER BY seq LIMIT 1000`
		q.tableExists = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
		q.createVersionTable = `CREATE TABLE IF NOT EXISTS ` + p + `schema_version (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`
		for _, s := range []*string{&q.get, &q.exists, &q.insert, &q.update, &q.revoke, &q.claimEvent, &q.pruneEvents, &q.pruneEventsAll, &q.list, &q.listOwner,
			&q.quotaAdd, &q.quotaGet, &q.quotaCleanup, &q.changesSince, &q.tableExists,
			&q.schemaVersion, &q.insertVersion} {
			*s = sqlitePlaceholders(*s)
		}
	case Postgres:
		// The batch travels as one JSON parameter, so this works with any
		// driver, not only those that can bind arrays.
		q.lastUsed = `UPDATE ` + t + ` AS k SET last_used_at = u.at
			FROM json_to_recordset($1::json) AS u(id text, at timestamptz)
			WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`
		// The casts type the parameters: in a SELECT list PostgreSQL
		// would otherwise take them for text.
		q.quotaAdd = `INSERT INTO ` + p + `quota_usage AS u (counter_key, window_start, window_end, used)
			SELECT $1::text, $2::bigint, $3::bigint, $4::bigint WHERE $4::bigint <= $5::bigint
			ON CONFLICT (counter_key, window_start) DO UPDATE SET used = u.used + excluded.used
			WHERE u.used + excluded.used <= $5::bigint
			RETURNING used`
		q.tableExists = `SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = $1`
		q.createVersionTable = `CREATE TABLE IF NOT EXISTS ` + p + `schema_version (
			version    integer NOT NULL PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`
	case MySQL:
		// The queries keep their $N: the Store's rebinder turns them into
		// ?s (rebind.go). An insert that finds the ID taken changes nothing
		// and affects 0 rows, which the driver reports as such because the
		// Store refuses clientFoundRows (checkMySQLSession).
		q.insert = `INSERT INTO ` + t + ` (` + columns + `) VALUES
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, 1)
			ON DUPLICATE KEY UPDATE id = id`
		// A claim already there changes nothing: 0 rows affected.
		q.claimEvent = `INSERT INTO ` + p + `event_claims (key_id, event, claimed_at) VALUES ($1, $2, $3)
			ON DUPLICATE KEY UPDATE key_id = key_id`
		q.lastUsed = `UPDATE ` + t + ` AS k
			JOIN JSON_TABLE($1, '$[*]' COLUMNS (id VARCHAR(255) PATH '$[0]', at DATETIME(6) PATH '$[1]')) AS u
			ON k.id = u.id
			SET k.last_used_at = u.at
			WHERE k.last_used_at IS NULL OR k.last_used_at < u.at`
		// One statement, as on the other dialects: a first add larger than
		// the limit inserts nothing, and one that would pass the limit
		// leaves used as it is. An accepted update also hands the new
		// count back through LAST_INSERT_ID(expr), which the driver
		// reports as the result's LastInsertId, since MySQL has no
		// RETURNING for an upsert (Counter.addMySQL reads the result).
		q.quotaAdd = `INSERT INTO ` + p + `quota_usage (counter_key, window_start, window_end, used)
			SELECT $1, $2, $3, $4 FROM DUAL WHERE $4 <= $5
			ON DUPLICATE KEY UPDATE used = LAST_INSERT_ID(IF(used + $4 <= $5, used + $4, used))`
		q.changesMax = `SELECT COALESCE(MAX(seq), 0) FROM ` + p + `changes`
		q.changesSince = `SELECT seq, id FROM ` + p + `changes WHERE seq > $1 ORDER BY seq LIMIT 1000`
		q.tableExists = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = $1`
		q.createVersionTable = `CREATE TABLE IF NOT EXISTS ` + p + `schema_version (
			version    INT NOT NULL PRIMARY KEY,
			applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
			) ENGINE=InnoDB`
	}
	return q
}

// sqlitePlaceholders turns $1 into ?1: SQLite reads $1 as a named
// parameter, ?1 as the first positional one.
func sqlitePlaceholders(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '$' && i+1 < len(q) && '0' <= q[i+1] && q[i+1] <= '9' {
			b.WriteByte('?')
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
