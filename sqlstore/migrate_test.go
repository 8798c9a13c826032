package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

func tableExists(t *testing.T, db *sql.DB, d sqlstore.Dialect, name string) bool {
	t.Helper()
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	switch d {
	case sqlstore.Postgres:
		q = `SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`
	case sqlstore.MySQL:
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`
	}
	var n int
	if err := db.QueryRow(q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestNotMigrated: a Store used before Migrate fails clearly, and works
// once any process has migrated.
func TestNotMigrated(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st, err := sqlstore.New(db, b.dialect)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, "abc"); !errors.Is(err, sqlstore.ErrNotMigrated) {
				t.Fatalf("Get before Migrate: %v, want ErrNotMigrated", err)
			}
			if err := st.Create(ctx, &apikey.Key{ID: "abc", Digest: []byte{1}}); !errors.Is(err, sqlstore.ErrNotMigrated) {
				t.Fatalf("Create before Migrate: %v, want ErrNotMigrated", err)
			}
			if _, err := st.Counter().Add(ctx, "k", apikey.Quota{Limit: 1, Period: 1e9}, 1); !errors.Is(err, sqlstore.ErrNotMigrated) {
				t.Fatalf("Counter.Add before Migrate: %v, want ErrNotMigrated", err)
			}
			// Another process migrates; this Store then works.
			newStore(t, reopen(), b.dialect)
			if _, err := st.Get(ctx, "abc"); !errors.Is(err, apikey.ErrNotFound) {
				t.Fatalf("Get after Migrate elsewhere: %v, want ErrNotFound", err)
			}
			// Migrating again is a no-op.
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
		})
	}
}

// TestSchemaTooNew: a database from newer code is refused and not
// written to, by Migrate and by every method.
func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			if _, err := db.Exec(`CREATE TABLE apikey_schema_version (version INTEGER NOT NULL PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO apikey_schema_version (version) VALUES (999)`); err != nil {
				t.Fatal(err)
			}
			st, err := sqlstore.New(db, b.dialect)
			if err != nil {
				t.Fatal(err)
			}
			err = st.Migrate(ctx)
			if !errors.Is(err, sqlstore.ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") {
				t.Fatalf("Migrate on a newer schema: %v, want ErrSchemaTooNew naming version 999", err)
			}
			if tableExists(t, db, b.dialect, "apikey_keys") {
				t.Fatal("Migrate on a newer schema created tables")
			}
			var n int
			if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_schema_version`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("schema_version has %d rows (%v), want the 1 it had", n, err)
			}
			if _, err := st.Get(ctx, "abc"); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
				t.Fatalf("Get on a newer schema: %v, want ErrSchemaTooNew", err)
			}
		})
	}
}

// TestMigrateConcurrently: several processes (here, *sql.DB handles)
// migrating one database at once all succeed, and the migration is
// applied once.
func TestMigrateConcurrently(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			const n = 6
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				st, err := sqlstore.New(reopen(), b.dialect)
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- st.Migrate(context.Background())
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent Migrate: %v", err)
				}
			}
			var rows, max int
			if err := db.QueryRow(`SELECT COUNT(*), MAX(version) FROM apikey_schema_version`).Scan(&rows, &max); err != nil {
				t.Fatal(err)
			}
			if rows != sqlstore.SchemaVersion || max != sqlstore.SchemaVersion {
				t.Fatalf("schema_version: %d rows, max %d; want %d", rows, max, sqlstore.SchemaVersion)
			}
		})
	}
}

// TestWithTablePrefix: two Stores with different prefixes share a database
// without seeing each other's keys.
func TestWithTablePrefix(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			a := newStore(t, db, b.dialect)
			other := newStore(t, db, b.dialect, sqlstore.WithTablePrefix("other_"))
			if err := a.Create(ctx, &apikey.Key{ID: "k1", Owner: "o", Digest: []byte{1}}); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Get(ctx, "k1"); !errors.Is(err, apikey.ErrNotFound) {
				t.Fatalf("other prefix sees the key: %v", err)
			}
			if !tableExists(t, db, b.dialect, "other_keys") || !tableExists(t, db, b.dialect, "other_schema_version") {
				t.Fatal("prefixed tables missing")
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	db, _ := openSQLite(t)
	tests := []struct {
		name string
		db   *sql.DB
		d    sqlstore.Dialect
		opts []sqlstore.Option
	}{
		{"nil db", nil, sqlstore.SQLite, nil},
		{"zero dialect", db, 0, nil},
		{"unknown dialect", db, 9, nil},
		{"empty prefix", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix("")}},
		{"quote in prefix", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix(`a"; DROP TABLE x; --`)}},
		{"upper-case prefix", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix("Apikey_")}},
		{"digit first", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix("1apikey_")}},
		{"long prefix", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithTablePrefix(strings.Repeat("a", 33))}},
		{"nil waiter", db, sqlstore.Postgres, []sqlstore.Option{sqlstore.WithNotifications(nil)}},
		{"zero poll interval", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithPollInterval(0)}},
		{"negative poll interval", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithPollInterval(-time.Second)}},
		{"nil option", db, sqlstore.SQLite, []sqlstore.Option{nil}},
		{"nil option after a good one", db, sqlstore.SQLite, []sqlstore.Option{sqlstore.WithCloseDB(), nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sqlstore.New(tt.db, tt.d, tt.opts...)
			if err == nil || st != nil {
				t.Fatalf("New = %v, %v; want an error", st, err)
			}
			if !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("error %q does not wrap apikey.ErrInvalidRequest", err)
			}
			// The package prefix comes right after the sentinel's text.
			if !strings.HasPrefix(err.Error(), apikey.ErrInvalidRequest.Error()+": sqlstore: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestWatchPostgresNeedsWaiter: without WithNotifications, Watch says so at
// once instead of pretending to watch.
func TestWatchPostgresNeedsWaiter(t *testing.T) {
	db, _ := openSQLite(t) // never used: Watch fails before any I/O
	st, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Watch(context.Background(), func(string) {}); !errors.Is(err, sqlstore.ErrNoNotifications) {
		t.Fatalf("Watch = %v, want ErrNoNotifications", err)
	}
}
