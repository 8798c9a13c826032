package apikey

import (
	"errors"
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

func TestParseQuery(t *testing.T) {
	tests := []struct {
		query string
		want  string // canonical form
	}{
		{"a", "a"},
		{"orders:read", "orders:read"},
		{"a and b", "a and b"},
		{"a or b", "a or b"},
		{"a and b or c", "a and b or c"},
		{"a or b and c", "a or b and c"},
		{"(a or b) and c", "(a or b) and c"},
		{"a and (b or c)", "a and (b or c)"},
		{"orders:read and (billing:read or admin)", "orders:read and (billing:read or admin)"},
		{"(a and b) or c", "a and b or c"},
		{"a and (b and c)", "a and b and c"},
		{"(a or b) or (c or d)", "a or b or c or d"},
		{"((a))", "a"},
		{"(((a or b)))", "a or b"},
		{"a AND b Or c", "a and b or c"},
		{"a aNd b oR c", "a and b or c"},
		{"  a \t and\n(b\r\nor c)  ", "a and (b or c)"},
		{"(a)", "a"},
		{"(a) and (b)", "a and b"},
		{"a and (b or (c and (d or e)))", "a and (b or c and (d or e))"},
		{"a or a", "a or a"},
		{"And:x and or.y", "And:x and or.y"},
		{"andx or orx", "andx or orx"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := ParseQuery(tt.query)
			require.NoError(t, err)
			assert.Equal(t, tt.want, q.String())

			q2, err := ParseQuery(q.String())
			require.NoError(t, err)
			assert.Equal(t, q, q2, "canonical form parses to an equal query")
		})
	}
}

func TestParseQueryPrecedence(t *testing.T) {
	// "a or b and c" is "a or (b and c)", not "(a or b) and c".
	q := MustParseQuery("a or b and c")
	assert.True(t, q.Allows([]string{"a"}))
	assert.False(t, q.Allows([]string{"b"}))
	assert.True(t, q.Allows([]string{"b", "c"}))

	q = MustParseQuery("(a or b) and c")
	assert.False(t, q.Allows([]string{"a"}))
	assert.True(t, q.Allows([]string{"a", "c"}))
	assert.True(t, q.Allows([]string{"b", "c"}))

	assert.Equal(t, MustParseQuery("a or (b and c)"), MustParseQuery("a or b and c"))
	assert.Equal(t, MustParseQuery("(a and b) or (c and d)"), MustParseQuery("a and b or c and d"))
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct {
		query string
		pos   int
		msg   string
	}{
		{"", 0, "empty query"},
		{" \t\n", 0, "empty query"},
		{"and", 0, `expected scope or "("`},
		{"and a", 0, `expected scope or "("`},
		{"a and", 5, `expected scope or "("`},
		{"a and ", 6, `expected scope or "("`},
		{"a or", 4, `expected scope or "("`},
		{"a and or b", 6, `expected scope or "("`},
		{"a and and b", 6, `expected scope or "("`},
		{"()", 1, `expected scope or "("`},
		{"a and ()", 7, `expected scope or "("`},
		{")", 0, `expected scope or "("`},
		{"a b", 2, `expected "and" or "or"`},
		{"a (b)", 2, `expected "and" or "or"`},
		{"(a) b", 4, `expected "and" or "or"`},
		{"a)", 1, `unexpected ")"`},
		{"a and b)", 7, `unexpected ")"`},
		{"(a))", 3, `unexpected ")"`},
		{"(a", 0, `unclosed "("`},
		{"((a)", 0, `unclosed "("`},
		{"a and (b or (c)", 6, `unclosed "("`},
		{"(a b)", 3, `expected "and", "or" or ")"`},
		{"(a or b c)", 8, `expected "and", "or" or ")"`},
		{"a and(b)", 5, `missing space after "and"`},
		{"a OR(b)", 4, `missing space after "OR"`},
		{"(a)and b", 3, `missing space before "and"`},
		{"(a)or(b)", 3, `missing space before "or"`},
		{"a and b*", 6, `invalid scope "b*": wildcard "*" not allowed in a required scope`},
		{"*", 0, `invalid scope "*": wildcard "*" not allowed in a required scope`},
		{"orders:*", 0, `invalid scope "orders:*": wildcard "*" not allowed in a required scope`},
		{"orders::read", 0, `invalid scope "orders::read": empty segment`},
		{"a or b:", 5, `invalid scope "b:": empty segment`},
		{"a\x00", 0, `invalid scope "a\x00": invalid character '\x00' at offset 1`},
		{"a or \xff\xfe", 5, `invalid scope "\xff\xfe": invalid character byte 0xff at offset 0`},
		{"a and b,c", 6, `invalid scope "b,c": invalid character ',' at offset 1`},
		{"a and " + strings.Repeat("b", 129), 6, `invalid scope "` + strings.Repeat("b", 64) + `"...: longer than 128 bytes`},
		{strings.Repeat("a:", 16) + "a", 0, `invalid scope "` + strings.Repeat("a:", 16) + `a": more than 16 segments`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := ParseQuery(tt.query)
			require.Error(t, err)
			assert.Nil(t, q)
			assert.ErrorIs(t, err, ErrInvalidQuery)
			var qe *QueryError
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, tt.msg, qe.Msg)
			assert.Equal(t, tt.pos, qe.Pos)
			assert.Equal(t, tt.query, qe.Query)
			assert.Equal(t, fmt.Sprintf("apikey: scope query: %s at position %d", tt.msg, tt.pos), err.Error())
		})
	}
}

