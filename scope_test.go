package apikey

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateScope(t *testing.T) {
	long := strings.Repeat("a", 128)
	seg16 := strings.Repeat("a:", 15) + "a"
	tests := []struct {
		scope  string
		reason string // "" if valid
	}{
		{"orders", ""},
		{"orders:read", ""},
		{"billing:invoices:write", ""},
		{"Orders.V2_beta-1:READ", ""},
		{"*", ""},
		{"orders:*", ""},
		{"*:read", ""},
		{"orders:*:read", ""},
		{"*:*", ""},
		{long, ""},
		{seg16, ""},

		{"", "empty scope"},
		{long + "a", "longer than 128 bytes"},
		{seg16 + ":a", "more than 16 segments"},
		{"orders::read", "empty segment"},
		{":orders", "empty segment"},
		{"orders:", "empty segment"},
		{":", "empty segment"},
		{"ord*", `"*" must be a whole segment`},
		{"orders:*read", `"*" must be a whole segment`},
		{"**", `"*" must be a whole segment`},
		{"orders:re@d", "invalid character '@' at offset 9"},
		{"orders read", "invalid character ' ' at offset 6"},
		{"orders\x00", `invalid character '\x00' at offset 6`},
		{"ordérs", "invalid character byte 0xc3 at offset 3"},
		{"\xff", "invalid character byte 0xff at offset 0"},
		{"orders/read", "invalid character '/' at offset 6"},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			err := ValidateScope(tt.scope)
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidScope)
			assert.True(t, strings.HasSuffix(err.Error(), ": "+tt.reason), "error %q should end with reason %q", err, tt.reason)
		})
	}
}

func TestValidateScopeMessage(t *testing.T) {
	err := ValidateScope("orders::read")
	require.EqualError(t, err, `apikey: invalid scope "orders::read": empty segment`)

	// Control bytes are escaped.
	err = ValidateScope("a\nb")
	require.EqualError(t, err, `apikey: invalid scope "a\nb": invalid character '\n' at offset 1`)

	// Absurdly long input is truncated in the message.
	err = ValidateScope(strings.Repeat("x", 1<<20))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200)
	assert.Equal(t, `apikey: invalid scope "`+strings.Repeat("x", 64)+`"...: longer than 128 bytes`, err.Error())
}

func TestValidateScopes(t *testing.T) {
	require.NoError(t, ValidateScopes(nil))
	require.NoError(t, ValidateScopes([]string{"orders:read", "orders:*", "*"}))

	err := ValidateScopes([]string{"orders:read", "bad scope", "a::b"})
	require.ErrorIs(t, err, ErrInvalidScope)
	assert.Contains(t, err.Error(), `"bad scope"`, "first bad scope is reported")

	err = ValidateScopes([]string{"orders:read", "billing:read", "orders:read"})
	require.ErrorIs(t, err, ErrInvalidScope)
	assert.EqualError(t, err, `apikey: invalid scope "orders:read": listed twice`)

	// Case-sensitive: not duplicates.
	require.NoError(t, ValidateScopes([]string{"orders:read", "Orders:read"}))
}

func TestScopeMatches(t *testing.T) {
	tests := []struct {
		granted, required string
		want              bool
	}{
		// Literal.
		{"orders:read", "orders:read", true},
		{"orders:read", "orders:write", false},
		{"orders", "orders", true},
		{"orders", "orders:read", false}, // shorter granted
		{"orders:read", "orders", false}, // longer granted
		{"orders:read", "Orders:read", false},
		{"orders:read", "orders:read:all", false},

		// "*" alone grants everything.
		{"*", "orders", true},
		{"*", "orders:read", true},
		{"*", "a:b:c:d:e:f", true},

		// Trailing "*": one or more segments, not zero.
		{"orders:*", "orders:read", true},
		{"orders:*", "orders:read:all", true},
		{"orders:*", "orders", false},
		{"orders:*", "billing:read", false},
		{"orders:*", "ordersx:read", false},
		{"billing:*", "billing:invoices:write", true},

		// A "*" in the middle: exactly one segment.
		{"*:read", "orders:read", true},
		{"*:read", "orders:write", false},
		{"*:read", "orders:x:read", false},
		{"*:read", "read", false},
		{"orders:*:read", "orders:eu:read", true},
		{"orders:*:read", "orders:eu:west:read", false},
		{"orders:*:read", "orders:read", false},

		// Both kinds.
		{"*:*", "orders:read", true},
		{"*:*", "orders:read:all", true},
		{"*:*", "orders", false},
		{"a:*:*", "a:b", false},
		{"a:*:*", "a:b:c", true},
		{"a:*:*", "a:b:c:d", true},

		// An invalid required scope never matches.
		{"*", "", false},
		{"*", "orders:*", false},
		{"orders:*", "orders:*", false},
		{"*", "*", false},
		{"*", "orders::read", false},
		{"*", "orders read", false},
		{"*", strings.Repeat("a", 129), false},
		{"*", strings.Repeat("a:", 16) + "a", false},
		{"orders:read", "orders:read\x00", false},

		// An invalid granted scope never matches.
		{"", "orders", false},
		{"orders:", "orders", false},
		{"orders::read", "orders:read", false},
		{"ord*", "orders", false},
		{"ord*", "ord*", false},
		{"orders:**", "orders:read", false},
	}
	for _, tt := range tests {
		t.Run(tt.granted+"|"+tt.required, func(t *testing.T) {
			assert.Equal(t, tt.want, ScopeMatches(tt.granted, tt.required))
			assert.Equal(t, tt.want, refMatch(tt.granted, tt.required), "reference implementation disagrees with the table")
		})
	}
}

