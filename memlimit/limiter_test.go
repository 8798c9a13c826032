package memlimit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"golang.org/x/time/rate"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newTestLimiter(t testing.TB, opts ...memlimit.LimiterOption) *memlimit.Limiter {
	// The sweeper reads the limiter's clock: stop it at t0, or it would
	// forget keys that tests create at explicit times near t0.
	opts = append([]memlimit.LimiterOption{memlimit.WithClock(func() time.Time { return t0 })}, opts...)
	l := must(memlimit.NewLimiter(opts...))
	t.Cleanup(func() { l.Close() })
	return l
}

// allowN calls AllowAt n times at now and returns how many were allowed.
func allowN(t testing.TB, l *memlimit.Limiter, now time.Time, key string, limit apikey.Limit, n int) int {
	t.Helper()
	allowed := 0
	for range n {
		d, err := l.AllowAt(now, key, limit)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	return allowed
}

func TestLimiterBurstAndRefill(t *testing.T) {
	l := newTestLimiter(t)
	limit := apikey.Limit{Rate: 10, Period: time.Second, Burst: 5} // a token every 100ms
	steps := []struct {
		at    time.Duration // since t0
		tries int
		want  int
	}{
		{0, 20, 5},                     // the full burst, no more
		{50 * time.Millisecond, 5, 0},  // half a token
		{100 * time.Millisecond, 5, 1}, // one token back
		{100 * time.Millisecond, 5, 0}, // and gone
		{450 * time.Millisecond, 5, 3}, // 3.5 tokens back
		{500 * time.Millisecond, 5, 1}, // the half makes one
		{10 * time.Second, 100, 5},     // refill caps at the burst
		{10*time.Second + time.Nanosecond, 1, 0},
	}
	for _, s := range steps {
		if got := allowN(t, l, t0.Add(s.at), "k", limit, s.tries); got != s.want {
			t.Fatalf("at +%v: %d of %d allowed, want %d", s.at, got, s.tries, s.want)
		}
	}
	// Other keys have their own buckets.
	if got := allowN(t, l, t0, "other", limit, 20); got != 5 {
		t.Fatalf("other key: %d allowed, want 5", got)
	}
}

func TestLimiterBurstZeroMeansRate(t *testing.T) {
	l := newTestLimiter(t)
	limit := apikey.Limit{Rate: 100, Period: time.Minute}
	if got := allowN(t, l, t0, "k", limit, 1000); got != 100 {
		t.Fatalf("%d allowed, want 100", got)
	}
	if got := allowN(t, l, t0.Add(600*time.Millisecond), "k", limit, 10); got != 1 {
		t.Fatalf("after one interval: %d allowed, want 1", got)
	}
}

func TestLimiterDecision(t *testing.T) {
	l := newTestLimiter(t)
	limit := apikey.Limit{Rate: 10, Period: time.Second, Burst: 3}
	want := []apikey.Decision{
		{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * time.Millisecond},
		{Allowed: true, Limit: 3, Remaining: 1, Reset: 200 * time.Millisecond},
		{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond},
		{Allowed: false, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond, RetryAfter: 100 * time.Millisecond},
	}
	for i, w := range want {
		d, err := l.AllowAt(t0, "k", limit)
		if err != nil || d != w {
			t.Fatalf("request %d: %+v, %v; want %+v", i, d, err, w)
		}
	}
	// 30ms later: still refused, a token is 70ms away.
	d, _ := l.AllowAt(t0.Add(30*time.Millisecond), "k", limit)
	if w := (apikey.Decision{Limit: 3, Reset: 270 * time.Millisecond, RetryAfter: 70 * time.Millisecond}); d != w {
		t.Fatalf("at +30ms: %+v, want %+v", d, w)
	}
	// 250ms later: 2.5 tokens, take one, 1.5 left: Remaining 1.
	d, _ = l.AllowAt(t0.Add(250*time.Millisecond), "k", limit)
	if w := (apikey.Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 150 * time.Millisecond}); d != w {
		t.Fatalf("at +250ms: %+v, want %+v", d, w)
	}
}

