package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
)

// RecordUsage implements apikey.UsageRecorder with one upsert statement
// per call (the rows travel as one JSON parameter): each row's requests and
// units are added to its key's hour, in the usage table of schema version
// 6. Rows for the same key and hour are summed first. A row that is not
// on a whole hour, has negative counts or text that is not UTF-8 without
// NUL (or, on MySQL, a key ID or owner over 255 bytes) fails the whole batch with an error wrapping
// apikey.ErrInvalidRequest, and nothing is written.
func (s *Store) RecordUsage(ctx context.Context, rows []apikey.UsageRow) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	type bucket struct {
		id   string
		hour int64
	}
	index := make(map[bucket]int, len(rows))
	batch := make([]usageJSON, 0, len(rows))
	for _, r := range rows {
		if r.KeyID == "" || !validText(r.KeyID) || !validText(r.Owner) || r.Requests < 0 || r.Units < 0 ||
			!r.Start.Equal(r.Start.Truncate(time.Hour)) ||
			s.dialect == MySQL && (len(r.KeyID) > mysqlMaxBytes || len(r.Owner) > mysqlMaxBytes) {
			return fmt.Errorf("%w: sqlstore: usage row for key %.40q at %v: want a key, a whole hour and counts ≥ 0",
				apikey.ErrInvalidRequest, r.KeyID, r.Start)
		}
		b := bucket{r.KeyID, r.Start.Unix()}
		if i, ok := index[b]; ok {
			batch[i].Owner = r.Owner
			batch[i].Requests += r.Requests
			batch[i].Units += r.Units
			continue
		}
		index[b] = len(batch)
		batch = append(batch, usageJSON{r.KeyID, b.hour, r.Owner, r.Requests, r.Units})
	}
	if len(batch) == 0 {
		return nil
	}
	// Row locks are taken in one order by every writer.
	slices.SortFunc(batch, func(a, b usageJSON) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.Hour, b.Hour))
	})
	arg, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("sqlstore: record usage: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.usageUpsert(), string(arg)); err != nil {
		return fmt.Errorf("sqlstore: record usage: %w", err)
	}
	return nil
}

// usageJSON is one row of RecordUsage's parameter.
type usageJSON struct {
	KeyID    string `json:"k"`
	Hour     int64  `json:"h"`
	Owner    string `json:"o"`
	Requests int64  `json:"n"`
	Units    int64  `json:"u"`
}

func (s *Store) usageUpsert() string {
	t := s.cfg.prefix + "usage"
	if s.dialect == SQLite {
		// "WHERE true" tells SQLite's parser that ON CONFLICT belongs to
		// the INSERT, not to a join.
		return `INSERT INTO ` + t + ` AS u (key_id, hour_start, owner, requests, units)
			SELECT json_extract(value, '$.k'), json_extract(value, '$.h'), json_extract(value, '$.o'),
				json_extract(value, '$.n'), json_extract(value, '$.u')
			FROM json_each(?1) WHERE true
			ON CONFLICT (key_id, hour_start) DO UPDATE SET owner = excluded.owner,
				requests = u.requests + excluded.requests, units = u.units + excluded.units`
	}
	if s.dialect == MySQL {
		// JSON_TABLE in place of json_to_recordset; the UPDATE part reads
		// each row's values from the SELECT (no VALUES(), which MySQL 8
		// deprecates). A row already there affects 2 rows, a new one 1.
		return `INSERT INTO ` + t + ` (key_id, hour_start, owner, requests, units)
			SELECT r.k, r.h, r.o, r.n, r.u FROM JSON_TABLE($1, '$[*]' COLUMNS (
				k VARCHAR(255) PATH '$.k', h BIGINT PATH '$.h', o VARCHAR(255) PATH '$.o',
				n BIGINT PATH '$.n', u BIGINT PATH '$.u')) AS r
			ON DUPLICATE KEY UPDATE owner = r.o, requests = requests + r.n, units = units + r.u`
	}
	return `INSERT INTO ` + t + ` AS u (key_id, hour_start, owner, requests, units)
		SELECT r.k, r.h, r.o, r.n, r.u FROM json_to_recordset($1::json) AS r(k text, h bigint, o text, n bigint, u bigint)
		ON CONFLICT (key_id, hour_start) DO UPDATE SET owner = excluded.owner,
			requests = u.requests + excluded.requests, units = u.units + excluded.units`
}