// TestScopeMatchesExhaustive checks ScopeMatches against the reference
// implementation for every granted scope of 1 to 4 segments from {a, bb, *}
// and every required scope of 1 to 4 segments from {a, bb}.
func TestScopeMatchesExhaustive(t *testing.T) {
	var granted, required []string
	var gen func(prefix string, n int, segs []string, out *[]string)
	gen = func(prefix string, n int, segs []string, out *[]string) {
		if n == 0 {
			return
		}
		for _, seg := range segs {
			s := seg
			if prefix != "" {
				s = prefix + ":" + seg
			}
			*out = append(*out, s)
			gen(s, n-1, segs, out)
		}
	}
	gen("", 4, []string{"a", "bb", "*"}, &granted)
	gen("", 4, []string{"a", "bb"}, &required)
	matches := 0
	for _, g := range granted {
		for _, r := range required {
			want := refMatch(g, r)
			if ScopeMatches(g, r) != want {
				t.Errorf("ScopeMatches(%q, %q) = %v, want %v", g, r, !want, want)
			}
			if want {
				matches++
			}
		}
	}
	require.Len(t, granted, 120)
	require.Len(t, required, 30)
	t.Logf("%d pairs, %d match", len(granted)*len(required), matches)
}

func TestHasScope(t *testing.T) {
	granted := []string{"orders:read", "billing:*", "*:admin"}
	tests := []struct {
		required string
		want     bool
	}{
		{"orders:read", true},
		{"orders:write", false},
		{"billing:invoices", true},
		{"billing:invoices:write", true},
		{"billing", false},
		{"users:admin", true},
		{"admin", false},
		{"", false},
		{"billing:*", false},
	}
	for _, tt := range tests {
		t.Run(tt.required, func(t *testing.T) {
			assert.Equal(t, tt.want, HasScope(granted, tt.required))
		})
	}
	assert.False(t, HasScope(nil, "orders:read"))
	assert.True(t, HasScope([]string{"*"}, "orders:read"))
}

func TestHostileInput(t *testing.T) {
	inputs := []string{
		strings.Repeat("a", 1<<20),
		strings.Repeat("a:", 1<<19),
		strings.Repeat("(", 1<<20),
		strings.Repeat("a and ", 1<<17),
		strings.Repeat("\x00", 1<<20),
		strings.Repeat("\xff", 1<<20),
		"\x00", "\xff\xfe", "a\x00:b", "(\x00)", "a and \xc3", ":", "::", "***", "**", "*:", ":*",
	}
	for i, s := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			assert.NotPanics(t, func() {
				assert.Error(t, ValidateScope(s))
				assert.Error(t, ValidateScopes([]string{s}))
				assert.False(t, ScopeMatches("*", s))
				assert.False(t, ScopeMatches(s, "a"))
				assert.False(t, HasScope([]string{s, "*"}, s))
			})
			assert.NotPanics(t, func() {
				q, err := ParseQuery(s)
				var qe *QueryError
				require.ErrorAs(t, err, &qe)
				assert.Nil(t, q)
				assert.LessOrEqual(t, len(qe.Query), 1024)
				assert.Less(t, len(err.Error()), 300)
			})
		})
	}
}

