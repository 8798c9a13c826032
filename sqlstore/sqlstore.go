// Package sqlstore is an apikey.Store on database/sql, for SQLite (the
// embedded default: one process, or a few sharing a file), PostgreSQL and
// MySQL or MariaDB (many instances sharing one database).
//
// The package imports no driver: open a *sql.DB with the driver of your
// choice (modernc.org/sqlite, pure Go, github.com/jackc/pgx/v5/stdlib or
// github.com/go-sql-driver/mysql) and pass it to New, or let package
// sqlopen do both from a DSN. Call
// Migrate once at start-up (it is safe from several processes at once);
// until the schema is current every method fails with ErrNotMigrated.
//
//	db, err := sql.Open("sqlite", "file:keys.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
//	...
//	st, err := sqlstore.New(db, sqlstore.SQLite)
//	...
//	if err := st.Migrate(ctx); err != nil { ... }
//	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", pepper))
//
// A Store implements apikey.Rotator (one transaction), apikey.LastUsedRecorder
// (one statement per batch) and apikey.Watcher: on PostgreSQL through
// LISTEN/NOTIFY fed by a trigger, so that a change made by any client
// reaches every Manager within a second (see WithNotifications and package
// pglisten); on SQLite and MySQL by polling a change log that triggers
// maintain.
// Counter returns a quota counter on the same database, and Vault a store
// for package vault's envelope-encrypted secrets. It also implements
// apikey.LegacyStore, for keys imported from another system
// (apikey.Manager.ImportLegacy), in one transaction per import.
//
// Only digests of keys are stored, never keys; the vault's rows hold only
// ciphertexts and wrapped data keys.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
)

// Dialect selects the SQL spoken to the database.
type Dialect uint8

// Supported dialects.
const (
	// SQLite is SQLite 3.35 or later (for RETURNING), for example through
	// modernc.org/sqlite. Open it in WAL mode with a busy timeout.
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL 11 or later, for example through
	// github.com/jackc/pgx/v5/stdlib.
	Postgres
	// MySQL is MariaDB 10.6 or later, or MySQL 8.0.16 or later (for
	// JSON_TABLE and CHECK constraints), with InnoDB, through
	// github.com/go-sql-driver/mysql. It is tested on MariaDB.
	// The session must be in strict mode (STRICT_TRANS_TABLES or
	// STRICT_ALL_TABLES, the servers' default), so that nothing is
	// silently truncated, and the driver must count changed rows, not
	// found ones (clientFoundRows=false, its default): the Store checks
	// both before its first use and fails with ErrUnsupportedSession
	// otherwise. Times are DATETIME(6) in UTC, whatever the session's
	// time zone; keep the driver's loc at UTC (its default) if you set
	// parseTime. See package sqlopen for a DSN with all of this set.
	MySQL
)

// String returns "sqlite", "postgres" or "mysql".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	}
	return fmt.Sprintf("Dialect(%d)", uint8(d))
}

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNotMigrated reports a database whose schema is older than this
	// code (or absent): call Migrate.
	ErrNotMigrated = errors.New("apikey: sqlstore: database schema is not migrated (call Migrate)")

	// ErrSchemaTooNew reports a database migrated by a newer version of
	// this package. Nothing is written to it; upgrade the code.
	ErrSchemaTooNew = errors.New("apikey: sqlstore: database schema is newer than this code")

	// ErrNoNotifications is returned by Watch on PostgreSQL when the Store
	// was made without the WithNotifications option.
	ErrNoNotifications = errors.New("apikey: sqlstore: no PostgreSQL change notifications (Watch needs the WithNotifications option with a waiter for the driver, such as pglisten.Wait)")

	// ErrUnsupportedSession reports a MySQL connection the Store cannot
	// rely on: not in strict mode, or counting found rows rather than
	// changed ones. The Store refuses to work on it.
	ErrUnsupportedSession = errors.New("apikey: sqlstore: unsupported MySQL session")
)

