package apikey

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apikeykit/apikey/internal/inmem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateLimitFieldSyntax(t *testing.T) {
	b := appendPolicy(nil, policyKey, 100, 60)
	assert.Equal(t, `"key";q=100;w=60`, string(b))
	b = appendPolicy(nil, policyQuota, 10000, 2592000)
	assert.Equal(t, `"quota";q=10000;w=2592000`, string(b))
	b = appendRateItem(nil, policyOwner, Decision{Remaining: -3, Reset: 16500 * time.Millisecond}, true)
	assert.Equal(t, `"owner";r=0;t=17`, string(b))
	// A NoRefill balance: no window, no reset.
	q, w := creditsPolicy(Credits{Grant: 500, Period: NoRefill}, Decision{Limit: 750})
	b = appendPolicy(nil, policyCredits, q, w)
	assert.Equal(t, `"credits";q=750`, string(b))
	b = appendRateItem(nil, policyCredits, Decision{Remaining: 12}, false)
	assert.Equal(t, `"credits";r=12`, string(b))
	for _, tt := range []struct {
		c    Credits
		q, w int64
	}{
		{Credits{Grant: 1000, Period: 24 * time.Hour}, 1200, 86400},
		{Credits{Grant: 1000, Period: MonthPeriod, Day: 15}, 1200, 31 * 86400},
		{Credits{Grant: 0, Period: 1500 * time.Millisecond}, 1200, 2},
	} {
		q, w := creditsPolicy(tt.c, Decision{Limit: 1200})
		assert.Equal(t, [2]int64{tt.q, tt.w}, [2]int64{q, w}, "%v", tt.c)
	}
}

// TestRateLimitPolicy pins the quota and window that RateLimit-Policy
// advertises for limits and quotas whose periods are not whole seconds,
// whose burst is not their rate, or both (see limitPolicy).
func TestRateLimitPolicy(t *testing.T) {
	for _, tt := range []struct {
		limit string
		q, w  int64
	}{
		{"100/s", 100, 1},
		{"2/m", 2, 60},
		{"10/30s", 10, 30},
		{"1000/m,burst=50", 50, 3}, // 1000 a minute in bursts of 50: 50 every 3s
		{"20/s,burst=5", 5, 1},     // the bucket holds 5, not 20
		{"20/s,burst=40", 40, 2},   // 40 at once, refilled in 2s
		{"10/100ms", 10, 1},        // 100/s sustained, but at most 10 at once
		{"10/100ms,burst=100", 100, 1},
		{"1/1500ms", 1, 2},    // 2 per 3s would allow 2 at once
		{"3/1500ms", 2, 1},    // 2 in 1s beats 3 in 2s
		{"100/1500ms", 66, 1}, // 66 in 1s beats 100 in 2s
		{"1/ns", 1, 1},
		{"1000000000/s", 1000000000, 1},
		{"1/d", 1, 86400},
		{"5/h,burst=1", 1, 720},
	} {
		t.Run(tt.limit, func(t *testing.T) {
			l, err := ParseLimit(tt.limit)
			require.NoError(t, err)
			q, w := limitPolicy(l)
			assert.Equal(t, [2]int64{tt.q, tt.w}, [2]int64{q, w}, "q, w")
		})
	}
	for _, tt := range []struct {
		quota string
		q, w  int64
	}{
		{"10000/d", 10000, 86400},
		{"10/100ms", 10, 1},
		{"1/1500ms", 1, 2},
		{"5/2500ms", 5, 3},
		{"7/1ns", 7, 1},
		{"1000000/720h", 1000000, 2592000},
	} {
		t.Run("quota "+tt.quota, func(t *testing.T) {
			qu, err := ParseQuota(tt.quota)
			require.NoError(t, err)
			q, w := quotaPolicy(qu)
			assert.Equal(t, [2]int64{tt.q, tt.w}, [2]int64{q, w}, "q, w")
		})
	}
	q, w := limitPolicy(Limit{Rate: 0, Period: time.Second})
	assert.Equal(t, [2]int64{0, 1}, [2]int64{q, w}, "a limit no limiter applies advertises nothing")
}

