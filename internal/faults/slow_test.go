package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requestDeadline is the handler's own deadline in the slow-backend tests,
// and backendLatency how long the slow backend holds every answer.
const (
	requestDeadline = 300 * time.Millisecond
	backendLatency  = 3 * time.Second
)

// withDeadline gives every request a context that ends after d, as a
// service's own timeout middleware would.
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// timedGet returns the status of one request and how long it took.
func timedGet(t *testing.T, url, key string) (int, time.Duration) {
	start := time.Now()
	code := get(t, &http.Client{Timeout: 30 * time.Second}, url, key)
	return code, time.Since(start)
}

// TestSlowPostgres: when PostgreSQL answers only after seconds, a request
// that must reach it ends with 503 at its own deadline rather than when
// the database answers, a key that needs no store read (cached) is
// unaffected, and once the database is fast again it all works without a
// restart.
func TestSlowPostgres(t *testing.T) {
	ctx := context.Background()
	st, px := postgresBehindProxy(t)
	// The store's Watcher is hidden: a notification of the keys' creation
	// arriving late would drop the cached key this test relies on.
	m, err := apikey.NewManager(struct{ apikey.Store }{st}, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(1000, time.Hour), apikey.WithBackgroundErrors(func(error) {}))
	require.NoError(t, err)
	defer m.Close()
	cached, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	uncached, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	unknown, err := apikey.Generate("acme_live")
	require.NoError(t, err)

	srv := httptest.NewServer(withDeadline(requestDeadline, m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))
	defer srv.Close()
	code, _ := timedGet(t, srv.URL, cached.Reveal())
	require.Equal(t, 200, code)

	px.slow(backendLatency)
	for name, key := range map[string]string{"uncached valid key": uncached.Reveal(), "unknown key": unknown.Secret().Reveal()} {
		code, took := timedGet(t, srv.URL, key)
		assert.Equal(t, 503, code, "%s while PostgreSQL is slow: fail closed", name)
		assert.Less(t, took, requestDeadline+time.Second, "%s: the request's deadline was not honoured", name)
		t.Logf("%s: %d after %v", name, code, took.Round(time.Millisecond))
	}
	code, took := timedGet(t, srv.URL, cached.Reveal())
	assert.Equal(t, 200, code, "a cached key needs no store read")
	assert.Less(t, took, requestDeadline)

	px.slow(0)
	assert.Eventually(t, func() bool {
		code, _ := timedGet(t, srv.URL, uncached.Reveal())
		return code == 200
	}, 15*time.Second, 100*time.Millisecond, "no recovery once PostgreSQL is fast again")
	code, _ = timedGet(t, srv.URL, unknown.Secret().Reveal())
	assert.Equal(t, 401, code)
}

// TestSlowRedis: when Redis answers only after seconds, a rate-limited
// request ends with 503 at its own deadline (or fails open, when told to),
// and recovers once Redis is fast again.
func TestSlowRedis(t *testing.T) {
	// A read timeout longer than the latency, so that only the request's
	// deadline can end the wait.
	client, px, prefix := redisBehindProxy(t, 2*backendLatency)
	key, closed, open := limitedServers(t, client, prefix, func(h http.Handler) http.Handler {
		return withDeadline(requestDeadline, h)
	})

	code, _ := timedGet(t, closed.URL, key)
	require.Equal(t, 200, code)
	px.slow(backendLatency)
	code, took := timedGet(t, closed.URL, key)
	assert.Equal(t, 503, code, "fails closed by default")
	assert.Less(t, took, requestDeadline+time.Second, "the request's deadline was not honoured")
	t.Logf("fail closed: %d after %v", code, took.Round(time.Millisecond))
	code, took = timedGet(t, open.URL, key)
	assert.Equal(t, 200, code, "fails open when told to")
	assert.Less(t, took, requestDeadline+time.Second, "the request's deadline was not honoured")
	px.slow(0)
	assert.Eventually(t, func() bool {
		code, _ := timedGet(t, closed.URL, key)
		return code == 200
	}, 15*time.Second, 100*time.Millisecond, "no recovery once Redis is fast again")
}
