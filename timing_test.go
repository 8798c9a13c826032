package apikey_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A dudect-style statistical timing test of Manager.Verify (Reparaz,
// Balasch, Verbauwhede, "Dude, is my code constant time?", 2017): inputs of
// two classes are measured in random interleaved order, so that drift
// (frequency scaling, other tenants) hits both classes alike; the
// measurements are cropped at several percentiles of their common
// distribution, since the slow tail is mostly interrupts and preemption;
// and for each crop Welch's t statistic tells whether the two classes'
// mean times differ. |t| ≥ 4.5 means a difference with high confidence
// (dudect's "probably not constant time"; beyond 10 the evidence is
// overwhelming).
//
// It is opt-in, because it takes tens of seconds and measures the machine
// as much as the code:
//
//	APIKEY_TIMING_TEST=1       the tests of Verify
//	APIKEY_TIMING_TEST=control only the controls: the positive one, which must
//	                           FIND a leak, and an A/A comparison (logged only)
//	APIKEY_TIMING_TEST=all     both
//
// Skipped under -race and -short.

const (
	timingThreshold = 4.5     // dudect's |t| bound
	timingSamples   = 1 << 20 // measurements per test, both classes together
	timingBatch     = 4       // Verify calls per measurement, to dwarf the clock's cost
	timingInputs    = 128     // distinct tokens per class, chosen at random
)

// timingCrops are the percentiles of all measurements at which the
// measurements are cropped before testing; 1 keeps them all.
var timingCrops = []float64{0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999, 1}

func timingMode(t *testing.T, want string) {
	t.Helper()
	mode := os.Getenv("APIKEY_TIMING_TEST")
	switch {
	case mode == "":
		t.Skip("statistical timing test is opt-in: set APIKEY_TIMING_TEST=1 (tests of Verify), =control (positive control only) or =all")
	case raceEnabled:
		t.Skip("timing is meaningless under -race")
	case testing.Short():
		t.Skip("timing test skipped with -short")
	case want == "control" && mode != "control" && mode != "all":
		t.Skip("positive control: set APIKEY_TIMING_TEST=control (or =all) to run it")
	case want == "verify" && mode == "control":
		t.Skip("APIKEY_TIMING_TEST=control runs only the positive control")
	}
}

// timingResult is Welch's t for one crop.
type timingResult struct {
	crop           float64
	cut            int64 // measurements ≥ cut were dropped (math.MaxInt64: none)
	n0, n1         int
	mean0, mean1   float64 // nanoseconds per call
	t              float64
	meanDiffPerOpN float64 // mean1 - mean0, nanoseconds per call
}

// measureTiming calls op(class, input) timingBatch times per measurement,
// for timingSamples measurements whose class (0 or 1) and input index
// (0..timingInputs-1) are drawn at random beforehand, and returns Welch's
// t for each crop.
func measureTiming(t *testing.T, op func(class, input int)) []timingResult {
	t.Helper()
	// Warm up every input (this also fills the Manager's cache, positive
	// and negative entries alike) and the branch predictors.
	for range 2000 {
		for c := range 2 {
			for i := range timingInputs {
				op(c, i)
			}
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))
	classes := make([]uint8, timingSamples)
	inputs := make([]uint8, timingSamples)
	for i := range classes {
		classes[i] = uint8(rng.IntN(2))
		inputs[i] = uint8(rng.IntN(timingInputs))
	}
	times := make([]int64, timingSamples)

	// Nothing in the loop allocates, so the collector has nothing to do;
	// keep it from running anyway, and keep the goroutine on one thread.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	for i := range times {
		c, in := int(classes[i]), int(inputs[i])
		start := time.Now()
		for range timingBatch {
			op(c, in)
		}
		times[i] = int64(time.Since(start))
	}

	// Drop the first measurements, as dudect does: they still warm up.
	const skip = 1000
	classes, times = classes[skip:], times[skip:]

	sorted := slices.Clone(times)
	slices.Sort(sorted)
	results := make([]timingResult, 0, len(timingCrops))
	for _, p := range timingCrops {
		cut := int64(math.MaxInt64)
		if p < 1 {
			cut = sorted[int(p*float64(len(sorted)))]
		}
		r := welch(classes, times, cut)
		r.crop = p
		results = append(results, r)
	}
	return results
}

