package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/vault"
)

// TestMySQLSessionChecks: a Store refuses, with ErrUnsupportedSession, a
// session that is not strict (a value too long would be truncated
// silently) or that counts found rows (a taken ID would look inserted);
// Migrate refuses a non-strict one before writing anything.
func TestMySQLSessionChecks(t *testing.T) {
	ctx := context.Background()
	b := backends()[2]
	need(t, b)
	db, _ := b.open(t)
	newStore(t, db, sqlstore.MySQL) // migrated, through a good session
	var name string
	if err := db.QueryRow(`SELECT DATABASE()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, set func(cfg map[string]string), foundRows bool) *sql.DB {
		cfg := mysqlConfig(t)
		cfg.DBName = name
		set(cfg.Params)
		cfg.ClientFoundRows = foundRows
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	for _, tt := range []struct {
		name      string
		set       func(map[string]string)
		foundRows bool
	}{
		{"not strict", func(p map[string]string) { p["sql_mode"] = "'NO_ENGINE_SUBSTITUTION'" }, false},
		{"found rows", func(map[string]string) {}, true},
		// MariaDB's standard UPDATE semantics, which the Ledger's upserts
		// do not support (ledger.go).
		{"simultaneous assignment", func(p map[string]string) {
			p["sql_mode"] = "'STRICT_TRANS_TABLES,SIMULTANEOUS_ASSIGNMENT'"
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sqlstore.New(open(t, tt.set, tt.foundRows), sqlstore.MySQL)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, "abc"); !errors.Is(err, sqlstore.ErrUnsupportedSession) {
				t.Fatalf("Get: %v, want ErrUnsupportedSession", err)
			}
			if err := st.Create(ctx, &apikey.Key{ID: "abc", Digest: []byte{1}}); !errors.Is(err, sqlstore.ErrUnsupportedSession) {
				t.Fatalf("Create: %v, want ErrUnsupportedSession", err)
			}
			if err := st.Migrate(ctx); !errors.Is(err, sqlstore.ErrUnsupportedSession) {
				t.Fatalf("Migrate: %v, want ErrUnsupportedSession", err)
			}
		})
	}
	t.Run("not strict, fresh database", func(t *testing.T) {
		fresh, _ := b.open(t)
		var freshName string
		if err := fresh.QueryRow(`SELECT DATABASE()`).Scan(&freshName); err != nil {
			t.Fatal(err)
		}
		cfg := mysqlConfig(t)
		cfg.DBName = freshName
		cfg.Params["sql_mode"] = "''"
		loose, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer loose.Close()
		st, err := sqlstore.New(loose, sqlstore.MySQL)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); !errors.Is(err, sqlstore.ErrUnsupportedSession) {
			t.Fatalf("Migrate: %v, want ErrUnsupportedSession", err)
		}
		if tableExists(t, fresh, sqlstore.MySQL, "apikey_keys") || tableExists(t, fresh, sqlstore.MySQL, "apikey_schema_version") {
			t.Fatal("Migrate on a non-strict session created tables")
		}
	})
}

// TestMySQLZeroDatesRefused: a zero date, which a non-strict session lets
// through, would read as "not set": the schema refuses it where that
// would undo a revocation, suspension, expiry or start.
func TestMySQLZeroDatesRefused(t *testing.T) {
	ctx := context.Background()
	b := backends()[2]
	need(t, b)
	db, _ := b.open(t)
	st := newStore(t, db, sqlstore.MySQL)
	if err := st.Create(ctx, &apikey.Key{ID: "k", Owner: "o", Digest: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET SESSION sql_mode = ''`); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"revoked_at", "suspended_at", "expires_at", "not_before"} {
		_, err := conn.ExecContext(ctx, `UPDATE apikey_keys SET `+col+` = '0000-00-00 00:00:00' WHERE id = 'k'`)
		if err == nil {
			t.Errorf("a zero %s was stored", col)
		}
	}
	got, err := st.Get(ctx, "k")
	if err != nil || !got.RevokedAt.IsZero() || got.Revision != 1 {
		t.Fatalf("after refused updates: %+v, %v", got, err)
	}
}

