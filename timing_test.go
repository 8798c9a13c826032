package apikey_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
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
// At 1<<20 measurements the harness resolves a fraction of a nanosecond
// per call, which is the size of the differences between particular
// inputs: where a token, its map slot and its cache entry happen to sit
// (cache lines, sets, pages) makes each input a little faster or slower
// than its class's mean, for the whole run. Measured as dudect does, as
// if every measurement were independent, two sets of 128 keys taking the
// very same code path differed with |t| of 8 to 11 in some runs, so a
// failure meant nothing. Three things make the comparison sound:
//
//   - Many inputs per class (timingInputs), each measured only about
//     timingSamples/(2·timingInputs) times, so that the inputs' offsets
//     average out in each class's mean, and the classes are drawn afresh
//     (keys, unknown kids, wrong secrets, the split of the A/A control)
//     on every run.
//   - The standard error is taken from the spread of the per-input means
//     (the cluster-robust variance of a mean, each input a cluster), not
//     of the measurements: the question is whether the class matters for
//     inputs drawn at random from it, not whether these particular inputs
//     are slower than those. The log shows both, the per-measurement t as
//     t(samples), and the ratio of their variances as "design" (1: the
//     inputs differ by no more than noise). Even with 8192 inputs it
//     reaches 2 to 4.7 at the 90% to 99% crops, where t(samples) thus
//     overstates the evidence by up to a factor of two. With 128 inputs,
//     |t(samples)| reached 10 to 11 in 3 runs in 8 of the A/A control and
//     of TestVerifyTimingUnknownKid, while |t| stayed under 2.4.
//   - Nothing the measured call reads lies in one class's region of
//     memory (see pair and checkWrong): allocated class by class, the two
//     classes' tokens, string headers and cache entries sat in regions
//     of their own, which differed by up to several nanoseconds per call,
//     the same for every input of a class, so that no number of inputs
//     averaged it away (A/A |t| up to 16 with 8192 inputs).
//
// There is no floor on the effect size. The standard error of the
// difference between the classes is 0.16 to 0.36 ns per call at the
// crops up to 99% (2-vCPU shared VM), so a leak of 1.5 ns per call would
// fail the test; the positive control's (an early exit over a
// 43-character secret) is 12 to 70 ns per call at the crops from 75% up,
// and was found at |t| from 96 to 148 in 20 runs out of 20.
//
// It is opt-in, because it takes tens of seconds and measures the machine
// as much as the code:
//
//	APIKEY_TIMING_TEST=1       the tests of Verify
//	APIKEY_TIMING_TEST=control only the controls: the positive one, which must
//	                           FIND a leak, and the A/A one, which must not
//	APIKEY_TIMING_TEST=all     both
//	APIKEY_TIMING_INPUTS=n     n inputs per class instead of timingInputs
//
// Skipped under -race and -short.

const (
	timingThreshold = 4.5     // dudect's |t| bound
	timingSamples   = 1 << 20 // measurements per test, both classes together
	timingBatch     = 4       // Verify calls per measurement, to dwarf the clock's cost
)

// timingInputs is the number of distinct inputs (tokens, and keys or
// cache entries where the kid differs) per class.
var timingInputs = 1 << 13

func init() {
	if s := os.Getenv("APIKEY_TIMING_INPUTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			panic("APIKEY_TIMING_INPUTS: want an integer ≥ 2, not " + strconv.Quote(s))
		}
		timingInputs = n
	}
}

// timingCrops are the percentiles of all measurements at which the
// measurements are cropped before testing; 1 keeps them all.
var timingCrops = []float64{0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999, 1}

func timingMode(t *testing.T, want string) {
	t.Helper()
	mode := os.Getenv("APIKEY_TIMING_TEST")
	switch {
	case mode == "":
		t.Skip("statistical timing test is opt-in: set APIKEY_TIMING_TEST=1 (tests of Verify), =control (controls only) or =all")
	case raceEnabled:
		t.Skip("timing is meaningless under -race")
	case testing.Short():
		t.Skip("timing test skipped with -short")
	case want == "control" && mode != "control" && mode != "all":
		t.Skip("control: set APIKEY_TIMING_TEST=control (or =all) to run it")
	case want == "verify" && mode == "control":
		t.Skip("APIKEY_TIMING_TEST=control runs only the controls")
	}
}