func TestZeroAllocs(t *testing.T) {
	granted := []string{"orders:read", "billing:*", "*:admin", "reports:*:read"}
	q := MustParseQuery("orders:read and (billing:invoices:write or users:admin) and reports:eu:read")
	required := "reports:eu:read"
	if testing.CoverMode() != "" {
		t.Skip("allocation counts are not meaningful under coverage")
	}

	tests := []struct {
		name string
		f    func()
	}{
		{"ScopeMatches", func() { ScopeMatches("reports:*:read", required) }},
		{"ScopeMatches/miss", func() { ScopeMatches("reports:*:read", "reports:eu:write") }},
		{"HasScope", func() { HasScope(granted, required) }},
		{"HasScope/miss", func() { HasScope(granted, "users:read") }},
		{"Allows", func() { q.Allows(granted) }},
		{"Allows/miss", func() { q.Allows(granted[:2]) }},
		{"String", func() { _ = q.String() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.f))
		})
	}
	assert.True(t, q.Allows(granted), "the benchmark query passes")
}

// Reference implementation of the scope grammar and of matching, written
// independently of scope.go (a regular expression and strings.Split), for
// the tables and the fuzz targets to check against.

var (
	grantedRE = regexp.MustCompile(`^(?:[A-Za-z0-9._-]+|\*)(?::(?:[A-Za-z0-9._-]+|\*))*$`)
	literalRE = regexp.MustCompile(`^[A-Za-z0-9._-]+(?::[A-Za-z0-9._-]+)*$`)
)

func refValid(s string, literal bool) bool {
	re := grantedRE
	if literal {
		re = literalRE
	}
	return len(s) <= 128 && strings.Count(s, ":") < 16 && re.MatchString(s)
}

func refMatch(granted, required string) bool {
	if !refValid(granted, false) || !refValid(required, true) {
		return false
	}
	g := strings.Split(granted, ":")
	r := strings.Split(required, ":")
	for i, seg := range g {
		if seg == "*" && i == len(g)-1 {
			return len(r) > i // one or more segments left
		}
		if i >= len(r) || seg != "*" && seg != r[i] {
			return false
		}
	}
	return len(g) == len(r)
}

func FuzzScopeMatch(f *testing.F) {
	// Seeds are in testdata/fuzz/FuzzScopeMatch.
	f.Fuzz(func(t *testing.T, granted, required string) {
		got := ScopeMatches(granted, required)
		require.Equal(t, refMatch(granted, required), got, "ScopeMatches(%q, %q)", granted, required)
		require.Equal(t, got, HasScope([]string{granted}, required))
		require.Equal(t, got, HasScope([]string{"nope", granted, "nope:too"}, required))

		grantedOK := ValidateScope(granted) == nil
		require.Equal(t, refValid(granted, false), grantedOK, "ValidateScope(%q)", granted)
		if !grantedOK {
			require.False(t, got, "an invalid granted scope never matches")
		}
		requiredOK := refValid(required, true)
		if !requiredOK {
			require.False(t, got, "an invalid required scope never matches")
			return
		}
		require.True(t, ScopeMatches(required, required), "a literal scope matches itself")
		require.True(t, ScopeMatches("*", required), `"*" matches every valid scope`)
		if grantedOK && !strings.Contains(granted, "*") {
			require.Equal(t, granted == required, got, "literal scopes match only when equal")
		}
	})
}

func BenchmarkScopeMatch(b *testing.B) {
	granted := []string{
		"orders:read",
		"orders:write",
		"billing:invoices:read",
		"billing:*",
		"users:*:read",
		"reports:eu:*",
		"*:health",
		"admin:audit:read",
	}
	resources := []string{"orders", "billing", "users", "reports", "admin", "catalog", "shipping", "support"}
	subs := []string{"read", "write", "invoices:read", "eu:read", "us:write", "health", "audit:read", "items:export"}
	var required []string
	for _, r := range resources {
		for _, s := range subs {
			required = append(required, r+":"+s)
		}
	}
	queries := make([]*Query, len(required))
	for i, r := range required {
		queries[i] = MustParseQuery(fmt.Sprintf("%s and (%s or admin:audit:read) or %s:health",
			r, required[(i+7)%len(required)], resources[(i+3)%len(resources)]))
	}

	b.Run("HasScope", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			HasScope(granted, required[i%len(required)])
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				HasScope(granted, required[i%len(required)])
				i++
			}
		})
	})
	b.Run("query", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			queries[i%len(queries)].Allows(granted)
		}
	})
}

