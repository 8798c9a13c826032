package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// undoVersion5 takes a migrated database back to schema version 4, as a
// database made before revocation reasons and event claims (5) and usage (6).
func undoVersion5(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	undoVersion7(t, db, d)
	qs := []string{`DROP TABLE apikey_usage`, `DROP TABLE apikey_event_claims`}
	if d == sqlstore.SQLite || d == sqlstore.MySQL {
		qs = append(qs, `DROP TRIGGER apikey_keys_changed_update`) // it names the column
	}
	qs = append(qs, `ALTER TABLE apikey_keys DROP COLUMN revoked_reason`)
	undoVersions(t, db, 5, qs...)
}

// TestMigrateFromVersion4: a database at schema version 4, with a revoked
// key, migrates to 5; the key keeps its revocation, with no reason, a
// second revocation does not give it one, and new keys record theirs.
func TestMigrateFromVersion4(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st := newStore(t, db, b.dialect)
			for _, id := range []string{"old", "new"} {
				if err := st.Create(ctx, &apikey.Key{ID: id, Owner: "o", Digest: []byte{1}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Revoke(ctx, "old", at); err != nil {
				t.Fatal(err)
			}
			undoVersion5(t, db, b.dialect)
			st2 := migrateAgain(t, b, reopen, "old")
			if err := st2.RevokeWithReason(ctx, "old", at.Add(time.Hour), "late"); err != nil {
				t.Fatal(err)
			}
			if k, err := st2.Get(ctx, "old"); err != nil || !k.RevokedAt.Equal(at) || k.RevokedReason != "" {
				t.Fatalf("the revoked key after migrating: %+v, %v", k, err)
			}
			if err := st2.RevokeWithReason(ctx, "new", at, "leaked: https://example.com/x"); err != nil {
				t.Fatal(err)
			}
			if k, err := st2.Get(ctx, "new"); err != nil || k.RevokedReason != "leaked: https://example.com/x" {
				t.Fatalf("a key revoked after migrating: %+v, %v", k, err)
			}
		})
	}
}
