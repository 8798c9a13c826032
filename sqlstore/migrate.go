package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// migrationFiles holds the schema, one directory per dialect, one file per
// version named NNNN_description.sql. {{prefix}} in a file stands for the
// table prefix. A released file is never edited: changes go in a new one.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order.
func migrations(d Dialect) ([]migration, error) {
	dir := "migrations/" + d.String()
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("sqlstore: bad migration file name %s", e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlstore: migrations for %v are not numbered 1, 2, 3, …: %s", d, m.name)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this code needs, the same for
// every dialect.
const SchemaVersion = 9

// Migrate brings the database's schema up to SchemaVersion, applying the
// missing migrations in one transaction. It is safe to call from several
// processes at once: on PostgreSQL they queue on an advisory lock, on
// SQLite on the write lock (BEGIN IMMEDIATE, waiting up to the busy
// timeout). On MySQL, where DDL cannot be rolled back, they queue on a
// named lock (GET_LOCK, up to 10 minutes), and each migration is recorded
// once its statements have run; a failure part-way through one leaves its
// earlier statements applied. A database already current is left as it
// is. A database migrated by newer code fails with ErrSchemaTooNew and is
// not written to.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	if len(ms) != SchemaVersion {
		return fmt.Errorf("sqlstore: %d migrations for %v, want %d", len(ms), s.dialect, SchemaVersion)
	}
	if s.dialect == MySQL {
		err = s.migrateMySQL(ctx, ms)
	} else {
		err = s.inTx(ctx, func(tx execer) error { return s.migrate(ctx, tx, ms) })
	}
	if err != nil {
		return err
	}
	s.ready.Store(true)
	return nil
}

func (s *Store) migrate(ctx context.Context, tx execer, ms []migration) error {
	if s.dialect == Postgres {
		// Held until the transaction ends; other migrators wait here and
		// then find the work done.
		h := fnv.New64a()
		h.Write([]byte("apikey/sqlstore migrate " + s.cfg.prefix))
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
			return fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
	}
	// Read the version before writing anything, so that a database from
	// newer code is not touched at all.
	current, err := s.version(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("%w: database is at version %d, this code knows up to %d", ErrSchemaTooNew, current, SchemaVersion)
	}
	if current == SchemaVersion {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q.createVersionTable); err != nil {
		return fmt.Errorf("sqlstore: migrate: create version table: %w", err)
	}
	for _, m := range ms[current:] {
		body := strings.ReplaceAll(m.sql, "{{prefix}}", s.cfg.prefix)
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return fmt.Errorf("sqlstore: migrate: %s/%s: %w", s.dialect, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, s.q.insertVersion, m.version); err != nil {
			return fmt.Errorf("sqlstore: migrate: record version %d: %w", m.version, err)
		}
	}
	return nil
}

// version returns the schema version recorded in the database, 0 if none.
func (s *Store) version(ctx context.Context, db execer) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, s.q.tableExists, s.cfg.prefix+"schema_version").Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, s.q.schemaVersion).Scan(&v); err != nil {
		return 0, err
	}
	return v, nil
}
