package apikey_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// An arbitrary 32-byte digest, and hashes in the other formats (the
	// bcrypt one is the widely published example; neither is verified here).
	testSHA256Hex = "6d0f5b7f0d3ba3b3fc4e3c7a0dd7a8e5c0c1d5d2f3e4b5a697887766554433ff"
	testBcrypt    = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	testArgon2id  = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
)

func TestParseLegacyHash(t *testing.T) {
	upper := strings.ToUpper(testSHA256Hex)
	for _, tc := range []struct {
		in, kind, encoded, str string
	}{
		{"sha256:" + testSHA256Hex, apikey.LegacySHA256, "sha256:" + testSHA256Hex, "sha256"},
		{"sha256:" + upper, apikey.LegacySHA256, "sha256:" + testSHA256Hex, "sha256"},
		{"sha256:bQ9bfw07o7P8Tjx6Ddeo5cDB1dLz5LWml4h3ZlVEM/8=", apikey.LegacySHA256, "sha256:" + testSHA256Hex, "sha256"},
		{"sha256:bQ9bfw07o7P8Tjx6Ddeo5cDB1dLz5LWml4h3ZlVEM_8", apikey.LegacySHA256, "sha256:" + testSHA256Hex, "sha256"},
		{"hmac-sha256:" + testSHA256Hex, apikey.LegacyHMACSHA256, "hmac-sha256:" + testSHA256Hex, "hmac-sha256"},
		{testBcrypt, apikey.LegacyBcrypt, testBcrypt, "bcrypt(cost=10)"},
		{strings.Replace(testBcrypt, "$2a$", "$2b$", 1), apikey.LegacyBcrypt, strings.Replace(testBcrypt, "$2a$", "$2b$", 1), "bcrypt(cost=10)"},
		{testArgon2id, apikey.LegacyArgon2id, testArgon2id, "argon2id(m=65536,t=3,p=4)"},
	} {
		h, err := apikey.ParseLegacyHash(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.kind, h.Kind())
		assert.Equal(t, tc.encoded, h.Encoded())
		assert.Equal(t, tc.str, h.String())
		assert.Equal(t, tc.kind == apikey.LegacyBcrypt || tc.kind == apikey.LegacyArgon2id, h.Salted())
	}
}

func TestParseLegacyHashRejects(t *testing.T) {
	for _, in := range []string{
		"", "md5:0123", "sha256:", "sha256:" + testSHA256Hex[:62], "sha256:" + testSHA256Hex + "00",
		"sha256:zz" + testSHA256Hex[2:], "sha256:AAAA", "sha1:" + testSHA256Hex,
		"$2x$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",                          // unknown version
		"$2a$03$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",                          // cost below 4
		"$2a$32$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",                          // cost above 31
		"$2a$1a$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",                          // cost not digits
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhW",                           // short
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhW!",                          // alphabet
		"$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", // argon2i
		"$argon2id$v=16$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$t=3,m=65536,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=0,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=16,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=256$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=065536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",                   // salt < 8
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA==$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", // padded
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$Rdes",
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG$",
		"$argon2id$v=19$m=99999999999,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		strings.Repeat("a", 1000),
	} {
		_, err := apikey.ParseLegacyHash(in)
		require.ErrorIs(t, err, apikey.ErrInvalidLegacyHash, in)
		if len(in) > 20 {
			assert.NotContains(t, err.Error(), in[len(in)-20:], "the error quotes the hash")
		}
	}
}

