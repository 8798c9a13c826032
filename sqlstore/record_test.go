package sqlstore_test

import (
	"context"
	"database/sql"
	"reflect"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// undoVersion9 takes a migrated database back to schema version 8, as a
// database made before SQLite's keys carried their record (9): it drops
// the triggers and the two columns. On the other dialects version 9
// changed nothing.
func undoVersion9(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	var qs []string
	if d == sqlstore.SQLite {
		qs = []string{`DROP TRIGGER apikey_keys_record_insert`, `DROP TRIGGER apikey_keys_record_update`,
			`ALTER TABLE apikey_keys DROP COLUMN record`, `ALTER TABLE apikey_keys DROP COLUMN record_now`}
	}
	qs = append(qs, `DELETE FROM apikey_schema_version WHERE version >= 9`)
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
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