// Store is an apikey.Store in a SQL database. It also implements
// apikey.Rotator, apikey.Revoker, apikey.ReasonRevoker,
// apikey.LastUsedRecorder, apikey.LegacyStore, apikey.EventClaimer,
// apikey.EventPruner (claims.go) and apikey.Watcher. A Store is
// safe for concurrent use; it holds no connection of its own apart from
// the one Watch uses while it runs on PostgreSQL.
type Store struct {
	db      storeDB // on MySQL, rebinding placeholders (rebind.go)
	dialect Dialect
	cfg     config
	q       queries

	// ready is set once the schema was found current, so that only calls
	// before that pay for the check.
	ready atomic.Bool

	// getStmt is Get's query, prepared on first use (it cannot be before
	// the table exists). Preparing it once matters on SQLite, where
	// compiling the statement costs more than running it.
	getMu   sync.Mutex
	getStmt atomic.Pointer[sql.Stmt]
}

// New returns a Store over db in the given dialect. It does no I/O (like
// sql.Open): call Migrate before use. db must have been opened with a
// driver for dialect. A nil db, an unknown dialect, a nil option or an
// option that refuses its argument fails with an error wrapping
// apikey.ErrInvalidRequest.
func New(sqlDB *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if sqlDB == nil {
		return nil, fmt.Errorf("%w: sqlstore: nil *sql.DB", apikey.ErrInvalidRequest)
	}
	if dialect != SQLite && dialect != Postgres && dialect != MySQL {
		return nil, fmt.Errorf("%w: sqlstore: unknown dialect %v: want sqlstore.SQLite, sqlstore.Postgres or sqlstore.MySQL", apikey.ErrInvalidRequest, dialect)
	}
	cfg := config{prefix: DefaultTablePrefix, pollInterval: DefaultPollInterval}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: sqlstore: nil option", apikey.ErrInvalidRequest)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	st := &Store{db: storeDB{DB: sqlDB}, dialect: dialect, cfg: cfg, q: buildQueries(dialect, cfg.prefix)}
	if dialect == MySQL {
		st.db.rb = new(rebinder)
	}
	return st, nil
}

// DB returns the database the Store uses.
func (s *Store) DB() *sql.DB { return s.db.DB }

// Dialect returns the Store's dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close releases the Store's prepared statements, and closes the
// database if the Store was made with WithCloseDB. Stop Watch (cancel its
// context) first. The Store must not be used after Close.
func (s *Store) Close() error {
	s.getMu.Lock()
	if stmt := s.getStmt.Swap(nil); stmt != nil {
		stmt.Close()
	}
	s.getMu.Unlock()
	if s.cfg.ownDB {
		return s.db.Close()
	}
	return nil
}

// check fails with ErrNotMigrated or ErrSchemaTooNew until the database's
// schema is the one this code needs. Once it is, the answer is kept and
// check costs one atomic load.
func (s *Store) check(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	v, err := s.version(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	switch {
	case v < SchemaVersion:
		return fmt.Errorf("%w: database is at version %d, this code needs %d", ErrNotMigrated, v, SchemaVersion)
	case v > SchemaVersion:
		return fmt.Errorf("%w: database is at version %d, this code knows up to %d", ErrSchemaTooNew, v, SchemaVersion)
	}
	if s.dialect == MySQL {
		if err := s.checkMySQLSession(ctx, s.db); err != nil {
			return err
		}
	}
	s.ready.Store(true)
	return nil
}

// Create implements apikey.Store.
func (s *Store) Create(ctx context.Context, k *apikey.Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	args, err := s.args(k)
	if err != nil {
		return err
	}
	if err := s.create(ctx, s.db, k, args); err != nil {
		return err
	}
	k.Revision = 1
	return nil
}

// execer is what Create and Update need of a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) create(ctx context.Context, db execer, k *apikey.Key, args []any) error {
	res, err := db.ExecContext(ctx, s.q.insert, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: create key %s: %w", k.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: create key %s: %w", k.ID, err)
	} else if n == 0 {
		return apikey.ErrConflict
	}
	return nil
}