func TestLegacyCost(t *testing.T) {
	b12 := strings.Replace(testBcrypt, "$10$", "$12$", 1)
	b13 := strings.Replace(testBcrypt, "$10$", "$13$", 1)
	for _, tc := range []struct {
		hash string
		cost apikey.LegacyCost
		ok   bool
	}{
		{b12, apikey.LegacyCost{}, true},
		{b13, apikey.LegacyCost{}, false},
		{b13, apikey.LegacyCost{MaxBcryptCost: 13}, true},
		{testBcrypt, apikey.LegacyCost{MaxBcryptCost: 9}, false},
		{testArgon2id, apikey.LegacyCost{}, true},
		{testArgon2id, apikey.LegacyCost{MaxArgon2Memory: 32 * 1024}, false},
		{testArgon2id, apikey.LegacyCost{MaxArgon2Time: 2}, false},
		{testArgon2id, apikey.LegacyCost{MaxArgon2Lanes: 2}, false},
		{"sha256:" + testSHA256Hex, apikey.LegacyCost{MaxBcryptCost: 4}, true},
	} {
		h, err := apikey.ParseLegacyHash(tc.hash)
		require.NoError(t, err)
		err = tc.cost.Check(h)
		if tc.ok {
			assert.NoError(t, err, "%v %+v", h, tc.cost)
		} else {
			assert.ErrorIs(t, err, apikey.ErrLegacyHashCost, "%v %+v", h, tc.cost)
		}
	}
}

// TestLegacyHashVerify checks each kind against keys hashed here, and
// that the wrong key fails.
func TestLegacyHashVerify(t *testing.T) {
	key, _ := newLegacyKey(t)
	for _, f := range legacyFormats {
		h, err := apikey.ParseLegacyHash(f.hash(t, key))
		require.NoError(t, err)
		assert.True(t, h.Verify(key, legacyHMACSecret), f.name)
		assert.False(t, h.Verify(wrongLegacyKey(key), legacyHMACSecret), f.name)
		assert.False(t, h.Verify("", legacyHMACSecret), f.name)
	}
	assert.False(t, apikey.LegacyHash{}.Verify(key, nil))
}

// TestLegacyHashRedacts: a LegacyHash shows its kind and cost, never the
// hash, through fmt (every verb), slog and JSON.
func TestLegacyHashRedacts(t *testing.T) {
	for _, in := range []string{"sha256:" + testSHA256Hex, testBcrypt, testArgon2id} {
		h, err := apikey.ParseLegacyHash(in)
		require.NoError(t, err)
		secretPart := in[len(in)-16:]
		var out bytes.Buffer
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10.3s"} {
			fmt.Fprintf(&out, verb+"\n", h)
			fmt.Fprintf(&out, verb+"\n", &h)
			fmt.Fprintf(&out, verb+"\n", struct{ H apikey.LegacyHash }{h})
		}
		slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "hash", h)
		slog.New(slog.NewTextHandler(&out, nil)).Info("x", "hash", h)
		b, err := json.Marshal(map[string]any{"h": h})
		require.NoError(t, err)
		out.Write(b)
		assert.NotContains(t, out.String(), secretPart)
		assert.NotContains(t, out.String(), strings.ToUpper(secretPart))
		assert.Contains(t, out.String(), h.Kind())
	}
}

// FuzzParseLegacyHash: any input parses or fails with
// ErrInvalidLegacyHash, without panicking; what parses encodes to a form
// that parses back to the same hash, and its String never holds more
// than the kind and cost.
func FuzzParseLegacyHash(f *testing.F) {
	for _, s := range []string{"sha256:" + testSHA256Hex, "hmac-sha256:" + testSHA256Hex, testBcrypt, testArgon2id,
		"sha256:bQ9bfw07o7P8Tjx6Ddeo5cDB1dLz5LWml4h3ZlVEM/8=", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "$2y$04$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := apikey.ParseLegacyHash(s)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid legacy hash") {
				t.Fatalf("error %v does not wrap ErrInvalidLegacyHash", err)
			}
			return
		}
		again, err := apikey.ParseLegacyHash(h.Encoded())
		if err != nil || again.Encoded() != h.Encoded() || again.String() != h.String() {
			t.Fatalf("%q: Encoded %q does not parse back (%v)", s, h.Encoded(), err)
		}
		if str := h.String(); len(str) > 40 {
			t.Fatalf("String %q says more than kind and cost", str)
		}
	})
}
