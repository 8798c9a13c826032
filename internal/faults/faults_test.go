// Package faults holds tests that break the real backends under load: the
// database and Redis go away mid-load and come back, and the service must
// fail closed meanwhile and recover without a restart.
package faults

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxy forwards TCP connections on a loopback port to target until it is
// cut: then it closes every open connection and refuses new ones, as a
// server that stopped would, until it is restored. With a latency set, it
// holds every chunk of data that long before forwarding it, as an
// overloaded server or a congested network would.
type proxy struct {
	ln      net.Listener
	target  string
	up      atomic.Bool
	latency atomic.Int64 // nanoseconds
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]bool)}
	p.up.Store(true)
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.up.Load() {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(time.Duration(p.latency.Load()))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// slow makes every chunk of data wait d in each direction (0: none).
func (p *proxy) slow(d time.Duration) { p.latency.Store(int64(d)) }

// cut closes every connection and refuses new ones.
func (p *proxy) cut() {
	p.up.Store(false)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
}

func (p *proxy) restore() { p.up.Store(true) }

var testPepper = []byte("faults-test-pepper-0123456789abc")

// statuses counts response codes by class of key.
type statuses struct {
	mu sync.Mutex
	m  map[string]map[int]int
}

func (s *statuses) add(class string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]map[int]int)
	}
	if s.m[class] == nil {
		s.m[class] = make(map[int]int)
	}
	s.m[class][code]++
}

func (s *statuses) get(class string) map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int)
	for k, v := range s.m[class] {
		out[k] = v
	}
	return out
}

func get(t *testing.T, client *http.Client, url, key string) int {
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPostgresOutage runs load through the middleware on sqlstore while
// PostgreSQL becomes unreachable and then comes back: meanwhile valid keys
// get 200 only from the cache, else 503; unknown and revoked keys never
// get 200; afterwards everything recovers without a restart.
func TestPostgresOutage(t *testing.T) {
	ctx := context.Background()
	st, px := postgresBehindProxy(t)

	// A short cache TTL, so the outage reaches the store quickly.
	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(1000, 300*time.Millisecond), apikey.WithNegativeCache(1000, 300*time.Millisecond),
		apikey.WithBackgroundErrors(func(error) {}))
	require.NoError(t, err)
	defer m.Close()
	var valid []string
	for i := 0; i < 20; i++ {
		s, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
		require.NoError(t, err)
		valid = append(valid, s.Reveal())
	}
	revoked, rk, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, rk.ID))

	srv := httptest.NewServer(m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}

	var st1 statuses
	var phase atomic.Value
	phase.Store("up")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				unknown, _ := apikey.Generate("acme_live")
				for class, key := range map[string]string{
					"valid":   valid[(w*7+i)%len(valid)],
					"unknown": unknown.Secret().Reveal(),
					"revoked": revoked.Reveal(),
				} {
					// A request counts for a phase only if it began and
					// ended in it.
					before := phase.Load().(string)
					code := get(t, client, srv.URL, key)
					if after := phase.Load().(string); after == before {
						st1.add(before+"/"+class, code)
					}
				}
			}
		}()
	}
	time.Sleep(time.Second)
	phase.Store("down")
	px.cut()
	time.Sleep(2 * time.Second)
	phase.Store("back")
	px.restore()
	// Recovery: within a few seconds every valid key is 200 again.
	require.Eventually(t, func() bool {
		for _, k := range valid {
			if get(t, client, srv.URL, k) != 200 {
				return false
			}
		}
		return true
	}, 15*time.Second, 100*time.Millisecond, "valid keys did not recover after PostgreSQL came back")
	phase.Store("recovered")
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	for _, p := range []string{"up", "down", "back", "recovered"} {
		t.Logf("%-9s valid %v  unknown %v  revoked %v", p, st1.get(p+"/valid"), st1.get(p+"/unknown"), st1.get(p+"/revoked"))
	}
	assert.Equal(t, map[int]int{200: st1.get("up/valid")[200]}, st1.get("up/valid"), "all valid keys 200 while up")
	assert.Greater(t, st1.get("down/valid")[503], 0, "no 503 while PostgreSQL was away: the outage did not reach the store")
	for _, p := range []string{"up", "down", "back", "recovered"} {
		assert.Zero(t, st1.get(p + "/unknown")[200], "%s: an unknown key got 200", p)
		assert.Zero(t, st1.get(p + "/revoked")[200], "%s: a revoked key got 200", p)
		for code := range st1.get(p + "/valid") {
			assert.Contains(t, []int{200, 503}, code, "%s: a valid key got %d", p, code)
		}
		for code := range st1.get(p + "/unknown") {
			assert.Contains(t, []int{401, 503}, code, "%s: an unknown key got %d", p, code)
		}
	}
	assert.Equal(t, map[int]int{200: st1.get("recovered/valid")[200]}, st1.get("recovered/valid"), "all valid keys 200 after recovery")
}

