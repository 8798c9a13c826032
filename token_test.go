package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vectors computed independently (Python's zlib.crc32 and a base62
// encoder), so the format is pinned for scanners and other languages.
var knownTokens = []struct {
	token, prefix, id string
}{
	{"acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf", "acme_live", "AbCdEf123456"},
	{"a_000000000000_00000000000000000000000000000000000000000003AMEZU", "a", "000000000000"},
	{"acme_test_eu_Zz9Yy8Xx7Ww6_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg2KAsa6", "acme_test_eu", "Zz9Yy8Xx7Ww6"},
}

func TestParseKnownTokens(t *testing.T) {
	for _, tt := range knownTokens {
		t.Run(tt.prefix, func(t *testing.T) {
			tok, err := apikey.Parse(tt.token)
			require.NoError(t, err)
			assert.Equal(t, tt.prefix, tok.Prefix)
			assert.Equal(t, tt.id, tok.ID)
			assert.Equal(t, tt.token, tok.Secret().Reveal())
		})
	}
}

func TestGenerate(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 1000; i++ {
		tok, err := apikey.Generate("acme_live")
		require.NoError(t, err)
		raw := tok.Secret().Reveal()
		require.Len(t, raw, len("acme_live")+63)
		require.True(t, strings.HasPrefix(raw, "acme_live_"+tok.ID+"_"))
		parsed, err := apikey.Parse(raw)
		require.NoError(t, err)
		require.Equal(t, tok.ID, parsed.ID)
		require.False(t, seen[tok.ID], "duplicate kid")
		seen[tok.ID] = true
	}
}

func TestGenerateUsesWholeAlphabet(t *testing.T) {
	// Rejection sampling must reach every base62 character, roughly
	// uniformly: 2000 secrets give 86000 characters, ~1387 per symbol.
	counts := make(map[byte]int)
	for i := 0; i < 2000; i++ {
		tok, err := apikey.Generate("k")
		require.NoError(t, err)
		raw := tok.Secret().Reveal()
		secret := raw[len(raw)-6-43 : len(raw)-6]
		for j := 0; j < len(secret); j++ {
			counts[secret[j]]++
		}
	}
	require.Len(t, counts, 62)
	for c, n := range counts {
		assert.InDelta(t, 1387, n, 250, "character %q", c)
	}
}

func TestGenerateRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", "Acme", "1acme", "acme-live", "acme_", "_acme", "acme__live", "acme live", "acmé", strings.Repeat("a", apikey.MaxPrefixLen+1)} {
		_, err := apikey.Generate(p)
		assert.ErrorIs(t, err, apikey.ErrInvalidPrefix, "prefix %q", p)
	}
	_, err := apikey.Generate(strings.Repeat("a", apikey.MaxPrefixLen))
	assert.NoError(t, err)
}

func TestParseRejects(t *testing.T) {
	valid := knownTokens[0].token
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", apikey.ErrMalformedKey},
		{"too short", valid[:30], apikey.ErrMalformedKey},
		{"one character short", valid[:len(valid)-1], apikey.ErrMalformedKey},
		{"too long", strings.Repeat("a", 200) + valid[len("acme_live"):], apikey.ErrMalformedKey},
		{"no prefix", valid[len("acme_live"):], apikey.ErrMalformedKey},
		{"uppercase prefix", "ACME_LIVE" + valid[9:], apikey.ErrMalformedKey},
		{"dash in kid", strings.Replace(valid, "AbCdEf", "AbCd-f", 1), apikey.ErrMalformedKey},
		{"missing separator", strings.Replace(valid, "456_", "4567", 1), apikey.ErrMalformedKey},
		{"space", strings.Replace(valid, "x", " ", 1), apikey.ErrMalformedKey},
		{"non-ASCII", strings.Replace(valid, "xx", "é", 1), apikey.ErrMalformedKey},
		{"NUL", strings.Replace(valid, "x", "\x00", 1), apikey.ErrMalformedKey},
		{"checksum over 2^32", valid[:len(valid)-6] + "zzzzzz", apikey.ErrMalformedKey},
		{"wrong checksum", valid[:len(valid)-1] + "g", apikey.ErrChecksum},
		{"changed secret", strings.Replace(valid, "xxx", "xyx", 1), apikey.ErrChecksum},
		{"changed prefix", "acme_test" + valid[9:], apikey.ErrChecksum},
		{"trailing newline", valid + "\n", apikey.ErrMalformedKey},
		{"leading space", " " + valid, apikey.ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apikey.Parse(tt.token)
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
		})
	}
}

// TestSingleCharacterChange is the checksum's property: changing any one
// character of a valid token to any other character never yields a valid
// token (CRC-32 detects every single-byte error).
func TestSingleCharacterChange(t *testing.T) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-. "
	for trial := 0; trial < 5; trial++ {
		tok, err := apikey.Generate("acme_live")
		require.NoError(t, err)
		raw := []byte(tok.Secret().Reveal())
		for i := range raw {
			orig := raw[i]
			for j := 0; j < len(alphabet); j++ {
				if alphabet[j] == orig {
					continue
				}
				raw[i] = alphabet[j]
				_, err := apikey.Parse(string(raw))
				require.Error(t, err, "position %d changed to %q", i, alphabet[j])
			}
			raw[i] = orig
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; .ci/run runs this test without it")
	}
	valid := knownTokens[0].token
	bad := valid[:len(valid)-1] + "g"
	allocs := testing.AllocsPerRun(1000, func() {
		_, _ = apikey.Parse(valid)
		_, _ = apikey.Parse(bad)
		_, _ = apikey.Parse("nonsense")
	})
	assert.Zero(t, allocs)
}

func TestErrorsMatch(t *testing.T) {
	assert.True(t, errors.Is(apikey.ErrMalformedKey, apikey.ErrInvalidKey))
	assert.True(t, errors.Is(apikey.ErrChecksum, apikey.ErrInvalidKey))
	assert.False(t, errors.Is(apikey.ErrRevoked, apikey.ErrInvalidKey))
	assert.False(t, errors.Is(apikey.ErrChecksum, apikey.ErrMalformedKey))
	for _, err := range []error{apikey.ErrInvalidKey, apikey.ErrMalformedKey, apikey.ErrChecksum, apikey.ErrRevoked,
		apikey.ErrExpired, apikey.ErrNotYetValid, apikey.ErrNotFound, apikey.ErrConflict, apikey.ErrUnavailable,
		apikey.ErrInvalidRequest, apikey.ErrInvalidPrefix, apikey.ErrInvalidScope, apikey.ErrInvalidQuery} {
		assert.True(t, strings.HasPrefix(err.Error(), "apikey: "), err.Error())
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range knownTokens {
		f.Add(tt.token)
	}
	f.Add("")
	f.Add("a_b_c")
	f.Add(strings.Repeat("_", 300))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := apikey.Parse(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidKey) {
				t.Fatalf("Parse(%q) error %v does not match ErrInvalidKey", s, err)
			}
			return
		}
		// What parses is exactly prefix_kid_secretcrc, and re-parses the same.
		if len(s) > apikey.MaxTokenLen || tok.Secret().Reveal() != s ||
			!strings.HasPrefix(s, tok.Prefix+"_"+tok.ID+"_") || len(tok.ID) != apikey.IDLen ||
			apikey.ValidatePrefix(tok.Prefix) != nil {
			t.Fatalf("Parse(%q) accepted a token of the wrong shape: %+v", s, tok)
		}
		if strings.Contains(tok.String(), s[len(s)-49:]) {
			t.Fatalf("String() shows the secret")
		}
	})
}
