package leaks

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
)

func TestLeakReason(t *testing.T) {
	long := "https://github.com/" + strings.Repeat("é", 600)
	for _, tt := range []struct{ url, want string }{
		{"https://github.com/o/r/blob/1/x", "leaked: https://github.com/o/r/blob/1/x"},
		{"", "leaked: (no URL given)"},
		{"https://x/\x1b[31mred\n", "leaked: https://x/\uFFFD[31mred\uFFFD"},
		{"https://x/\u202egnp.exe", "leaked: https://x/\uFFFDgnp.exe"},
		{"https://x/\xff", "leaked: https://x/\uFFFD"},
	} {
		if got := leakReason(tt.url); got != tt.want {
			t.Errorf("leakReason(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	got := leakReason(long)
	if len(got) > apikey.MaxRevokedReasonLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("leakReason(long) = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

// FuzzParseReport: the body parser never panics, accepts at most max
// elements, accepts only JSON arrays, and what it accepts is valid JSON.
func FuzzParseReport(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[{"token":"acme_live_x","type":"t","url":"u","source":"content"}]`, `[null]`, `[{}] x`,
		`[{"token":1}]`, `{"token":"x"}`, `[[]]`, `[{"token":"\u0000"}]`, ` [ ] `, `[{"token":"a"},{"token":"b"},{"token":"c"},{"token":"d"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 3
		reports, err := parseReport(body, max)
		if err != nil {
			return
		}
		if len(reports) > max {
			t.Fatalf("%d reports, max %d", len(reports), max)
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil || len(arr) != len(reports) {
			t.Fatalf("accepted %q as %d reports; as a JSON array: %d, %v", body, len(reports), len(arr), err)
		}
	})
}

// FuzzParseKeyDocument: the key document parser never panics, and what it
// accepts holds at least one key, each with an identifier.
func FuzzParseKeyDocument(f *testing.F) {
	f.Add([]byte(`{"public_keys":[{"key_identifier":"k","key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXXbYgmzAyyjv1w7DGVXDKcGgfXsC/1sfQo9gtpxF1jqYhkNxv8UmJyA1HIX0B5ir0zbFV1RQPOBt1+9oCZ5KZA==\n-----END PUBLIC KEY-----\n","is_current":true}]}`))
	f.Add([]byte(`{"public_keys":[]}`))
	f.Add([]byte(`{"public_keys":[{"key_identifier":"","key":""}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseKeyDocument(body)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("accepted a document without keys")
		}
		for id, k := range keys {
			if id == "" || k == nil {
				t.Fatalf("key %q: %v", id, k)
			}
		}
	})
}

func TestParseKeyDocumentRejects(t *testing.T) {
	for _, doc := range []string{
		`{"public_keys":[]}`, `not json`, `{"public_keys":[{"key_identifier":"k","key":"not pem"}]}`,
		`{"public_keys":[{"key_identifier":"","key":"x"}]}`,
	} {
		if _, err := parseKeyDocument([]byte(doc)); err == nil {
			t.Errorf("parseKeyDocument(%q) accepted", doc)
		}
	}
}