// Usage implements apikey.UsageRecorder: one query, summed in the
// database, through the usage table's primary key for one key and its
// (owner, hour_start) index for an owner, per key with q.PerKey.
func (s *Store) Usage(ctx context.Context, q apikey.UsageQuery) ([]apikey.UsageRow, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !validText(q.KeyID) || !validText(q.Owner) {
		return nil, nil // no such key or owner can have been recorded
	}
	from, to := int64(-1<<62), int64(1<<62)
	if !q.From.IsZero() {
		from = q.From.Unix()
	}
	if !q.To.IsZero() {
		to = q.To.Unix()
	}
	t := s.cfg.prefix + "usage"
	var bucket string
	switch {
	case q.Granularity == apikey.Day:
		bucket = `hour_start - (hour_start % 86400)`
	case q.Granularity == apikey.Month && s.dialect == SQLite:
		bucket = `CAST(strftime('%s', hour_start, 'unixepoch', 'start of month') AS INTEGER)`
	case q.Granularity == apikey.Month && s.dialect == MySQL:
		// Arithmetic on DATETIMEs, which the session's time_zone does not
		// shift (FROM_UNIXTIME and UNIX_TIMESTAMP would).
		bucket = `TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00',
			DATE_FORMAT(TIMESTAMPADD(SECOND, hour_start, '1970-01-01 00:00:00'), '%Y-%m-01 00:00:00'))`
	case q.Granularity == apikey.Month:
		bucket = `CAST(extract(epoch FROM date_trunc('month', to_timestamp(hour_start) AT TIME ZONE 'UTC')) AS bigint)`
	default:
		bucket = `hour_start`
	}
	// The parameters are typed by the columns they are compared with.
	var query string
	var args []any
	switch {
	case q.KeyID != "" && q.Owner != "":
		query = `SELECT key_id, MAX(owner), ` + bucket + ` AS b, CAST(SUM(requests) AS bigint), CAST(SUM(units) AS bigint)
			FROM ` + t + ` WHERE key_id = $1 AND owner = $2 AND hour_start >= $3 AND hour_start < $4
			GROUP BY key_id, b ORDER BY b`
		args = []any{q.KeyID, q.Owner, from, to}
	case q.KeyID != "":
		query = `SELECT key_id, MAX(owner), ` + bucket + ` AS b, CAST(SUM(requests) AS bigint), CAST(SUM(units) AS bigint)
			FROM ` + t + ` WHERE key_id = $1 AND hour_start >= $2 AND hour_start < $3
			GROUP BY key_id, b ORDER BY b`
		args = []any{q.KeyID, from, to}
	case q.PerKey:
		// Key IDs compare bytewise on every dialect (COLLATE "C",
		// VARBINARY, SQLite's BINARY), as apikey.UsageRecorder orders them.
		query = `SELECT key_id, owner, ` + bucket + ` AS b, CAST(SUM(requests) AS bigint), CAST(SUM(units) AS bigint)
			FROM ` + t + ` WHERE owner = $1 AND hour_start >= $2 AND hour_start < $3
			GROUP BY key_id, owner, b ORDER BY b, key_id`
		args = []any{q.Owner, from, to}
	default:
		query = `SELECT '', owner, ` + bucket + ` AS b, CAST(SUM(requests) AS bigint), CAST(SUM(units) AS bigint)
			FROM ` + t + ` WHERE owner = $1 AND hour_start >= $2 AND hour_start < $3
			GROUP BY owner, b ORDER BY b`
		args = []any{q.Owner, from, to}
	}
	switch s.dialect {
	case SQLite:
		query = sqlitePlaceholders(query)
	case MySQL:
		// MySQL's CAST knows SIGNED, not bigint.
		query = strings.ReplaceAll(query, " AS bigint)", " AS SIGNED)")
	}
	rs, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read usage: %w", err)
	}
	defer rs.Close()
	var rows []apikey.UsageRow
	for rs.Next() {
		var r apikey.UsageRow
		var start int64
		if err := rs.Scan(&r.KeyID, &r.Owner, &start, &r.Requests, &r.Units); err != nil {
			return nil, fmt.Errorf("sqlstore: read usage: %w", err)
		}
		r.Start = time.Unix(start, 0).UTC()
		rows = append(rows, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read usage: %w", err)
	}
	return rows, nil
}
