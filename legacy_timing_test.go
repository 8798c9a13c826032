package apikey_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/require"
)

// legacyTimingSamples is the measurements of the legacy timing test: a
// legacy key that is not found allocates its lookups, so fewer than
// timingSamples keep the garbage (the collector is off) to some hundreds
// of MB.
const legacyTimingSamples = 1 << 18

// legacyTimingStore is a memstore with its LegacyStore, but neither its
// Watcher nor its LastUsedRecorder, as in timingFixture.
type legacyTimingStore struct {
	apikey.Store
	apikey.LegacyStore
}

// TestVerifyTimingLegacySHA256: a wrong legacy key on the SHA-256 path
// costs the same whether it shares no character with a real imported key
// or all but the last. (Both are found nowhere: the store is asked for a
// keyed digest of their SHA-256, which a near miss shares no more of than
// a far one; this checks that nothing on the way, Parse's refusal, the
// cache of verified legacy keys, the digests, the lookup, depends on how
// close the key is.) Gated and run like the tests of timing_test.go.
func TestVerifyTimingLegacySHA256(t *testing.T) {
	timingMode(t, "verify")
	rng := timingRand(t)
	mem := memstore.New()
	m, err := apikey.NewManager(legacyTimingStore{mem, mem}, apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", testPepper), apikey.WithClock(newFakeClock().Now),
		apikey.WithLegacy(apikey.LegacyConfig{}))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })

	const keyLen = 40
	batch := make([]apikey.LegacyImport, timingInputs)
	keys := make([]string, timingInputs)
	for i := range keys {
		keys[i] = "old_" + randomBase62(rng, keyLen-4, 'x')
		sum := sha256.Sum256([]byte(keys[i]))
		batch[i] = apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "timing"}, Hash: "sha256:" + hex.EncodeToString(sum[:])}
	}
	_, err = m.ImportLegacy(context.Background(), batch)
	require.NoError(t, err)

	ctx := context.Background()
	var tokens [][2]string
	for _, k := range keys {
		far := "old_" + randomBase62(rng, keyLen-4, k[4])
		near := k[:len(k)-1] + string(otherBase62(rng, k[len(k)-1]))
		tokens = append(tokens, pair(rng, far, near))
	}
	for _, ci := range rng.Perm(2 * len(tokens)) {
		_, err := m.Verify(ctx, tokens[ci/2][ci%2])
		require.ErrorIs(t, err, apikey.ErrInvalidKey)
	}
	_, err = m.Verify(ctx, keys[0])
	require.NoError(t, err, "a real key verifies: the wrong ones were looked for")
	var accepted int
	results := measureTimingN(t, rng, legacyTimingSamples, func(c, i int) {
		if _, err := m.Verify(ctx, tokens[i][c]); err == nil {
			accepted++
		}
	})
	require.Zero(t, accepted)
	checkTiming(t, results)
}
