package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	_ "modernc.org/sqlite"

	"github.com/apikeykit/apikey"
)

// recordStore is a migrated SQLite Store.
func recordStore(t testing.TB) *Store {
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
	return st
}

// TestRecordCorrupt: a record that is not what the triggers write is
// apikey.ErrCorruptRecord, never a key: not an array, too few or too many
// values, a value of the wrong type, bad hex, no record at all; and so is
// a last_used_at, which the record leaves out, that is not a time.
func TestRecordCorrupt(t *testing.T) {
	ctx := context.Background()
	st := recordStore(t)
	for _, id := range []string{"k", "m"} { // m follows k in List
		if err := st.Create(ctx, &apikey.Key{ID: id, Owner: "o", Digest: []byte{1}}); err != nil {
			t.Fatal(err)
		}
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
		{"trailing", good + ","},
		{"another key's", strings.Replace(good, `["k",`, `["other",`, 1)},
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
			// List names the key, and its cursor goes on from it.
			keys, next, err := st.List(ctx, apikey.ListOptions{Limit: 1})
			if !errors.Is(err, apikey.ErrCorruptRecord) || !strings.Contains(err.Error(), "(k)") || len(keys) != 0 || next != "k" {
				t.Fatalf("List = %d keys, cursor %q, %v; want the corrupt key named, cursor k", len(keys), next, err)
			}
		})
	}
}

// FuzzRecordRow: any record decodes without panicking, and one that is a
// JSON array of nulls, numbers and strings in UTF-8 yields what
// encoding/json reads from it. (encoding/json
// replaces bytes that are not UTF-8, which recordRow keeps, as the columns
// do: FuzzRecordText checks those against the columns.)
func FuzzRecordRow(f *testing.F) {
	for _, s := range []string{`[]`, `[null]`, `["k","acme",1,-2,3.5,1e3,null]`, `["a\"b","\u00e9\n"]`, `["\ud83d\udd11"]`,
		`[1,]`, `[,]`, `["`, `["\`, `[-]`, `[1.2.3]`, `[99999999999999999999]`, `[true]`, `[[1]]`, "[\"\x01\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scanKey(recordRow(s)) // must not panic
		var want []any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if dec.Decode(&want) != nil || dec.Decode(new(any)) != io.EOF || want == nil || !utf8.ValidString(s) {
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
		got := make([]capture, len(want))
		dest := make([]any, len(want))
		for i := range got {
			dest[i] = &got[i]
		}
		err := recordRow(s).Scan(dest...)
		for i := range got {
			if err == nil && !reflect.DeepEqual(got[i].v, want[i]) {
				err = fmt.Errorf("value %d is %#v", i+1, got[i].v)
			}
		}
		if err != nil {
			t.Fatalf("recordRow(%q).Scan: %v; encoding/json reads %#v", s, err, want)
		}
	})
}

// capture is an sql.Scanner that keeps the value it is handed.
type capture struct{ v any }

func (c *capture) Scan(v any) error {
	c.v = v
	return nil
}

// BenchmarkRecordRow decodes a typical key's record, as SQLite's triggers
// write it, into a Key.
func BenchmarkRecordRow(b *testing.B) {
	st := recordStore(b)
	ctx := context.Background()
	if err := st.Create(ctx, &apikey.Key{ID: "0nO89aUKjHo1", Prefix: "bench", Owner: "owner-0", Name: "bench key 0",
		Scopes: []string{"orders:read", "billing:*"}, Digest: make([]byte, 32), DigestVersion: "hmac-sha256/v1",
		CreatedAt: time.Now(), RateLimit: apikey.Limit{Rate: 100, Period: time.Minute, Burst: 20},
		Metadata: map[string]string{"plan": "pro"}}); err != nil {
		b.Fatal(err)
	}
	var rec string
	if err := st.DB().QueryRow(`SELECT record FROM apikey_keys WHERE id = '0nO89aUKjHo1'`).Scan(&rec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keyFromRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRecordDetached: none of a decoded Key's text fields points into its
// record, which a cached Key would otherwise keep alive whole, and the
// fields hold what the record does.
func TestRecordDetached(t *testing.T) {
	st := recordStore(t)
	ctx := context.Background()
	want := &apikey.Key{ID: "0nO89aUKjHo1", Prefix: "bench", Owner: "owner-0", Name: "bench key 0",
		Scopes: []string{"orders:read"}, Digest: make([]byte, 32), DigestVersion: "hmac-sha256/v1",
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond), RotatedFrom: "0nO89aUKjHo0", ReplacedBy: "0nO89aUKjHo2",
		RevokedReason: "compromised", Lineage: "0nO89aUKjHo0", Metadata: map[string]string{"plan": "pro"}}
	if err := st.Create(ctx, want); err != nil {
		t.Fatal(err)
	}
	var rec string
	if err := st.DB().QueryRow(`SELECT record FROM apikey_keys WHERE id = ?`, want.ID).Scan(&rec); err != nil {
		t.Fatal(err)
	}
	k, err := keyFromRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(rec)))
	for name, f := range map[string]string{"ID": k.ID, "Prefix": k.Prefix, "Owner": k.Owner, "Name": k.Name,
		"DigestVersion": k.DigestVersion, "RotatedFrom": k.RotatedFrom, "ReplacedBy": k.ReplacedBy,
		"RevokedReason": k.RevokedReason, "Lineage": k.Lineage} {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(f))); p >= start && p < start+uintptr(len(rec)) {
			t.Errorf("%s %q points into the record", name, f)
		}
	}
	k.Revision = want.Revision
	if !reflect.DeepEqual(k, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", k, want)
	}
}