// TestRateLimitPolicyNeverOverstates drives the in-memory limiter and
// counter with request patterns that keep to the advertised policy, at
// most q requests in any w seconds (bursts of q every w seconds, and
// random spreads), and checks that none is refused: the field never
// promises more than the limiter allows.
func TestRateLimitPolicyNeverOverstates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	limits := []string{"100/s", "1000/m,burst=50", "20/s,burst=5", "10/100ms", "1/1500ms",
		"3/1500ms", "100/1500ms", "7/3s,burst=2", "1/ns", "999/1001ms,burst=3"}
	for range 200 {
		rate := 1 + rng.IntN(1000)
		period := time.Duration(rate) + time.Duration(rng.Int64N(int64(5*time.Second)))
		limits = append(limits, Limit{Rate: rate, Period: period, Burst: rng.IntN(2 * rate)}.String())
	}
	t0 := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return t0 }
	lim := inmem.NewLimiter(inmem.Config{Now: clock, Sweep: time.Hour})
	defer lim.Close()
	ctr := inmem.NewCounter(inmem.Config{Now: clock, Sweep: time.Hour})
	defer ctr.Close()
	for n, text := range limits {
		l, err := ParseLimit(text)
		require.NoError(t, err)
		interval, tolerance, err := l.GCRA()
		require.NoError(t, err)
		q, w := limitPolicy(l)
		for p, times := range compliantPatterns(rng, q, time.Duration(w)*time.Second) {
			key := fmt.Sprintf("l%d-%d", n, p)
			for i, at := range times {
				d := lim.AllowAt(t0.Add(at), key, interval, tolerance)
				if !d.Allowed {
					t.Fatalf("%s advertised as q=%d;w=%d: request %d at %v of pattern %d refused", text, q, w, i, at, p)
				}
			}
		}
		// The same numbers as a quota, its windows aligned to the epoch
		// wherever the pattern starts.
		quota := Quota{Limit: int64(l.Rate), Period: l.Period}
		q, w = quotaPolicy(quota)
		for p, times := range compliantPatterns(rng, q, time.Duration(w)*time.Second) {
			key := fmt.Sprintf("q%d-%d", n, p)
			start := t0.Add(time.Duration(rng.Int64N(int64(quota.Period))))
			for i, at := range times {
				d := ctr.AddAt(start.Add(at), key, quota.Limit, quota.Period, quota.Day, 1)
				if !d.Allowed {
					t.Fatalf("quota %s advertised as q=%d;w=%d: request %d at %v of pattern %d refused", quota, q, w, i, at, p)
				}
			}
		}
	}
}

// compliantPatterns returns request times with at most q requests in any
// window of length w: bursts of q every w, one every w/q, and random
// spreads, each over a few windows.
func compliantPatterns(rng *rand.Rand, q int64, w time.Duration) [][]time.Duration {
	const windows = 4
	n := min(q*windows, 4000)
	var bursts, even []time.Duration
	for i := range n {
		bursts = append(bursts, time.Duration(i/q)*w)
		even = append(even, time.Duration(i)*w/time.Duration(q))
	}
	out := [][]time.Duration{bursts, even}
	for range 3 {
		var ts []time.Duration
		for i := range n {
			at := time.Duration(0)
			if i > 0 {
				at = ts[i-1]
				if rng.IntN(3) > 0 {
					at += time.Duration(rng.Int64N(int64(2*w/time.Duration(q)) + 1))
				}
			}
			if i >= q {
				at = max(at, ts[i-q]+w) // keeps q in any w
			}
			ts = append(ts, at)
		}
		out = append(out, ts)
	}
	return out
}
