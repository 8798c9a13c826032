package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// undoVersion9 takes a migrated database back to schema version 8, as a
// database made before keys carried their record (9): it drops the
// triggers, on PostgreSQL the function, and the columns. On MySQL version
// 9 changed nothing.
func undoVersion9(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	var qs []string
	switch d {
	case sqlstore.SQLite:
		qs = []string{`DROP TRIGGER apikey_keys_record_insert`, `DROP TRIGGER apikey_keys_record_update`,
			`ALTER TABLE apikey_keys DROP COLUMN record`, `ALTER TABLE apikey_keys DROP COLUMN record_now`}
	case sqlstore.Postgres:
		qs = []string{`DROP TRIGGER apikey_keys_record ON apikey_keys`, `DROP FUNCTION apikey_keys_record()`,
			`ALTER TABLE apikey_keys DROP COLUMN record`}
	}
	undoVersions(t, db, 9, qs...)
}

// TestMigrateFromVersion8: a database at schema version 8, with keys,
// migrates to 9; its keys read back as they were, and keys written by the
// Store and by plain SQL afterwards read back as written.
func TestMigrateFromVersion8(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st := newStore(t, db, b.dialect)
			old := &apikey.Key{ID: "old", Owner: "o", Name: `a "quoted" name`, Digest: []byte{1, 2, 3}, DigestVersion: "v1",
				Scopes: []string{"orders:read"}, CreatedAt: at, Metadata: map[string]string{"plan": "pro"},
				RateLimit: apikey.Limit{Rate: 10, Period: time.Second, Burst: 5}}
			if err := st.Create(ctx, old); err != nil {
				t.Fatal(err)
			}
			want, err := st.Get(ctx, "old")
			if err != nil {
				t.Fatal(err)
			}
			undoVersion9(t, db, b.dialect)
			st2 := migrateAgain(t, b, reopen, "old")
			got, err := st2.Get(ctx, "old")
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("after migrating: %+v, %v; want %+v", got, err, want)
			}
			if _, err := db.Exec(dialectSQL(b.dialect, `UPDATE apikey_keys SET name = $1, revision = revision + 1 WHERE id = $2`), "by hand", "old"); err != nil {
				t.Fatal(err)
			}
			if got, err := st2.Get(ctx, "old"); err != nil || got.Name != "by hand" || got.Revision != want.Revision+1 {
				t.Fatalf("after a plain UPDATE: %+v, %v", got, err)
			}
			if err := st2.Create(ctx, &apikey.Key{ID: "new", Owner: "o", Digest: []byte{4}}); err != nil {
				t.Fatal(err)
			}
			if got, err := st2.Get(ctx, "new"); err != nil || !reflect.DeepEqual(got.Digest, []byte{4}) {
				t.Fatalf("a key created after migrating: %+v, %v", got, err)
			}
		})
	}
}

// checkRecord fails unless Get, which reads key id's record, returns what
// its columns hold.
func checkRecord(t *testing.T, st *sqlstore.Store, id string) {
	t.Helper()
	ctx := context.Background()
	want, err := st.GetColumns(ctx, id)
	if err != nil {
		t.Fatalf("columns of %s: %v", id, err)
	}
	got, err := st.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get(%s) from the record:\n%+v\nfrom the columns:\n%+v", id, got, want)
	}
}

