// Package sqlstore is an apikey.Store on database/sql, for SQLite (the
// embedded default: one process, or a few sharing a file) and PostgreSQL
// (many instances sharing one database).
//
// The package imports no driver: open a *sql.DB with the driver of your
// choice (modernc.org/sqlite, pure Go, or github.com/jackc/pgx/v5/stdlib)
// and pass it to New, or let package sqlopen do both from a DSN. Call
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
// pglisten); on SQLite by polling a change log that triggers maintain.
// Counter returns a quota counter on the same database.
//
// Only digests of keys are stored, never keys.
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
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return fmt.Sprintf("Dialect(%d)", uint8(d))
}

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNotMigrated reports a database whose schema is older than this
	// code (or absent): call Migrate.
	ErrNotMigrated = errors.New("sqlstore: database schema is not migrated (call Migrate)")

	// ErrSchemaTooNew reports a database migrated by a newer version of
	// this package. Nothing is written to it; upgrade the code.
	ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this code")

	// ErrNoNotifications is returned by Watch on PostgreSQL when the Store
	// was made without the WithNotifications option.
	ErrNoNotifications = errors.New("sqlstore: no PostgreSQL change notifications (Watch needs the WithNotifications option with a waiter for the driver, such as pglisten.Wait)")
)

// DefaultTablePrefix is the prefix of every table, trigger and
// notification channel the Store creates, unless WithTablePrefix says
// otherwise.
const DefaultTablePrefix = "apikey_"

// DefaultPollInterval is how often Watch reads the change log on SQLite,
// unless WithPollInterval says otherwise.
const DefaultPollInterval = 250 * time.Millisecond

// Option configures a Store in New. An Option that cannot apply its
// argument returns an error wrapping apikey.ErrInvalidRequest, which New
// returns.
type Option func(*config) error

type config struct {
	prefix       string
	wait         NotifyWaiter
	pollInterval time.Duration
	ownDB        bool
}

// WithTablePrefix sets the prefix of the Store's tables (prefix+"keys",
// prefix+"quota_usage", prefix+"schema_version", ...) and, on PostgreSQL,
// of its notification channel (prefix+"changes"). It must be 1 to 32
// characters of [a-z0-9_] not starting with a digit. The default is
// DefaultTablePrefix. Stores with different prefixes can share a
// database.
func WithTablePrefix(prefix string) Option {
	return func(c *config) error {
		if !validPrefix(prefix) {
			return fmt.Errorf("%w: sqlstore: WithTablePrefix(%q): want 1 to 32 characters of [a-z0-9_], not starting with a digit", apikey.ErrInvalidRequest, prefix)
		}
		c.prefix = prefix
		return nil
	}
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > 32 || ('0' <= p[0] && p[0] <= '9') {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// WithNotifications gives a PostgreSQL Store the driver-specific half of
// Watch: wait blocks on a connection that is listening for the next
// notification. Package pglisten provides one for pgx (pglisten.Wait).
// Without it, Watch on PostgreSQL returns ErrNoNotifications and Managers
// see changes made elsewhere only when their cache entries expire. It has
// no effect on SQLite. wait must not be nil.
func WithNotifications(wait NotifyWaiter) Option {
	return func(c *config) error {
		if wait == nil {
			return fmt.Errorf("%w: sqlstore: WithNotifications(nil)", apikey.ErrInvalidRequest)
		}
		c.wait = wait
		return nil
	}
}

// WithPollInterval sets how often Watch reads the change log on SQLite
// (default DefaultPollInterval); d must be positive. It has no effect on
// PostgreSQL, where changes are pushed.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: sqlstore: WithPollInterval(%v): want > 0", apikey.ErrInvalidRequest, d)
		}
		c.pollInterval = d
		return nil
	}
}

// WithCloseDB makes Close close the *sql.DB as well. Helpers that open the
// database for you (sqlopen.Open) set it; by default the caller owns db.
func WithCloseDB() Option {
	return func(c *config) error {
		c.ownDB = true
		return nil
	}
}

