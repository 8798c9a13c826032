package apikey_test

import (
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLegacyIDRule(t *testing.T) {
	at := must(apikey.LegacyIDAt(2, 8))
	after := must(apikey.LegacyIDAfter("sk_live_", 6))
	match := must(apikey.LegacyIDMatch(`^tok-([0-9a-f]{8})-[A-Za-z0-9]+$`))
	for _, tc := range []struct {
		rule apikey.LegacyIDRule
		key  string
		id   string // "" none
	}{
		{at, "ak1234abcdSECRET", "1234abcd"},
		{at, "ak1234abc", ""},
		{at, "ak1234abcd", "1234abcd"},
		{after, "sk_live_ABC123.secret", "ABC123"},
		{after, "sk_test_ABC123.secret", ""},
		{after, "sk_live_ABC", ""},
		{match, "tok-0123abcd-s3cr3t", "0123abcd"},
		{match, "tok-0123abcd-", ""},
		{match, "xtok-0123abcd-s3cr3t", ""},
		{apikey.LegacyIDRule{}, "anything", ""},
		{must(apikey.LegacyIDMatch(`^k(x?)\.`)), "k.secret", ""}, // an empty group is no ID
	} {
		id, ok := tc.rule.Extract(tc.key)
		assert.Equal(t, tc.id != "", ok, "%v %q", tc.rule, tc.key)
		assert.Equal(t, tc.id, id, "%v %q", tc.rule, tc.key)
	}
	assert.True(t, apikey.LegacyIDRule{}.IsZero())
	assert.False(t, at.IsZero())
	assert.Equal(t, `LegacyIDAfter("sk_live_", 6)`, after.String())
}

func TestLegacyIDRuleRejects(t *testing.T) {
	for name, f := range map[string]func() (apikey.LegacyIDRule, error){
		"at negative":     func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDAt(-1, 4) },
		"at zero length":  func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDAt(0, 0) },
		"at too long":     func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDAt(0, apikey.MaxLegacyIDLen+1) },
		"after no prefix": func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDAfter("", 4) },
		"match bad":       func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDMatch(`(`) },
		"match no group":  func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDMatch(`^k.+$`) },
		"match 2 groups":  func() (apikey.LegacyIDRule, error) { return apikey.LegacyIDMatch(`^(k)(.+)$`) },
	} {
		_, err := f()
		require.ErrorIs(t, err, apikey.ErrInvalidRequest, name)
	}
}

// FuzzLegacyIDRule: for any key, every kind of rule extracts a non-empty
// substring of the key of at most MaxLegacyIDLen bytes, or nothing, and
// never panics.
func FuzzLegacyIDRule(f *testing.F) {
	f.Add("sk_live_ABC123.secret", 3, 5, "sk_", `^sk_live_([A-Z0-9]+)\.`)
	f.Add("", 0, 1, "x", `(.*)`)
	f.Fuzz(func(t *testing.T, key string, start, length int, prefix, expr string) {
		var rules []apikey.LegacyIDRule
		if r, err := apikey.LegacyIDAt(start, length); err == nil {
			rules = append(rules, r)
		}
		if r, err := apikey.LegacyIDAfter(prefix, length); err == nil {
			rules = append(rules, r)
		}
		if len(expr) < 200 {
			if r, err := apikey.LegacyIDMatch(expr); err == nil {
				rules = append(rules, r)
			}
		}
		for _, r := range rules {
			id, ok := r.Extract(key)
			if ok != (id != "") || len(id) > apikey.MaxLegacyIDLen || !strings.Contains(key, id) {
				t.Fatalf("%v.Extract(%q) = %q, %v", r, key, id, ok)
			}
		}
	})
}
