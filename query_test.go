package apikey

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
