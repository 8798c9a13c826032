package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// backends returns SQLite, and PostgreSQL when APIKEY_TEST_POSTGRES is set.
// Tests that need PostgreSQL and find it unset are skipped with a message.
func backends() []backend {
	return []backend{
		{"sqlite", sqlstore.SQLite, openSQLite},
		{"postgres", sqlstore.Postgres, openPostgres},
	}
}

// need skips t if b's server is not available.
func need(t testing.TB, b backend) {
	t.Helper()
	if b.dialect == sqlstore.Postgres && os.Getenv("APIKEY_TEST_POSTGRES") == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to test against (source .ci/services.sh; start_postgres)")
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
