package sqlopen_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

func TestOpenRejects(t *testing.T) {
	tests := []struct{ name, dsn string }{
		{"empty", ""},
		{"no scheme", "keys.db"},
		{"unknown scheme", "oracle://user:hunter2@host/db"},
		{"mysql without database", "mysql://user:hunter2@db.internal:3306"},
		{"mysql without database name", "mysql://user:hunter2@db.internal:3306/"},
		{"mysql without host", "mysql://user:hunter2@/acme"},
		{"mysql host and socket", "mysql://user:hunter2@db/acme?socket=/run/mysqld/mysqld.sock"},
		{"mysql found rows", "mysql://user:hunter2@db/acme?clientFoundRows=true"},
		{"mysql bad option", "mariadb://user:hunter2@db/acme?parseTime=sometimes"},
		{"mysql bad port", "mysql://user:hunter2@db:notaport/acme"},
		{"mysql opaque", "mysql:user:hunter2@db/acme"},
		{"sqlite without path", "sqlite:"},
		{"file without path", "file:"},
		{"bad port", "postgres://user:hunter2@localhost:notaport/db"},
		{"bad escape", "postgres://user:hunter2@localhost/db%zz"},
		{"bad option", "postgres://user:hunter2@localhost/db?sslmode=sometimes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sqlopen.Open(context.Background(), tt.dsn)
			if !errors.Is(err, sqlopen.ErrBadDSN) || st != nil {
				t.Fatalf("Open(%q) = %v, %v; want ErrBadDSN", tt.dsn, st, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q repeats the password", err)
			}
		})
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	st, err := sqlopen.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dialect() != sqlstore.SQLite {
		t.Fatalf("dialect %v", st.Dialect())
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var mode string
	var timeout int
	if err := st.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q (%v), want wal", mode, err)
	}
	if err := st.DB().QueryRow("PRAGMA busy_timeout").Scan(&timeout); err != nil || timeout != 10000 {
		t.Fatalf("busy_timeout %d (%v), want 10000", timeout, err)
	}
	roundTrip(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().Ping(); err == nil {
		t.Fatal("Close did not close the database")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}

	// file: DSNs keep their own parameters, which win over the defaults.
	st, err = sqlopen.Open(ctx, "file:"+path+"?_pragma=busy_timeout(1234)")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.DB().QueryRow("PRAGMA busy_timeout").Scan(&timeout); err != nil || timeout != 1234 {
		t.Fatalf("busy_timeout %d (%v), want 1234", timeout, err)
	}
}

func TestOpenPostgres(t *testing.T) {
	dsn := os.Getenv("APIKEY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set: no PostgreSQL to test against (source .ci/services.sh; start_postgres)")
	}
	ctx := context.Background()
	prefix := sqlstore.WithTablePrefix("sqlopen_test_")
	st, err := sqlopen.Open(ctx, dsn, prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the tables go before the Store closes.
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() {
		for _, tbl := range []string{"keys", "quota_usage", "vault_secrets", "schema_version", "legacy_keys", "event_claims", "usage", "credits"} {
			if _, err := st.DB().Exec("DROP TABLE IF EXISTS sqlopen_test_" + tbl + " CASCADE"); err != nil {
				t.Errorf("drop %s: %v", tbl, err)
			}
		}
		for _, fn := range []string{"notify_change", "delete_claims", "keys_record"} {
			if _, err := st.DB().Exec("DROP FUNCTION IF EXISTS sqlopen_test_" + fn + "() CASCADE"); err != nil {
				t.Errorf("drop %s(): %v", fn, err)
			}
		}
	})
	if st.Dialect() != sqlstore.Postgres {
		t.Fatalf("dialect %v", st.Dialect())
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, st)
	// Notifications are wired: Watch starts instead of failing.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	started := make(chan struct{}, 1)
	go st.Watch(wctx, func(id string) {
		if id == "" {
			select {
			case started <- struct{}{}:
			default:
			}
		}
	})
	select {
	case <-started:
	case <-wctx.Done():
		t.Fatal("Watch did not start")
	}
}

// TestOpenMySQL opens APIKEY_TEST_MYSQL, a mysql:// URL, and checks the
// settings Open adds: UTC sessions, parseTime, changed rows.
func TestOpenMySQL(t *testing.T) {
	dsn := os.Getenv("APIKEY_TEST_MYSQL")
	if dsn == "" {
		t.Skip("APIKEY_TEST_MYSQL is not set: no MySQL or MariaDB to test against (source .ci/services.sh; start_mariadb)")
	}
	ctx := context.Background()
	st, err := sqlopen.Open(ctx, dsn, sqlstore.WithTablePrefix("sqlopen_test_"))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the tables go before the Store closes.
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() {
		// legacy_keys first: it refers to keys.
		for _, tbl := range []string{"legacy_keys", "keys", "changes", "changes_seq", "quota_usage", "vault_secrets", "schema_version", "event_claims", "usage", "credits"} {
			if _, err := st.DB().Exec("DROP TABLE IF EXISTS sqlopen_test_" + tbl); err != nil {
				t.Errorf("drop %s: %v", tbl, err)
			}
		}
	})
	if st.Dialect() != sqlstore.MySQL {
		t.Fatalf("dialect %v", st.Dialect())
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var tz string
	if err := st.DB().QueryRow("SELECT @@SESSION.time_zone").Scan(&tz); err != nil || tz != "+00:00" {
		t.Fatalf("time_zone %q (%v), want +00:00", tz, err)
	}
	var now time.Time // parseTime=true: a DATETIME scans into a time.Time
	if err := st.DB().QueryRow("SELECT NOW(6)").Scan(&now); err != nil || now.Location() != time.UTC || time.Since(now).Abs() > time.Minute {
		t.Fatalf("NOW(6) = %v (%v), want the time in UTC", now, err)
	}
	if got := st.DB().Stats().MaxOpenConnections; got != sqlopen.DefaultMaxOpenConns {
		t.Fatalf("MaxOpenConnections = %d, want %d", got, sqlopen.DefaultMaxOpenConns)
	}
	roundTrip(t, st)
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sqlopen.Open(ctx, "postgres://postgres:hunter2@127.0.0.1:1/postgres?sslmode=disable")
	if err == nil || errors.Is(err, sqlopen.ErrBadDSN) {
		t.Fatalf("Open of an unreachable server: %v; want a connection error", err)
	}
	_, err = sqlopen.Open(ctx, "mysql://root:hunter2@127.0.0.1:1/acme?timeout=2s")
	if err == nil || errors.Is(err, sqlopen.ErrBadDSN) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open of an unreachable MySQL server: %v; want a connection error without the password", err)
	}
	_, err = sqlopen.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "no", "such", "dir", "keys.db"))
	if err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