// welch computes Welch's t over the measurements below cut, in two passes
// (means, then variances) for accuracy.
func welch(classes []uint8, times []int64, cut int64) timingResult {
	var n [2]int
	var sum [2]float64
	for i, d := range times {
		if d < cut {
			n[classes[i]]++
			sum[classes[i]] += float64(d)
		}
	}
	mean := [2]float64{sum[0] / float64(n[0]), sum[1] / float64(n[1])}
	var ss [2]float64
	for i, d := range times {
		if d < cut {
			x := float64(d) - mean[classes[i]]
			ss[classes[i]] += x * x
		}
	}
	v0 := ss[0] / float64(n[0]-1)
	v1 := ss[1] / float64(n[1]-1)
	tt := (mean[0] - mean[1]) / math.Sqrt(v0/float64(n[0])+v1/float64(n[1]))
	return timingResult{
		cut: cut, n0: n[0], n1: n[1],
		mean0: mean[0] / timingBatch, mean1: mean[1] / timingBatch,
		t:              tt,
		meanDiffPerOpN: (mean[1] - mean[0]) / timingBatch,
	}
}

// reportTiming logs every crop and returns the largest |t|.
func reportTiming(t *testing.T, results []timingResult) float64 {
	t.Helper()
	worst := 0.0
	for _, r := range results {
		cut := "none"
		if r.cut != math.MaxInt64 {
			cut = time.Duration(r.cut).String()
		}
		t.Logf("crop %6.2f%% (batch < %-8s) n=%d/%d  mean/call %7.1fns vs %7.1fns (B-A %+6.2fns)  t=%+7.2f",
			100*r.crop, cut, r.n0, r.n1, r.mean0, r.mean1, r.meanDiffPerOpN, r.t)
		worst = max(worst, math.Abs(r.t))
	}
	t.Logf("max |t| = %.2f (threshold %.1f)", worst, timingThreshold)
	return worst
}

// Each class draws from timingInputs distinct tokens (and, where the kid
// differs, distinct cache entries), so that what is measured is the class
// and not where a few particular strings and entries happen to sit in
// memory: at this many measurements the harness resolves differences of a
// fraction of a nanosecond per call, which is the size of placement
// effects (see TestVerifyTimingNullControl).

// timingFixture is a Manager on a fake clock (so cache entries never
// expire) holding timingInputs keys, whose secrets are returned.
func timingFixture(t *testing.T) (m *apikey.Manager, ids, secrets []string) {
	t.Helper()
	m, _, _ = newTestManager(t)
	for range timingInputs {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "timing"})
		require.NoError(t, err)
		_, id, secret := parts(t, s.Reveal())
		ids, secrets = append(ids, id), append(secrets, secret)
	}
	return m, ids, secrets
}

// otherBase62 returns a base62 character other than c, at random.
func otherBase62(rng *rand.Rand, c byte) byte {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for {
		if d := base62[rng.IntN(len(base62))]; d != c {
			return d
		}
	}
}

// randomSecret returns a random secret part whose first character
// differs from first.
func randomSecret(rng *rand.Rand, first byte) string {
	b := make([]byte, apikey.SecretLen)
	b[0] = otherBase62(rng, first)
	for i := 1; i < len(b); i++ {
		b[i] = otherBase62(rng, 0)
	}
	return string(b)
}

// wrongSecrets returns, for each real secret, a wrong one matching none of
// its leading characters (class A) and one matching all but the last
// (class B).
func wrongSecrets(rng *rand.Rand, secrets []string) (none, allButLast []string) {
	for _, s := range secrets {
		none = append(none, randomSecret(rng, s[0]))
		last := otherBase62(rng, s[len(s)-1])
		allButLast = append(allButLast, s[:len(s)-1]+string(last))
	}
	return none, allButLast
}

func checkTiming(t *testing.T, results []timingResult) {
	t.Helper()
	worst := reportTiming(t, results)
	assert.Less(t, worst, timingThreshold,
		"Verify's time depends on the class of input (|t| ≥ %.1f at some crop; see the log)", timingThreshold)
}

// TestVerifyTimingSecretPrefix: a wrong secret costs the same whether it
// shares no leading character with the real one or all but the last.
func TestVerifyTimingSecretPrefix(t *testing.T) {
	timingMode(t, "verify")
	m, ids, secrets := timingFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	none, allButLast := wrongSecrets(rng, secrets)
	var tokens [2][]string
	for i, id := range ids {
		tokens[0] = append(tokens[0], forge("acme_test", id, none[i]))
		tokens[1] = append(tokens[1], forge("acme_test", id, allButLast[i]))
	}
	ctx := context.Background()
	for c := range tokens {
		for _, tok := range tokens[c] {
			_, err := m.Verify(ctx, tok)
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
			require.NotErrorIs(t, err, apikey.ErrChecksum)
		}
	}
	var fails int
	checkTiming(t, measureTiming(t, func(c, i int) {
		if _, err := m.Verify(ctx, tokens[c][i]); err == nil {
			fails++ // never: every token is wrong
		}
	}))
	require.Zero(t, fails)
}