// Get implements apikey.Store.
func (s *Store) Get(ctx context.Context, id string) (*apikey.Key, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !validText(id) {
		// No such key can have been stored, and PostgreSQL would reject
		// the parameter rather than find nothing.
		return nil, apikey.ErrNotFound
	}
	stmt, err := s.prepareGet(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get key %s: %w", id, err)
	}
	k, err := s.scanKey(stmt.QueryRowContext(ctx, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, apikey.ErrNotFound
	case errors.Is(err, apikey.ErrCorruptRecord):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("sqlstore: get key %s: %w", id, err)
	}
	return k, nil
}

func (s *Store) prepareGet(ctx context.Context) (*sql.Stmt, error) {
	if stmt := s.getStmt.Load(); stmt != nil {
		return stmt, nil
	}
	s.getMu.Lock()
	defer s.getMu.Unlock()
	if stmt := s.getStmt.Load(); stmt != nil {
		return stmt, nil
	}
	stmt, err := s.db.PrepareContext(ctx, s.q.get)
	if err != nil {
		return nil, err
	}
	s.getStmt.Store(stmt)
	return stmt, nil
}

// Update implements apikey.Store.
func (s *Store) Update(ctx context.Context, k *apikey.Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	args, err := s.args(k)
	if err != nil {
		return err
	}
	if err := s.update(ctx, s.db, k, args); err != nil {
		return err
	}
	k.Revision++
	return nil
}

// update writes k if its revision is current; the caller increments
// k.Revision once the write is certain (committed).
func (s *Store) update(ctx context.Context, db execer, k *apikey.Key, args []any) error {
	res, err := db.ExecContext(ctx, s.q.update, append(args, k.Revision)...)
	if err != nil {
		return fmt.Errorf("sqlstore: update key %s: %w", k.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: update key %s: %w", k.ID, err)
	}
	if n == 1 {
		return nil
	}
	// Nothing matched: tell a missing key from a stale revision. Keys are
	// never deleted through the Store, so the answer cannot go stale.
	var one int
	switch err := db.QueryRowContext(ctx, s.q.exists, k.ID).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlstore: update key %s: %w", k.ID, err)
	}
	return apikey.ErrConflict
}

// Rotate implements apikey.Rotator: old is updated (with the same revision
// check as Update) and replacement created in one transaction, so a
// failure leaves neither.
func (s *Store) Rotate(ctx context.Context, old, replacement *apikey.Key) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	oldArgs, err := s.args(old)
	if err != nil {
		return err
	}
	newArgs, err := s.args(replacement)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx execer) error {
		if err := s.update(ctx, tx, old, oldArgs); err != nil {
			return err
		}
		return s.create(ctx, tx, replacement, newArgs)
	})
	if err != nil {
		return fmt.Errorf("sqlstore: rotate key %s: %w", old.ID, err)
	}
	old.Revision++
	replacement.Revision = 1
	return nil
}