// TestRecordMatchesColumns: a key read from its record equals the key read
// from its columns, for text that JSON must escape, for every field set,
// and after every kind of write: the Store's Create, Update, Revoke and
// RecordLastUsed, and plain SQL. (On MySQL, which reads the columns, it
// checks nothing more than Get.)
func TestRecordMatchesColumns(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 2, 28, 23, 59, 59, 123456000, time.UTC)
	awkward := []string{"", `"`, `\`, `a"b\c`, "line\nbreak\ttab\r", "\x01\x1f\x7f", "ключ ✓ 🔑", `\u0041`, "</script>", "a\u2028b"}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			for i, s := range awkward {
				k := &apikey.Key{
					ID: fmt.Sprintf("k%d", i), Prefix: "acme", Owner: "owner " + s, Name: s,
					Scopes: []string{"orders:read", s}, Digest: []byte{0, 1, 0xfe, 0xff, byte(i)}, DigestVersion: "hmac-sha256/v1",
					CreatedAt: at, ExpiresAt: at.AddDate(1, 0, 0), NotBefore: at.Add(-time.Hour),
					RateLimit:   apikey.Limit{Rate: 100, Period: time.Minute, Burst: 20},
					Quota:       apikey.Quota{Limit: 1 << 40, Period: apikey.MonthPeriod, Day: 15},
					Credits:     apikey.Credits{Grant: 5000, Period: 24 * time.Hour},
					AllowedIPs:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
					Metadata:    map[string]string{"plan": "pro", "note": s, s: "key"},
					RotatedFrom: "k-old", Lineage: "k-first",
				}
				if err := st.Create(ctx, k); err != nil {
					t.Fatalf("Create(%q): %v", s, err)
				}
				checkRecord(t, st, k.ID)
			}
			k, err := st.Get(ctx, "k3")
			if err != nil {
				t.Fatal(err)
			}
			k.Name, k.SuspendedAt = "renamed", at.Add(time.Minute)
			if err := st.Update(ctx, k); err != nil {
				t.Fatal(err)
			}
			checkRecord(t, st, "k3")
			if err := st.RevokeWithReason(ctx, "k3", at.Add(2*time.Minute), "leaked"); err != nil {
				t.Fatal(err)
			}
			checkRecord(t, st, "k3")
			if err := st.RecordLastUsed(ctx, map[string]time.Time{"k3": at.Add(3 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			checkRecord(t, st, "k3")
			if got, _ := st.Get(ctx, "k3"); got.Name != "renamed" || !got.LastUsedAt.Equal(at.Add(3*time.Minute)) || got.RevokedReason != "leaked" {
				t.Fatalf("k3 after the writes: %+v", got)
			}

			// An operator's plain SQL refreshes the record too.
			if _, err := db.Exec(dialectSQL(b.dialect, `UPDATE apikey_keys SET name = $1, rate_limit_burst = 7 WHERE id = $2`), "by hand", "k4"); err != nil {
				t.Fatal(err)
			}
			checkRecord(t, st, "k4")
			if _, err := db.Exec(dialectSQL(b.dialect, `INSERT INTO apikey_keys (id, prefix, owner, name, digest, digest_version, revision)
				VALUES ($1, 'acme', 'o', 'n', $2, 'hmac-sha256/v1', 1)`), "by-hand", []byte{1, 2}); err != nil {
				t.Fatal(err)
			}
			checkRecord(t, st, "by-hand")
			keys, _, err := st.List(ctx, apikey.ListOptions{Limit: 100})
			if err != nil || len(keys) != len(awkward)+1 {
				t.Fatalf("List: %d keys, %v; want %d", len(keys), err, len(awkward)+1)
			}
		})
	}
}

// FuzzRecordText: text of any kind that the Store accepts in a key's
// name, owner, scopes and metadata comes back from the record SQLite's
// json_array made of it, as it comes back from the columns.
func FuzzRecordText(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, "a\nb", "\x00", "\x01", "é", "🔑", "\xff", `\u0000`} {
		f.Add(s, s)
	}
	db, _ := openSQLite(f)
	st := newStore(f, db, sqlstore.SQLite)
	n := 0
	f.Fuzz(func(t *testing.T, name, meta string) {
		n++
		id := fmt.Sprint("f", n)
		err := st.Create(context.Background(), &apikey.Key{ID: id, Owner: meta, Name: name, Digest: []byte{1},
			Scopes: []string{name}, Metadata: map[string]string{meta: name}})
		if errors.Is(err, apikey.ErrInvalidRequest) {
			return // text the Store refuses to store
		}
		if err != nil {
			t.Fatal(err)
		}
		checkRecord(t, st, id)
	})
}
