package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/pglisten"
)

var testPepper = []byte("sqlstore-test-pepper-0123456789abcdef")

// backend opens fresh, unmigrated databases of one dialect. open returns
// a new *sql.DB on a fresh database; reopen returns another *sql.DB on the
// same database, as a second process would have.
type backend struct {
	name    string
	dialect sqlstore.Dialect
	open    func(t testing.TB) (db *sql.DB, reopen func() *sql.DB)
}

// backends returns SQLite, PostgreSQL and MySQL (MariaDB in CI); tests on
// PostgreSQL and MySQL are skipped with a message unless
// APIKEY_TEST_POSTGRES or APIKEY_TEST_MYSQL is set. The order is fixed:
// backends()[1] is PostgreSQL, backends()[2] MySQL.
func backends() []backend {
	return []backend{
		{"sqlite", sqlstore.SQLite, openSQLite},
		{"postgres", sqlstore.Postgres, openPostgres},
		{"mysql", sqlstore.MySQL, openMySQL},
	}
}

// need skips t if b's server is not available.
func need(t testing.TB, b backend) {
	t.Helper()
	if b.dialect == sqlstore.Postgres && os.Getenv("APIKEY_TEST_POSTGRES") == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to test against (source .ci/services.sh; start_postgres)")
	}
	if b.dialect == sqlstore.MySQL && os.Getenv("APIKEY_TEST_MYSQL") == "" {
		t.Skip("APIKEY_TEST_MYSQL is not set: no MySQL or MariaDB to test against (source .ci/services.sh; start_mariadb)")
	}
}

// sqliteDSN is how the tests open SQLite: WAL mode and a busy timeout, as
// sqlopen does.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

func openSQLite(t testing.TB) (*sql.DB, func() *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	reopen := func() *sql.DB {
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		// One connection first, as sqlopen.Open does: on a new file, the
		// first connection switches it to WAL, and two connections doing
		// that at once (a Manager's Watch and a Verify, say) can get
		// SQLITE_BUSY at once, without waiting out the busy timeout.
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		return db
	}
	return reopen(), reopen
}

// openPostgres creates a schema of its own on the test server, dropped at
// cleanup, and opens connections whose search_path is that schema.
func openPostgres(t testing.TB) (*sql.DB, func() *sql.DB) {
	t.Helper()
	dsn := os.Getenv("APIKEY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to test against (source .ci/services.sh; start_postgres)")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := "t_" + randomHex(8)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema (is APIKEY_TEST_POSTGRES right?): %v", err)
	}
	t.Cleanup(func() {
		// Registered first, so it runs after every *sql.DB below closed.
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	reopen := func() *sql.DB {
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return reopen(), reopen
}

// mysqlConfig reads APIKEY_TEST_MYSQL, a mysql://USER[:PASSWORD]@HOST:PORT/DB
// URL as sqlopen.Open reads it, into the driver's configuration, with the
// settings sqlopen sets.
func mysqlConfig(t testing.TB) *mysql.Config {
	t.Helper()
	dsn := os.Getenv("APIKEY_TEST_MYSQL")
	if dsn == "" {
		t.Skip("APIKEY_TEST_MYSQL is not set: no MySQL or MariaDB to test against (source .ci/services.sh; start_mariadb)")
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		t.Fatal("APIKEY_TEST_MYSQL: want mysql://USER[:PASSWORD]@HOST:PORT/DATABASE")
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, u.Path[min(1, len(u.Path)):]
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.ParseTime, cfg.Loc = true, time.UTC
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	return cfg
}

// openMySQL creates a database of its own on the test server, dropped at
// cleanup, and opens connections to it.
func openMySQL(t testing.TB) (*sql.DB, func() *sql.DB) {
	t.Helper()
	cfg := mysqlConfig(t)
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	name := "t_" + randomHex(8)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create database (is APIKEY_TEST_MYSQL right?): %v", err)
	}
	t.Cleanup(func() {
		// Registered first, so it runs after every *sql.DB below closed.
		admin.Exec("DROP DATABASE " + name)
		admin.Close()
	})
	cfg.DBName = name
	reopen := func() *sql.DB {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return reopen(), reopen
}

// dialectSQL turns a test's $1, $2, … into ?1, ?2, … for SQLite and into
// ?, ?, … for MySQL, where the $N must come in order.
func dialectSQL(d sqlstore.Dialect, q string) string {
	for i := 9; i >= 1; i-- {
		switch d {
		case sqlstore.SQLite:
			q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), fmt.Sprintf("?%d", i))
		case sqlstore.MySQL:
			q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), "?")
		}
	}
	return q
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newStore returns a migrated Store on db.
func newStore(t testing.TB, db *sql.DB, d sqlstore.Dialect, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	if d == sqlstore.Postgres {
		opts = append(opts, sqlstore.WithNotifications(pglisten.Wait))
	}
	st, err := sqlstore.New(db, d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// undoVersions runs qs, which undo the schema from version on, and
// forgets those versions, so that the next Migrate applies them again.
func undoVersions(t testing.TB, db *sql.DB, version int, qs ...string) {
	t.Helper()
	for _, q := range append(qs, fmt.Sprintf("DELETE FROM apikey_schema_version WHERE version >= %d", version)) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
}

// migrateAgain opens a second Store on a database that undoVersions (or
// a test's own undoing) took back to an older schema, as a newer release
// of the library would, checks that it refuses to read key id
// (sqlstore.ErrNotMigrated), and migrates it.
func migrateAgain(t *testing.T, b backend, reopen func() *sql.DB, id string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.New(reopen(), b.dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, id); !errors.Is(err, sqlstore.ErrNotMigrated) {
		t.Fatalf("Get(%s) before migrating: %v, want ErrNotMigrated", id, err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// newManager returns a Manager over st with a 10-minute cache, closed at
// cleanup.
func newManager(t testing.TB, st apikey.Store, opts ...apikey.Option) *apikey.Manager {
	t.Helper()
	opts = append([]apikey.Option{
		apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", testPepper),
		apikey.WithCache(1000, 10*time.Minute),
	}, opts...)
	m, err := apikey.NewManager(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// eventually polls cond every 10 ms until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// mysqlDump returns every column of every row of every table in the
// MySQL test database, as the server sends them (binary columns as they
// are stored).
func mysqlDump(t *testing.T, db *sql.DB) []byte {
	t.Helper()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 3 {
		t.Fatalf("found only tables %q", tables)
	}
	var out []byte
	for _, tbl := range tables {
		rows, err := db.Query(`SELECT * FROM ` + tbl)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				out = append(append(out, v...), '\n')
			}
		}
		rows.Close()
	}
	return out
}
