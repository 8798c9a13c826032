package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// undoVersion8 takes a migrated database back to schema version 7, as a
// database made before a key's event claims went with it (8): it drops
// the trigger, and on PostgreSQL its function.
func undoVersion8(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	undoVersion9(t, db, d)
	qs := []string{`DROP TRIGGER apikey_keys_delete_claims`}
	if d == sqlstore.Postgres {
		qs = []string{`DROP TRIGGER apikey_keys_delete_claims ON apikey_keys`, `DROP FUNCTION apikey_delete_claims()`}
	}
	undoVersions(t, db, 8, qs...)
}

// claimsOf counts the claims the database holds for key id.
func claimsOf(t *testing.T, db *sql.DB, d sqlstore.Dialect, id string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(dialectSQL(d, `SELECT COUNT(*) FROM apikey_event_claims WHERE key_id = $1`), id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// claimAll claims events for each of ids, at at.
func claimAll(t *testing.T, st *sqlstore.Store, at time.Time, ids ...string) {
	t.Helper()
	for _, id := range ids {
		for _, ev := range []string{"expiring:1", "unused:2"} {
			if ok, err := st.ClaimEvent(context.Background(), id, ev, at); err != nil || !ok {
				t.Fatalf("ClaimEvent(%s, %s) = %v, %v", id, ev, ok, err)
			}
		}
	}
}

// TestClaimsGoWithTheirKey: a key deleted by hand, with plain SQL, takes
// its event claims with it, and leaves other keys' claims; on PostgreSQL
// also from a session whose search_path does not hold the tables.
func TestClaimsGoWithTheirKey(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			var ids []string
			for range 3 {
				k := &apikey.Key{ID: randomHex(6), Owner: "o", Digest: []byte{1}}
				if err := st.Create(ctx, k); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, k.ID)
			}
			claimAll(t, st, at, ids...)
			if _, err := db.Exec(dialectSQL(b.dialect, `DELETE FROM apikey_keys WHERE id = $1`), ids[0]); err != nil {
				t.Fatal(err)
			}
			if n := claimsOf(t, db, b.dialect, ids[0]); n != 0 {
				t.Errorf("the deleted key has %d claims left", n)
			}
			if n := claimsOf(t, db, b.dialect, ids[1]); n != 2 {
				t.Errorf("another key has %d claims, want its 2", n)
			}
			if b.dialect == sqlstore.Postgres {
				var schema string
				if err := db.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
					t.Fatal(err)
				}
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.ExecContext(ctx, `SET search_path TO pg_catalog`); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.ExecContext(ctx, `DELETE FROM "`+schema+`".apikey_keys WHERE id = $1`, ids[1]); err != nil {
					t.Fatalf("delete from another search_path: %v", err)
				}
				if n := claimsOf(t, db, b.dialect, ids[1]); n != 0 {
					t.Errorf("the key deleted from another search_path has %d claims left", n)
				}
			}
			if n := claimsOf(t, db, b.dialect, ids[2]); n != 2 {
				t.Errorf("the key kept has %d claims, want its 2", n)
			}
		})
	}
}

// TestMigrateFromVersion7: a database at schema version 7, with claims,
// migrates to 8; its claims are kept, and go with their key once it is
// deleted.
func TestMigrateFromVersion7(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st := newStore(t, db, b.dialect)
			for _, id := range []string{"old", "kept"} {
				if err := st.Create(ctx, &apikey.Key{ID: id, Owner: "o", Digest: []byte{1}}); err != nil {
					t.Fatal(err)
				}
			}
			claimAll(t, st, at, "old", "kept")
			undoVersion8(t, db, b.dialect)
			st2, err := sqlstore.New(reopen(), b.dialect)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st2.ClaimEvent(ctx, "old", "unused:3", at); !errors.Is(err, sqlstore.ErrNotMigrated) {
				t.Fatalf("ClaimEvent at version 7: %v, want ErrNotMigrated", err)
			}
			if err := st2.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := st2.ClaimEvent(ctx, "old", "unused:2", at); err != nil || ok {
				t.Fatalf("a claim made at version 7, claimed again: %v, %v; want it there", ok, err)
			}
			if _, err := db.Exec(dialectSQL(b.dialect, `DELETE FROM apikey_keys WHERE id = $1`), "old"); err != nil {
				t.Fatal(err)
			}
			if n, m := claimsOf(t, db, b.dialect, "old"), claimsOf(t, db, b.dialect, "kept"); n != 0 || m != 2 {
				t.Errorf("after deleting a key: %d claims of it, %d of the other; want 0, 2", n, m)
			}
		})
	}
}

// TestPruneEventsRefusesBadInput: a zero time, a backwards range, text
// with NUL and, on MySQL, a time it cannot store are ErrInvalidRequest,
// and nothing is deleted.
func TestPruneEventsRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			claimAll(t, st, at, "gone") // no such key: obsolete for any later time
			bad := []struct {
				name     string
				from, to string
				before   time.Time
			}{
				{"zero time", "", "", time.Time{}},
				{"backwards", "z", "a", at.AddDate(1, 0, 0)},
				{"NUL in from", "a\x00", "", at.AddDate(1, 0, 0)},
				{"NUL in to", "", "z\x00", at.AddDate(1, 0, 0)},
			}
			if b.dialect == sqlstore.MySQL {
				bad = append(bad, struct {
					name     string
					from, to string
					before   time.Time
				}{"year 10000", "", "", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
			}
			for _, tt := range bad {
				n, err := st.PruneEvents(ctx, tt.from, tt.to, tt.before)
				if !errors.Is(err, apikey.ErrInvalidRequest) || n != 0 {
					t.Errorf("%s: %d, %v; want 0 and ErrInvalidRequest", tt.name, n, err)
				}
			}
			if n := claimsOf(t, db, b.dialect, "gone"); n != 2 {
				t.Fatalf("after refused prunes: %d claims, want the 2 there were", n)
			}
			if n, err := st.PruneEvents(ctx, "", "", at.AddDate(1, 0, 0)); err != nil || n != 2 {
				t.Fatalf("PruneEvents = %d, %v; want the 2 claims of a key that does not exist", n, err)
			}
		})
	}
}
