package redislimit

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/redis/go-redis/v9"
)

// testClient returns a client for the Redis named by APIKEY_TEST_REDIS
// (a redis:// URL; .ci/services.sh's start_redis sets it), skipping the
// test when it is unset.
func testClient(t testing.TB) *redis.Client {
	t.Helper()
	url := os.Getenv("APIKEY_TEST_REDIS")
	if url == "" {
		t.Skip("APIKEY_TEST_REDIS is not set: no Redis to test against (run: source .ci/services.sh; start_redis)")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("APIKEY_TEST_REDIS=%q: %v", url, err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s: %v", url, err)
	}
	return c
}

// testPrefix returns a random key prefix, so that tests sharing a Redis
// never see each other's keys.
func testPrefix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "apikeytest:" + hex.EncodeToString(b) + ":"
}

func newTestLimiter(t testing.TB, c redis.UniversalClient, prefix string) *Limiter {
	t.Helper()
	l, err := NewLimiter(c, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// frozen is a clock for a memlimit.Limiter's sweeper that never moves, so
// that it forgets nothing while a test feeds it Redis's times.
func frozen() time.Time { return time.Unix(0, 0) }

// TestLimiterMatchesMemlimit sends the same requests to the Redis
// limiter and to a memlimit.Limiter at the times Redis read from its clock,
// and requires identical Decisions, field for field.
func TestLimiterMatchesMemlimit(t *testing.T) { eachRedis(t, testLimiterMatchesMemlimit) }

func testLimiterMatchesMemlimit(t *testing.T, r testRedis) {
	c := r.client(t)
	ctx := context.Background()
	// How many requests refill allows depends on how fast Redis answers,
	// but the hourly limit refuses most of its requests at any speed, so
	// over all limits some requests must be allowed and some refused, or
	// the comparison exercised nothing.
	totalAllowed, total := 0, 0
	defer func() {
		if !t.Failed() && (totalAllowed == 0 || totalAllowed == total) {
			t.Errorf("%d of %d requests allowed: the test exercised nothing", totalAllowed, total)
		}
	}()
	for _, limit := range []apikey.Limit{
		{Rate: 1000, Period: time.Second, Burst: 10},       // refills between requests
		{Rate: 3, Period: 10 * time.Millisecond, Burst: 2}, // interval 3333333ns
		{Rate: 10, Period: time.Hour, Burst: 7},            // no refill to speak of
		{Rate: 100, Period: 100 * time.Millisecond},        // burst 100
	} {
		t.Run(limit.String(), func(t *testing.T) {
			l := newTestLimiter(t, c, testPrefix())
			mem, err := memlimit.NewLimiter(memlimit.WithClock(frozen))
			if err != nil {
				t.Fatal(err)
			}
			defer mem.Close()
			allowed := 0
			const n = 1500
			for i := range n {
				key := fmt.Sprint("k", i%3)
				got, now, err := l.allow(ctx, key, limit)
				if err != nil {
					t.Fatal(err)
				}
				want, err := mem.AllowAt(now, key, limit)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("request %d at %v: Redis %+v, memory %+v", i, now.Format(time.StampMicro), got, want)
				}
				if got.Allowed {
					allowed++
				}
			}
			t.Logf("%d of %d allowed", allowed, n)
			totalAllowed, total = totalAllowed+allowed, total+n
		})
	}
}

func TestLimiterBurst(t *testing.T) { eachRedis(t, testLimiterBurst) }

func testLimiterBurst(t *testing.T, r testRedis) {
	c := r.client(t)
	l := newTestLimiter(t, c, testPrefix())
	limit := apikey.Limit{Rate: 10, Period: time.Hour, Burst: 5} // a token every 6 minutes
	allowed := 0
	for i := range 20 {
		d, err := l.Allow(context.Background(), "k", limit)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
		if i == 19 && (d.Allowed || d.Remaining != 0 || d.RetryAfter <= 5*time.Minute || d.RetryAfter > 6*time.Minute || d.Limit != 5) {
			t.Errorf("last decision %+v", d)
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 20 allowed, want the burst, 5", allowed)
	}
}

// Two limiters (two processes' worth: two clients) on one Redis share
// each bucket: 64 goroutines on each get the burst in total, not twice.
func TestTwoLimitersShareBuckets(t *testing.T) { eachRedis(t, testTwoLimitersShareBuckets) }

func testTwoLimitersShareBuckets(t *testing.T, r testRedis) {
	prefix := testPrefix()
	limiters := []*Limiter{
		newTestLimiter(t, r.client(t), prefix),
		newTestLimiter(t, r.client(t), prefix),
	}
	limit := apikey.Limit{Rate: 1, Period: time.Hour, Burst: 50}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					d, err := l.Allow(context.Background(), "shared", limit)
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
	}
	wg.Wait()
	if got := allowed.Load(); got != 50 {
		t.Fatalf("2 limiters × 64 goroutines × 5 requests: %d allowed, want the burst, 50", got)
	}
}

// Buckets expire when they are full again, and not before.
func TestLimiterKeysExpire(t *testing.T) { eachRedis(t, testLimiterKeysExpire) }

func testLimiterKeysExpire(t *testing.T, r testRedis) {
	c := r.client(t)
	prefix := testPrefix()
	l := newTestLimiter(t, c, prefix)
	ctx := context.Background()
	limit := apikey.Limit{Rate: 10, Period: time.Second, Burst: 4} // 100ms a token
	for range 3 {
		if _, err := l.Allow(ctx, "k", limit); err != nil {
			t.Fatal(err)
		}
	}
	ttl, err := c.PTTL(ctx, prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Full again 300ms after the first request, less the time since.
	if ttl <= 100*time.Millisecond || ttl > 301*time.Millisecond {
		t.Fatalf("PTTL %v, want about 300ms", ttl)
	}
	// A refused request writes nothing.
	limit1 := apikey.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	if d, err := l.Allow(ctx, "one", limit1); err != nil || !d.Allowed {
		t.Fatalf("first request: %+v, %v; want allowed", d, err)
	}
	before, err := c.Get(ctx, prefix+"one").Result()
	if err != nil || before == "" {
		t.Fatalf("bucket after the first request: %q, %v; want it written", before, err)
	}
	if d, err := l.Allow(ctx, "one", limit1); err != nil || d.Allowed {
		t.Fatalf("second request: %+v, %v; want refused", d, err)
	}
	after, err := c.Get(ctx, prefix+"one").Result()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("refused request changed the bucket: %q → %q", before, after)
	}
}

// commandStats returns Redis's per-command call counts; on a cluster,
// summed over its masters.
func commandStats(t testing.TB, c redis.UniversalClient) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		stats, err := nodeStats(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	stats := map[string]int64{}
	var mu sync.Mutex
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		one, err := nodeStats(ctx, m)
		mu.Lock()
		defer mu.Unlock()
		for cmd, n := range one {
			stats[cmd] += n
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

// nodeStats reads one node's INFO commandstats.
func nodeStats(ctx context.Context, c redis.UniversalClient) (map[string]int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	stats := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		// cmdstat_evalsha:calls=3,usec=...
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("INFO commandstats line %q: %w", sc.Text(), err)
		}
		stats[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return stats, nil
}

// Each decision is exactly one command, EVALSHA, once Redis has the
// script: INFO commandstats counts every command Redis runs (those a
// script runs with redis.call are not counted as commands of their own
// here: they appear under their names, so they are excluded below).
func TestOneRoundTripPerDecision(t *testing.T) { eachRedis(t, testOneRoundTripPerDecision) }

func testOneRoundTripPerDecision(t *testing.T, r testRedis) {
	c := r.client(t)
	ctx := context.Background()
	l := newTestLimiter(t, c, testPrefix())
	counter, err := NewCounter(c, WithPrefix(testPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	limit := apikey.Limit{Rate: 100, Period: time.Second}
	q := apikey.Quota{Limit: 1000, Period: time.Hour}
	// Warm up: load the scripts (EVALSHA, NOSCRIPT, EVAL) and open the
	// connections, on every node that holds one of the keys.
	for i := range 7 {
		l.Allow(ctx, fmt.Sprint("k", i), limit)
		counter.Add(ctx, fmt.Sprint("k", i), q, 1)
	}

	// Commands that the scripts run inside Redis, counted under their
	// own names by INFO commandstats.
	inScript := map[string]bool{"time": true, "get": true, "set": true, "hmget": true, "hset": true, "hincrby": true, "pexpireat": true}
	before := commandStats(t, c)
	const decisions = 100
	for i := range decisions {
		if _, err := l.Allow(ctx, fmt.Sprint("k", i%7), limit); err != nil {
			t.Fatal(err)
		}
		if _, err := counter.Add(ctx, fmt.Sprint("k", i%7), q, 1); err != nil {
			t.Fatal(err)
		}
	}
	after := commandStats(t, c)
	if d := after["evalsha"] - before["evalsha"]; d != 2*decisions {
		t.Errorf("EVALSHA calls: %d, want %d (one per decision)", d, 2*decisions)
	}
	for cmd, n := range after {
		if cmd == "evalsha" || cmd == "info" || inScript[cmd] || topology(cmd) {
			continue
		}
		if d := n - before[cmd]; d != 0 {
			t.Errorf("%d %s calls besides EVALSHA", d, strings.ToUpper(cmd))
		}
	}
}

// With Redis down, a decision is an error wrapping ErrUnavailable, fast.
func TestRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := redis.NewClient(&redis.Options{
		Addr:        addr,
		DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond,
		MaxRetries:  -1,
		// go-redis retries a failed dial 5 times by default.
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	defer c.Close()
	l, _ := NewLimiter(c)
	counter, _ := NewCounter(c)
	start := time.Now()
	_, err = l.Allow(context.Background(), "k", apikey.Limit{Rate: 1, Period: time.Second})
	if !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("Allow: %v, want ErrUnavailable", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("Allow: %v does not wrap the network error", err)
	}
	_, err = counter.Add(context.Background(), "k", apikey.Quota{Limit: 1, Period: time.Hour}, 1)
	if !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("Add: %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v to fail", el)
	}
	t.Logf("Redis down: %v", err)

	// A cancelled context is unavailable too, and says why.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = l.Allow(ctx, "k", apikey.Limit{Rate: 1, Period: time.Second})
	if !errors.Is(err, apikey.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a cancelled context: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	if _, err := NewLimiter(nil); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("NewLimiter(nil): %v", err)
	}
	if _, err := NewCounter(nil); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("NewCounter(nil): %v", err)
	}
	// A client that would wait past a request's deadline is refused.
	deaf := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer deaf.Close()
	if _, err := NewLimiter(deaf); !errors.Is(err, apikey.ErrInvalidRequest) || !strings.Contains(err.Error(), "ContextTimeoutEnabled") {
		t.Errorf("NewLimiter(client without ContextTimeoutEnabled): %v", err)
	}
	if _, err := NewCounter(deaf); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("NewCounter(client without ContextTimeoutEnabled): %v", err)
	}
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	if _, err := NewLimiter(cluster); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("NewLimiter(cluster client without ContextTimeoutEnabled): %v", err)
	}
	// Arguments are checked before Redis is contacted: no Redis needed.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	// A nil option is refused, not a panic.
	if _, err := NewLimiter(c, nil); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("NewLimiter(c, nil): %v", err)
	}
	if _, err := NewCounter(c, WithPrefix("p:"), nil); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("NewCounter(c, WithPrefix, nil): %v", err)
	}
	l, _ := NewLimiter(c)
	counter, _ := NewCounter(c)
	ctx := context.Background()
	for _, limit := range []apikey.Limit{{}, {Rate: 1}, {Rate: 10, Period: 5}, {Rate: 1, Period: 24 * time.Hour, Burst: 1000}} {
		if _, err := l.Allow(ctx, "k", limit); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Allow(%+v): %v", limit, err)
		}
	}
	for _, tc := range []struct {
		q apikey.Quota
		n int64
	}{
		{apikey.Quota{}, 1},
		{apikey.Quota{Period: time.Hour}, 1},
		{apikey.Quota{Limit: 1, Period: -time.Hour}, 1},
		{apikey.Quota{Limit: 1, Period: time.Nanosecond}, 1},
		{apikey.Quota{Limit: 1 << 60, Period: time.Hour}, 1},
		{apikey.Quota{Limit: 10, Period: time.Hour}, -1},
		{apikey.Quota{Limit: 10, Period: time.Hour}, 1 << 60},
	} {
		if _, err := counter.Add(ctx, "k", tc.q, tc.n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Add(%+v, %d): %v", tc.q, tc.n, err)
		}
	}
}