// Store is an apikey.Store in a SQL database. It also implements
// apikey.Rotator, apikey.LastUsedRecorder and apikey.Watcher. A Store is
// safe for concurrent use; it holds no connection of its own apart from
// the one Watch uses while it runs on PostgreSQL.
type Store struct {
	db      *sql.DB
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
func New(db *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: sqlstore: nil *sql.DB", apikey.ErrInvalidRequest)
	}
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("%w: sqlstore: unknown dialect %v: want sqlstore.SQLite or sqlstore.Postgres", apikey.ErrInvalidRequest, dialect)
	}
	cfg := config{prefix: DefaultTablePrefix, pollInterval: DefaultPollInterval}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: sqlstore: option %d is nil", apikey.ErrInvalidRequest, i)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	return &Store{db: db, dialect: dialect, cfg: cfg, q: buildQueries(dialect, cfg.prefix)}, nil
}

// DB returns the database the Store uses.
func (s *Store) DB() *sql.DB { return s.db }

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

// columns lists the keys table's columns in the order scanKey reads them.
const columns = `id, prefix, owner, name, scopes, digest, digest_version,
	created_at, expires_at, not_before, revoked_at, last_used_at,
	rate_limit_rate, rate_limit_period_ns, rate_limit_burst, quota_limit, quota_period_ns,
	allowed_ips, metadata, rotated_from, replaced_by, revision`

// queries are built once per Store, for its dialect and table prefix.
type queries struct {
	get, exists, insert, update       string
	list, listOwner                   string
	lastUsed                          string
	quotaAdd, quotaGet, quotaCleanup  string
	changesMax, changesSince          string
	tableExists, schemaVersion        string
	createVersionTable, insertVersion string
}

