package apikeyotel

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIndexes checks that the switches of index.go agree with outcomes
// and reasons, which name the attribute sets.
func TestIndexes(t *testing.T) {
	for i, o := range outcomes {
		assert.Equal(t, i, outcomeIndex(o), "%q", o)
	}
	for i, r := range reasons {
		assert.Equal(t, i, reasonIndex(r), "%q", r)
	}
	assert.Equal(t, -1, outcomeIndex("quota_threshold"), "counted apart")
	assert.Equal(t, -1, outcomeIndex("future"))
	assert.Equal(t, -1, reasonIndex("future"))
	for i, p := range thresholdPolicies[:len(thresholdPolicies)-1] {
		assert.Equal(t, i, thresholdPolicy(p))
	}
	assert.Equal(t, "other", thresholdPolicies[thresholdPolicy("future")])
}
