// Package sqlopen opens a sqlstore.Store from a DSN, with the drivers
// linked in: modernc.org/sqlite (pure Go), github.com/jackc/pgx/v5 and
// github.com/go-sql-driver/mysql. It is what the apikey command and the
// examples use; import sqlstore alone to bring your own driver or *sql.DB.
package sqlopen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	_ "modernc.org/sqlite"             // registers driver "sqlite"

	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/pglisten"
)

// The pool that Open sets up. database/sql keeps only 2 idle connections
// by default, so a server verifying keys on more goroutines than that
// would open, and PostgreSQL fork, a new connection for most requests
// that miss the Manager's cache (BENCHMARKS.md measures the difference).
// And it opens as many as are asked for: a flood of made-up keys while
// the database is slow would open one per request, up to the server's
// max_connections, so Open bounds them; requests beyond the bound wait
// for a connection, within their own deadline. Change them with
// Store.DB().
const (
	DefaultMaxOpenConns    = 32
	DefaultMaxIdleConns    = 16
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// ErrBadDSN reports a DSN that Open cannot use. The error never repeats
// the DSN, which may hold a password.
var ErrBadDSN = errors.New("apikey: sqlopen: bad DSN")

// sqlitePragmas are set on every SQLite connection unless the DSN sets
// them itself: WAL lets readers run beside the writer, the busy timeout
// makes writers queue instead of failing with SQLITE_BUSY, and
// synchronous=NORMAL is durable in WAL mode except for the last
// transactions before a power loss.
var sqlitePragmas = []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"}

// Open opens the database named by dsn, checks that it answers, and
// returns a Store on it whose Close closes the database. It does not
// migrate: call Migrate. The forms of dsn are
//
//	sqlite:PATH          a SQLite file, created if missing (WAL mode, 10 s busy timeout, synchronous=NORMAL)
//	file:PATH[?query]    the same, with modernc.org/sqlite's query parameters
//	postgres://… or postgresql://…   a PostgreSQL URL, as pgx reads it
//	mysql://… or mariadb://…         a MySQL or MariaDB URL: mysql://USER:PASSWORD@HOST:PORT/DATABASE?PARAMS
//
// A MySQL URL's PARAMS are github.com/go-sql-driver/mysql's (tls=true,
// timeout=5s, …) or system variables to set on each connection; a
// ?socket=PATH without a host connects through a Unix socket. Open reads
// times as UTC (loc=UTC, parseTime=true), sets the session's time_zone to
// '+00:00' unless PARAMS set it, and refuses clientFoundRows=true, which
// the Store cannot work with.
//
// A PostgreSQL Store pushes changes to every Manager with LISTEN/NOTIFY
// (pglisten.Wait); Watch holds one connection of the pool while it runs.
// SQLite and MySQL Stores poll a change log instead.
// The pool opens at most DefaultMaxOpenConns connections and keeps
// DefaultMaxIdleConns of them idle for DefaultConnMaxIdleTime. opts are
// passed to sqlstore.New. A DSN of another form, or one that does not
// parse, fails with an error wrapping ErrBadDSN.
func Open(ctx context.Context, dsn string, opts ...sqlstore.Option) (*sqlstore.Store, error) {
	driver, source, dialect, err := parse(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, fmt.Errorf("sqlopen: open %s database: %w", dialect, err)
	}
	if dialect == sqlstore.SQLite && strings.Contains(source, ":memory:") {
		// Every connection to :memory: is a database of its own.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(DefaultMaxOpenConns)
		db.SetMaxIdleConns(DefaultMaxIdleConns)
		db.SetConnMaxIdleTime(DefaultConnMaxIdleTime)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlopen: connect to %s database: %w", dialect, err)
	}
	// The defaults go first, so that the caller's opts override them.
	defaults := []sqlstore.Option{sqlstore.WithCloseDB()}
	if dialect == sqlstore.Postgres {
		defaults = append(defaults, sqlstore.WithNotifications(pglisten.Wait))
	}
	opts = append(defaults, opts...)
	st, err := sqlstore.New(db, dialect, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

// parse maps dsn to a driver name and its data source name.
func parse(dsn string) (driver, source string, dialect sqlstore.Dialect, err error) {
	scheme, rest, ok := strings.Cut(dsn, ":")
	if !ok {
		return "", "", 0, fmt.Errorf("%w: want sqlite:PATH, file:PATH, or a postgres:// or mysql:// URL", ErrBadDSN)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		if rest == "" {
			return "", "", 0, fmt.Errorf("%w: sqlite: needs a path (sqlite:PATH)", ErrBadDSN)
		}
		return "sqlite", withPragmas("file:" + rest), sqlstore.SQLite, nil
	case "file":
		if rest == "" {
			return "", "", 0, fmt.Errorf("%w: file: needs a path", ErrBadDSN)
		}
		// "file:" in lower case, whatever the DSN's, or the driver would
		// take "File:x" for a file of that name.
		return "sqlite", withPragmas("file:" + rest), sqlstore.SQLite, nil
	case "postgres", "postgresql":
		if _, err := url.Parse(dsn); err != nil {
			return "", "", 0, fmt.Errorf("%w: PostgreSQL URL does not parse", ErrBadDSN)
		}
		if _, err := pgx.ParseConfig(dsn); err != nil {
			// pgx's message may quote the DSN, password included.
			return "", "", 0, fmt.Errorf("%w: PostgreSQL URL does not parse", ErrBadDSN)
		}
		return "pgx", dsn, sqlstore.Postgres, nil
	case "mysql", "mariadb":
		cfg, err := parseMySQL(dsn)
		if err != nil {
			return "", "", 0, err
		}
		return "mysql", cfg.FormatDSN(), sqlstore.MySQL, nil
	}
	return "", "", 0, fmt.Errorf("%w: unknown scheme %.20q: want sqlite:PATH, file:PATH, or a postgres:// or mysql:// URL", ErrBadDSN, scheme)
}

// withPragmas adds the default pragmas that the DSN does not set itself.
func withPragmas(source string) string {
	path, query, _ := strings.Cut(source, "?")
	given, _ := url.ParseQuery(query)
	var add []string
	for _, p := range sqlitePragmas {
		name, _, _ := strings.Cut(p, "(")
		if !slices.ContainsFunc(given["_pragma"], func(v string) bool {
			return strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), name)
		}) {
			add = append(add, "_pragma="+p)
		}
	}
	if query != "" {
		add = append(add, query)
	}
	return path + "?" + strings.Join(add, "&")
}