func roundTrip(t *testing.T, st *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", []byte("sqlopen-test-pepper-0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, secret.Reveal()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenKeepsIdleConnections: connections that served a burst of
// concurrent requests stay open for the next one, up to DefaultMaxIdleConns,
// instead of database/sql's default of 2.
func TestOpenKeepsIdleConnections(t *testing.T) {
	ctx := context.Background()
	st, err := sqlopen.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const burst = 10
	var conns []*sql.Conn
	for range burst {
		c, err := st.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	if idle := st.DB().Stats().Idle; idle != burst {
		t.Errorf("%d idle connections after a burst of %d, want %d", idle, burst, burst)
	}
}

// TestOpenBoundsConnections: with the database paused, a flood of cache
// misses used to open one PostgreSQL connection each (item 6 of issue
// 12). Open bounds the pool, on PostgreSQL and SQLite alike.
func TestOpenBoundsConnections(t *testing.T) {
	ctx := context.Background()
	dsns := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "bound.db")}
	if pg := os.Getenv("APIKEY_TEST_POSTGRES"); pg != "" {
		dsns["postgres"] = pg
	} else {
		t.Log("APIKEY_TEST_POSTGRES is not set: PostgreSQL not tested")
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			st, err := sqlopen.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := st.DB().Stats().MaxOpenConnections; got != sqlopen.DefaultMaxOpenConns {
				t.Fatalf("MaxOpenConnections = %d, want %d", got, sqlopen.DefaultMaxOpenConns)
			}
		})
	}
}
