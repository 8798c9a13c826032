package redislimit

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/redis/go-redis/v9"
)

// testRedis is one kind of Redis the tests run on: a single server, or a
// Redis Cluster of three masters.
type testRedis struct {
	name   string
	client func(testing.TB) redis.UniversalClient
}

// eachRedis runs fn on a single Redis (APIKEY_TEST_REDIS) and on a Redis
// Cluster (APIKEY_TEST_REDIS_CLUSTER), each skipped when its variable is
// unset.
func eachRedis(t *testing.T, fn func(*testing.T, testRedis)) {
	for _, r := range []testRedis{
		{"single", func(t testing.TB) redis.UniversalClient { return testClient(t) }},
		{"cluster", func(t testing.TB) redis.UniversalClient { return testClusterClient(t) }},
	} {
		t.Run(r.name, func(t *testing.T) { fn(t, r) })
	}
}

// clusterAddrs returns APIKEY_TEST_REDIS_CLUSTER's addresses (host:port,
// comma-separated; .ci/services.sh's start_redis_cluster sets it),
// skipping the test when it is unset.
func clusterAddrs(t testing.TB) []string {
	t.Helper()
	env := os.Getenv("APIKEY_TEST_REDIS_CLUSTER")
	if env == "" {
		t.Skip("APIKEY_TEST_REDIS_CLUSTER is not set: no Redis Cluster to test against (run: source .ci/services.sh; start_redis_cluster)")
	}
	return strings.Split(env, ",")
}

// testClusterClient returns a cluster client for APIKEY_TEST_REDIS_CLUSTER.
func testClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := clusterAddrs(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	})
	if err != nil {
		t.Fatalf("Redis Cluster at %v: %v", addrs, err)
	}
	return c
}

// topology reports whether cmd is one that a cluster client sends on its
// own now and then to learn the cluster's layout, not per decision.
func topology(cmd string) bool {
	return strings.HasPrefix(cmd, "cluster") || cmd == "command" || strings.HasPrefix(cmd, "command|")
}

// TestClusterScriptsTouchOneSlot: every script call names exactly one
// key, so Redis Cluster never refuses it with CROSSSLOT, whatever the
// prefix and key; keys spread over the masters.
func TestClusterScriptsTouchOneSlot(t *testing.T) {
	c := testClusterClient(t)
	ctx := context.Background()
	l := newTestLimiter(t, c, testPrefix())
	counter := newTestCounter(t, c, testPrefix())
	ledger, err := NewLedger(c, WithPrefix(testPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	credits := apikey.Credits{Grant: 10, Period: apikey.MonthPeriod, Day: 15}
	masters := map[string]bool{}
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		key := "owner:" + strings.Repeat("x", i) + "{tag}" // a hash tag in the caller's key is harmless too
		if i%2 == 0 {
			key = newKeyID(i)
		}
		if _, err := l.Allow(ctx, key, apikey.Limit{Rate: 10, Period: time.Second}); err != nil {
			t.Fatalf("Allow(%q): %v", key, err)
		}
		if _, err := counter.Add(ctx, key, apikey.Quota{Limit: 10, Period: time.Hour}, 1); err != nil {
			t.Fatalf("Add(%q): %v", key, err)
		}
		if err := counter.Refund(ctx, key, apikey.Quota{Limit: 10, Period: time.Hour}, 1); err != nil {
			t.Fatalf("Refund(%q): %v", key, err)
		}
		if _, err := ledger.Spend(ctx, key, credits, 1); err != nil {
			t.Fatalf("Ledger.Spend(%q): %v", key, err)
		}
		if _, err := ledger.TopUp(ctx, key, credits, 1); err != nil {
			t.Fatalf("Ledger.TopUp(%q): %v", key, err)
		}
		slot, err := c.ClusterKeySlot(ctx, l.prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		masters[slotOwner(shards, slot)] = true
	}
	if len(masters) < 2 {
		t.Fatalf("the keys landed on %d master(s): the test proves nothing about a cluster", len(masters))
	}
}

func newKeyID(i int) string {
	return "key" + strings.Repeat("Z", i%12)
}

// slotOwner returns the address (host:port) of the master that serves
// slot.
func slotOwner(shards []redis.ClusterShard, slot int64) string {
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= slot && slot <= r.End {
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
					}
				}
			}
		}
	}
	return ""
}

