package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// undoVersion7 takes a migrated database back to schema version 6, as a
// database made before credits and Quota.Day (7): it drops the credits
// table and the new columns, and puts back version 5's change-log trigger,
// which names the columns on SQLite and MySQL.
func undoVersion7(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	undoVersion8(t, db, d)
	qs := []string{`DROP TABLE apikey_credits`}
	if d == sqlstore.SQLite || d == sqlstore.MySQL {
		qs = append(qs, `DROP TRIGGER apikey_keys_changed_update`)
	}
	for _, col := range []string{"quota_day", "credits_grant", "credits_period_ns", "credits_day", "lineage"} {
		qs = append(qs, `ALTER TABLE apikey_keys DROP COLUMN `+col)
	}
	if d == sqlstore.SQLite || d == sqlstore.MySQL {
		b, err := os.ReadFile("migrations/" + d.String() + "/0005_revocation_reason.sql")
		if err != nil {
			t.Fatal(err)
		}
		_, create, ok := strings.Cut(string(b), "CREATE TRIGGER")
		if !ok {
			t.Fatal("no trigger in migration 0005")
		}
		qs = append(qs, strings.ReplaceAll("CREATE TRIGGER"+create, "{{prefix}}", "apikey_"))
	}
	undoVersions(t, db, 7, qs...)
}

// TestMigrateFromVersion6: a database at schema version 6, with keys that
// have quotas, migrates to 7; the keys read back with no credits and no
// quota day, and keep everything else; new and updated keys store
// Key.Credits and Quota.Day; an UPDATE of a new column by plain SQL
// reaches the change log; and the Ledger works on the new table.
func TestMigrateFromVersion6(t *testing.T) {
	ctx := context.Background()
	q := apikey.Quota{Limit: 100, Period: apikey.MonthPeriod}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			st := newStore(t, db, b.dialect)
			if err := st.Create(ctx, &apikey.Key{ID: "old", Owner: "o", Digest: []byte{1}, Quota: q}); err != nil {
				t.Fatal(err)
			}
			undoVersion7(t, db, b.dialect)
			st2 := migrateAgain(t, b, reopen, "old")
			k, err := st2.Get(ctx, "old")
			if err != nil || k.Quota != q || !k.Credits.IsZero() || k.Owner != "o" {
				t.Fatalf("the old key after migrating: %+v, %v", k, err)
			}
			k.Credits = apikey.Credits{Grant: 1000, Period: apikey.MonthPeriod, Day: 15}
			k.Quota.Day = 31
			if err := st2.Update(ctx, k); err != nil {
				t.Fatal(err)
			}
			got, err := st2.Get(ctx, "old")
			if err != nil || got.Credits != k.Credits || got.Quota != k.Quota {
				t.Fatalf("after Update: %+v, %v; want credits %v, quota %v", got, err, k.Credits, k.Quota)
			}

			// An operator's UPDATE of a new column alone is a change.
			var before, after int64
			changes := `SELECT COALESCE(MAX(seq), 0) FROM apikey_changes`
			if b.dialect == sqlstore.Postgres {
				before, after = -1, -1 // Postgres notifies instead; its triggers compare whole rows.
			} else {
				if err := db.QueryRow(changes).Scan(&before); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(`UPDATE apikey_keys SET credits_grant = 7 WHERE id = 'old'`); err != nil {
				t.Fatal(err)
			}
			if b.dialect != sqlstore.Postgres {
				if err := db.QueryRow(changes).Scan(&after); err != nil {
					t.Fatal(err)
				}
				if after <= before {
					t.Errorf("an UPDATE of credits_grant left the change log at %d", after)
				}
			}

			l := st2.Ledger()
			c := apikey.Credits{Grant: 5, Period: 24 * time.Hour}
			if d, err := l.Spend(ctx, "credits:old", c, 2); err != nil || !d.Allowed || d.Remaining != 3 {
				t.Fatalf("Spend after migrating: %+v, %v", d, err)
			}
		})
	}
}