// List implements apikey.Store.
func (s *Store) List(ctx context.Context, opts apikey.ListOptions) ([]*apikey.Key, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	if !validText(opts.Owner) || !validText(opts.Cursor) {
		return nil, "", fmt.Errorf("%w: sqlstore: owner and cursor must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	limit := opts.PageLimit()
	var rows *sql.Rows
	var err error
	if opts.Owner == "" {
		rows, err = s.db.QueryContext(ctx, s.q.list, opts.Cursor, limit+1)
	} else {
		rows, err = s.db.QueryContext(ctx, s.q.listOwner, opts.Owner, opts.Cursor, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: list keys: %w", err)
	}
	defer rows.Close()
	var (
		keys      []*apikey.Key
		corrupt   []string // IDs of rows that do not decode
		firstErr  error
		n         int    // rows read, corrupt ones included
		last      string // ID of the last row of the page
		morePages bool
	)
	for rows.Next() {
		if n++; n > limit {
			morePages = true
			break
		}
		k, err := s.scanKey(rows)
		switch {
		case errors.Is(err, apikey.ErrCorruptRecord):
			corrupt = append(corrupt, k.ID)
			if firstErr == nil {
				firstErr = err
			}
		case err != nil:
			return nil, "", fmt.Errorf("sqlstore: list keys: %w", err)
		default:
			keys = append(keys, k)
		}
		last = k.ID
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: list keys: %w", err)
	}
	next := ""
	if morePages {
		next = last
	}
	if len(corrupt) > 0 {
		return keys, next, fmt.Errorf("sqlstore: list keys: %d records do not decode (%s), first: %w",
			len(corrupt), strings.Join(corrupt, ", "), firstErr)
	}
	return keys, next, nil
}

// Revoke implements apikey.Revoker: RevokeWithReason with no reason.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time) error {
	return s.RevokeWithReason(ctx, id, at, "")
}

// RevokeWithReason implements apikey.ReasonRevoker: one UPDATE of
// revoked_at and revoked_reason alone, of a row not yet revoked, so that
// it works on a row whose other columns do not decode and the first
// revocation's reason stays.
func (s *Store) RevokeWithReason(ctx context.Context, id string, at time.Time, reason string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if !validText(id) {
		return apikey.ErrNotFound
	}
	if !validText(reason) {
		return fmt.Errorf("%w: sqlstore: key %s: revocation reason must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest, id)
	}
	if s.dialect == MySQL && len(reason) > mysqlMaxMediumText {
		return fmt.Errorf("%w: sqlstore: key %s: revocation reason over %d bytes on MySQL", apikey.ErrInvalidRequest, id, mysqlMaxMediumText)
	}
	res, err := s.db.ExecContext(ctx, s.q.revoke, id, s.timeArg(at), reason)
	if err != nil {
		return fmt.Errorf("sqlstore: revoke key %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: revoke key %s: %w", id, err)
	} else if n > 0 {
		return nil
	}
	// Already revoked, or no such key.
	var one int
	switch err := s.db.QueryRowContext(ctx, s.q.exists, id).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlstore: revoke key %s: %w", id, err)
	}
	return nil
}

// RecordLastUsed implements apikey.LastUsedRecorder with one UPDATE
// statement per batch. It only moves LastUsedAt forward, ignores unknown
// IDs, leaves Revision alone and, on PostgreSQL, sends no notification.
func (s *Store) RecordLastUsed(ctx context.Context, used map[string]time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(used) == 0 {
		return nil
	}
	batch := make([][2]any, 0, len(used))
	for id, at := range used {
		if !validText(id) || at.IsZero() {
			continue // no such key can exist
		}
		at = at.UTC().Truncate(time.Microsecond)
		switch s.dialect {
		case SQLite:
			batch = append(batch, [2]any{id, at.UnixMicro()})
		case MySQL:
			batch = append(batch, [2]any{id, at.Format(mysqlTime)})
		default:
			batch = append(batch, [2]any{id, at.Format(time.RFC3339Nano)})
		}
	}
	if len(batch) == 0 {
		return nil
	}
	var arg []byte
	var err error
	if s.dialect != Postgres {
		arg, err = json.Marshal(batch) // [["id", micros or "YYYY-MM-DD hh:mm:ss.ffffff"], ...]
	} else {
		objs := make([]map[string]any, len(batch))
		for i, b := range batch {
			objs[i] = map[string]any{"id": b[0], "at": b[1]}
		}
		arg, err = json.Marshal(objs) // [{"id": …, "at": "RFC 3339"}, ...]
	}
	if err != nil {
		return fmt.Errorf("sqlstore: record last use: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.lastUsed, string(arg)); err != nil {
		return fmt.Errorf("sqlstore: record last use: %w", err)
	}
	return nil
}

// validText reports whether s can be stored in a text column of both
// dialects: UTF-8 (PostgreSQL rejects anything else) without NUL bytes.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// args returns k's columns in insert order ($1 to $27).
func (s *Store) args(k *apikey.Key) ([]any, error) {
	for _, f := range []struct{ name, v string }{
		{"ID", k.ID}, {"Prefix", k.Prefix}, {"Owner", k.Owner}, {"Name", k.Name},
		{"DigestVersion", k.DigestVersion}, {"RotatedFrom", k.RotatedFrom}, {"ReplacedBy", k.ReplacedBy},
		{"RevokedReason", k.RevokedReason}, {"Lineage", k.Lineage},
	} {
		if !validText(f.v) {
			return nil, fmt.Errorf("%w: sqlstore: key %.40q: %s must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest, k.ID, f.name)
		}
	}
	if k.ID == "" {
		return nil, fmt.Errorf("%w: sqlstore: empty key ID", apikey.ErrInvalidRequest)
	}
	if s.dialect == MySQL {
		if err := mysqlFits(k); err != nil {
			return nil, err
		}
	}
	for _, sc := range k.Scopes {
		if !utf8.ValidString(sc) {
			return nil, fmt.Errorf("%w: sqlstore: key %s: scope is not UTF-8", apikey.ErrInvalidRequest, k.ID)
		}
	}
	for name, v := range k.Metadata {
		if !utf8.ValidString(name) || !utf8.ValidString(v) {
			// JSON would silently replace the bad bytes.
			return nil, fmt.Errorf("%w: sqlstore: key %s: metadata is not UTF-8", apikey.ErrInvalidRequest, k.ID)
		}
	}
	scopes, err := jsonOrNull(k.Scopes, k.Scopes == nil)
	if err != nil {
		return nil, err
	}
	ips, err := jsonOrNull(k.AllowedIPs, k.AllowedIPs == nil)
	if err != nil {
		return nil, err
	}
	meta, err := jsonOrNull(k.Metadata, k.Metadata == nil)
	if err != nil {
		return nil, err
	}
	digest := k.Digest
	if digest == nil {
		digest = []byte{}
	}
	return []any{
		k.ID, k.Prefix, k.Owner, k.Name, scopes, digest, k.DigestVersion,
		s.timeArg(k.CreatedAt), s.timeArg(k.ExpiresAt), s.timeArg(k.NotBefore),
		s.timeArg(k.RevokedAt), s.timeArg(k.SuspendedAt), s.timeArg(k.LastUsedAt),
		int64(k.RateLimit.Rate), int64(k.RateLimit.Period), int64(k.RateLimit.Burst),
		k.Quota.Limit, int64(k.Quota.Period),
		ips, meta, k.RotatedFrom, k.ReplacedBy, k.RevokedReason,
		// Schema version 7: Quota.Day, Key.Credits and Key.Lineage.
		int64(k.Quota.Day), k.Credits.Grant, int64(k.Credits.Period), int64(k.Credits.Day), k.Lineage,
	}, nil
}

// jsonOrNull encodes v as JSON text, or NULL when isNil, so that nil and
// empty slices and maps stay distinct.
func jsonOrNull(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode %T: %w", v, err)
	}
	return string(b), nil
}

// timeArg returns t as the dialect stores it: Unix microseconds on SQLite,
// a UTC time.Time on PostgreSQL, UTC DATETIME(6) text on MySQL (so that
// the driver's loc cannot shift it); NULL for the zero time. It truncates
// to microseconds, as PostgreSQL and MySQL would otherwise round.
func (s *Store) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	switch s.dialect {
	case SQLite:
		return t.UnixMicro()
	case MySQL:
		return t.Format(mysqlTime)
	}
	return t
}

// intCol scans an integer column into a field of a Key (an int, an int64
// or a time.Duration), converting what the driver returns as database/sql
// converts into an *int64; NULL is errBadColumn, as the columns are NOT
// NULL. It holds only a pointer, so that passing it to Scan as an any
// does not allocate, where a local int64 would.
type intCol[T ~int | ~int64] struct{ dst *T }

func (c intCol[T]) Scan(v any) error {
	var n sql.Null[int64]
	if err := n.Scan(v); err != nil {
		return fmt.Errorf("%w: %w", errBadColumn, err)
	}
	if !n.Valid {
		return fmt.Errorf("%w: NULL where an integer belongs", errBadColumn)
	}
	c.setInt(n.V)
	return nil
}

func (c intCol[T]) setInt(v int64) { *c.dst = T(v) }

// timeCol scans a time column of either dialect; NULL is the zero time.
// On SQLite the Store writes Unix microseconds, but it also reads the
// text an operator's hand-written UPDATE may leave there
// (CURRENT_TIMESTAMP, datetime('now'), RFC 3339), as UTC.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		c.setMicros(v)
	case time.Time:
		*c.t = v.UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("%w: cannot scan %T into a time", errBadColumn, v)
	}
	return nil
}