// TestClusterMasterDown shuts one master of the cluster down while
// requests flow through the middleware, on a key whose bucket that master
// holds. The default middleware answers 503 with Retry-After (fails
// closed), quickly; one with Limits.FailOpen lets the request through.
// Once the master is back (same port, same nodes.conf) requests are let
// through again. The whole test is bounded well under 30 s.
func TestClusterMasterDown(t *testing.T) {
	addrs := clusterAddrs(t)
	dir := os.Getenv("APIKEY_TEST_REDIS_CLUSTER_DIR")
	if dir == "" {
		t.Skip("APIKEY_TEST_REDIS_CLUSTER_DIR is not set: cannot restart a master (run: source .ci/services.sh; start_redis_cluster)")
	}
	start := time.Now()
	ctx := context.Background()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: true,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		MaxRedirects:          1,
		DialerRetries:         1, // go-redis dials 5 times by default
	})
	t.Cleanup(func() { c.Close() })
	prefix := testPrefix()
	limiter := newTestLimiter(t, c, prefix)
	counter := newTestCounter(t, c, prefix)

	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", []byte("cluster-test-pepper-0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	secret, key, err := m.Issue(ctx, apikey.IssueRequest{
		Owner:     "acme",
		RateLimit: apikey.Limit{Rate: 100000, Period: time.Second},
		Quota:     apikey.Quota{Limit: 1 << 40, Period: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []apikey.Event
	onEvent := apikey.WithOnEvent(func(e apikey.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	closed := m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter, Counter: counter}), onEvent)(ok)
	open := m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter, Counter: counter, FailOpen: true}))(ok)
	do := func(h http.Handler) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+secret.Reveal())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, h := range []http.Handler{closed, open} {
		if rec := do(h); rec.Code != http.StatusOK {
			t.Fatalf("before the outage: %d %s", rec.Code, rec.Body)
		}
	}

	// The master that holds the key's bucket (the limiter is asked first).
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	slot, err := c.ClusterKeySlot(ctx, prefix+key.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	victim := slotOwner(shards, slot)
	_, port, _ := net.SplitHostPort(victim)
	restart := filepath.Join(dir, "node-"+port, "restart.sh")
	if _, err := os.Stat(restart); err != nil {
		t.Fatalf("no restart script for master %s: %v", victim, err)
	}
	restarted := false
	bringBack := func() {
		if restarted {
			return
		}
		restarted = true
		if out, err := exec.Command(restart).CombinedOutput(); err != nil {
			t.Errorf("restart %s: %v: %s", victim, err, out)
		}
		waitClusterOK(t, addrs, 20*time.Second)
	}
	t.Cleanup(bringBack) // the other tests need the cluster whole

	// Requests flow while the master goes down: every answer is 200 or
	// 503, never anything else, and 503 comes quickly.
	var (
		wg        sync.WaitGroup
		stop      = make(chan struct{})
		codes     sync.Map // status → count
		slowest   time.Duration
		slowestMu sync.Mutex
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				rec := do(closed)
				el := time.Since(t0)
				n, _ := codes.LoadOrStore(rec.Code, new(int))
				slowestMu.Lock()
				*n.(*int)++
				slowest = max(slowest, el)
				slowestMu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	node := redis.NewClient(&redis.Options{Addr: victim})
	node.ShutdownNoSave(ctx) // its answer is the connection closing
	node.Close()
	waitDown(t, victim, 5*time.Second)
	// Long enough for the cluster to mark the master failed (node timeout
	// 2 s): the other masters then refuse every key with CLUSTERDOWN.
	time.Sleep(2500 * time.Millisecond)

	rec := do(closed)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("master down, fail closed: %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := do(open); rec.Code != http.StatusOK {
		t.Errorf("master down, Limits.FailOpen: %d, want 200", rec.Code)
	}
	close(stop)
	wg.Wait()
	codes.Range(func(code, n any) bool {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers %d during the outage, want only 200 and 503", *n.(*int), code)
		}
		return true
	})
	if n, _ := codes.Load(http.StatusServiceUnavailable); n == nil {
		t.Error("no 503 while the master was down")
	}
	if slowest > 3*time.Second {
		t.Errorf("the slowest request took %v: a dead master must fail fast", slowest)
	}
	mu.Lock()
	var unavailable int
	for _, e := range events {
		if e.Err != nil {
			unavailable++
			if strings.Contains(e.Err.Error(), secret.Reveal()) {
				t.Error("an Event's error holds the key")
			}
		}
	}
	mu.Unlock()
	if unavailable == 0 {
		t.Error("no Event reported the limiter's error")
	}

	bringBack()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rec := do(closed)
		if rec.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the master came back: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rec := do(open); rec.Code != http.StatusOK {
		t.Fatalf("after recovery, Limits.FailOpen: %d", rec.Code)
	}
	t.Logf("outage and recovery in %v; slowest request during it %v", time.Since(start), slowest)
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v, want under 30 s", el)
	}
}

// waitDown waits until nothing accepts connections at addr.
func waitDown(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections after %v", addr, within)
}

// waitClusterOK waits until every node reports cluster_state:ok.
func waitClusterOK(t *testing.T, addrs []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("%s: cluster not ok after %v: %v %s", addr, within, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
}