// TestLimiterMatchesXTimeRate drives a Limiter and a
// rate.Limiter with the same random requests at the same random,
// increasing times, and requires the same decision every time.
func TestLimiterMatchesXTimeRate(t *testing.T) {
	limits := []apikey.Limit{
		{Rate: 10, Period: time.Second, Burst: 5},
		{Rate: 100, Period: time.Second},
		{Rate: 3, Period: time.Second, Burst: 1}, // interval 333333333ns: not a round number
		{Rate: 1000, Period: time.Minute, Burst: 20},
		{Rate: 7, Period: 90 * time.Millisecond, Burst: 2},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, limit := range limits {
		t.Run(limit.String(), func(t *testing.T) {
			ours := newTestLimiter(t)
			theirs := rate.NewLimiter(rate.Every(limit.Period/time.Duration(limit.Rate)), limit.BurstSize())
			interval := limit.Period / time.Duration(limit.Rate)
			now := t0
			allowed := 0
			for i := range 20000 {
				// Mostly bursts at one instant, sometimes a gap of up to
				// two intervals, at nanosecond precision.
				if rng.IntN(3) == 0 {
					now = now.Add(time.Duration(rng.Int64N(int64(2 * interval))))
				}
				d, err := ours.AllowAt(now, "k", limit)
				if err != nil {
					t.Fatal(err)
				}
				want := theirs.AllowN(now, 1)
				if d.Allowed != want {
					t.Fatalf("request %d at +%v: ours %v, x/time/rate %v", i, now.Sub(t0), d.Allowed, want)
				}
				if d.Allowed {
					allowed++
					if got := int64(theirs.TokensAt(now)); d.Remaining != got {
						t.Fatalf("request %d: Remaining %d, x/time/rate has %d tokens", i, d.Remaining, got)
					}
				}
			}
			if allowed == 0 || allowed == 20000 {
				t.Fatalf("%d allowed: the test exercised nothing", allowed)
			}
		})
	}
}

// Like the x/time/rate test: many goroutines at one instant get exactly
// the burst between them.
func TestLimiterConcurrentOneKey(t *testing.T) {
	l := newTestLimiter(t)
	limit := apikey.Limit{Rate: 1, Period: time.Second, Burst: 100}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				d, err := l.AllowAt(t0, "hot", limit)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Fatalf("64 goroutines × 50 requests: %d allowed, want exactly the burst, 100", got)
	}
}

// The per-owner limit is applied by the middleware with the owner as the
// key: however many keys an owner has, they share one bucket.
func TestLimiterOwnerKeyCapsSum(t *testing.T) {
	l := newTestLimiter(t)
	perKey := apikey.Limit{Rate: 10, Period: time.Second}
	perOwner := apikey.Limit{Rate: 25, Period: time.Second}
	allowed := 0
	for k := range 10 { // one owner, ten keys, 20 requests each
		for range 20 {
			dk, _ := l.AllowAt(t0, fmt.Sprintf("key:%d", k), perKey)
			if !dk.Allowed {
				continue
			}
			do, _ := l.AllowAt(t0, "owner:acme", perOwner)
			if do.Allowed {
				allowed++
			}
		}
	}
	if allowed != 25 {
		t.Fatalf("%d allowed across the owner's keys, want the owner's 25", allowed)
	}
}

func TestLimiterInvalidLimit(t *testing.T) {
	l := newTestLimiter(t)
	for _, limit := range []apikey.Limit{
		{},
		{Rate: 0, Period: time.Second},
		{Rate: 1, Period: 0},
		{Rate: 1, Period: time.Second, Burst: -1},
		{Rate: 10, Period: 5},
		{Rate: 1, Period: 24 * time.Hour, Burst: 1000},
	} {
		if d, err := l.Allow(context.Background(), "k", limit); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Allow with %+v = %+v, %v; want ErrInvalidRequest", limit, d, err)
		}
	}
}

func TestLimiterUsesClock(t *testing.T) {
	clock := newFakeClock()
	l := newTestLimiter(t, memlimit.WithClock(clock.Now))
	limit := apikey.Limit{Rate: 1, Period: time.Second}
	ctx := context.Background()
	if d, _ := l.Allow(ctx, "k", limit); !d.Allowed {
		t.Fatal("first request refused")
	}
	if d, _ := l.Allow(ctx, "k", limit); d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("second request: %+v", d)
	}
	clock.Advance(time.Second)
	if d, _ := l.Allow(ctx, "k", limit); !d.Allowed {
		t.Fatal("request after a second refused")
	}
}

func TestLimiterAllowDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	l := newTestLimiter(t)
	limit := apikey.Limit{Rate: 100, Period: time.Second}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%09d", i)
		l.AllowAt(t0, keys[i], limit)
	}
	i := 0
	ctx := context.Background()
	allocs := testing.AllocsPerRun(10000, func() {
		l.Allow(ctx, keys[i%len(keys)], limit)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Allow on a known key: %v allocs, want 0", allocs)
	}
}

func TestLimiterCloseIdempotent(t *testing.T) {
	l := must(memlimit.NewLimiter(memlimit.WithSweepInterval(time.Millisecond)))
	l.Close()
	l.Close()
	if d, err := l.AllowAt(t0, "k", apikey.Limit{Rate: 1, Period: time.Second}); err != nil || !d.Allowed {
		t.Fatalf("after Close: %+v, %v", d, err)
	}
}

func TestNewLimiterRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]memlimit.LimiterOption{
		"nil clock":      memlimit.WithClock(nil),
		"zero sweep":     memlimit.WithSweepInterval(0),
		"negative bound": memlimit.WithMaxKeys(-1),
	} {
		t.Run(name, func(t *testing.T) {
			l, err := memlimit.NewLimiter(opt)
			if !errors.Is(err, apikey.ErrInvalidRequest) || l != nil {
				t.Fatalf("NewLimiter: %v, %v; want nil and ErrInvalidRequest", l, err)
			}
		})
	}
}
