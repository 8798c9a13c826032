package apikey_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func scanAll(t testing.TB, r io.Reader) []apikey.Finding {
	t.Helper()
	var out []apikey.Finding
	require.NoError(t, apikey.Scan(r, func(f apikey.Finding) error {
		out = append(out, f)
		return nil
	}))
	return out
}

func TestScan(t *testing.T) {
	live := knownTokens[0].token    // acme_live_AbCdEf123456_…
	eu := knownTokens[2].token      // acme_test_eu_Zz9Yy8Xx7Ww6_…
	bad := live[:len(live)-1] + "g" // checksum off by one character
	tests := []struct {
		name  string
		input string
		want  []apikey.Finding
	}{
		{"alone", live, []apikey.Finding{{1, 1, "acme_live", "AbCdEf123456"}}},
		{"in code", "const key = \"" + live + "\"\n", []apikey.Finding{{1, 14, "acme_live", "AbCdEf123456"}}},
		{"header", "x\r\nAuthorization: Bearer " + live + "\r\n", []apikey.Finding{{2, 23, "acme_live", "AbCdEf123456"}}},
		{"underscores in prefix", "k=" + eu, []apikey.Finding{{1, 3, "acme_test_eu", "Zz9Yy8Xx7Ww6"}}},
		{"text runs into it", "my_" + eu, []apikey.Finding{{1, 4, "acme_test_eu", "Zz9Yy8Xx7Ww6"}}},
		{"two on a line", live + " " + eu, []apikey.Finding{{1, 1, "acme_live", "AbCdEf123456"}, {1, 74, "acme_test_eu", "Zz9Yy8Xx7Ww6"}}},
		{"third line", "a\n\n" + live, []apikey.Finding{{3, 1, "acme_live", "AbCdEf123456"}}},
		{"bad checksum", bad, nil},
		{"followed by more key characters", live + "x", nil},
		{"followed by underscore", live + "_", nil},
		{"truncated", live[:len(live)-1], nil},
		{"uppercase prefix", "ACME_LIVE" + live[9:], nil},
		{"snake_case code", "some_identifier_with_many_parts = other_thing_here_too\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, scanAll(t, strings.NewReader(tt.input)))
			// Reading one byte at a time changes nothing.
			assert.Equal(t, tt.want, scanAll(t, iotest.OneByteReader(strings.NewReader(tt.input))))
		})
	}
}

func TestScanLongLines(t *testing.T) {
	// Keys on both sides of, and across, every 64 KiB boundary of a
	// single 1 MiB line are each found once, at the right column.
	live := knownTokens[0].token
	var b strings.Builder
	var want []apikey.Finding
	for b.Len() < 1<<20 {
		pad := (64<<10)*(len(want)/3+1) - b.Len() - 40 + len(want)%3*30
		if pad > 0 {
			b.WriteString(strings.Repeat(".", pad))
		}
		want = append(want, apikey.Finding{Line: 1, Column: b.Len() + 1, Prefix: "acme_live", ID: "AbCdEf123456"})
		b.WriteString(live)
		b.WriteString(" ")
	}
	b.WriteString("\n" + live)
	want = append(want, apikey.Finding{Line: 2, Column: 1, Prefix: "acme_live", ID: "AbCdEf123456"})
	assert.Equal(t, want, scanAll(t, strings.NewReader(b.String())))
}

func TestScanGeneratedKeys(t *testing.T) {
	var b strings.Builder
	var ids []string
	for i := 0; i < 200; i++ {
		tok, err := apikey.Generate(fmt.Sprintf("p%d_x", i%7))
		require.NoError(t, err)
		fmt.Fprintf(&b, "line %d: %q, and more\n", i, tok.Secret().Reveal())
		ids = append(ids, tok.ID)
	}
	found := scanAll(t, strings.NewReader(b.String()))
	require.Len(t, found, len(ids))
	for i, f := range found {
		assert.Equal(t, ids[i], f.ID)
		assert.Equal(t, i+1, f.Line)
		assert.Equal(t, 9+len(fmt.Sprint(i)), f.Column)
	}
}

func TestScanStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := apikey.Scan(strings.NewReader(knownTokens[0].token+"\n"+knownTokens[0].token), func(apikey.Finding) error {
		n++
		return stop
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 1, n)

	readErr := errors.New("disk on fire")
	err = apikey.Scan(iotest.ErrReader(readErr), func(apikey.Finding) error { return nil })
	require.ErrorIs(t, err, readErr)
}

func FuzzScan(f *testing.F) {
	f.Add("x "+knownTokens[0].token+"\n", 0)
	f.Add(knownTokens[2].token, 3)
	f.Add("a_b_c\n_______", 1)
	f.Fuzz(func(t *testing.T, text string, at int) {
		// Whatever the text, Scan never panics and reports only keys that
		// are there, with a valid checksum.
		for _, f := range scanAll(t, strings.NewReader(text)) {
			lines := strings.Split(text, "\n")
			require.LessOrEqual(t, f.Line, len(lines))
			line := lines[f.Line-1]
			require.True(t, f.Column >= 1 && f.Column <= len(line))
			tail := line[f.Column-1:]
			require.GreaterOrEqual(t, len(tail), len(f.Prefix)+63)
			_, err := apikey.Parse(tail[:len(f.Prefix)+63])
			require.NoError(t, err)
		}
		// A key planted on a line of its own in the text is always found.
		tok, err := apikey.Generate("fuzz_key")
		require.NoError(t, err)
		lines := strings.Split(text, "\n")
		at = max(0, at) % (len(lines) + 1)
		planted := append(append(append([]string{}, lines[:at]...), tok.Secret().Reveal()), lines[at:]...)
		found := false
		for _, f := range scanAll(t, strings.NewReader(strings.Join(planted, "\n"))) {
			found = found || (f.ID == tok.ID && f.Line == at+1)
		}
		require.True(t, found, "planted key on line %d not found", at+1)
	})
}

// BenchmarkScan measures Scan's throughput on source-like text full of
// underscores (the character it keys on), with a key every 100 lines.
func BenchmarkScan(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 8<<20; i++ {
		fmt.Fprintf(&sb, "func handle_request_%d(ctx context.Context, user_id string) error { return do_thing(ctx, \"%d\") }\n", i, i)
		if i%100 == 0 {
			fmt.Fprintf(&sb, "token := %q\n", knownTokens[i%len(knownTokens)].token)
		}
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := apikey.Scan(strings.NewReader(text), func(apikey.Finding) error { n++; return nil }); err != nil || n == 0 {
			b.Fatal(err, n)
		}
	}
}
