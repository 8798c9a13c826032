package sqlstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"golang.org/x/crypto/bcrypt"
)

// TestLegacyKeys imports a SHA-256 and a bcrypt key into a real database,
// verifies both through the middleware of a Manager on another
// connection (another process, in effect), and revokes them from the
// first Manager: the second, which has them cached for ten minutes,
// refuses them within a second (LISTEN/NOTIFY on PostgreSQL, the change
// log on SQLite). Nothing of the keys, nor the old SHA-256 hash, is in
// any row.
func TestLegacyKeys(t *testing.T) {
	ctx := context.Background()
	rule, err := apikey.LegacyIDAfter("old_", 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apikey.LegacyConfig{ID: rule}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, reopen := b.open(t)
			a := newManager(t, newStore(t, db, b.dialect), apikey.WithLegacy(cfg))
			other := newManager(t, newStore(t, reopen(), b.dialect), apikey.WithLegacy(cfg))
			time.Sleep(300 * time.Millisecond) // let the Watchers start

			sha := oldKey(t, "")
			sum := sha256.Sum256([]byte(sha))
			shaHash := "sha256:" + hex.EncodeToString(sum[:])
			bc := oldKey(t, "")
			bcHash, err := bcrypt.GenerateFromPassword([]byte(bc), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := a.ImportLegacy(ctx, []apikey.LegacyImport{
				{IssueRequest: apikey.IssueRequest{Owner: "team-1", Scopes: []string{"orders:read"}}, Hash: shaHash},
				{IssueRequest: apikey.IssueRequest{Owner: "team-2"}, Hash: string(bcHash), ID: bc[4:12]},
			})
			if err != nil {
				t.Fatal(err)
			}
			// Imported again: refused, nothing written.
			if _, err := a.ImportLegacy(ctx, []apikey.LegacyImport{
				{IssueRequest: apikey.IssueRequest{Owner: "team-3"}, Hash: shaHash},
			}); !errors.Is(err, apikey.ErrConflict) {
				t.Fatalf("second import: %v, want ErrConflict", err)
			}
			if page, _, err := a.List(ctx, apikey.ListOptions{Owner: "team-3"}); err != nil || len(page) != 0 {
				t.Fatalf("a refused import wrote %d keys (%v)", len(page), err)
			}

			h := other.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				k, _ := apikey.FromContext(r.Context())
				w.Write([]byte(k.ID))
			}))
			get := func(key string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("X-API-Key", key)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			for i, key := range []string{sha, bc} {
				w := get(key)
				if w.Code != http.StatusOK || w.Body.String() != keys[i].ID {
					t.Fatalf("key %d: %d %q, want 200 and %s", i, w.Code, w.Body.String(), keys[i].ID)
				}
				if err := a.Revoke(ctx, keys[i].ID); err != nil {
					t.Fatal(err)
				}
				eventually(t, time.Second, "the other Manager refuses the revoked legacy key", func() bool {
					return get(key).Code == http.StatusUnauthorized
				})
			}
			scan := scanRows(t, reopen(), "apikey_legacy_keys", "apikey_keys")
			for _, s := range []string{sha[4:], bc[12:], hex.EncodeToString(sum[:])} {
				if strings.Contains(scan, s) {
					t.Errorf("the database holds %q", s)
				}
			}
			if !strings.Contains(scan, "$2a$04$") {
				t.Error("the bcrypt hash is not in the table scan: the scan proves nothing")
			}
		})
	}
}

// oldKey is a key of the old system: "old_", an 8-character ID, ".", a
// secret.
func oldKey(t *testing.T, _ string) string {
	b := make([]byte, 22)
	rand.Read(b)
	return "old_" + hex.EncodeToString(b[:4]) + "." + base64.RawURLEncoding.EncodeToString(b[4:])
}

// scanRows returns every value of every row of the tables, as text.
func scanRows(t *testing.T, db *sql.DB, tables ...string) string {
	t.Helper()
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					out.Write(b)
					out.WriteString(" " + hex.EncodeToString(b))
				} else {
					fmt.Fprint(&out, v)
				}
				out.WriteByte('|')
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out.String()
}
