package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite"

	"github.com/apikeykit/apikey"
)

// recordStore is a migrated SQLite Store, and a statement that reads a
// key's columns one by one, as Get did before schema version 9.
func recordStore(t testing.TB) (*Store, *sql.Stmt) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "keys.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := New(db, SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	wide, err := db.Prepare(`SELECT ` + columns + ` FROM apikey_keys WHERE id = ?1`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wide.Close() })
	return st, wide
}

// checkRecord fails unless Get, which reads k's record, returns what its
// columns hold.
func checkRecord(t *testing.T, st *Store, wide *sql.Stmt, id string) {
	t.Helper()
	want, err := scanKey(wide.QueryRow(id))
	if err != nil {
		t.Fatalf("columns of %s: %v", id, err)
	}
	got, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get(%s) from the record:\n%+v\nfrom the columns:\n%+v", id, got, want)
	}
}

// TestRecordMatchesColumns: on SQLite, a key read from its record equals
// the key read from its columns, for text that JSON must escape, for
// every field set, and after every kind of write: the Store's Create,
// Update, Revoke and RecordLastUsed, and plain SQL.
func TestRecordMatchesColumns(t *testing.T) {
	ctx := context.Background()
	st, wide := recordStore(t)
	at := time.Date(2026, 2, 28, 23, 59, 59, 123456000, time.UTC)
	awkward := []string{"", `"`, `\`, `a"b\c`, "line\nbreak\ttab\r", "\x01\x1f\x7f", "ключ ✓ 🔑", `\u0041`, "</script>", "a\u2028b"}
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
		checkRecord(t, st, wide, k.ID)
	}
	k, err := st.Get(ctx, "k3")
	if err != nil {
		t.Fatal(err)
	}
	k.Name, k.SuspendedAt = "renamed", at.Add(time.Minute)
	if err := st.Update(ctx, k); err != nil {
		t.Fatal(err)
	}
	checkRecord(t, st, wide, "k3")
	if err := st.RevokeWithReason(ctx, "k3", at.Add(2*time.Minute), "leaked"); err != nil {
		t.Fatal(err)
	}
	checkRecord(t, st, wide, "k3")
	if err := st.RecordLastUsed(ctx, map[string]time.Time{"k3": at.Add(3 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	checkRecord(t, st, wide, "k3")
	if got, _ := st.Get(ctx, "k3"); got.Name != "renamed" || !got.LastUsedAt.Equal(at.Add(3*time.Minute)) || got.RevokedReason != "leaked" {
		t.Fatalf("k3 after the writes: %+v", got)
	}

	// An operator's plain SQL refreshes the record too.
	if _, err := st.DB().Exec(`UPDATE apikey_keys SET name = 'by hand', rate_limit_burst = 7 WHERE id = 'k4'`); err != nil {
		t.Fatal(err)
	}
	checkRecord(t, st, wide, "k4")
	if _, err := st.DB().Exec(`INSERT INTO apikey_keys (id, prefix, owner, name, digest, digest_version, revision)
		VALUES ('by-hand', 'acme', 'o', 'n', x'0102', 'hmac-sha256/v1', 1)`); err != nil {
		t.Fatal(err)
	}
	checkRecord(t, st, wide, "by-hand")
	keys, _, err := st.List(ctx, apikey.ListOptions{Limit: 100})
	if err != nil || len(keys) != len(awkward)+1 {
		t.Fatalf("List: %d keys, %v; want %d", len(keys), err, len(awkward)+1)
	}
}

// TestRecordCorrupt: a record that is not what the triggers write is
// apikey.ErrCorruptRecord, never a key: not an array, too few or too many
// values, a value of the wrong type, bad hex, no record at all; and so is
// a last_used_at, which the record leaves out, that is not a time.
func TestRecordCorrupt(t *testing.T) {
	ctx := context.Background()
	st, _ := recordStore(t)
	if err := st.Create(ctx, &apikey.Key{ID: "k", Owner: "o", Digest: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(`UPDATE apikey_keys SET last_used_at = 'yesterday' WHERE id = 'k'`); err != nil {
		t.Fatal(err)
	}
	if k, err := st.Get(ctx, "k"); !errors.Is(err, apikey.ErrCorruptRecord) {
		t.Fatalf("Get with last_used_at 'yesterday' = %+v, %v; want ErrCorruptRecord", k, err)
	}
	if _, err := st.DB().Exec(`UPDATE apikey_keys SET last_used_at = NULL WHERE id = 'k'`); err != nil {
		t.Fatal(err)
	}
	var good string
	if err := st.DB().QueryRow(`SELECT record FROM apikey_keys WHERE id = 'k'`).Scan(&good); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, record string }{
		{"no record", ""},
		{"not an array", `{"id":"k"}`},
		{"too few", strings.Replace(good, `,1]`, `]`, 1)},
		{"too many", strings.Replace(good, `,1]`, `,1,2]`, 1)},
		{"text for an integer", strings.Replace(good, `,1]`, `,"1"]`, 1)},
		{"integer for text", strings.Replace(good, `["k",`, `[7,`, 1)},
		{"bad hex", strings.Replace(good, `"01"`, `"0g"`, 1)},
		{"unterminated", `["k`},
		{"trailing", good + " "},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.record == good {
				t.Fatal("the case changes nothing")
			}
			// Set record alone: its update trigger does not fire for it.
			var rec any = c.record
			if c.record == "" {
				rec = nil
			}
			if _, err := st.DB().Exec(`UPDATE apikey_keys SET record = ?1 WHERE id = 'k'`, rec); err != nil {
				t.Fatal(err)
			}
			if k, err := st.Get(ctx, "k"); !errors.Is(err, apikey.ErrCorruptRecord) {
				t.Fatalf("Get = %+v, %v; want ErrCorruptRecord", k, err)
			}
		})
	}
}

// FuzzRecordRow: any record decodes without panicking, and one that is a
// compact JSON array (as json_array writes them) of nulls, numbers and
// strings in UTF-8 yields what encoding/json reads from it. (encoding/json
// replaces bytes that are not UTF-8, which recordRow keeps, as the columns
// do: FuzzRecordText checks those against the columns.)
func FuzzRecordRow(f *testing.F) {
	for _, s := range []string{`[]`, `[null]`, `["k","acme",1,-2,3.5,1e3,null]`, `["a\"b","\u00e9\n"]`, `["\ud83d\udd11"]`,
		`[1,]`, `[,]`, `["`, `["\`, `[-]`, `[1.2.3]`, `[99999999999999999999]`, `[true]`, `[[1]]`, "[\"\x01\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scanKey(recordRow(s)) // must not panic
		got, ok := recordValues(s)
		var want []any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var compact bytes.Buffer
		if dec.Decode(&want) != nil || dec.More() || want == nil || json.Compact(&compact, []byte(s)) != nil || compact.String() != s || !utf8.ValidString(s) {
			return
		}
		for i, v := range want {
			switch v := v.(type) {
			case bool, []any, map[string]any:
				return // json_array makes none of these of SQL values
			case json.Number:
				if strings.ContainsAny(string(v), ".eE") {
					f, err := v.Float64()
					if err != nil {
						return // out of range: refused, rightly
					}
					want[i] = f
				} else if n, err := v.Int64(); err == nil {
					want[i] = n
				} else {
					return // out of range: refused, rightly
				}
			}
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("recordValues(%q) = %#v, %v; encoding/json reads %#v", s, got, ok, want)
		}
	})
}

// recordValues reads a whole record with recordValue.
func recordValues(s string) ([]any, bool) {
	s, ok := strings.CutPrefix(strings.TrimSpace(s), "[")
	if !ok {
		return nil, false
	}
	vals := []any{}
	if rest, ok := strings.CutPrefix(s, "]"); ok {
		return vals, rest == ""
	}
	for {
		v, rest, err := recordValue(s)
		if err != nil {
			return nil, false
		}
		vals = append(vals, v)
		if rest == "]" {
			return vals, true
		}
		if s, ok = strings.CutPrefix(rest, ","); !ok {
			return nil, false
		}
	}
}

// FuzzRecordText: text of any kind that the Store accepts in a key's
// name, owner, scopes and metadata comes back from the record SQLite's
// json_array made of it, as it comes back from the columns.
func FuzzRecordText(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, "a\nb", "\x00", "\x01", "é", "🔑", "\xff", `\u0000`} {
		f.Add(s, s)
	}
	st, wide := recordStore(f)
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
		checkRecord(t, st, wide, id)
	})
}

// BenchmarkRecordRow decodes a typical key's record, as SQLite's triggers
// write it, into a Key.
func BenchmarkRecordRow(b *testing.B) {
	st, _ := recordStore(b)
	ctx := context.Background()
	if err := st.Create(ctx, &apikey.Key{ID: "0nO89aUKjHo1", Prefix: "bench", Owner: "owner-0", Name: "bench key 0",
		Scopes: []string{"orders:read", "billing:*"}, Digest: make([]byte, 32), DigestVersion: "hmac-sha256/v1",
		CreatedAt: time.Now(), RateLimit: apikey.Limit{Rate: 100, Period: time.Minute, Burst: 20},
		Metadata: map[string]string{"plan": "pro"}}); err != nil {
		b.Fatal(err)
	}
	var rec string
	if err := st.DB().QueryRow(`SELECT record FROM apikey_keys`).Scan(&rec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := scanKey(recordRow(rec)); err != nil {
			b.Fatal(err)
		}
	}
}
