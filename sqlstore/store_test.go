package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/pglisten"
)

// TestUnavailable: when the database cannot be reached, Verify fails with
// ErrUnavailable (HTTP 503), never with ErrInvalidKey (401), for a key
// that is valid.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name+"/closed", func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			m := newManager(t, st, apikey.WithCache(0, 0)) // every Verify reads the store
			secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Verify(ctx, secret.Reveal()); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = m.Verify(ctx, secret.Reveal())
			if !errors.Is(err, apikey.ErrUnavailable) || errors.Is(err, apikey.ErrInvalidKey) {
				t.Fatalf("Verify with the database closed: %v; want ErrUnavailable and not ErrInvalidKey", err)
			}
		})
	}
	t.Run("postgres/dead port", func(t *testing.T) {
		// Nothing listens on port 1; the Store has never reached its
		// database, so the first call's schema check fails too.
		db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		st, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithNotifications(pglisten.Wait))
		if err != nil {
			t.Fatal(err)
		}
		m := newManager(t, st)
		tok, err := apikey.Generate("acme_test")
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Verify(ctx, tok.Secret().Reveal())
		if !errors.Is(err, apikey.ErrUnavailable) || errors.Is(err, apikey.ErrInvalidKey) {
			t.Fatalf("Verify against a dead server: %v; want ErrUnavailable and not ErrInvalidKey", err)
		}
	})
	t.Run("sqlite/not migrated", func(t *testing.T) {
		db, _ := openSQLite(t)
		st, err := sqlstore.New(db, sqlstore.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		m := newManager(t, st)
		tok, _ := apikey.Generate("acme_test")
		_, err = m.Verify(ctx, tok.Secret().Reveal())
		if !errors.Is(err, apikey.ErrUnavailable) || !errors.Is(err, sqlstore.ErrNotMigrated) {
			t.Fatalf("Verify on an unmigrated database: %v; want ErrUnavailable wrapping ErrNotMigrated", err)
		}
	})
}

// secretParts returns the strings that must appear nowhere in storage for
// the token: the whole token and its 43-character secret part.
func secretParts(token string) []string {
	n := len(token)
	return []string{token, token[n-apikey.ChecksumLen-apikey.SecretLen : n-apikey.ChecksumLen]}
}