// timingResult is Welch's t for one crop.
type timingResult struct {
	crop           float64
	cut            int64 // measurements ≥ cut were dropped (math.MaxInt64: none)
	n0, n1         int
	mean0, mean1   float64 // nanoseconds per call
	meanDiffPerOpN float64 // mean1 - mean0, nanoseconds per call
	// t is Welch's t with each class mean's variance taken from the
	// spread of its per-input means; it is what the tests check.
	t float64
	// tSamples is Welch's t as dudect computes it, every measurement
	// taken as independent, and design the ratio of t's variance of the
	// difference to tSamples' (1: the inputs differ by no more than
	// noise; above 1, tSamples overstates the evidence by its square
	// root).
	tSamples, design float64
}

// measureTiming calls op(class, input) timingBatch times per measurement,
// for timingSamples measurements whose class (0 or 1) and input index
// (0..timingInputs-1) are drawn at random beforehand, and returns Welch's
// t for each crop.
func measureTiming(t *testing.T, rng *rand.Rand, op func(class, input int)) []timingResult {
	t.Helper()
	return measureTimingN(t, rng, timingSamples, op)
}

// measureTimingN is measureTiming with samples measurements, for
// operations that allocate (the collector is off while measuring).
func measureTimingN(t *testing.T, rng *rand.Rand, samples int, op func(class, input int)) []timingResult {
	t.Helper()
	// Warm up every input (this also fills the Manager's cache, positive
	// and negative entries alike), the branch predictors and the
	// runtime's type-assertion caches, in random order.
	for range max(2, (1<<19)/(2*timingInputs)) {
		for _, ci := range rng.Perm(2 * timingInputs) {
			op(ci%2, ci/2)
		}
	}

	classes := make([]uint8, samples)
	inputs := make([]uint32, samples)
	for i := range classes {
		classes[i] = uint8(rng.IntN(2))
		inputs[i] = uint32(rng.IntN(timingInputs))
	}
	times := make([]int64, samples)

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
	classes, inputs, times = classes[skip:], inputs[skip:], times[skip:]

	sorted := slices.Clone(times)
	slices.Sort(sorted)
	results := make([]timingResult, 0, len(timingCrops))
	for _, p := range timingCrops {
		cut := int64(math.MaxInt64)
		if p < 1 {
			cut = sorted[int(p*float64(len(sorted)))]
		}
		r := welch(classes, inputs, times, cut)
		r.crop = p
		results = append(results, r)
	}
	return results
}

// welch computes Welch's t over the measurements below cut, in two passes
// (means, then variances) for accuracy: per measurement, and per input.
func welch(classes []uint8, inputs []uint32, times []int64, cut int64) timingResult {
	var n [2]int
	var sum [2]float64
	perN := [2][]int{make([]int, timingInputs), make([]int, timingInputs)}
	perSum := [2][]float64{make([]float64, timingInputs), make([]float64, timingInputs)}
	for i, d := range times {
		if d < cut {
			c, in := classes[i], inputs[i]
			n[c]++
			sum[c] += float64(d)
			perN[c][in]++
			perSum[c][in] += float64(d)
		}
	}
	mean := [2]float64{sum[0] / float64(n[0]), sum[1] / float64(n[1])}

	// Per measurement: the sample variance over n gives the variance of
	// the mean if the measurements are independent.
	var ss [2]float64
	for i, d := range times {
		if d < cut {
			x := float64(d) - mean[classes[i]]
			ss[classes[i]] += x * x
		}
	}
	var vSamples, vInputs float64
	for c := range 2 {
		vSamples += ss[c] / float64(n[c]-1) / float64(n[c])
	}

	// Per input: the variance of a class mean with the inputs as
	// clusters, Σ (sum_i − n_i·mean)² / n², times k/(k−1) for the k
	// inputs measured (the usual small-sample correction, CR1). It holds
	// whatever the measurements of one input have in common.
	for c := range 2 {
		var k int
		var v float64
		for in := range timingInputs {
			if perN[c][in] > 0 {
				k++
				r := perSum[c][in] - float64(perN[c][in])*mean[c]
				v += r * r
			}
		}
		vInputs += v * float64(k) / float64(k-1) / (float64(n[c]) * float64(n[c]))
	}
	return timingResult{
		cut: cut, n0: n[0], n1: n[1],
		mean0: mean[0] / timingBatch, mean1: mean[1] / timingBatch,
		meanDiffPerOpN: (mean[1] - mean[0]) / timingBatch,
		t:              (mean[0] - mean[1]) / math.Sqrt(vInputs),
		tSamples:       (mean[0] - mean[1]) / math.Sqrt(vSamples),
		design:         vInputs / vSamples,
	}
}