// setMicros sets the time to v Unix microseconds, as the store keeps it.
func (c timeCol) setMicros(v int64) { *c.t = time.UnixMicro(v).UTC() }

func (c timeCol) parse(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			*c.t = t.UTC().Truncate(time.Microsecond)
			return nil
		}
	}
	return fmt.Errorf("%w: cannot read %.40q as a time (want Unix microseconds)", errBadColumn, s)
}

// scanKey reads one row of the Store's get or list query: on a dialect
// with a record column, the key's ID, its record, and last_used_at, which
// the record leaves out; else the columns. The ID is read apart so that a
// row whose record does not decode is still named (List's error, and its
// cursor, need it).
func (s *Store) scanKey(row interface{ Scan(...any) error }) (*apikey.Key, error) {
	if !s.q.record {
		return scanKey(row)
	}
	var id string
	var rec sql.NullString
	var lastUsed any
	if err := row.Scan(&id, &rec, &lastUsed); err != nil {
		return nil, err
	}
	if !rec.Valid {
		return &apikey.Key{ID: id}, fmt.Errorf("%w: sqlstore: key %s: its row has no record (was it written with the triggers of schema version 9 dropped?)", apikey.ErrCorruptRecord, id)
	}
	k, err := keyFromRecord(rec.String)
	if err == nil && k.ID != id {
		err = fmt.Errorf("%w: the record is key %.40q's", errBadColumn, k.ID)
	}
	if err == nil {
		err = timeCol{&k.LastUsedAt}.Scan(lastUsed)
	}
	if err != nil {
		if !errors.Is(err, apikey.ErrCorruptRecord) {
			err = fmt.Errorf("%w: sqlstore: key %s: %w", apikey.ErrCorruptRecord, id, err)
		}
		return &apikey.Key{ID: id}, err
	}
	return k, nil
}