func TestQueryErrorMessage(t *testing.T) {
	_, err := ParseQuery("orders:read and")
	require.EqualError(t, err, `apikey: scope query: expected scope or "(" at position 15`)
	assert.False(t, errors.Is(err, ErrInvalidScope))
}

func TestParseQueryBounds(t *testing.T) {
	t.Run("length", func(t *testing.T) {
		q := "a or " + strings.Repeat(" ", 1024-len("a or b")) + "b"
		require.Len(t, q, 1024)
		_, err := ParseQuery(q)
		require.NoError(t, err)

		q = "a or " + strings.Repeat(" ", 1025-len("a or b")) + "b"
		require.Len(t, q, 1025)
		_, err = ParseQuery(q)
		var qe *QueryError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, 1024, qe.Pos)
		assert.Equal(t, "query longer than 1024 bytes", qe.Msg)
		assert.Equal(t, q[:1024], qe.Query, "Query is truncated")

		// A huge query is rejected before it is scanned, and the error
		// does not hold on to all of it.
		_, err = ParseQuery(strings.Repeat("(", 1<<20))
		require.ErrorAs(t, err, &qe)
		assert.Len(t, qe.Query, 1024)
	})

	t.Run("depth", func(t *testing.T) {
		nest := func(n int) string {
			return strings.Repeat("(", n) + "a" + strings.Repeat(")", n)
		}
		q, err := ParseQuery(nest(16))
		require.NoError(t, err)
		assert.Equal(t, "a", q.String())

		_, err = ParseQuery(nest(17))
		var qe *QueryError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, 16, qe.Pos, "reported at the 17th parenthesis")
		assert.Equal(t, "parentheses nested more than 16 deep", qe.Msg)

		// Depth is nesting, not the number of groups.
		groups := strings.TrimSuffix(strings.Repeat(nest(16)+" and ", 4), " and ")
		_, err = ParseQuery(groups)
		require.NoError(t, err)

		// Alternating operators, 16 deep, keep their parentheses.
		var b strings.Builder
		for i := range 16 {
			fmt.Fprintf(&b, "s%d and (t%d or ", i, i)
		}
		b.WriteString("z" + strings.Repeat(")", 16))
		q, err = ParseQuery(b.String())
		require.NoError(t, err)
		assert.Equal(t, b.String(), q.String())
	})

	t.Run("operands", func(t *testing.T) {
		ops := func(n int) string {
			s := make([]string, n)
			for i := range s {
				s[i] = fmt.Sprintf("s%d", i)
			}
			return strings.Join(s, " or ")
		}
		q, err := ParseQuery(ops(64))
		require.NoError(t, err)
		assert.Len(t, q.Scopes(), 64)

		text := ops(65)
		_, err = ParseQuery(text)
		var qe *QueryError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, strings.LastIndex(text, "s64"), qe.Pos, "reported at the 65th scope")
		assert.Equal(t, "more than 64 scopes", qe.Msg)

		// Repeats count.
		_, err = ParseQuery(strings.TrimSuffix(strings.Repeat("a or ", 65), " or "))
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, "more than 64 scopes", qe.Msg)
	})
}