// TestVerifyTimingUnknownKid: a wrong secret for a known kid costs the
// same as any secret for a kid that does not exist (cached as such).
func TestVerifyTimingUnknownKid(t *testing.T) {
	timingMode(t, "verify")
	m, ids, secrets := timingFixture(t)
	rng := rand.New(rand.NewPCG(3, 4))
	none, _ := wrongSecrets(rng, secrets)
	var tokens [2][]string
	for i, id := range ids {
		tokens[0] = append(tokens[0], forge("acme_test", id, none[i]))
		unknown := []byte(strings.Repeat("x", apikey.IDLen))
		for j := range unknown {
			unknown[j] = otherBase62(rng, 0)
		}
		tokens[1] = append(tokens[1], forge("acme_test", string(unknown), randomSecret(rng, 0)))
	}
	ctx := context.Background()
	for c := range tokens {
		for _, tok := range tokens[c] {
			_, err := m.Verify(ctx, tok)
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
			require.NotErrorIs(t, err, apikey.ErrChecksum)
		}
	}
	var fails int
	checkTiming(t, measureTiming(t, func(c, i int) {
		if _, err := m.Verify(ctx, tokens[c][i]); err == nil {
			fails++
		}
	}))
	require.Zero(t, fails)
}

// leakyEqual is the comparison Verify must not make: it stops at the
// first differing byte.
//
//go:noinline
func leakyEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestVerifyTimingControl shows that the harness can fail: Verify followed
// by an early-exit comparison of the secret parts, the classic mistake,
// must be found to leak how many leading characters match.
func TestVerifyTimingControl(t *testing.T) {
	timingMode(t, "control")
	m, ids, secrets := timingFixture(t)
	rng := rand.New(rand.NewPCG(5, 6))
	none, allButLast := wrongSecrets(rng, secrets)
	var tokens, wrong [2][]string
	for i, id := range ids {
		tokens[0] = append(tokens[0], forge("acme_test", id, none[i]))
		tokens[1] = append(tokens[1], forge("acme_test", id, allButLast[i]))
	}
	wrong[0], wrong[1] = none, allButLast
	ctx := context.Background()
	var matches int
	results := measureTiming(t, func(c, i int) {
		m.Verify(ctx, tokens[c][i])
		if leakyEqual(wrong[c][i], secrets[i]) {
			matches++
		}
	})
	require.Zero(t, matches)
	worst := reportTiming(t, results)
	assert.GreaterOrEqual(t, worst, timingThreshold,
		"the positive control leaks by construction, but the harness did not find it: the test cannot fail, and its passes mean nothing")
}

// TestVerifyTimingNullControl is an A/A comparison: both classes are known
// kids with wrong secrets, drawn from two disjoint sets of keys, so the
// code path is the same and only the keys (and where their cache entries
// sit in memory) differ. It asserts nothing; it shows the harness's noise
// floor for comparisons between different kids, such as
// TestVerifyTimingUnknownKid. |t| ≥ 4.5 here means that a failure of that
// test cannot by itself be blamed on the positive- and negative-entry
// paths.
func TestVerifyTimingNullControl(t *testing.T) {
	timingMode(t, "control")
	m, ids, secrets := timingFixture(t)
	var ids2, secrets2 []string // a second, disjoint set of keys
	for range timingInputs {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "timing"})
		require.NoError(t, err)
		_, id, secret := parts(t, s.Reveal())
		ids2, secrets2 = append(ids2, id), append(secrets2, secret)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	none, _ := wrongSecrets(rng, secrets)
	none2, _ := wrongSecrets(rng, secrets2)
	var tokens [2][]string
	for i := range ids {
		tokens[0] = append(tokens[0], forge("acme_test", ids[i], none[i]))
		tokens[1] = append(tokens[1], forge("acme_test", ids2[i], none2[i]))
	}
	ctx := context.Background()
	worst := reportTiming(t, measureTiming(t, func(c, i int) { m.Verify(ctx, tokens[c][i]) }))
	if worst >= timingThreshold {
		t.Logf("A/A comparison of two sets of known kids reached |t| = %.2f: the harness resolves placement differences between kids", worst)
	}
}