// scanKey reads one row of columns. A row that does not decode is an
// error wrapping apikey.ErrCorruptRecord, returned with a Key holding
// only the row's ID.
func scanKey(row interface{ Scan(...any) error }) (*apikey.Key, error) {
	k := new(apikey.Key)
	err := row.Scan(&k.ID, &k.Prefix, &k.Owner, &k.Name, jsonOf(&k.Scopes), &k.Digest, &k.DigestVersion,
		timeCol{&k.CreatedAt}, timeCol{&k.ExpiresAt}, timeCol{&k.NotBefore}, timeCol{&k.RevokedAt},
		timeCol{&k.SuspendedAt}, timeCol{&k.LastUsedAt},
		intCol[int]{&k.RateLimit.Rate}, intCol[time.Duration]{&k.RateLimit.Period}, intCol[int]{&k.RateLimit.Burst},
		intCol[int64]{&k.Quota.Limit}, intCol[time.Duration]{&k.Quota.Period},
		jsonOf(&k.AllowedIPs), jsonOf(&k.Metadata), &k.RotatedFrom, &k.ReplacedBy, &k.RevokedReason,
		intCol[int]{&k.Quota.Day}, intCol[int64]{&k.Credits.Grant}, intCol[time.Duration]{&k.Credits.Period},
		intCol[int]{&k.Credits.Day}, &k.Lineage, &k.Revision)
	if errors.Is(err, errBadColumn) {
		// Scan fills columns in order, so the ID, the first, is there.
		return &apikey.Key{ID: k.ID}, fmt.Errorf("%w: sqlstore: key %s: %w", apikey.ErrCorruptRecord, k.ID, err)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

var (
	_ apikey.Store            = (*Store)(nil)
	_ apikey.Rotator          = (*Store)(nil)
	_ apikey.Revoker          = (*Store)(nil)
	_ apikey.ReasonRevoker    = (*Store)(nil)
	_ apikey.EventClaimer     = (*Store)(nil)
	_ apikey.EventPruner      = (*Store)(nil)
	_ apikey.LastUsedRecorder = (*Store)(nil)
	_ apikey.Watcher          = (*Store)(nil)
)