// issueMany issues, rotates, revokes and uses keys through a Manager,
// closes it (flushing last-used times) and returns every token it saw
// and the IDs of the keys.
func issueMany(t *testing.T, st apikey.Store) (tokens, ids []string) {
	t.Helper()
	ctx := context.Background()
	m := newManager(t, st, apikey.WithLastUsedInterval(time.Hour))
	for i := 0; i < 20; i++ {
		secret, k, err := m.Issue(ctx, apikey.IssueRequest{
			Owner:    fmt.Sprint("owner-", i%3),
			Name:     "key " + fmt.Sprint(i),
			Scopes:   []string{"orders:read"},
			Metadata: map[string]string{"plan": "pro"},
		})
		if err != nil {
			t.Fatal(err)
		}
		tokens, ids = append(tokens, secret.Reveal()), append(ids, k.ID)
		if _, err := m.Verify(ctx, secret.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	secret, k, err := m.Rotate(ctx, ids[0], time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokens, ids = append(tokens, secret.Reveal()), append(ids, k.ID)
	if err := m.Revoke(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return tokens, ids
}

// TestNoSecretsStored writes keys through a Manager and then searches all
// of storage for them: every byte of the SQLite database and its WAL, and
// every row of every table in the PostgreSQL schema.
func TestNoSecretsStored(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keys.db")
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tokens, ids := issueMany(t, newStore(t, db, sqlstore.SQLite))
		var dump []byte
		files, _ := filepath.Glob(path + "*") // keys.db, keys.db-wal, keys.db-shm
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dump = append(dump, b...)
		}
		if len(files) < 2 {
			t.Fatalf("read only %v; want the database and its WAL", files)
		}
		checkDump(t, dump, tokens, ids)
	})
	t.Run("postgres", func(t *testing.T) {
		b := backends()[1]
		need(t, b)
		db, _ := b.open(t)
		tokens, ids := issueMany(t, newStore(t, db, sqlstore.Postgres))
		checkDump(t, postgresDump(t, db), tokens, ids)
	})
	t.Run("mysql", func(t *testing.T) {
		b := backends()[2]
		need(t, b)
		db, _ := b.open(t)
		tokens, ids := issueMany(t, newStore(t, db, sqlstore.MySQL))
		checkDump(t, mysqlDump(t, db), tokens, ids)
	})
}

func checkDump(t *testing.T, dump []byte, tokens, ids []string) {
	t.Helper()
	// The dump must be meaningful: every key's record is in it.
	for _, id := range ids {
		if !bytes.Contains(dump, []byte(id)) {
			t.Fatalf("key ID %s not found in the %d-byte dump: the test reads the wrong thing", id, len(dump))
		}
	}
	for _, tok := range tokens {
		for _, s := range secretParts(tok) {
			if bytes.Contains(dump, []byte(s)) {
				t.Fatalf("storage holds a secret (%d characters of key %s)", len(s), tok[:len("acme_test_")+apikey.IDLen])
			}
		}
	}
}

// TestBadInput: text that trips up careless SQL and encodings goes in and
// comes out unchanged through a Manager, and what a column cannot hold is
// refused with ErrInvalidRequest rather than mangled.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	nasty := []string{
		`'; DROP TABLE apikey_keys; --`,
		`Robert"); DELETE FROM apikey_keys WHERE ("1"="1`,
		`$1 ?1 :name @p %s \x00 \\`,
		"emoji 🔑🚀 and ünïcödé",
		"owner' OR '1'='1",
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			m := newManager(t, st)
			for i, s := range nasty {
				meta := map[string]string{
					"quote\"d'": s,
					"nul":       "a\x00b\x00",
					"emoji 🚀":   "🔑✨",
					"big":       strings.Repeat("x'\"\x00", 10<<10/4),
				}
				secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: s, Name: s, Metadata: meta})
				if err != nil {
					t.Fatalf("Issue #%d: %v", i, err)
				}
				got, err := m.Verify(ctx, secret.Reveal())
				if err != nil {
					t.Fatalf("Verify #%d: %v", i, err)
				}
				stored, err := st.Get(ctx, k.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range []*apikey.Key{got, stored} {
					if g.Owner != s || g.Name != s || len(g.Metadata) != len(meta) {
						t.Fatalf("#%d: owner %q, name %q, %d metadata entries", i, g.Owner, g.Name, len(g.Metadata))
					}
					for name, v := range meta {
						if g.Metadata[name] != v {
							t.Fatalf("#%d: metadata %q changed", i, name)
						}
					}
				}
				keys, _, err := m.List(ctx, apikey.ListOptions{Owner: s})
				if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
					t.Fatalf("List(owner %q) = %d keys, %v", s, len(keys), err)
				}
			}
			var n int
			if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_keys`).Scan(&n); err != nil || n != len(nasty) {
				t.Fatalf("table holds %d keys (%v), want %d", n, err, len(nasty))
			}

			// The Store refuses, on both dialects alike, text that a
			// PostgreSQL text column cannot hold.
			for _, k := range []*apikey.Key{
				{ID: "nul-owner", Owner: "a\x00b", Digest: []byte{1}},
				{ID: "bad-utf8-name", Name: "\xff\xfe", Digest: []byte{1}},
				{ID: "a\x00b", Digest: []byte{1}},
				{ID: "", Digest: []byte{1}},
				{ID: "bad-meta", Metadata: map[string]string{"k": "\xff"}, Digest: []byte{1}},
			} {
				if err := st.Create(ctx, k); !errors.Is(err, apikey.ErrInvalidRequest) {
					t.Fatalf("Create(%q): %v, want ErrInvalidRequest", k.ID, err)
				}
			}
			for _, id := range []string{"\xff", "a\x00"} {
				if _, err := st.Get(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
					t.Fatalf("Get(%q): %v, want ErrNotFound", id, err)
				}
			}
			if _, _, err := st.List(ctx, apikey.ListOptions{Owner: "\x00"}); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("List(owner NUL): %v, want ErrInvalidRequest", err)
			}
		})
	}
}

// TestRotateAtomic: Manager.Rotate goes through the Store's transaction,
// and a Rotate that fails half-way leaves no trace.
func TestRotateAtomic(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			count := func() (n int) {
				if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_keys`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			old := &apikey.Key{ID: "old", Owner: "o", Digest: []byte{1}}
			taken := &apikey.Key{ID: "taken", Owner: "o", Digest: []byte{2}}
			for _, k := range []*apikey.Key{old, taken} {
				if err := st.Create(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			// The old key's update succeeds inside the transaction, then
			// the insert fails: the update must be rolled back.
			next := old.Clone()
			next.ExpiresAt = time.Now().Add(time.Hour)
			next.ReplacedBy = "taken"
			if err := st.Rotate(ctx, next, &apikey.Key{ID: "taken", Owner: "o", Digest: []byte{3}}); !errors.Is(err, apikey.ErrConflict) {
				t.Fatalf("Rotate onto a taken ID: %v, want ErrConflict", err)
			}
			if next.Revision != 1 {
				t.Fatalf("failed Rotate changed the caller's revision to %d", next.Revision)
			}
			got, err := st.Get(ctx, "old")
			if err != nil || got.Revision != 1 || got.ReplacedBy != "" || !got.ExpiresAt.IsZero() {
				t.Fatalf("old key after a failed Rotate: %+v, %v", got, err)
			}
			// A replacement the database refuses (through the Store's own
			// checks) also leaves nothing.
			if err := st.Rotate(ctx, next, &apikey.Key{ID: "bad\x00", Digest: []byte{3}}); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("Rotate with a bad replacement: %v", err)
			}
			// A cancelled context in the middle: nothing either.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := st.Rotate(cctx, next, &apikey.Key{ID: "fresh", Digest: []byte{3}}); err == nil {
				t.Fatal("Rotate with a cancelled context succeeded")
			}
			if n := count(); n != 2 {
				t.Fatalf("%d keys after failed rotations, want 2", n)
			}

			// Through a Manager, the replacement and the old key's grace
			// expiry are written together.
			m := newManager(t, st)
			secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
			if err != nil {
				t.Fatal(err)
			}
			newSecret, repl, err := m.Rotate(ctx, k.ID, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			oldRec, _ := st.Get(ctx, k.ID)
			if oldRec.ReplacedBy != repl.ID || oldRec.ExpiresAt.IsZero() || repl.RotatedFrom != k.ID {
				t.Fatalf("after Rotate: old %+v, replacement %+v", oldRec, repl)
			}
			for _, s := range []apikey.Secret{secret, newSecret} {
				if _, err := m.Verify(ctx, s.Reveal()); err != nil {
					t.Fatalf("Verify during the grace period: %v", err)
				}
			}
		})
	}
}