// reportTiming logs every crop and returns the largest |t|.
func reportTiming(t *testing.T, results []timingResult) float64 {
	t.Helper()
	worst, worstSamples := 0.0, 0.0
	for _, r := range results {
		cut := "none"
		if r.cut != math.MaxInt64 {
			cut = time.Duration(r.cut).String()
		}
		t.Logf("crop %6.2f%% (batch < %-9s) n=%d/%d  mean/call %7.1fns vs %7.1fns (B-A %+6.2fns)  t=%+7.2f  t(samples)=%+7.2f  design %.2f",
			100*r.crop, cut, r.n0, r.n1, r.mean0, r.mean1, r.meanDiffPerOpN, r.t, r.tSamples, r.design)
		worst = max(worst, math.Abs(r.t))
		worstSamples = max(worstSamples, math.Abs(r.tSamples))
	}
	t.Logf("max |t| = %.2f (threshold %.1f); max |t(samples)| = %.2f", worst, timingThreshold, worstSamples)
	return worst
}

// timingFixture is a Manager on a fake clock (so cache entries never
// expire) over a store that hides memstore's Watcher and
// LastUsedRecorder, so that no background goroutine clears the cache or
// flushes while measuring; it holds n keys, whose IDs and secrets are
// returned.
func timingFixture(t *testing.T, n int) (m *apikey.Manager, store *countingStore, ids, secrets []string) {
	t.Helper()
	store = &countingStore{Store: memstore.New()}
	// The unknown kids measured are cached as negative entries: room for
	// four times n of them, so that none is evicted while measuring.
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", testPepper), apikey.WithClock(newFakeClock().Now),
		apikey.WithNegativeCache(4*n+apikey.DefaultNegativeCacheSize, time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	for range n {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "timing"})
		require.NoError(t, err)
		_, id, secret := parts(t, s.Reveal())
		ids, secrets = append(ids, id), append(secrets, secret)
	}
	return m, store, ids, secrets
}

// timingRand returns a generator seeded afresh for each run, so that
// which keys go into which class changes from run to run; the seed is
// logged.
func timingRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d inputs per class", seed, timingInputs)
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// pair lays out the two classes' strings for one input index side by
// side, in one 256-byte block, each at the start of its own 128-byte half
// and in random order. Nothing the measured function reads then belongs
// to one class's region of memory: separately allocated, each class's
// strings, and the arrays of their headers, would sit in regions of their
// own, and the harness finds differences of a nanosecond or more per call
// between regions (which cache sets they share with what, under the
// other tenants' pressure), which no number of inputs averages away.
// Both halves start alike on a cache line, so no string straddles one
// more line than another.
func pair(rng *rand.Rand, s0, s1 string) [2]string {
	b := make([]byte, 256)
	at := [2]int{0, 128}
	if rng.IntN(2) == 1 {
		at = [2]int{128, 0}
	}
	copy(b[at[0]:], s0)
	copy(b[at[1]:], s1)
	return [2]string{unsafe.String(&b[at[0]], len(s0)), unsafe.String(&b[at[1]], len(s1))}
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

// randomBase62 returns n random base62 characters, the first of which
// differs from first.
func randomBase62(rng *rand.Rand, n int, first byte) string {
	b := make([]byte, n)
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
		none = append(none, randomBase62(rng, apikey.SecretLen, s[0]))
		last := otherBase62(rng, s[len(s)-1])
		allButLast = append(allButLast, s[:len(s)-1]+string(last))
	}
	return none, allButLast
}

