package apikey

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
