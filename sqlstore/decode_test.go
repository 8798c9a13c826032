package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var jsonSeeds = []string{
	`[]`, `{}`, `["a"]`, `["orders:read","billing:*","*"]`, `["a","b"]`,
	`[ "a" ]`, `["a\"b"]`, `["\u0000"]`, `["\u003c"]`, `["🔑"]`, `["a",]`, `[,]`, `["a""b"]`,
	`{"plan":"pro"}`, `{"a":"1","b":"2"}`, `{"a":"1","a":"2"}`, `{"nul":"a\u0000b"}`, `{"k":1}`,
	`{"k" : "v"}`, `{"k":"v",}`, `{"k"}`, `["10.0.0.0/8","2001:db8::/32"]`, `["::ffff:198.51.100.0/120"]`,
	`["10.0.0.1/33"]`, `[""]`, `{"":""}`, "[\"\xff\"]", `null`, ``, `[`, `"`, `["a"`, `{"a":"b"`,
}

// FuzzJSONColumns checks that the fast path decodes exactly what
// encoding/json would, whenever it accepts the input.
func FuzzJSONColumns(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, mk := range []func() (any, sql.Scanner){
			func() (any, sql.Scanner) { p := new([]string); return p, jsonOf(p) },
			func() (any, sql.Scanner) { p := new([]netip.Prefix); return p, jsonOf(p) },
			func() (any, sql.Scanner) { p := new(map[string]string); return p, jsonOf(p) },
		} {
			got, col := mk()
			want, _ := mk()
			gotErr := col.Scan(s)
			wantErr := json.Unmarshal([]byte(s), want)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T %q: error %v, encoding/json %v", got, s, gotErr, wantErr)
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T %q: got %#v, encoding/json %#v", got, s, got, want)
			}
		}
	})
}

func TestJSONColumnsNull(t *testing.T) {
	var scopes []string
	if err := jsonOf(&scopes).Scan(nil); err != nil || scopes != nil {
		t.Fatalf("NULL: %v, %v", scopes, err)
	}
	if err := jsonOf(&scopes).Scan([]byte(`[]`)); err != nil || scopes == nil || len(scopes) != 0 {
		t.Fatalf("[]: %#v, %v", scopes, err)
	}
}

// TestIntColumn: an integer column takes what database/sql would convert
// into an *int64 (drivers hand integers as int64, or as text); NULL and
// anything else are errBadColumn, and leave the field as it was.
func TestIntColumn(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want time.Duration
		bad  bool
	}{
		{v: int64(60_000_000_000), want: time.Minute},
		{v: int64(-1), want: -1},
		{v: []byte("42"), want: 42},
		{v: "7", want: 7},
		{v: nil, bad: true},
		{v: "1.5", bad: true},
		{v: []byte("x"), bad: true},
		{v: "99999999999999999999", bad: true},
		{v: 2.5, bad: true},
	} {
		d := time.Duration(123)
		err := intCol[time.Duration]{&d}.Scan(tc.v)
		switch {
		case tc.bad && !errors.Is(err, errBadColumn):
			t.Errorf("%#v: error %v, want errBadColumn", tc.v, err)
		case tc.bad && d != 123:
			t.Errorf("%#v: refused, but the field is now %d", tc.v, d)
		case !tc.bad && (err != nil || d != tc.want):
			t.Errorf("%#v: %d, %v; want %d", tc.v, d, err, tc.want)
		}
	}
}
