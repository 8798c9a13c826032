package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/pglisten"
)

// TestRevokeReachesOtherManager runs two Managers, as two instances of a
// service would be, each with its own *sql.DB and a 10-minute cache, on
// one database. A revocation through one, and one by an operator's plain
// SQL UPDATE, must make the other refuse the key within a second.
func TestRevokeReachesOtherManager(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			stA := newStore(t, db, b.dialect)
			stB := newStore(t, reopen(), b.dialect)
			a, bm := newManager(t, stA), newManager(t, stB)
			operator := reopen()

			revoked := func(secret apikey.Secret) func() bool {
				return func() bool {
					_, err := bm.Verify(ctx, secret.Reveal())
					if err != nil && !errors.Is(err, apikey.ErrRevoked) {
						t.Fatalf("Verify: %v, want ErrRevoked or success", err)
					}
					return err != nil
				}
			}
			issueAndCache := func() (apikey.Secret, *apikey.Key) {
				secret, k, err := a.Issue(ctx, apikey.IssueRequest{Owner: "team-1"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bm.Verify(ctx, secret.Reveal()); err != nil {
					t.Fatalf("Verify on the other Manager: %v", err)
				}
				return secret, k
			}
			// Let both Managers' Watch start: a change before that would
			// be covered by their first changed("") anyway, but then the
			// test would prove less.
			time.Sleep(300 * time.Millisecond)

			t.Run("Manager", func(t *testing.T) {
				secret, k := issueAndCache()
				if err := a.Revoke(ctx, k.ID); err != nil {
					t.Fatal(err)
				}
				d := eventually(t, time.Second, "the other Manager refuses a revoked key", revoked(secret))
				t.Logf("refused after %v", d)
			})
			t.Run("plain SQL, text time", func(t *testing.T) {
				if b.dialect != sqlstore.SQLite {
					t.Skip("SQLite only: a text timestamp in an integer column")
				}
				secret, k := issueAndCache()
				if _, err := operator.Exec(`UPDATE apikey_keys SET revoked_at = CURRENT_TIMESTAMP WHERE id = ?`, k.ID); err != nil {
					t.Fatal(err)
				}
				eventually(t, time.Second, "the other Manager refuses a key revoked with CURRENT_TIMESTAMP", revoked(secret))
			})
			t.Run("plain SQL", func(t *testing.T) {
				secret, k := issueAndCache()
				q := `UPDATE apikey_keys SET revoked_at = now() WHERE id = $1`
				switch b.dialect {
				case sqlstore.SQLite:
					q = `UPDATE apikey_keys SET revoked_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER) WHERE id = ?`
				case sqlstore.MySQL:
					q = `UPDATE apikey_keys SET revoked_at = UTC_TIMESTAMP(6) WHERE id = ?`
				}
				if _, err := operator.Exec(q, k.ID); err != nil {
					t.Fatal(err)
				}
				d := eventually(t, time.Second, "the other Manager refuses a key revoked by plain SQL", revoked(secret))
				t.Logf("refused after %v", d)
			})
		})
	}
}

// recorder collects Watch's calls.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) changed(id string) {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.ids {
		if x == id {
			n++
		}
	}
	return n
}