func TestScopeWithin(t *testing.T) {
	tests := []struct {
		granted []string
		scope   string
		want    bool
	}{
		{[]string{"orders:*"}, "orders:read", true},
		{[]string{"orders:*"}, "orders:*", true},
		{[]string{"orders:*"}, "orders:eu:*", true},
		{[]string{"orders:*"}, "orders:*:read", true},
		{[]string{"orders:*"}, "orders", false},
		{[]string{"orders:*"}, "billing:read", false},
		{[]string{"orders:*"}, "*:read", false},
		{[]string{"orders:*"}, "*", false},
		{[]string{"orders:read"}, "orders:read", true},
		{[]string{"orders:read"}, "orders:*", false},
		{[]string{"orders:read"}, "orders:read:x", false},
		{[]string{"*:read"}, "orders:read", true},
		{[]string{"*:read"}, "*:read", true},
		{[]string{"*:read"}, "orders:*", false},
		{[]string{"*:read"}, "*", false},
		{[]string{"*:read"}, "orders:eu:read", false},
		{[]string{"orders:*:read"}, "orders:eu:read", true},
		{[]string{"orders:*:read"}, "orders:*:read", true},
		{[]string{"orders:*:read"}, "orders:*:*", false},
		{[]string{"*"}, "*", true},
		{[]string{"*"}, "a:b:c", true},
		{[]string{"*"}, "*:read", true},
		{[]string{"billing:read", "orders:*"}, "orders:write", true},
		{[]string{"billing:read", "orders:*"}, "billing:*", false},
		{nil, "orders:read", false},
		{[]string{"orders:*"}, "", false},
		{[]string{"orders:*"}, "orders::read", false},
		{[]string{"orders:*"}, "orders:re*", false},
		{[]string{"ord*"}, "ord*", false},
		{[]string{"orders::*"}, "orders::read", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s", tt.granted, tt.scope), func(t *testing.T) {
			assert.Equal(t, tt.want, ScopeWithin(tt.granted, tt.scope))
		})
	}
}

func TestScopesWithin(t *testing.T) {
	granted := []string{"orders:*", "billing:read"}
	assert.True(t, ScopesWithin(granted, nil))
	assert.True(t, ScopesWithin(granted, []string{"orders:read", "billing:read"}))
	assert.False(t, ScopesWithin(granted, []string{"orders:read", "billing:write"}))
	assert.False(t, ScopesWithin(nil, []string{"orders:read"}))
}

// TestScopeWithinExhaustive checks ScopeWithin against its definition:
// scope is within granted when every required scope that scope matches,
// granted matches too. Granted scopes and scopes have 1 to 3 segments of
// {a, bb, *}; required scopes have 1 to 4 segments of {a, bb, c}, where c
// stands for every segment that neither pattern names, and 4 is one more
// than the longest pattern, so a trailing "*" is seen to match more.
func TestScopeWithinExhaustive(t *testing.T) {
	var patterns, required []string
	var gen func(prefix string, n int, segs []string, out *[]string)
	gen = func(prefix string, n int, segs []string, out *[]string) {
		if n == 0 {
			return
		}
		for _, seg := range segs {
			s := seg
			if prefix != "" {
				s = prefix + ":" + seg
			}
			*out = append(*out, s)
			gen(s, n-1, segs, out)
		}
	}
	gen("", 3, []string{"a", "bb", "*"}, &patterns)
	gen("", 4, []string{"a", "bb", "c"}, &required)
	within := 0
	for _, g := range patterns {
		for _, s := range patterns {
			want := true
			for _, r := range required {
				if ScopeMatches(s, r) && !ScopeMatches(g, r) {
					want = false
					break
				}
			}
			if got := ScopeWithin([]string{g}, s); got != want {
				t.Errorf("ScopeWithin([%q], %q) = %v, want %v", g, s, got, want)
			}
			if want {
				within++
			}
		}
	}
	for _, g := range patterns {
		for _, r := range required {
			assert.Equal(t, HasScope([]string{g}, r), ScopeWithin([]string{g}, r), "literal %q within %q", r, g)
		}
	}
	require.Len(t, patterns, 39)
	t.Logf("%d pairs, %d within", len(patterns)*len(patterns), within)
}

func TestScopeWithinDoesNotAllocate(t *testing.T) {
	granted := []string{"billing:read", "orders:*"}
	allocs := testing.AllocsPerRun(100, func() {
		if !ScopeWithin(granted, "orders:eu:*") {
			t.Fatal("not within")
		}
	})
	assert.Zero(t, allocs)
}
