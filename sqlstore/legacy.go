package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
)

// CreateLegacy implements apikey.LegacyStore: every key and record in one
// transaction (schema version 4, table prefix+"legacy_keys"), or none.
func (s *Store) CreateLegacy(ctx context.Context, keys []*apikey.Key, records []apikey.LegacyRecord) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	keyArgs := make([][]any, len(keys))
	for i, k := range keys {
		args, err := s.args(k)
		if err != nil {
			return err
		}
		keyArgs[i] = args
	}
	for _, r := range records {
		if !validText(r.Lookup) || !validText(r.KeyID) || !validText(r.Hash) {
			return fmt.Errorf("%w: sqlstore: legacy record: lookup, key ID and hash must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
		}
		if s.dialect == MySQL && (len(r.Lookup) > mysqlMaxBytes || len(r.KeyID) > mysqlMaxBytes || len(r.Hash) > mysqlMaxText) {
			return fmt.Errorf("%w: sqlstore: legacy record for key %.40q: lookup or key ID over %d bytes, or hash over %d, on MySQL",
				apikey.ErrInvalidRequest, r.KeyID, mysqlMaxBytes, mysqlMaxText)
		}
	}
	insert := `INSERT INTO ` + s.cfg.prefix + `legacy_keys (lookup, key_id, hash, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (lookup) DO NOTHING`
	switch s.dialect {
	case SQLite:
		insert = sqlitePlaceholders(insert)
	case MySQL:
		// A lookup already there changes nothing: 0 rows affected, as
		// with DO NOTHING (the Store refuses clientFoundRows).
		insert = `INSERT INTO ` + s.cfg.prefix + `legacy_keys (lookup, key_id, hash, created_at) VALUES ($1, $2, $3, $4)
			ON DUPLICATE KEY UPDATE lookup = lookup`
	}
	now := s.timeArg(time.Now())
	err := s.inTx(ctx, func(tx execer) error {
		for i, k := range keys {
			if err := s.create(ctx, tx, k, keyArgs[i]); err != nil {
				return err
			}
		}
		for _, r := range records {
			res, err := tx.ExecContext(ctx, insert, r.Lookup, r.KeyID, r.Hash, now)
			if err != nil {
				return fmt.Errorf("sqlstore: create legacy record for key %s: %w", r.KeyID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("sqlstore: create legacy record for key %s: %w", r.KeyID, err)
			} else if n == 0 {
				return apikey.ErrConflict
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlstore: import %d legacy keys: %w", len(keys), err)
	}
	for _, k := range keys {
		k.Revision = 1
	}
	return nil
}

// maxLegacyLookups bounds the parameters of one GetLegacy query, well
// under every dialect's limits.
const maxLegacyLookups = 1000

// GetLegacy implements apikey.LegacyStore with one query.
func (s *Store) GetLegacy(ctx context.Context, lookups []string) ([]apikey.LegacyRecord, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	args := make([]any, 0, len(lookups))
	for _, l := range lookups {
		if validText(l) { // no other can have been stored
			args = append(args, l)
		}
	}
	if len(args) == 0 {
		return nil, nil
	}
	if len(args) > maxLegacyLookups {
		return nil, fmt.Errorf("%w: sqlstore: GetLegacy: %d lookups, at most %d", apikey.ErrInvalidRequest, len(args), maxLegacyLookups)
	}
	var q strings.Builder
	q.WriteString(`SELECT lookup, key_id, hash FROM ` + s.cfg.prefix + `legacy_keys WHERE lookup IN (`)
	for i := range args {
		if i > 0 {
			q.WriteString(", ")
		}
		if s.dialect == SQLite {
			q.WriteString("?" + strconv.Itoa(i+1))
		} else {
			q.WriteString("$" + strconv.Itoa(i+1))
		}
	}
	q.WriteString(")")
	rows, err := s.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get legacy records: %w", err)
	}
	defer rows.Close()
	var out []apikey.LegacyRecord
	for rows.Next() {
		var r apikey.LegacyRecord
		if err := rows.Scan(&r.Lookup, &r.KeyID, &r.Hash); err != nil {
			return nil, fmt.Errorf("sqlstore: get legacy records: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get legacy records: %w", err)
	}
	return out, nil
}

var _ apikey.LegacyStore = (*Store)(nil)
