package redislimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
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

// overshootBound is the most requests a fleet of n LeaseLimiters with
// the given advance may allow in a span of length w beyond the exact
// limit's BurstSize + floor(w/interval): ceil(syncInterval/interval) +
// n×advance.
func overshootBound(limit apikey.Limit, sync time.Duration, n, advance int) int {
	i, _, _ := limit.GCRA()
	return int((sync+i-1)/i) + n*advance
}

// waitIdle waits until l has no batched call to make or in flight, so
// that every advance it made is settled or owed after a failed call.
func waitIdle(t testing.TB, l *LeaseLimiter) {
	t.Helper()
	for range 5000 {
		l.bmu.Lock()
		idle := !l.flushing
		l.bmu.Unlock()
		if idle {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the batched calls did not end within 5s")
}

// debtOf returns the advances of key that l has not sent to Redis yet.
func debtOf(l *LeaseLimiter, key string) int64 {
	return inspect(l, key, func(st *leaseState) int64 { return st.debt })
}

// inspect returns f of key's state in l, read under its shard's lock, or
// 0 if l holds no state for key.
func inspect(l *LeaseLimiter, key string, f func(st *leaseState) int64) int64 {
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%leaseShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st := sh.m[h]; st != nil {
		return f(st)
	}
	return 0
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
// after a refusal, and checks every span of several lengths: the fleet
// never allows more than the exact limit plus the documented bound,
// ceil(T/I) + N×n with n advances per instance (ceil(T/I) without
// advances). It also requires the fleet to allow at least half of what
// the limit allows over the run, so that a limiter that refuses
// everything does not pass.
func TestLeaseOvershootBound(t *testing.T) {
	limit := apikey.Limit{Rate: 200, Period: time.Second, Burst: 20} // I = 5ms
	const syncEvery = 50 * time.Millisecond                          // ceil(T/I) = 10 requests
	const run = 2 * time.Second
	interval, _, _ := limit.GCRA()
	for _, tc := range []struct{ advance, n int }{
		{0, 1}, {0, 2}, {0, 4},
		{1, 1}, {1, 2}, {1, 4},
		{3, 2}, {3, 4},
	} {
		n := tc.n
		bound := overshootBound(limit, syncEvery, n, tc.advance)
		t.Run(fmt.Sprintf("advance=%d/instances=%d", tc.advance, n), func(t *testing.T) {
			ls := fleet(t, n, WithPrefix(testPrefix()), WithSyncInterval(syncEvery), WithAdvance(tc.advance))
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
			t.Logf("%d instances, advance %d: %d allowed in %v (the limit: %d); largest overshoot %d (bound %d)",
				n, tc.advance, len(allowed), run, limit.BurstSize()+int(run/interval), worst, bound)
		})
	}
}

// With a limit that barely refills during the test, a fleet allows the
// burst and, with advances, at most n more per instance, however many
// instances share it; one instance spending without pause allows all of
// the burst, and without advances no more.
func TestLeaseBurst(t *testing.T) {
	limit := apikey.Limit{Rate: 10, Period: time.Hour} // one token every 6 minutes
	for _, tc := range []struct{ advance, n int }{
		{0, 1}, {0, 2}, {0, 4},
		{1, 1}, {1, 2}, {1, 4},
		{2, 4},
	} {
		n := tc.n
		t.Run(fmt.Sprintf("advance=%d/instances=%d", tc.advance, n), func(t *testing.T) {
			ls := fleet(t, n, WithPrefix(testPrefix()), WithSyncInterval(time.Minute), WithAdvance(tc.advance))
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
			most := limit.BurstSize() + n*tc.advance
			if allowed > most || (n == 1 && allowed < limit.BurstSize()) || (n == 1 && tc.advance == 0 && allowed != most) {
				t.Errorf("%d instances allowed %d, want at most %d (and for one instance at least %d)", n, allowed, most, limit.BurstSize())
			}
		})
	}
}

// A LeaseLimiter and a Limiter with the same prefix share buckets: what
// one takes, the other cannot. Without advances the LeaseLimiter decides
// as the exact one would.
func TestLeaseSharesBucketsWithLimiter(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix()
	exact := newTestLimiter(t, c, prefix)
	lease := newTestLease(t, c, WithPrefix(prefix), WithAdvance(0))
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

// gateScripts counts c's script calls, in the returned counter, and
// makes them wait until release is called (at once if block is false).
// Unlike INFO commandstats, the count is of c's calls alone.
func gateScripts(c *redis.Client, block bool) (calls *atomic.Int64, release func()) {
	g := &scriptGate{open: make(chan struct{})}
	var once sync.Once
	release = func() { once.Do(func() { close(g.open) }) }
	if !block {
		release()
	}
	c.AddHook(g)
	return &g.calls, release
}

type scriptGate struct {
	open  chan struct{}
	calls atomic.Int64
}

func (g *scriptGate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *scriptGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			g.calls.Add(1)
			<-g.open
		}
		return next(ctx, cmd)
	}
}
func (g *scriptGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// heldOf returns the tokens of key's shares that l may still spend.
func heldOf(l *LeaseLimiter, key string) int64 {
	return inspect(l, key, func(st *leaseState) int64 { return st.decision(l.now(), true).Remaining })
}

// sentOf reports whether key's lease is on its way to Redis.
func sentOf(l *LeaseLimiter, key string) bool {
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%leaseShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.m[h]
	return st != nil && st.req != nil && st.req.sent
}

// Advances are allowed without waiting for Redis, up to n per key, and
// those made while the lease waits for the batched call go together in
// it; the next request for the key waits for that call, which settles
// the debt and leases a share; Redis charged both.
func TestLeaseAdvance(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	limit := apikey.Limit{Rate: 10, Period: time.Hour}
	// So that every call is one EVALSHA, without an EVAL after it.
	if err := leaseScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		advance int
		keys    int
	}{{1, 1}, {1, 5}, {3, 1}, {3, 4}} {
		t.Run(fmt.Sprintf("advance=%d/keys=%d", tc.advance, tc.keys), func(t *testing.T) {
			prefix := testPrefix()
			gated := testClient(t)
			calls, release := gateScripts(gated, true)
			defer release()
			l := newTestLease(t, gated, WithPrefix(prefix), WithAdvance(tc.advance))
			// A call on its way to Redis, held there: the
			// leases asked for meanwhile wait for the next.
			if d, err := l.Allow(ctx, "busy", limit); err != nil || !d.Allowed {
				t.Fatalf("busy: %+v, %v", d, err)
			}
			for !sentOf(l, "busy") {
				time.Sleep(time.Millisecond)
			}
			before := calls.Load()
			key := func(i int) string { return fmt.Sprint("k", i) }
			for i := range tc.keys {
				for j := range tc.advance {
					// Allowed at once, with no script call
					// answered.
					if d, err := l.Allow(ctx, key(i), limit); err != nil || !d.Allowed || d.Remaining != 0 {
						t.Fatalf("advance %d of key %d: %+v, %v", j, i, d, err)
					}
				}
			}
			// One more for the first key waits for the calls.
			done := make(chan apikey.Decision, 1)
			go func() {
				d, err := l.Allow(ctx, key(0), limit)
				if err != nil {
					t.Error(err)
				}
				done <- d
			}()
			select {
			case d := <-done:
				t.Fatalf("request beyond the advance did not wait for Redis: %+v", d)
			case <-time.After(50 * time.Millisecond):
			}
			release()
			if d := <-done; !d.Allowed {
				t.Fatalf("after the call: %+v", d)
			}
			waitIdle(t, l)
			if n := calls.Load() - before; n != 1 {
				t.Errorf("%d script calls for the advances of %d keys, want 1", n, tc.keys)
			}
			exact := newTestLimiter(t, c, prefix)
			for i := range tc.keys {
				if n := debtOf(l, key(i)); n != 0 {
					t.Errorf("key %d: debt %d left after the call", i, n)
				}
				// Each key's advances were charged, and its share
				// of one token.
				left := 0
				for {
					d, err := exact.Allow(ctx, key(i), limit)
					if err != nil {
						t.Fatal(err)
					}
					if !d.Allowed {
						break
					}
					left++
				}
				if want := limit.BurstSize() - tc.advance - 1; left != want {
					t.Errorf("key %d: the exact Limiter allowed %d after the advances, want %d", i, left, want)
				}
			}
		})
	}
}

// waitSettled waits until no key of l has a lease in progress or a debt
// not yet sent, whether l batches its calls or not.
func waitSettled(t testing.TB, l *LeaseLimiter) {
	t.Helper()
	for range 5000 {
		busy := false
		for i := range l.shards {
			sh := &l.shards[i]
			sh.mu.Lock()
			for _, st := range sh.m {
				busy = busy || st.req != nil || st.debt > 0
			}
			sh.mu.Unlock()
		}
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the advances were not settled within 5s")
}

// On a single Redis (batched calls) and on a Redis Cluster (a call per
// lease), cold keys are allowed as advances, and the calls that settle
// them charge each key's bucket its advance and its new share.
func TestLeaseAdvanceEachRedis(t *testing.T) {
	eachRedis(t, func(t *testing.T, r testRedis) {
		c := r.client(t)
		prefix := testPrefix()
		ctx := context.Background()
		l := newTestLease(t, c, WithPrefix(prefix))
		limit := apikey.Limit{Rate: 5, Period: time.Hour}
		const keys = 20
		for i := range keys {
			if d, err := l.Allow(ctx, fmt.Sprint("k", i), limit); err != nil || !d.Allowed {
				t.Fatalf("key %d: %+v, %v", i, d, err)
			}
		}
		waitSettled(t, l)
		exact, err := NewLimiter(c, WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		for i := range keys {
			left := 0
			for {
				d, err := exact.Allow(ctx, fmt.Sprint("k", i), limit)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Allowed {
					break
				}
				left++
			}
			if left != limit.BurstSize()-2 {
				t.Errorf("key %d: the exact Limiter allowed %d after one advance, want %d", i, left, limit.BurstSize()-2)
			}
		}
	})
}

// A debt that the bucket cannot hold is charged all the same: the next
// lease is refused until the bucket has recovered from it, and no advance
// is made while that refusal is in force.
func TestLeaseAdvanceRefused(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix()
	ctx := context.Background()
	exact := newTestLimiter(t, c, prefix)
	own := testClient(t)
	calls, _ := gateScripts(own, false)
	l := newTestLease(t, own, WithPrefix(prefix), WithAdvance(1))
	limit := apikey.Limit{Rate: 3, Period: time.Hour} // I = 20 minutes
	for range 3 {
		exact.Allow(ctx, "k", limit)
	}
	// The lease limiter knows nothing of the empty bucket yet.
	if d, err := l.Allow(ctx, "k", limit); err != nil || !d.Allowed {
		t.Fatalf("advance: %+v, %v", d, err)
	}
	waitIdle(t, l)
	before := calls.Load()
	for range 100 {
		d, err := l.Allow(ctx, "k", limit)
		if err != nil || d.Allowed {
			t.Fatalf("after a debt beyond the bucket: %+v, %v", d, err)
		}
		// Two intervals: the debt's and the token's.
		if d.RetryAfter < 39*time.Minute || d.RetryAfter > 40*time.Minute {
			t.Fatalf("RetryAfter %v, want 40 minutes", d.RetryAfter)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("%d script calls for refusals in force, want none", n)
	}
	if debtOf(l, "k") != 0 {
		t.Error("an advance was made while the refusal was in force")
	}
	if d, err := exact.Allow(ctx, "k", limit); err != nil || d.Allowed || d.RetryAfter < 39*time.Minute {
		t.Errorf("the exact Limiter after the debt: %+v, %v, want a refusal for 40 minutes", d, err)
	}
}

// A hot key costs at least 10 times fewer Redis commands per decision
// than the exact Limiter's one, counted by INFO commandstats; so do cold
// keys asked for one after another, with advances; cold keys asked for
// at once share calls; refusals cost none.
func TestLeaseCommandsPerDecision(t *testing.T) {
	c := testClient(t)
	l := newTestLease(t, c, WithPrefix(testPrefix()))
	ctx := context.Background()
	limit := apikey.Limit{Rate: 100_000, Period: time.Second}
	l.Allow(ctx, "warm", limit) // loads the script
	waitIdle(t, l)
	before := commandStats(t, c)
	const decisions = 20_000
	for range decisions {
		if d, err := l.Allow(ctx, "hot", limit); err != nil || !d.Allowed {
			t.Fatalf("%+v, %v", d, err)
		}
	}
	waitIdle(t, l)
	after := commandStats(t, c)
	cmds := after["evalsha"] - before["evalsha"] + after["eval"] - before["eval"]
	if per := float64(cmds) / decisions; per > 0.1 {
		t.Errorf("%d script calls for %d decisions: %.3f per decision, want at most 0.1", cmds, decisions, per)
	}
	t.Logf("%d script calls for %d decisions", cmds, decisions)

	// Cold keys one after another: each is an advance, and the advances
	// made while a call is in flight go together in the next one.
	for _, tc := range []struct {
		advance int
		most    float64 // script calls per decision
	}{{0, 1}, {1, 0.1}} {
		l := newTestLease(t, c, WithPrefix(testPrefix()), WithAdvance(tc.advance))
		l.Allow(ctx, "warm", limit)
		waitIdle(t, l)
		const serial = 2000
		before := commandStats(t, c)
		for i := range serial {
			if d, err := l.Allow(ctx, fmt.Sprint("serial", i), limit); err != nil || !d.Allowed {
				t.Fatalf("%+v, %v", d, err)
			}
		}
		waitIdle(t, l)
		after := commandStats(t, c)
		per := float64(after["evalsha"]-before["evalsha"]) / serial
		if per > tc.most {
			t.Errorf("advance %d: %.3f script calls per decision on %d cold keys one after another, want at most %v", tc.advance, per, serial, tc.most)
		}
		t.Logf("advance %d: %.3f script calls per decision on %d cold keys one after another", tc.advance, per, serial)
	}

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
	waitIdle(t, l)
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
	waitIdle(t, l)
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

// With Redis gone, a LeaseLimiter spends the share it holds (and, with
// advances, makes the advances the key has left until a call fails),
// then fails closed with ErrUnavailable and makes no advance until a call
// succeeds; the advance stays owed; with WithLocalFallback it limits on
// its own instead.
func TestLeaseRedisLoss(t *testing.T) {
	for _, advance := range []int{0, 1} {
		t.Run(fmt.Sprintf("advance=%d", advance), func(t *testing.T) { testLeaseRedisLoss(t, advance) })
	}
}

func testLeaseRedisLoss(t *testing.T, advance int) {
	c, stop := startRedis(t)
	ctx := context.Background()
	limit := apikey.Limit{Rate: 1000, Period: time.Hour} // 1000 at once, then one every 3.6s
	closed := newTestLease(t, c, WithSyncInterval(time.Minute), WithAdvance(advance))
	open := newTestLease(t, c, WithSyncInterval(time.Minute), WithPrefix("other:"), WithLocalFallback(), WithAdvance(advance))
	// Spend 16 tokens each: the shares grow 1, 2, 4, 8, 16 (with an
	// advance before each), and the last one is leased ahead of time.
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
	waitIdle(t, closed) // the 17th may have leased ahead of time
	held := heldOf(closed, "k")
	if held < 1 {
		t.Fatalf("no share held after 17 requests (Remaining %d)", d.Remaining)
	}
	stop()

	// A key with no share: an advance while no call has failed yet
	// (without advances, an error at once).
	for _, l := range []*LeaseLimiter{closed, open} {
		d, err := l.Allow(ctx, "probe", limit)
		if advance > 0 {
			if err != nil || !d.Allowed {
				t.Fatalf("first request with Redis down, not yet known: %+v, %v, want an advance", d, err)
			}
			waitIdle(t, l)
			if n := debtOf(l, "probe"); n != 1 {
				t.Errorf("debt %d after a failed call, want 1 still owed", n)
			}
		} else if l == closed && !errors.Is(err, apikey.ErrUnavailable) {
			t.Fatalf("new key, Redis down: %v, want ErrUnavailable", err)
		}
	}

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
	// No advance once a call has failed, for a new key or the probe,
	// even after the sync interval that holds back leases (the
	// limiters' interval is a minute: clear it as if it had passed).
	closed.downUntil.Store(0)
	for _, key := range []string{"new", "probe"} {
		if _, err := closed.Allow(ctx, key, limit); !errors.Is(err, apikey.ErrUnavailable) {
			t.Fatalf("%s key, Redis known down: %v, want ErrUnavailable", key, err)
		}
	}
	if advance > 0 && debtOf(closed, "probe") != 1 {
		t.Errorf("the probe's debt is no longer owed")
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
	l := newTestLease(t, testClient(t), WithPrefix(testPrefix()), WithAdvance(0))
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
	for _, o := range []LeaseOption{nil, WithSyncInterval(0), WithSyncInterval(-time.Second), WithSyncInterval(MaxSyncInterval + 1), WithAdvance(-1)} {
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