// checkWrong checks that every token is refused as a wrong key (not as
// malformed). This loads each kid into the cache, and it does so in
// random order, so that the two classes' cache entries (and the records
// they point to) are allocated intermixed; see pair.
func checkWrong(t *testing.T, rng *rand.Rand, m *apikey.Manager, tokens [][2]string) {
	t.Helper()
	for _, ci := range rng.Perm(2 * len(tokens)) {
		_, err := m.Verify(context.Background(), tokens[ci/2][ci%2])
		require.ErrorIs(t, err, apikey.ErrInvalidKey)
		require.NotErrorIs(t, err, apikey.ErrChecksum)
	}
}

// measureVerify measures Verify on tokens[input][class], checking that
// every call failed and was a cache hit.
func measureVerify(t *testing.T, rng *rand.Rand, m *apikey.Manager, store *countingStore, tokens [][2]string) []timingResult {
	t.Helper()
	checkWrong(t, rng, m, tokens)
	ctx := context.Background()
	var accepted int
	gets := store.gets.Load()
	results := measureTiming(t, rng, func(c, i int) {
		if _, err := m.Verify(ctx, tokens[i][c]); err == nil {
			accepted++ // never: every token is wrong
		}
	})
	require.Zero(t, accepted)
	require.Equal(t, gets, store.gets.Load(), "every Verify measured must be a cache hit")
	return results
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
	rng := timingRand(t)
	m, store, ids, secrets := timingFixture(t, timingInputs)
	none, allButLast := wrongSecrets(rng, secrets)
	var tokens [][2]string
	for i, id := range ids {
		tokens = append(tokens, pair(rng, forge("acme_test", id, none[i]), forge("acme_test", id, allButLast[i])))
	}
	checkTiming(t, measureVerify(t, rng, m, store, tokens))
}

// TestVerifyTimingUnknownKid: a wrong secret for a known kid costs the
// same as any secret for a kid that does not exist (cached as such).
func TestVerifyTimingUnknownKid(t *testing.T) {
	timingMode(t, "verify")
	rng := timingRand(t)
	m, store, ids, secrets := timingFixture(t, timingInputs)
	none, _ := wrongSecrets(rng, secrets)
	var tokens [][2]string
	for i, id := range ids {
		unknown := forge("acme_test", randomBase62(rng, apikey.IDLen, 0), randomBase62(rng, apikey.SecretLen, 0))
		tokens = append(tokens, pair(rng, forge("acme_test", id, none[i]), unknown))
	}
	checkTiming(t, measureVerify(t, rng, m, store, tokens))
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
	rng := timingRand(t)
	m, _, ids, secrets := timingFixture(t, timingInputs)
	none, allButLast := wrongSecrets(rng, secrets)
	var tokens, wrong [][2]string
	for i, id := range ids {
		tokens = append(tokens, pair(rng, forge("acme_test", id, none[i]), forge("acme_test", id, allButLast[i])))
		wrong = append(wrong, pair(rng, none[i], allButLast[i]))
	}
	ctx := context.Background()
	var matches int
	results := measureTiming(t, rng, func(c, i int) {
		m.Verify(ctx, tokens[i][c])
		if leakyEqual(wrong[i][c], secrets[i]) {
			matches++
		}
	})
	require.Zero(t, matches)
	worst := reportTiming(t, results)
	assert.GreaterOrEqual(t, worst, timingThreshold,
		"the positive control leaks by construction, but the harness did not find it: the test cannot fail, and its passes mean nothing")
}