// TestRedisOutage takes Redis away from a rate-limited service: by default
// requests fail closed with 503; with Limits.FailOpen they pass; and
// both recover when Redis returns.
func TestRedisOutage(t *testing.T) {
	client, px, prefix := redisBehindProxy(t, 300*time.Millisecond)
	key, closed, open := limitedServers(t, client, prefix, func(h http.Handler) http.Handler { return h })
	hc := &http.Client{Timeout: 10 * time.Second}

	assert.Equal(t, 200, get(t, hc, closed.URL, key))
	px.cut()
	assert.Equal(t, 503, get(t, hc, closed.URL, key), "fails closed by default")
	assert.Equal(t, 200, get(t, hc, open.URL, key), "fails open when told to")
	px.restore()
	assert.Eventually(t, func() bool { return get(t, hc, closed.URL, key) == 200 }, 10*time.Second, 50*time.Millisecond)
}

// limitedServers serves a no-op handler behind the middleware with a
// redislimit Limiter on client, failing closed and failing open, each
// wrapped by wrap, and returns a key limited to 1000 requests a second.
func limitedServers(t *testing.T, client *redis.Client, prefix string, wrap func(http.Handler) http.Handler) (key string, closed, open *httptest.Server) {
	t.Helper()
	limiter, err := redislimit.NewLimiter(client, redislimit.WithPrefix(prefix))
	require.NoError(t, err)
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", RateLimit: apikey.Limit{Rate: 1000, Period: time.Second}})
	require.NoError(t, err)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	closed = httptest.NewServer(wrap(m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter}))(noop)))
	t.Cleanup(closed.Close)
	open = httptest.NewServer(wrap(m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter, FailOpen: true}))(noop)))
	t.Cleanup(open.Close)
	return s.Reveal(), closed, open
}

// postgresBehindProxy returns a migrated Store on a schema of its own in
// APIKEY_TEST_POSTGRES, which it reaches through a proxy.
func postgresBehindProxy(t *testing.T) (*sqlstore.Store, *proxy) {
	t.Helper()
	pg := os.Getenv("APIKEY_TEST_POSTGRES")
	if pg == "" {
		t.Skip("APIKEY_TEST_POSTGRES is not set (.ci/run sets it): no PostgreSQL to take away")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", pg)
	require.NoError(t, err)
	schema := fmt.Sprintf("faults_%d", time.Now().UnixNano())
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})

	target := strings.TrimPrefix(pg, "postgres://")
	target = target[strings.Index(target, "@")+1:]
	target = target[:strings.IndexAny(target, "/?")]
	px := newProxy(t, target)
	dsn := strings.Replace(pg, target, px.addr(), 1)
	if strings.Contains(dsn, "?") {
		dsn += "&search_path=" + schema + "&connect_timeout=2"
	} else {
		dsn += "?search_path=" + schema + "&connect_timeout=2"
	}
	st, err := sqlopen.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.Migrate(ctx))
	return st, px
}

// redisBehindProxy returns a client of APIKEY_TEST_REDIS_E2E that reaches
// it through a proxy, with the given read timeout, short dial and write
// timeouts and no retries, and a key prefix of its own.
func redisBehindProxy(t *testing.T, readTimeout time.Duration) (*redis.Client, *proxy, string) {
	t.Helper()
	rd := os.Getenv("APIKEY_TEST_REDIS_E2E")
	if rd == "" {
		t.Skip("APIKEY_TEST_REDIS_E2E is not set (.ci/run sets it): no Redis to take away")
	}
	opt, err := redis.ParseURL(rd)
	require.NoError(t, err)
	px := newProxy(t, opt.Addr)
	opt.Addr = px.addr()
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 300*time.Millisecond, readTimeout, 300*time.Millisecond
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	return client, px, fmt.Sprintf("faults:%d:", time.Now().UnixNano())
}