// TestMySQLLimits: what the MySQL schema cannot hold is refused with
// ErrInvalidRequest before the database sees it, and nothing is written.
func TestMySQLLimits(t *testing.T) {
	ctx := context.Background()
	b := backends()[2]
	need(t, b)
	db, _ := b.open(t)
	st := newStore(t, db, sqlstore.MySQL)
	long := strings.Repeat("x", 256)
	for _, k := range []*apikey.Key{
		{ID: long, Digest: []byte{1}},
		{ID: "long-owner", Owner: long, Digest: []byte{1}},
		{ID: "long-digest", Digest: []byte(long)},
		{ID: "year-10000", Digest: []byte{1}, ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "year-999", Digest: []byte{1}, NotBefore: time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC)},
	} {
		if err := st.Create(ctx, k); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Create(%.20q): %v, want ErrInvalidRequest", k.ID, err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_keys`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d keys stored (%v), want none", n, err)
	}
	v := st.Vault()
	for _, r := range []vault.Record{
		{Owner: long, Name: "n", Version: 1, KEKVersion: "v1"},
		{Owner: "o", Name: long, Version: 1, KEKVersion: "v1"},
	} {
		if err := v.Put(ctx, r); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("vault Put(%.20q, %.20q): %v, want ErrInvalidRequest", r.Owner, r.Name, err)
		}
	}
	// The largest that fits goes in and comes out as it was.
	edge := &apikey.Key{ID: strings.Repeat("i", 255), Owner: strings.Repeat("ö", 127), Digest: []byte(strings.Repeat("\xff", 255)),
		ExpiresAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), NotBefore: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := st.Create(ctx, edge); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, edge.ID)
	if err != nil || got.Owner != edge.Owner || string(got.Digest) != string(edge.Digest) || !got.ExpiresAt.Equal(edge.ExpiresAt) || !got.NotBefore.Equal(edge.NotBefore) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

// TestMySQLUnreachable: a server that is not there is ErrUnavailable
// (503), never ErrInvalidKey (401), from the first call on.
func TestMySQLUnreachable(t *testing.T) {
	cfg := mysqlConfig(t)
	cfg.Addr = "127.0.0.1:1"
	cfg.Timeout = 2 * time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.New(db, sqlstore.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, st)
	tok, err := apikey.Generate("acme_test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Verify(context.Background(), tok.Secret().Reveal())
	if !errors.Is(err, apikey.ErrUnavailable) || errors.Is(err, apikey.ErrInvalidKey) {
		t.Fatalf("Verify against a dead server: %v; want ErrUnavailable and not ErrInvalidKey", err)
	}
}

// TestWatchSeesEveryConcurrentChange: writers on many connections change
// keys at once while Watch polls; every change is reported (or covered
// by a changed("") that empties caches). On MySQL this is what the change
// log's locked counter is for: with AUTO_INCREMENT a change committed
// after a later-numbered one could be stepped over.
func TestWatchSeesEveryConcurrentChange(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st := newStore(t, db, b.dialect, sqlstore.WithPollInterval(5*time.Millisecond))
			r := watch(t, st)
			eventually(t, 5*time.Second, "Watch starts", func() bool { return r.count("") > 0 })
			resets := r.count("")
			writers := []*sqlstore.Store{newStore(t, reopen(), b.dialect), newStore(t, reopen(), b.dialect)}
			const perWriter = 40
			var wg sync.WaitGroup
			var mu sync.Mutex
			var ids []string
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWriter {
						k := &apikey.Key{ID: fmt.Sprintf("w%d-%d-%s", w, i, randomHex(3)), Owner: "o", Digest: []byte{1}}
						s := writers[w%len(writers)]
						if err := s.Create(ctx, k); err != nil {
							t.Error(err)
							return
						}
						if i%2 == 0 {
							if err := s.Revoke(ctx, k.ID, time.Now()); err != nil {
								t.Error(err)
								return
							}
						}
						mu.Lock()
						ids = append(ids, k.ID)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			eventually(t, 5*time.Second, "every change is reported", func() bool {
				if r.count("") > resets {
					return true // caches emptied: nothing can be stale
				}
				for _, id := range ids {
					if r.count(id) == 0 {
						return false
					}
				}
				return true
			})
			if r.count("") > resets {
				t.Logf("Watch reported a reset instead of %d changes", len(ids))
			}
		})
	}
}