func TestMustParseQuery(t *testing.T) {
	assert.NotPanics(t, func() { MustParseQuery("a and b") })
	assert.PanicsWithValue(t,
		`apikey: MustParseQuery("a and"): expected scope or "(" at position 5`,
		func() { MustParseQuery("a and") })
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

func TestQueryAllows(t *testing.T) {
	q := MustParseQuery("orders:read and (billing:read or admin)")
	tests := []struct {
		granted []string
		want    bool
	}{
		{nil, false},
		{[]string{"orders:read"}, false},
		{[]string{"orders:read", "billing:read"}, true},
		{[]string{"orders:read", "admin"}, true},
		{[]string{"billing:read", "admin"}, false},
		{[]string{"orders:*", "billing:*"}, true},
		{[]string{"*"}, true},
		{[]string{"*:read"}, true},                  // matches orders:read and billing:read
		{[]string{"orders:read", "*:admin"}, false}, // "*:admin" needs two segments
		{[]string{"orders:*", "*:admin"}, false},
		{[]string{"orders:read", "billing"}, false},
		{[]string{"Orders:read", "admin"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.granted, ","), func(t *testing.T) {
			assert.Equal(t, tt.want, q.Allows(tt.granted))
		})
	}
}

func TestQueryZero(t *testing.T) {
	for _, q := range []*Query{nil, {}} {
		assert.False(t, q.Allows([]string{"*"}))
		assert.Empty(t, q.String())
		assert.Nil(t, q.Scopes())
		assert.Nil(t, q.Missing(nil))
	}
}

func TestQueryScopes(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"a", []string{"a"}},
		{"orders:read and (billing:read or admin)", []string{"orders:read", "billing:read", "admin"}},
		{"b or a and b or (c and a)", []string{"b", "a", "c"}},
		{"a or A", []string{"a", "A"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q := MustParseQuery(tt.query)
			assert.Equal(t, tt.want, q.Scopes())
		})
	}

	// The result is a copy.
	q := MustParseQuery("a and b")
	s := q.Scopes()
	s[0] = "x"
	assert.Equal(t, []string{"a", "b"}, q.Scopes())
}

func TestQueryMissing(t *testing.T) {
	tests := []struct {
		query   string
		granted []string
		want    []string
	}{
		{"a and (b or c)", []string{"a"}, []string{"b"}},
		{"a and (b or c)", nil, []string{"a", "b"}},
		{"a and (b or c)", []string{"c"}, []string{"a"}},
		{"a and (b or c)", []string{"a", "c"}, nil},
		{"a and b and c", []string{"b"}, []string{"a", "c"}},
		{"a or b", nil, []string{"a"}},
		{"(x and y) or z", nil, []string{"z"}},           // fewest needed
		{"(x and y) or z", []string{"x"}, []string{"y"}}, // tie: first
		{"a and (b or c) and (b or d)", nil, []string{"a", "b"}},
		{"a and a", nil, []string{"a"}},
		{"orders:read and billing:read", []string{"orders:*"}, []string{"billing:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.query+"|"+strings.Join(tt.granted, ","), func(t *testing.T) {
			q := MustParseQuery(tt.query)
			got := q.Missing(tt.granted)
			assert.Equal(t, tt.want, got)
			if got != nil {
				assert.True(t, q.Allows(append(append([]string(nil), tt.granted...), got...)),
					"granting the missing scopes satisfies the query")
			}
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

func FuzzParseQuery(f *testing.F) {
	// Seeds are in testdata/fuzz/FuzzParseQuery.
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			require.Nil(t, q)
			require.ErrorIs(t, err, ErrInvalidQuery)
			var qe *QueryError
			require.ErrorAs(t, err, &qe)
			require.GreaterOrEqual(t, qe.Pos, 0)
			require.LessOrEqual(t, qe.Pos, len(s))
			require.LessOrEqual(t, len(qe.Query), 1024)
			require.NotEmpty(t, qe.Msg)
			return
		}
		require.LessOrEqual(t, len(s), 1024)

		text := q.String()
		require.LessOrEqual(t, len(text), len(s), "the canonical form is never longer")
		q2, err := ParseQuery(text)
		require.NoError(t, err, "String() = %q does not parse", text)
		require.Equal(t, text, q2.String())
		require.Equal(t, q, q2)

		scopes := q.Scopes()
		require.NotEmpty(t, scopes)
		for _, sc := range scopes {
			require.True(t, refValid(sc, true), "scope %q", sc)
		}
		// Queries have no negation: granting everything they name, or "*",
		// satisfies them, and granting nothing does not.
		require.True(t, q.Allows(scopes))
		require.True(t, q.Allows([]string{"*"}))
		require.False(t, q.Allows(nil))

		for _, granted := range [][]string{nil, scopes[:len(scopes)/2], scopes[len(scopes)/2:], {"a", "b:*"}} {
			allowed := q.Allows(granted)
			missing := q.Missing(granted)
			require.Equal(t, allowed, missing == nil)
			if !allowed {
				require.True(t, q.Allows(append(append([]string(nil), granted...), missing...)),
					"Missing(%q) = %q does not satisfy %q", granted, missing, text)
			}
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