func buildQueries(d Dialect, p string) queries {
	t := p + "keys"
	q := queries{
		get:    `SELECT ` + columns + ` FROM ` + t + ` WHERE id = $1`,
		exists: `SELECT 1 FROM ` + t + ` WHERE id = $1`,
		// ON CONFLICT DO NOTHING, not a constraint error: drivers report
		// those differently, and RowsAffected says the same portably.
		insert: `INSERT INTO ` + t + ` (` + columns + `) VALUES
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 1)
			ON CONFLICT (id) DO NOTHING`,
		update: `UPDATE ` + t + ` SET prefix = $2, owner = $3, name = $4, scopes = $5,
			digest = $6, digest_version = $7, created_at = $8, expires_at = $9, not_before = $10,
			revoked_at = $11, last_used_at = $12, rate_limit_rate = $13, rate_limit_period_ns = $14,
			rate_limit_burst = $15, quota_limit = $16, quota_period_ns = $17, allowed_ips = $18,
			metadata = $19, rotated_from = $20, replaced_by = $21, revision = revision + 1
			WHERE id = $1 AND revision = $22`,
		// Cursor pagination on the primary key or the (owner, id) index;
		// one row more than the page tells whether another page follows.
		list:      `SELECT ` + columns + ` FROM ` + t + ` WHERE id > $1 ORDER BY id LIMIT $2`,
		listOwner: `SELECT ` + columns + ` FROM ` + t + ` WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3`,

		quotaGet:     `SELECT used FROM ` + p + `quota_usage WHERE counter_key = $1 AND window_start = $2`,
		quotaCleanup: `DELETE FROM ` + p + `quota_usage WHERE window_end <= $1`,
		// INSERT … SELECT … WHERE refuses a first add larger than the
		// limit; the DO UPDATE … WHERE refuses one that would pass it. A
		// refused add returns no row and writes nothing.
		quotaAdd: `INSERT INTO ` + p + `quota_usage AS u (counter_key, window_start, window_end, used)
			SELECT $1, $2, $3, $4 WHERE $4 <= $5
			ON CONFLICT (counter_key, window_start) DO UPDATE SET used = u.used + excluded.used
			WHERE u.used + excluded.used <= $5
			RETURNING used`,
		insertVersion: `INSERT INTO ` + p + `schema_version (version) VALUES ($1)`,
		schemaVersion: `SELECT COALESCE(MAX(version), 0) FROM ` + p + `schema_version`,
	}
	switch d {
	case SQLite:
		q.lastUsed = `UPDATE ` + t + ` AS k SET last_used_at = u.at
			FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at FROM json_each(?1)) AS u
			WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`
		q.changesMax = `SELECT COALESCE(MAX(seq), 0) FROM ` + p + `changes`
		q.changesSince = `SELECT seq, id FROM ` + p + `changes WHERE seq > $1 ORDER BY seq LIMIT 1000`
		q.tableExists = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
		q.createVersionTable = `CREATE TABLE IF NOT EXISTS ` + p + `schema_version (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`
		for _, s := range []*string{&q.get, &q.exists, &q.insert, &q.update, &q.list, &q.listOwner,
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
		// Parameters in a SELECT list would otherwise be typed text.
		q.quotaAdd = strings.NewReplacer("SELECT $1, $2, $3, $4 WHERE $4 <= $5", "SELECT $1::text, $2::bigint, $3::bigint, $4::bigint WHERE $4::bigint <= $5::bigint",
			"<= $5\n", "<= $5::bigint\n").Replace(q.quotaAdd)
		q.tableExists = `SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = $1`
		q.createVersionTable = `CREATE TABLE IF NOT EXISTS ` + p + `schema_version (
			version    integer NOT NULL PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`
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
	res, err := db.ExecContext(ctx, s.q.insert, args[:21]...)
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
	k, err := scanKey(stmt.QueryRowContext(ctx, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, apikey.ErrNotFound
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
	var keys []*apikey.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlstore: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: list keys: %w", err)
	}
	if len(keys) > limit {
		return keys[:limit], keys[limit-1].ID, nil
	}
	return keys, "", nil
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
		if s.dialect == SQLite {
			batch = append(batch, [2]any{id, at.UnixMicro()})
		} else {
			batch = append(batch, [2]any{id, at.Format(time.RFC3339Nano)})
		}
	}
	if len(batch) == 0 {
		return nil
	}
	var arg []byte
	var err error
	if s.dialect == SQLite {
		arg, err = json.Marshal(batch) // [["id", micros], ...]
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

// args returns k's columns in insert order ($1 to $21).
func (s *Store) args(k *apikey.Key) ([]any, error) {
	for _, f := range []struct{ name, v string }{
		{"ID", k.ID}, {"Prefix", k.Prefix}, {"Owner", k.Owner}, {"Name", k.Name},
		{"DigestVersion", k.DigestVersion}, {"RotatedFrom", k.RotatedFrom}, {"ReplacedBy", k.ReplacedBy},
	} {
		if !validText(f.v) {
			return nil, fmt.Errorf("%w: sqlstore: key %.40q: %s must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest, k.ID, f.name)
		}
	}
	if k.ID == "" {
		return nil, fmt.Errorf("%w: sqlstore: empty key ID", apikey.ErrInvalidRequest)
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
		s.timeArg(k.RevokedAt), s.timeArg(k.LastUsedAt),
		int64(k.RateLimit.Rate), int64(k.RateLimit.Period), int64(k.RateLimit.Burst),
		k.Quota.Limit, int64(k.Quota.Period),
		ips, meta, k.RotatedFrom, k.ReplacedBy,
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
// a UTC time.Time on PostgreSQL; NULL for the zero time. It truncates to
// microseconds, as PostgreSQL would otherwise round.
func (s *Store) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if s.dialect == SQLite {
		return t.UnixMicro()
	}
	return t
}

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
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	return nil
}

func (c timeCol) parse(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			*c.t = t.UTC().Truncate(time.Microsecond)
			return nil
		}
	}
	return fmt.Errorf("sqlstore: cannot read %.40q as a time (want Unix microseconds)", s)
}

// scanKey reads one row of columns.
func scanKey(row interface{ Scan(...any) error }) (*apikey.Key, error) {
	var (
		k                       apikey.Key
		rate, period, burst     int64
		quotaLimit, quotaPeriod int64
	)
	err := row.Scan(&k.ID, &k.Prefix, &k.Owner, &k.Name, jsonCol{&k.Scopes}, &k.Digest, &k.DigestVersion,
		timeCol{&k.CreatedAt}, timeCol{&k.ExpiresAt}, timeCol{&k.NotBefore}, timeCol{&k.RevokedAt}, timeCol{&k.LastUsedAt},
		&rate, &period, &burst, &quotaLimit, &quotaPeriod,
		jsonCol{&k.AllowedIPs}, jsonCol{&k.Metadata}, &k.RotatedFrom, &k.ReplacedBy, &k.Revision)
	if err != nil {
		return nil, err
	}
	k.RateLimit = apikey.Limit{Rate: int(rate), Period: time.Duration(period), Burst: int(burst)}
	k.Quota = apikey.Quota{Limit: quotaLimit, Period: time.Duration(quotaPeriod)}
	return &k, nil
}

var (
	_ apikey.Store            = (*Store)(nil)
	_ apikey.Rotator          = (*Store)(nil)
	_ apikey.LastUsedRecorder = (*Store)(nil)
	_ apikey.Watcher          = (*Store)(nil)
)