// TestVerifyTimingNullControl is an A/A comparison: both classes are known
// kids with wrong secrets, drawn at random from one set of keys, so the
// code path is the same and only the keys (and where their cache entries
// sit in memory) differ, as they must between the classes of
// TestVerifyTimingUnknownKid. It must pass: if it fails, the harness
// resolves differences between particular keys and entries, and a
// failure of that test could not be blamed on the code.
func TestVerifyTimingNullControl(t *testing.T) {
	timingMode(t, "control")
	rng := timingRand(t)
	m, store, ids, secrets := timingFixture(t, 2*timingInputs)
	none, _ := wrongSecrets(rng, secrets)
	perm := rng.Perm(len(ids))
	var tokens [][2]string
	for j := 0; j < len(perm); j += 2 {
		a, b := perm[j], perm[j+1]
		tokens = append(tokens, pair(rng, forge("acme_test", ids[a], none[a]), forge("acme_test", ids[b], none[b])))
	}
	checkTiming(t, measureVerify(t, rng, m, store, tokens))
}

// TestVerifyTimingInstructions is a driver for callgrind, which counts
// executed instructions exactly, rather than a test: with
// APIKEY_TIMING_CALLGRIND=known it verifies wrong secrets for known kids,
// with =unknown secrets for unknown kids, 100 distinct tokens 10 times
// over in callgrindLoop. Compare the two classes' counts, per line of
// Verify and in total:
//
//	go test -c -o /tmp/apikey.test .
//	for c in known unknown; do
//		APIKEY_TIMING_CALLGRIND=$c GODEBUG=asyncpreemptoff=1 GOGC=off GOMAXPROCS=1 \
//			valgrind --tool=callgrind --callgrind-out-file=/tmp/callgrind.$c \
//			--toggle-collect='*callgrindLoop*' \
//			/tmp/apikey.test -test.run TestVerifyTimingInstructions
//		callgrind_annotate --auto=yes /tmp/callgrind.$c | grep -A22 'Manager) Verify(ctx'
//	done
//
// (Without asyncpreemptoff, the runtime's preemption signals can crash
// callgrind.) Since the entries of unknown kids hold a digester and a
// dummy digest (see cacheEntry), both classes run the same instructions
// in Verify, line for line; the totals differ by about one instruction
// per call, in the map lookup, which probes differently for each ID.
//
// The warm-up is long because the runtime fills its type-assertion
// caches at random, about one call in a thousand; until then the HMAC's
// Reset costs some 40 instructions more, now in one class, now in the
// other.
func TestVerifyTimingInstructions(t *testing.T) {
	class := os.Getenv("APIKEY_TIMING_CALLGRIND")
	if class == "" {
		t.Skip("a driver for callgrind: set APIKEY_TIMING_CALLGRIND=known or =unknown, and see the comment")
	}
	require.Contains(t, []string{"known", "unknown"}, class)
	const inputs = 100
	rng := rand.New(rand.NewPCG(1, 2))
	m, store, ids, secrets := timingFixture(t, inputs)
	none, _ := wrongSecrets(rng, secrets)
	var tokens []string
	for i, id := range ids {
		if class == "unknown" {
			id = randomBase62(rng, apikey.IDLen, 0)
		}
		tokens = append(tokens, forge("acme_test", id, none[i]))
	}
	for range 20_000 / inputs {
		for _, tok := range tokens {
			_, err := m.Verify(context.Background(), tok)
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
		}
	}
	gets := store.gets.Load()
	require.Zero(t, callgrindLoop(m, tokens, 10))
	require.Equal(t, gets, store.gets.Load(), "every Verify counted must be a cache hit")
}

// callgrindLoop verifies each token rounds times and returns how many
// were accepted.
//
//go:noinline
func callgrindLoop(m *apikey.Manager, tokens []string, rounds int) int {
	ctx := context.Background()
	accepted := 0
	for range rounds {
		for _, tok := range tokens {
			if _, err := m.Verify(ctx, tok); err == nil {
				accepted++
			}
		}
	}
	return accepted
}
