package apikey

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBearer(t *testing.T) {
	tests := []struct {
		in     string
		token  string
		status credStatus
	}{
		{"", "", credNone},
		{"Basic dXNlcjpwYXNz", "", credNone},
		{"Digest username=x", "", credNone},
		{"Bearertoken", "", credNone}, // one token: a scheme we do not know
		{"Bearer abc", "abc", credOK},
		{"bearer abc", "abc", credOK},
		{"BeArEr abc", "abc", credOK},
		{"Bearer a-b._~+/c==", "a-b._~+/c==", credOK},
		{"Bearer", "", credMalformed},
		{"Bearer ", "", credMalformed},
		{"Bearer  abc", "", credMalformed},
		{"Bearer\tabc", "", credMalformed},
		{"Bearer abc ", "", credMalformed},
		{"Bearer abc def", "", credMalformed},
		{"Bearer abc,def", "", credMalformed},
		{"Bearer ===", "", credMalformed},
		{"Bearer a=b", "", credMalformed},
		{"Bearer ab\xffc", "", credMalformed},
		{"Bearer ключ", "", credMalformed},
		{"Bearer \"abc\"", "", credMalformed},
		{"Bearer abc\x00", "", credMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			token, status := parseBearer(tt.in)
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.token, token)
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x1f\x7f", "<script>&", "é ünïcode"} {
		b := appendJSONString(nil, s)
		var got string
		require.NoError(t, json.Unmarshal(b, &got), string(b))
		assert.Equal(t, s, got)
	}
}

func TestChallenge(t *testing.T) {
	assert.Equal(t, `Bearer realm="api"`, challenge("api", "", "", nil))
	assert.Equal(t, `Bearer realm="x", error="insufficient_scope", scope="a:b c"`,
		challenge("x", CodeInsufficientScope, "", []string{"a:b", "c"}))
	assert.Equal(t, `Bearer realm="api", error="invalid_token", error_description="API key revoked"`,
		challenge("api", CodeInvalidToken, descRevoked, nil))
	for _, r := range []string{`a"b`, `a\b`, "a\nb", "é"} {
		assert.False(t, isQuotable(r), r)
	}
	assert.True(t, isQuotable("acme api v2"))
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		0: 1, -time.Second: 1, time.Nanosecond: 1, time.Second: 1,
		time.Second + 1: 2, 1500 * time.Millisecond: 2, time.Minute: 60,
	} {
		assert.Equal(t, want, retryAfterSeconds(d), d)
	}
	assert.Equal(t, int64(0), ceilSeconds(0))
	assert.Equal(t, int64(17), ceilSeconds(16*time.Second+time.Millisecond))
}

func TestRateLimitFieldSyntax(t *testing.T) {
	b := appendPolicy(nil, policyKey, 100, time.Minute)
	assert.Equal(t, `"key";q=100;w=60`, string(b))
	b = appendPolicy(nil, policyKey, 5, 100*time.Millisecond)
	assert.Equal(t, `"key";q=5;w=1`, string(b), "windows are at least one second")
	b = appendPolicy(nil, policyQuota, 10000, 30*24*time.Hour)
	assert.Equal(t, `"quota";q=10000;w=2592000`, string(b))
	b = appendRateItem(nil, policyOwner, Decision{Remaining: -3, Reset: 16500 * time.Millisecond})
	assert.Equal(t, `"owner";r=0;t=17`, string(b))
}

// TestParseID checks that Parse reads back Generate's kid, for prefixes
// short, long and with underscores.
func TestParseID(t *testing.T) {
	for _, prefix := range []string{"a", "acme_live", "x_y_z", "p0123456789abcdefghijklmnopqrstu"} {
		for i := 0; i < 100; i++ {
			tok, err := Generate(prefix)
			require.NoError(t, err)
			parsed, err := Parse(tok.raw)
			require.NoError(t, err)
			require.Equal(t, tok.ID, parsed.ID, prefix)
			require.Equal(t, tok.Prefix, parsed.Prefix, prefix)
		}
	}
}