func watch(t *testing.T, st *sqlstore.Store) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := new(recorder)
	done := make(chan error, 1)
	go func() { done <- st.Watch(ctx, r.changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	eventually(t, 5*time.Second, "Watch starts", func() bool { return r.count("") > 0 })
	return r
}

// TestWatchReconnects kills the listening connection on the server and
// checks that Watch listens again, says so with changed(""), and reports
// the next change within two seconds.
func TestWatchReconnects(t *testing.T) {
	b := backends()[1]
	need(t, b)
	db, reopen := b.open(t)
	// A prefix of its own, so its channel and LISTEN are this test's alone.
	prefix := "w" + randomHex(4) + "_"
	st := newStore(t, db, b.dialect, sqlstore.WithTablePrefix(prefix))
	r := watch(t, st)
	ctx := context.Background()

	admin := reopen()
	res, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = $1 AND pid <> pg_backend_pid()`, "LISTEN "+prefix+"changes")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("terminated %d listening backends, want 1", n)
	}
	eventually(t, 2*time.Second, "changed(\"\") after reconnecting", func() bool { return r.count("") >= 2 })

	k := &apikey.Key{ID: "after-reconnect", Owner: "o", Digest: []byte{1}}
	if err := st.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a change seen after reconnecting", func() bool { return r.count(k.ID) > 0 })
}

// TestRecordLastUsedIsQuiet: flushing last-used times changes no revision
// and announces nothing, or every Manager would drop its cache entries
// for busy keys every few seconds. Other changes are announced.
func TestRecordLastUsedIsQuiet(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect, sqlstore.WithPollInterval(20*time.Millisecond))
			quiet := &apikey.Key{ID: "quiet", Owner: "o", Digest: []byte{1}}
			loud := &apikey.Key{ID: "loud", Owner: "o", Digest: []byte{1}}
			for _, k := range []*apikey.Key{quiet, loud} {
				if err := st.Create(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			r := watch(t, st)
			if err := st.RecordLastUsed(ctx, map[string]time.Time{quiet.ID: time.Now()}); err != nil {
				t.Fatal(err)
			}
			loud.Name = "changed"
			if err := st.Update(ctx, loud); err != nil {
				t.Fatal(err)
			}
			// Changes arrive in order, so once the later one is seen the
			// earlier would have been.
			eventually(t, 2*time.Second, "the update is announced", func() bool { return r.count(loud.ID) > 0 })
			if n := r.count(quiet.ID); n != 0 {
				t.Fatalf("RecordLastUsed was announced %d times", n)
			}
			got, err := st.Get(ctx, quiet.ID)
			if err != nil || got.Revision != 1 || got.LastUsedAt.IsZero() {
				t.Fatalf("after RecordLastUsed: %+v, %v", got, err)
			}
		})
	}
}

// TestLastUsedLargeBatch: one statement carries thousands of keys.
func TestLastUsedLargeBatch(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			ins := dialectSQL(b.dialect, `INSERT INTO apikey_keys (id, prefix, owner, name, digest, digest_version, revision) VALUES ($1, 'p', 'o', '', $2, 'v', 1)`)
			const n = 2000 // modernc.org/sqlite is slow under -race
			used := make(map[string]time.Time, n)
			at := time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC)
			for i := 0; i < n; i++ {
				id := "k" + randomHex(6)
				if _, err := tx.Exec(ins, id, []byte{1}); err != nil {
					t.Fatal(err)
				}
				used[id] = at.Add(time.Duration(i) * time.Microsecond)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			used["unknown"] = at
			if err := st.RecordLastUsed(ctx, used); err != nil {
				t.Fatal(err)
			}
			for id, want := range used {
				if id == "unknown" {
					continue
				}
				k, err := st.Get(ctx, id)
				if err != nil || !k.LastUsedAt.Equal(want) {
					t.Fatalf("key %s: LastUsedAt %v (%v), want %v", id, k.LastUsedAt, err, want)
				}
				break // one is enough to check the encoding; the count below checks all
			}
			var set int
			if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_keys WHERE last_used_at IS NOT NULL`).Scan(&set); err != nil || set != n {
				t.Fatalf("%d keys have a last use (%v), want %d", set, err, n)
			}
		})
	}
}

// TestWatchWrongDriver: a waiter that cannot handle the driver's
// connections makes Watch give up, instead of emptying caches in a loop.
func TestWatchWrongDriver(t *testing.T) {
	b := backends()[1]
	need(t, b)
	db, _ := b.open(t)
	wrong := func(ctx context.Context, driverConn any) (string, error) {
		return pglisten.Wait(ctx, struct{}{}) // not a pgx connection
	}
	newStore(t, db, b.dialect) // migrated
	st, err := sqlstore.New(db, b.dialect, sqlstore.WithNotifications(wrong))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls := 0
	err = st.Watch(ctx, func(string) { calls++ })
	if !errors.Is(err, sqlstore.ErrNoNotifications) {
		t.Fatalf("Watch = %v, want ErrNoNotifications", err)
	}
	if calls != 1 {
		t.Fatalf("changed called %d times, want once", calls)
	}
}
