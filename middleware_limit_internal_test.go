package apikey

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

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