// TestPostgresCollation: IDs sort bytewise, as List's cursor needs, even
// in a database whose default collation is a natural-language one (where
// "a" < "B" < "c").
func TestPostgresCollation(t *testing.T) {
	b := backends()[1]
	need(t, b)
	dsn := os.Getenv("APIKEY_TEST_POSTGRES")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "apikey_icu_" + randomHex(4)
	if _, err := admin.Exec(`CREATE DATABASE ` + name + ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`); err != nil {
		t.Skipf("cannot create a database with an ICU collation here: %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP DATABASE ` + name + ` WITH (FORCE)`) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before bool
	if err := db.QueryRow(`SELECT 'a' < 'B'`).Scan(&before); err != nil || !before {
		t.Fatalf("the database does not sort naturally ('a' < 'B' is %v, %v): the test proves nothing", before, err)
	}
	st := newStore(t, db, sqlstore.Postgres)
	ctx := context.Background()
	for _, id := range []string{"c", "a", "D", "B"} {
		if err := st.Create(ctx, &apikey.Key{ID: id, Owner: "o", Digest: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, owner := range []string{"", "o"} {
		var got []string
		cursor := ""
		for {
			keys, next, err := st.List(ctx, apikey.ListOptions{Owner: owner, Cursor: cursor, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				got = append(got, k.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if strings.Join(got, ",") != "B,D,a,c" {
			t.Fatalf("List(owner %q) = %v, want bytewise order B,D,a,c", owner, got)
		}
	}
}

// TestManagerFlushesLastUsed: uses recorded by a Manager reach the
// database in a batch, at the latest when it closes.
func TestManagerFlushesLastUsed(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			st := newStore(t, db, b.dialect)
			m := newManager(t, st, apikey.WithLastUsedInterval(time.Hour))
			secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Verify(ctx, secret.Reveal()); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.Get(ctx, k.ID); !got.LastUsedAt.IsZero() {
				t.Fatal("a use was written at once, not batched")
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, k.ID)
			if err != nil || got.LastUsedAt.IsZero() || got.Revision != 1 {
				t.Fatalf("after Close: LastUsedAt %v, revision %d, %v", got.LastUsedAt, got.Revision, err)
			}
		})
	}
}