func newTestCounter(t testing.TB, c redis.UniversalClient, prefix string) *Counter {
	t.Helper()
	counter, err := NewCounter(c, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return counter
}

// TestCounterMatchesMemlimit compares with memlimit.Counter at Redis's
// times, across window ends (10ms windows).
func TestCounterMatchesMemlimit(t *testing.T) { eachRedis(t, testCounterMatchesMemlimit) }

func testCounterMatchesMemlimit(t *testing.T, r testRedis) {
	c := r.client(t)
	counter := newTestCounter(t, c, testPrefix())
	mem, err := memlimit.NewCounter(memlimit.WithClock(frozen))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	ctx := context.Background()
	q := apikey.Quota{Limit: 20, Period: 10 * time.Millisecond}
	windows := map[int64]bool{}
	for i := range 2000 {
		n := int64(i % 4) // 0 reports, 3 is a large cost
		got, now, err := counter.add(ctx, "k", q, n)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.AddAt(now, "k", q, n)
		if got != want {
			t.Fatalf("add %d (n=%d) at %v: Redis %+v, memory %+v", i, n, now.Format(time.StampMicro), got, want)
		}
		windows[now.UnixNano()/int64(q.Period)] = true
	}
	if len(windows) < 2 {
		t.Fatalf("only %d windows seen", len(windows))
	}
}

func TestCounterRefusedAddDoesNotCount(t *testing.T) { eachRedis(t, testCounterRefusedAddDoesNotCount) }

func testCounterRefusedAddDoesNotCount(t *testing.T, r testRedis) {
	c := r.client(t)
	counter := newTestCounter(t, c, testPrefix())
	ctx := context.Background()
	q := apikey.Quota{Limit: 10, Period: 24 * time.Hour}
	steps := []struct {
		n             int64
		allowed       bool
		wantRemaining int64
	}{{6, true, 4}, {5, false, 4}, {4, true, 0}, {1, false, 0}, {0, true, 0}}
	for i, s := range steps {
		d, err := counter.Add(ctx, "k", q, s.n)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != s.allowed || d.Remaining != s.wantRemaining || d.Limit != 10 {
			t.Fatalf("step %d (n=%d): %+v", i, s.n, d)
		}
		if !d.Allowed && (d.RetryAfter != d.Reset || d.RetryAfter <= 0 || d.RetryAfter > 24*time.Hour) {
			t.Fatalf("step %d: RetryAfter %v, Reset %v: want both the time to midnight UTC", i, d.RetryAfter, d.Reset)
		}
	}
}

// Counts live in Redis: a new client and Counter (a restarted process)
// carry on where the old ones stopped.
func TestCounterSurvivesRestart(t *testing.T) { eachRedis(t, testCounterSurvivesRestart) }

func testCounterSurvivesRestart(t *testing.T, r testRedis) {
	prefix := testPrefix()
	ctx := context.Background()
	q := apikey.Quota{Limit: 100, Period: 24 * time.Hour}

	c1 := r.client(t)
	counter1 := newTestCounter(t, c1, prefix)
	if _, err := counter1.Add(ctx, "acme", q, 70); err != nil {
		t.Fatal(err)
	}
	c1.Close()

	counter2 := newTestCounter(t, r.client(t), prefix)
	d, err := counter2.Add(ctx, "acme", q, 20)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.Remaining != 10 {
		t.Fatalf("after restart: %+v, want allowed with 10 remaining", d)
	}
	if d, _ := counter2.Add(ctx, "acme", q, 11); d.Allowed {
		t.Fatalf("over quota after restart: %+v", d)
	}
}

func TestCounterConcurrent(t *testing.T) { eachRedis(t, testCounterConcurrent) }

func testCounterConcurrent(t *testing.T, r testRedis) {
	prefix := testPrefix()
	counters := []*Counter{newTestCounter(t, r.client(t), prefix), newTestCounter(t, r.client(t), prefix)}
	q := apikey.Quota{Limit: 300, Period: 24 * time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for _, counter := range counters {
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					d, err := counter.Add(context.Background(), "k", q, 1)
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
	}
	wg.Wait()
	if got := allowed.Load(); got != 300 {
		t.Fatalf("%d allowed, want 300", got)
	}
}

// The owner as the key caps the sum over the owner's keys, across
// processes.
func TestOwnerKeyCapsSum(t *testing.T) { eachRedis(t, testOwnerKeyCapsSum) }

func testOwnerKeyCapsSum(t *testing.T, r testRedis) {
	c := r.client(t)
	l := newTestLimiter(t, c, testPrefix())
	ctx := context.Background()
	perKey := apikey.Limit{Rate: 10, Period: time.Hour}
	perOwner := apikey.Limit{Rate: 25, Period: time.Hour}
	allowed := 0
	for k := range 5 {
		for range 10 {
			dk, err := l.Allow(ctx, fmt.Sprint("key:", k), perKey)
			if err != nil {
				t.Fatal(err)
			}
			if !dk.Allowed {
				continue
			}
			if do, _ := l.Allow(ctx, "owner:acme", perOwner); do.Allowed {
				allowed++
			}
		}
	}
	if allowed != 25 {
		t.Fatalf("%d allowed across 5 keys of one owner, want 25", allowed)
	}
}

func BenchmarkRedisLimiter(b *testing.B) {
	c := testClient(b)
	l := newTestLimiter(b, c, testPrefix())
	ctx := context.Background()
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%011d", i)
	}
	limit := apikey.Limit{Rate: 1000, Period: time.Hour}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := l.Allow(ctx, keys[i%len(keys)], limit); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		// Decisions wait on the network: run 8 per CPU at once.
		b.SetParallelism(8)
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Allow(ctx, keys[next.Add(1)%int64(len(keys))], limit); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestCounterRefund gives units back on a real Redis: never below zero,
// only to the window it is in, without creating a key or changing the
// key's expiry, and in one round trip.
func TestCounterRefund(t *testing.T) { eachRedis(t, testCounterRefund) }

func testCounterRefund(t *testing.T, r testRedis) {
	c := r.client(t)
	prefix := testPrefix()
	counter := newTestCounter(t, c, prefix)
	ctx := context.Background()
	q := apikey.Quota{Limit: 5, Period: 24 * time.Hour}
	for range 5 {
		if _, err := counter.Add(ctx, "k", q, 1); err != nil {
			t.Fatal(err)
		}
	}
	ttl := c.PTTL(ctx, prefix+"k").Val()
	if d, _ := counter.Add(ctx, "k", q, 1); d.Allowed {
		t.Fatal("quota not exhausted")
	}
	if err := counter.Refund(ctx, "k", q, 0); err != nil { // loads the script on k's node
		t.Fatal(err)
	}
	before := commandStats(t, c)
	if err := counter.Refund(ctx, "k", q, 2); err != nil {
		t.Fatal(err)
	}
	after := commandStats(t, c)
	inScript := map[string]bool{"time": true, "hmget": true, "hset": true}
	for cmd, n := range after {
		d := n - before[cmd]
		switch {
		case cmd == "evalsha" && d != 1:
			t.Errorf("%d EVALSHA calls for one refund", d)
		case cmd != "evalsha" && cmd != "info" && !inScript[cmd] && !topology(cmd) && d != 0:
			t.Errorf("%d %s calls besides EVALSHA", d, strings.ToUpper(cmd))
		}
	}
	if d, _ := counter.Add(ctx, "k", q, 0); d.Remaining != 2 {
		t.Fatalf("after refunding 2: %+v", d)
	}
	if got := c.PTTL(ctx, prefix+"k").Val(); got > ttl || got < ttl-time.Minute {
		t.Errorf("expiry %v after the refund, %v before: the refund must keep it", got, ttl)
	}
	if err := counter.Refund(ctx, "k", q, 1<<40); err != nil {
		t.Fatal(err)
	}
	if d, _ := counter.Add(ctx, "k", q, 0); d.Remaining != 5 {
		t.Fatalf("a refund above the usage: %+v, want Remaining 5", d)
	}
	if _, err := counter.Add(ctx, "k", q, 5); err != nil {
		t.Fatal(err)
	}
	if d, _ := counter.Add(ctx, "k", q, 1); d.Allowed {
		t.Fatal("the refunded units are counted again: quota not exhausted")
	}
	// No usage, no key: a refund creates nothing.
	if err := counter.Refund(ctx, "none", q, 1); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, prefix+"none").Val(); n != 0 {
		t.Fatal("a refund created a key")
	}
	// A key that holds an ended window is left alone: 10ms windows.
	short := apikey.Quota{Limit: 3, Period: 10 * time.Millisecond}
	if _, err := counter.Add(ctx, "short", short, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(25 * time.Millisecond)
	if err := counter.Refund(ctx, "short", short, 3); err != nil {
		t.Fatal(err)
	}
	if w := c.HGet(ctx, prefix+"short", "n").Val(); w != "3" && w != "" {
		t.Errorf("a refund in a later window changed the ended one's usage to %q", w)
	}
	for _, tc := range []struct {
		q apikey.Quota
		n int64
	}{{apikey.Quota{}, 1}, {apikey.Quota{Limit: 1, Period: time.Nanosecond}, 1}, {q, -1}, {q, 1<<53 + 1}} {
		if err := counter.Refund(ctx, "k", tc.q, tc.n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Refund(%v, %d): %v, want ErrInvalidRequest", tc.q, tc.n, err)
		}
	}
}
