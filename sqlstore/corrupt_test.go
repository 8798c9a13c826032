package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// TestCorruptRow: one row that does not decode (bad JSON, an unparsable
// time) must not make List fail for the whole table, and it can still be
// revoked through the library (item 12 of issue 12).
func TestCorruptRow(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		for _, c := range []struct{ name, set string }{
			{"bad JSON", `scopes = '["orders:read"'`},
			{"bad time", map[sqlstore.Dialect]string{
				sqlstore.SQLite:   `created_at = 'yesterday'`,
				sqlstore.Postgres: `metadata = '{"a":'`,
				sqlstore.MySQL:    `metadata = '{"a":'`,
			}[b.dialect]},
		} {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				need(t, b)
				db, _ := b.open(t)
				st := newStore(t, db, b.dialect)
				m := newManager(t, st, apikey.WithCache(0, 0))
				owner := "corrupt-" + b.name
				var secrets []apikey.Secret
				var ids []string
				for range 5 {
					s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: owner})
					if err != nil {
						t.Fatal(err)
					}
					secrets, ids = append(secrets, s), append(ids, k.ID)
				}
				bad := ids[2]
				q := `UPDATE apikey_keys SET ` + c.set + ` WHERE id = '` + bad + `'`
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}

				// List returns the four others, pages right, and names the bad one.
				var got []string
				cursor := ""
				var listErr error
				for {
					keys, next, err := m.List(ctx, apikey.ListOptions{Owner: owner, Cursor: cursor, Limit: 2})
					if err != nil {
						if !errors.Is(err, apikey.ErrCorruptRecord) {
							t.Fatalf("List: %v", err)
						}
						listErr = err
					}
					for _, k := range keys {
						got = append(got, k.ID)
					}
					if next == "" {
						break
					}
					cursor = next
				}
				if len(got) != 4 || listErr == nil || !strings.Contains(listErr.Error(), bad) {
					t.Fatalf("List gave %d keys and error %v; want the 4 good ones and an error naming %s", len(got), listErr, bad)
				}
				if _, err := st.Get(ctx, bad); !errors.Is(err, apikey.ErrCorruptRecord) {
					t.Fatalf("Get of the corrupt row: %v, want ErrCorruptRecord", err)
				}
				if _, err := m.Verify(ctx, secrets[2].Reveal()); !errors.Is(err, apikey.ErrUnavailable) {
					t.Fatalf("Verify of the corrupt row: %v, want ErrUnavailable", err)
				}
				// Revoke works without decoding the row.
				if err := m.Revoke(ctx, bad); err != nil {
					t.Fatalf("Revoke of the corrupt row: %v", err)
				}
				var revoked bool
				if err := db.QueryRowContext(ctx, `SELECT revoked_at IS NOT NULL FROM apikey_keys WHERE id = '`+bad+`'`).Scan(&revoked); err != nil || !revoked {
					t.Fatalf("revoked_at after Revoke: %v, %v", revoked, err)
				}
				// The others are untouched and still verify.
				for i, s := range secrets {
					if i == 2 {
						continue
					}
					if _, err := m.Verify(ctx, s.Reveal()); err != nil {
						t.Fatalf("key %d: %v", i, err)
					}
				}
			})
		}
	}
}

// TestRevokedAtInTheFuture: revoked_at written by hand as a time in the
// future still revokes the key (revocation is a state), and Get, Verify
// and the record's Status agree.
func TestRevokedAtInTheFuture(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			m := newManager(t, st, apikey.WithCache(0, 0))
			s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "future"})
			if err != nil {
				t.Fatal(err)
			}
			future := map[sqlstore.Dialect]string{
				sqlstore.SQLite:   `CAST(strftime('%s', 'now', '+1 day') AS INTEGER) * 1000000`,
				sqlstore.Postgres: `now() + interval '1 day'`,
				sqlstore.MySQL:    `UTC_TIMESTAMP(6) + INTERVAL 1 DAY`,
			}[b.dialect]
			if _, err := db.ExecContext(ctx, `UPDATE apikey_keys SET revoked_at = `+future+`, revision = revision + 1 WHERE id = '`+k.ID+`'`); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Verify(ctx, s.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
				t.Fatalf("Verify: %v, want ErrRevoked", err)
			}
			got, err := m.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Status(time.Now()); !errors.Is(err, apikey.ErrRevoked) {
				t.Fatalf("Status: %v, want ErrRevoked", err)
			}
		})
	}
}

// TestNonsenseLimitsAreBroken: a stored rate limit that makes no sense is
// a broken record: the holder of the key gets ErrUnavailable (503), the
// operator one background error naming the kid, and it is never "no
// limit".
func TestNonsenseLimitsAreBroken(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			var mu sync.Mutex
			var reported []error
			m := newManager(t, st, apikey.WithCache(0, 0), apikey.WithBackgroundErrors(func(err error) {
				mu.Lock()
				reported = append(reported, err)
				mu.Unlock()
			}))
			s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "limits"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `UPDATE apikey_keys SET rate_limit_rate = 0, rate_limit_period_ns = -5, revision = revision + 1 WHERE id = '`+k.ID+`'`); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				_, err := m.Verify(ctx, s.Reveal())
				if !errors.Is(err, apikey.ErrUnavailable) || !errors.Is(err, apikey.ErrCorruptRecord) {
					t.Fatalf("Verify: %v, want ErrUnavailable and ErrCorruptRecord", err)
				}
				if strings.Contains(err.Error(), s.Reveal()) {
					t.Fatal("the error holds the key")
				}
			}
			// A wrong secret for the same kid is still just invalid.
			if _, err := m.Verify(ctx, s.Reveal()[:len(s.Reveal())-10]+"AAAAAAAAAA"); errors.Is(err, apikey.ErrUnavailable) {
				t.Fatalf("a wrong secret got %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reported) != 1 || !strings.Contains(reported[0].Error(), k.ID) {
				t.Fatalf("background errors %v; want one naming %s", reported, k.ID)
			}
		})
	}
}
