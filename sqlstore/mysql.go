package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
)

// What only the MySQL dialect needs: its session checks, its migration
// (DDL is not transactional there), and the limits of its columns.

// mysqlTime is how the Store writes a DATETIME(6): UTC, to the microsecond.
const mysqlTime = "2006-01-02 15:04:05.999999"

// mysqlLockTimeout bounds how long Migrate waits for another process's
// migration on MySQL.
const mysqlLockTimeout = 10 * time.Minute

// mysqlMaxBytes is the size of the VARBINARY columns that hold IDs,
// owners, prefixes, digests and digest versions (migrations/mysql).
const mysqlMaxBytes = 255

// mysqlMaxText is the size of a TEXT column (a key's name, a legacy
// record's hash), and mysqlMaxMediumText that of a MEDIUMTEXT one (a
// revocation reason).
const (
	mysqlMaxText       = 1<<16 - 1
	mysqlMaxMediumText = 1<<24 - 1
)

// The DATETIME range: a time outside it is refused rather than stored
// wrong or refused by the server with a less clear error.
var (
	mysqlMinTime = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	mysqlMaxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// mysqlFits refuses, with apikey.ErrInvalidRequest, a key whose fields
// the MySQL schema cannot hold as they are.
func mysqlFits(k *apikey.Key) error {
	for _, f := range []struct{ name, v string }{
		{"ID", k.ID}, {"Prefix", k.Prefix}, {"Owner", k.Owner}, {"DigestVersion", k.DigestVersion},
		{"RotatedFrom", k.RotatedFrom}, {"ReplacedBy", k.ReplacedBy}, {"Digest", string(k.Digest)},
	} {
		if len(f.v) > mysqlMaxBytes {
			return fmt.Errorf("%w: sqlstore: key %.40q: %s is %d bytes, at most %d on MySQL", apikey.ErrInvalidRequest, k.ID, f.name, len(f.v), mysqlMaxBytes)
		}
	}
	if len(k.Name) > mysqlMaxText || len(k.RevokedReason) > mysqlMaxMediumText {
		return fmt.Errorf("%w: sqlstore: key %.40q: name over %d bytes or revocation reason over %d, on MySQL", apikey.ErrInvalidRequest, k.ID, mysqlMaxText, mysqlMaxMediumText)
	}
	for _, t := range []time.Time{k.CreatedAt, k.ExpiresAt, k.NotBefore, k.RevokedAt, k.SuspendedAt, k.LastUsedAt} {
		if !t.IsZero() && (t.Before(mysqlMinTime) || !t.Before(mysqlMaxTime)) {
			return fmt.Errorf("%w: sqlstore: key %s: time %v outside the years 1000 to 9999 that MySQL can store", apikey.ErrInvalidRequest, k.ID, t)
		}
	}
	return nil
}

// checkMySQLSession fails with ErrUnsupportedSession unless the session
// is in strict mode and the driver counts changed rows: the Store tells a
// taken ID from an insert, and a refused quota from an accepted one, by
// the rows affected, and must never have a value truncated silently. The
// second check needs a current schema_version table.
func (s *Store) checkMySQLSession(ctx context.Context, db execer) error {
	if err := checkStrict(ctx, db); err != nil {
		return err
	}
	// An UPDATE that matches a row and changes nothing affects 0 rows,
	// unless the connection asked for found rows.
	res, err := db.ExecContext(ctx, `UPDATE `+s.cfg.prefix+`schema_version SET version = version WHERE version = $1`, SchemaVersion)
	if err != nil {
		return fmt.Errorf("sqlstore: check the MySQL session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: check the MySQL session: %w", err)
	} else if n != 0 {
		return fmt.Errorf("%w: the connection counts found rows, not changed ones (remove clientFoundRows=true from the DSN)", ErrUnsupportedSession)
	}
	return nil
}

// checkStrict fails with ErrUnsupportedSession unless the session's
// sql_mode is strict.
func checkStrict(ctx context.Context, db execer) error {
	var mode string
	if err := db.QueryRowContext(ctx, `SELECT @@SESSION.sql_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlstore: read sql_mode: %w", err)
	}
	strict := false
	for _, m := range strings.Split(strings.ToUpper(mode), ",") {
		switch m {
		case "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES":
			strict = true
		case "SIMULTANEOUS_ASSIGNMENT":
			// MariaDB's standard UPDATE semantics: the Ledger's upserts
			// rely on MySQL's left-to-right assignments (ledger.go).
			return fmt.Errorf("%w: sql_mode %q has SIMULTANEOUS_ASSIGNMENT, which the Ledger's statements do not support", ErrUnsupportedSession, mode)
		}
	}
	if strict {
		return nil
	}
	return fmt.Errorf("%w: sql_mode %q is not strict (want STRICT_TRANS_TABLES or STRICT_ALL_TABLES, so that nothing is truncated silently)", ErrUnsupportedSession, mode)
}

// migrateMySQL is Migrate on MySQL, where every DDL statement commits at
// once, so a transaction cannot hold a migration together: a named lock
// (GET_LOCK, per database and table prefix) keeps other migrators out
// instead, and each migration's version is recorded once its statements
// succeeded. A migration that fails part-way leaves the statements before
// the failing one applied; its error names the file and the statement.
func (s *Store) migrateMySQL(ctx context.Context, ms []migration) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer c.Close()
	conn := s.rebind(c)
	// The lock is the session's: it ends with the connection, whatever
	// happens to it. Names are at most 64 characters; a hash keeps them so.
	const name = `CONCAT('apikey_migrate_', SHA1(CONCAT(DATABASE(), '/', $1)))`
	var got *int64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+name+`, $2)`, s.cfg.prefix, int64(mysqlLockTimeout/time.Second)).Scan(&got); err != nil {
		return fmt.Errorf("sqlstore: migrate: lock: %w", err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("sqlstore: migrate: lock: another migration held it for %v", mysqlLockTimeout)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `DO RELEASE_LOCK(`+name+`)`, s.cfg.prefix); err != nil {
			c.Raw(func(any) error { return errBadConn }) // closing the session releases it
		}
	}()
	if err := checkStrict(ctx, conn); err != nil {
		return err // before writing anything
	}
	current, err := s.version(ctx, conn)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("%w: database is at version %d, this code knows up to %d", ErrSchemaTooNew, current, SchemaVersion)
	}
	if current < SchemaVersion {
		if _, err := conn.ExecContext(ctx, s.q.createVersionTable); err != nil {
			return fmt.Errorf("sqlstore: migrate: create version table: %w", err)
		}
		for _, m := range ms[current:] {
			body := strings.ReplaceAll(m.sql, "{{prefix}}", s.cfg.prefix)
			for i, stmt := range splitStatements(body) {
				if _, err := conn.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("sqlstore: migrate: %s/%s, statement %d: %w", s.dialect, m.name, i+1, err)
				}
			}
			if _, err := conn.ExecContext(ctx, s.q.insertVersion, m.version); err != nil {
				return fmt.Errorf("sqlstore: migrate: record version %d: %w", m.version, err)
			}
		}
	}
	return s.checkMySQLSession(ctx, conn)
}

// splitStatements splits a MySQL migration into its statements, since a
// connection runs one at a time unless its DSN allows multiStatements. A
// statement ends with a line that ends with ";" and is not indented; the
// statements inside a trigger's BEGIN … END are indented, so they stay
// in it. Lines of comments (starting with "--") are dropped.
func splitStatements(body string) []string {
	var (
		stmts []string
		cur   strings.Builder
	)
	for line := range strings.Lines(body) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") && line[0] != ' ' && line[0] != '\t' {
			if stmt := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")); stmt != "" {
				stmts = append(stmts, stmt)
			}
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		stmts = append(stmts, rest)
	}
	return stmts
}
