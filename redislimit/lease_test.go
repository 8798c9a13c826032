package redislimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

func newTestLease(t testing.TB, c redis.UniversalClient, opts ...LeaseOption) *LeaseLimiter {
	t.Helper()
	l, err := NewLeaseLimiter(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fleet returns n LeaseLimiters, each with a Redis client (and so a
// connection pool) of its own, as n instances of a service would have.
func fleet(t testing.TB, n int, opts ...LeaseOption) []*LeaseLimiter {
	t.Helper()
	ls := make([]*LeaseLimiter, n)
	for i := range ls {
		ls[i] = newTestLease(t, testClient(t), opts...)
	}
	return ls
}

// overshootBound is the most requests a fleet of LeaseLimiters may allow
// in a span of length w beyond the exact limit's BurstSize +
// floor(w/interval): ceil(syncInterval/interval).
func overshootBound(limit apikey.Limit, sync time.Duration) int {
	i, _, _ := limit.GCRA()
	return int((sync + i - 1) / i)
}

// maxInWindow returns the largest number of the sorted times that fall in
// a closed span of length w.
func maxInWindow(times []int64, w time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for times[i]-times[j] > int64(w) {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestLeaseOvershootBound drives one key from 1, 2 and 4 instances, each
// with goroutines that ask as fast as they can and others that pause
// after a refusal, and checks every span of
// several lengths: the fleet never allows more than the exact limit plus
// the documented bound, ceil(T/I). It also requires the fleet to allow
// at least half of what the limit allows over the run, so that a limiter
// that refuses everything does not pass.
func TestLeaseOvershootBound(t *testing.T) {
	limit := apikey.Limit{Rate: 200, Period: time.Second, Burst: 20} // I = 5ms
	const syncEvery = 50 * time.Millisecond                          // bound: 10 requests
	const run = 2 * time.Second
	interval, _, _ := limit.GCRA()
	bound := overshootBound(limit, syncEvery)
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("instances=%d", n), func(t *testing.T) {
			ls := fleet(t, n, WithPrefix(testPrefix()), WithSyncInterval(syncEvery))
			var mu sync.Mutex
			var allowed []int64
			var wg sync.WaitGroup
			start := time.Now()
			for g := range 3 * n {
				l := ls[g%n]
				// Every instance reports times on one clock: shift
				// each one's into the first's.
				shift := int64(l.epoch.Sub(ls[0].epoch))
				wg.Go(func() {
					var mine []int64
					for time.Since(start) < run {
						d, at, err := l.allow(context.Background(), "k", limit)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							mine = append(mine, at+shift)
						} else if g%2 == 1 {
							// Bursty clients: a pause after a
							// refusal, so that shares are held
							// and spent late, not only at once.
							time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
						}
					}
					mu.Lock()
					allowed = append(allowed, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			slices.Sort(allowed)
			worst := -1 << 31
			for _, w := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second} {
				exact := limit.BurstSize() + int(w/interval)
				got := maxInWindow(allowed, w)
				worst = max(worst, got-exact)
				if got > exact+bound {
					t.Errorf("%d instances allowed %d requests within %v: the exact limit allows %d, the bound %d more", n, got, w, exact, bound)
				}
			}
			want := int(run / interval / 2)
			if len(allowed) < want {
				t.Errorf("%d instances allowed %d requests in %v, want at least %d (half the limit)", n, len(allowed), run, want)
			}
			t.Logf("%d instances: %d allowed in %v (the limit: %d); largest overshoot %d (bound %d)",
				n, len(allowed), run, limit.BurstSize()+int(run/interval), worst, bound)
		})
	}
}

// With a limit that barely refills during the test, a fleet allows the
// burst and no more, however many instances share it, and one instance
// spending without pause allows all of it.
func TestLeaseBurst(t *testing.T) {
	limit := apikey.Limit{Rate: 10, Period: time.Hour} // one token every 6 minutes
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("instances=%d", n), func(t *testing.T) {
			ls := fleet(t, n, WithPrefix(testPrefix()), WithSyncInterval(time.Minute))
			var mu sync.Mutex
			allowed := 0
			var wg sync.WaitGroup
			for g := range 2 * n {
				wg.Go(func() {
					for range 50 {
						d, err := ls[g%n].Allow(context.Background(), "k", limit)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							mu.Lock()
							allowed++
							mu.Unlock()
						} else if d.RetryAfter <= 0 {
							t.Errorf("refusal with RetryAfter %v", d.RetryAfter)
						}
						if d.Remaining < 0 || d.Remaining > int64(limit.BurstSize()) {
							t.Errorf("Remaining %d outside [0, %d]", d.Remaining, limit.BurstSize())
						}
					}
				})
			}
			wg.Wait()
			if allowed > limit.BurstSize() || (n == 1 && allowed != limit.BurstSize()) {
				t.Errorf("%d instances allowed %d, want %d", n, allowed, limit.BurstSize())
			}
		})
	}
}

// A LeaseLimiter and a Limiter with the same prefix share buckets: what
// one takes, the other cannot.
func TestLeaseSharesBucketsWithLimiter(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix()
	exact := newTestLimiter(t, c, prefix)
	lease := newTestLease(t, c, WithPrefix(prefix))
	limit := apikey.Limit{Rate: 3, Period: time.Hour}
	for i := range 3 {
		if d, err := exact.Allow(context.Background(), "k", limit); err != nil || !d.Allowed {
			t.Fatalf("exact request %d: %+v, %v", i, d, err)
		}
	}
	d, err := lease.Allow(context.Background(), "k", limit)
	if err != nil || d.Allowed {
		t.Fatalf("lease after the exact limiter emptied the bucket: %+v, %v", d, err)
	}
	if d.RetryAfter < 5*time.Minute {
		t.Errorf("RetryAfter %v, want about 20 minutes", d.RetryAfter)
	}
	// And the other way round.
	if d, err := lease.Allow(context.Background(), "k2", limit); err != nil || !d.Allowed {
		t.Fatalf("lease on a fresh key: %+v, %v", d, err)
	}
	for range 2 {
		lease.Allow(context.Background(), "k2", limit)
	}
	if d, err := exact.Allow(context.Background(), "k2", limit); err != nil || d.Allowed {
		t.Fatalf("exact after the lease limiter spent the bucket: %+v, %v", d, err)
	}
}

// leaseScript charges a debt to the bucket whatever it holds, before it
// leases; gcraScript (the exact Limiter) sees the same bucket.
func TestLeaseScriptDebt(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	limit := apikey.Limit{Rate: 5, Period: time.Hour} // I = 12 minutes, burst 5
	interval, tolerance, _ := limit.GCRA()
	for _, tc := range []struct {
		name       string
		taken      int   // by the exact Limiter first
		want, debt int64 // the lease
		granted    int64
		retry      time.Duration // the lease's retry_after
		exactLeft  int           // what the exact Limiter then allows
	}{
		{"no debt", 0, 3, 0, 3, 0, 2},
		{"no debt, empty bucket", 5, 3, 0, 0, interval, 0},
		{"debt and lease", 0, 2, 2, 2, 0, 1},
		{"lease cut to what the debt leaves", 0, 4, 3, 2, 0, 0},
		{"debt only", 1, 0, 2, 0, 0, 2},
		{"debt fills the bucket", 3, 1, 2, 0, interval, 0},
		{"debt beyond the bucket", 4, 1, 3, 0, 3 * interval, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix()
			exact := newTestLimiter(t, c, prefix)
			for range tc.taken {
				if d, err := exact.Allow(ctx, "k", limit); err != nil || !d.Allowed {
					t.Fatalf("%+v, %v", d, err)
				}
			}
			res, err := leaseScript.Run(ctx, c, []string{prefix + "k"}, int64(interval), int64(tolerance), tc.want, tc.debt).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			// Redis's clock moves between the two scripts: allow a
			// second of it.
			if res[0] != tc.granted || time.Duration(res[3]) > tc.retry || time.Duration(res[3]) < tc.retry-time.Second {
				t.Errorf("lease: %v, want %d granted, retry after %v", res, tc.granted, tc.retry)
			}
			left := 0
			for {
				d, err := exact.Allow(ctx, "k", limit)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Allowed {
					// The refusal waits out the debt too: one
					// interval per request charged beyond the
					// burst, and one for the next token.
					charged := int64(tc.taken+left) + tc.debt + res[0]
					wait := time.Duration(charged+1-int64(limit.BurstSize())) * interval
					if got := d.RetryAfter; got > wait || got < wait-time.Second {
						t.Errorf("exact refusal: RetryAfter %v, want %v", got, wait)
					}
					break
				}
				left++
			}
			if left != tc.exactLeft {
				t.Errorf("the exact Limiter then allowed %d, want %d", left, tc.exactLeft)
			}
		})
	}
}

// A hot key costs at least 10 times fewer Redis commands per decision
// than the exact Limiter's one, counted by INFO commandstats; refusals
// cost none.
func TestLeaseCommandsPerDecision(t *testing.T) {
	c := testClient(t)
	l := newTestLease(t, c, WithPrefix(testPrefix()))
	ctx := context.Background()
	limit := apikey.Limit{Rate: 100_000, Period: time.Second}
	l.Allow(ctx, "warm", limit) // loads the script
	before := commandStats(t, c)
	const decisions = 20_000
	for range decisions {
		if d, err := l.Allow(ctx, "hot", limit); err != nil || !d.Allowed {
			t.Fatalf("%+v, %v", d, err)
		}
	}
	after := commandStats(t, c)
	cmds := after["evalsha"] - before["evalsha"] + after["eval"] - before["eval"]
	if per := float64(cmds) / decisions; per > 0.1 {
		t.Errorf("%d script calls for %d decisions: %.3f per decision, want at most 0.1", cmds, decisions, per)
	}
	t.Logf("%d script calls for %d decisions", cmds, decisions)

	// Cold keys asked for at once share script calls.
	const cold = 64
	before = commandStats(t, c)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range cold {
		wg.Go(func() {
			<-start
			if d, err := l.Allow(ctx, fmt.Sprint("cold", i), limit); err != nil || !d.Allowed {
				t.Errorf("%+v, %v", d, err)
			}
		})
	}
	close(start)
	wg.Wait()
	after = commandStats(t, c)
	if n := after["evalsha"] - before["evalsha"]; n >= cold {
		t.Errorf("%d script calls for %d cold keys asked for at once, want fewer", n, cold)
	} else {
		t.Logf("%d script calls for %d cold keys asked for at once", n, cold)
	}

	// A flood over the limit: the first refusal asks Redis, the rest
	// do not.
	slow := apikey.Limit{Rate: 1, Period: time.Hour}
	l.Allow(ctx, "flood", slow)
	before = commandStats(t, c)
	for range 1000 {
		if d, err := l.Allow(ctx, "flood", slow); err != nil || d.Allowed {
			t.Fatalf("%+v, %v", d, err)
		}
	}
	after = commandStats(t, c)
	if n := after["evalsha"] - before["evalsha"]; n > 1 {
		t.Errorf("%d script calls for 1000 refusals, want at most 1", n)
	}
}

// startRedis starts a redis-server of the test's own, which the test may
// stop, and returns its client and a function that kills it. It skips
// the test when redis-server is not installed.
func startRedis(t *testing.T) (*redis.Client, func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: cannot stop a Redis of this test's own (run: apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(addr.Port), "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{
		Addr:                  addr.String(),
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	for i := 0; ; i++ {
		if c.Ping(context.Background()).Err() == nil {
			break
		}
		if i == 100 {
			t.Fatalf("redis-server at %v did not answer", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, stop
}

// With Redis gone, a LeaseLimiter spends the share it holds, then fails
// closed with ErrUnavailable; with WithLocalFallback it limits on its
// own instead.
func TestLeaseRedisLoss(t *testing.T) {
	c, stop := startRedis(t)
	ctx := context.Background()
	limit := apikey.Limit{Rate: 1000, Period: time.Hour} // 1000 at once, then one every 3.6s
	closed := newTestLease(t, c, WithSyncInterval(time.Minute))
	open := newTestLease(t, c, WithSyncInterval(time.Minute), WithPrefix("other:"), WithLocalFallback())
	// Spend 16 tokens each: the shares grow 1, 2, 4, 8, 16, and the
	// last one is leased ahead of time.
	for _, l := range []*LeaseLimiter{closed, open} {
		for i := range 16 {
			if d, err := l.Allow(ctx, "k", limit); err != nil || !d.Allowed {
				t.Fatalf("request %d with Redis up: %+v, %v", i, d, err)
			}
		}
	}
	// Let the lease ahead of time land, then see what is held.
	time.Sleep(100 * time.Millisecond)
	d, err := closed.Allow(ctx, "k", limit)
	if err != nil || !d.Allowed {
		t.Fatalf("%+v, %v", d, err)
	}
	held := d.Remaining
	if held < 1 {
		t.Fatalf("no share held after 17 requests (Remaining %d)", held)
	}
	stop()

	for i := range held {
		if d, err := closed.Allow(ctx, "k", limit); err != nil || !d.Allowed {
			t.Fatalf("request %d of the %d held, with Redis down: %+v, %v", i, held, d, err)
		}
	}
	start := time.Now()
	_, err = closed.Allow(ctx, "k", limit)
	if !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("share spent, Redis down: %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v to fail", el)
	}
	// A key with no share fails at once too.
	if _, err := closed.Allow(ctx, "new", limit); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("new key, Redis down: %v, want ErrUnavailable", err)
	}

	// The fallback applies the limit in memory: a burst of 1000, then
	// refusals.
	allowed := 0
	for range 1100 {
		d, err := open.Allow(ctx, "fresh", limit)
		if err != nil {
			t.Fatalf("with WithLocalFallback: %v", err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != limit.BurstSize() {
		t.Errorf("the local fallback allowed %d of 1100, want %d", allowed, limit.BurstSize())
	}
}

// A lease in flight when the request's context ends: the request gets
// ErrUnavailable with the context's error, and the limiter keeps working.
func TestLeaseContext(t *testing.T) {
	l := newTestLease(t, testClient(t), WithPrefix(testPrefix()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	limit := apikey.Limit{Rate: 10, Period: time.Second}
	if _, err := l.Allow(ctx, "k", limit); !errors.Is(err, apikey.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if d, err := l.Allow(context.Background(), "k", limit); err != nil || !d.Allowed {
		t.Fatalf("afterwards: %+v, %v", d, err)
	}
}

func TestLeaseInvalid(t *testing.T) {
	if _, err := NewLeaseLimiter(nil); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("nil client: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewLeaseLimiter(c); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("client without ContextTimeoutEnabled: %v", err)
	}
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	for _, o := range []LeaseOption{nil, WithSyncInterval(0), WithSyncInterval(-time.Second), WithSyncInterval(MaxSyncInterval + 1)} {
		if _, err := NewLeaseLimiter(ok, o); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("option %v: %v", o, err)
		}
	}
	l := newTestLease(t, ok)
	for _, limit := range []apikey.Limit{{}, {Rate: -1, Period: time.Second}, {Rate: 10, Period: 1}} {
		if _, err := l.Allow(context.Background(), "k", limit); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("limit %+v: %v", limit, err)
		}
	}
	if l.Len() != 0 {
		t.Errorf("invalid limits left %d keys behind", l.Len())
	}
}
