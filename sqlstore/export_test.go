package sqlstore

import (
	"context"

	"github.com/apikeykit/apikey"
)

// GetColumns reads key id from its columns, as Get does on MySQL, so that
// tests can hold what Get reads from a record against them.
func (s *Store) GetColumns(ctx context.Context, id string) (*apikey.Key, error) {
	q := `SELECT ` + columns + ` FROM ` + s.cfg.prefix + `keys WHERE id = $1`
	if s.dialect == SQLite {
		q = sqlitePlaceholders(q)
	}
	return scanKey(s.db.QueryRowContext(ctx, q, id))
}
