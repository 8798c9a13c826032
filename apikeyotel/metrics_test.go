package apikeyotel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeyotel"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var testPepper = []byte("test-pepper-0123456789abcdef0123")

// flakyStore is a Store whose Get fails while failing is set.
type flakyStore struct {
	apikey.Store
	failing bool
}

func (s *flakyStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	if s.failing {
		return nil, errors.New("connection refused")
	}
	return s.Store.Get(ctx, id)
}

type fixture struct {
	m      *apikey.Manager
	store  *flakyStore
	reader *sdkmetric.ManualReader
	a      *apikeyotel.Adapter
	srv    *httptest.Server
}

// newFixture serves through an adapter whose histogram is synchronous,
// or aggregated by a Producer registered with the reader if producer.
func newFixture(t *testing.T, producer bool) *fixture {
	t.Helper()
	f := &fixture{store: &flakyStore{Store: memstore.New()}}
	opts := []apikeyotel.Option{}
	if producer {
		p := apikeyotel.NewProducer()
		f.reader = sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
		opts = append(opts, apikeyotel.WithProducer(p))
	} else {
		f.reader = sdkmetric.NewManualReader()
	}
	var err error
	f.m, err = apikey.NewManager(f.store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	t.Cleanup(func() { f.m.Close() })
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	f.a, err = apikeyotel.New(f.m, append(opts, apikeyotel.WithMeterProvider(mp))...)
	require.NoError(t, err)
	t.Cleanup(func() { f.a.Close() })

	lim, err := memlimit.NewLimiter()
	require.NoError(t, err)
	t.Cleanup(func() { lim.Close() })
	cnt, err := memlimit.NewCounter()
	require.NoError(t, err)
	limits := apikey.Limits{Limiter: f.a.Limiter(lim), Counter: f.a.Counter(cnt)}
	auth := f.m.Middleware(append(f.a.MiddlewareOptions(), apikey.WithLimits(limits))...)
	mux := http.NewServeMux()
	mux.Handle("/orders", apikey.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	f.srv = httptest.NewServer(auth(apikeyotel.Handler(mux)))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, secret apikey.Secret) int {
	t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+path, nil)
	require.NoError(t, err)
	if !secret.IsZero() {
		req.Header.Set("Authorization", "Bearer "+secret.Reveal())
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(context.Background(), &rm))
	return rm
}

// value returns the int64 data point of the named metric whose
// attributes hold every one of attrs (a sum over several points).
func value(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
			for _, p := range points {
				if matches(p.Attributes, attrs) {
					total += p.Value
				}
			}
		}
	}
	return total
}

func matches(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// histogramCount returns how many values the named histogram recorded
// with attrs.
func histogramCount(rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) uint64 {
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, p := range h.DataPoints {
					if matches(p.Attributes, attrs) {
						n += p.Count
					}
				}
			}
		}
	}
	return n
}

func outcome(o apikey.Outcome, r apikey.Reason) []attribute.KeyValue {
	return []attribute.KeyValue{apikeyotel.KeyOutcome.String(string(o)), apikeyotel.KeyReason.String(string(r))}
}

func TestMetrics(t *testing.T) {
	t.Run("sync-histogram", func(t *testing.T) { testMetrics(t, false) })
	t.Run("producer", func(t *testing.T) { testMetrics(t, true) })
}

func testMetrics(t *testing.T, producer bool) {
	f := newFixture(t, producer)
	ctx := context.Background()
	reader, _ := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Scopes: []string{"orders:read"}}))
	other, _ := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme"}))
	limited, _ := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme", RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}}))
	quota, _ := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Quota: apikey.Quota{Limit: 1, Period: time.Hour}}))
	revoked, rk := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme"}))
	require.NoError(t, f.m.Revoke(ctx, rk.ID))
	stale, _ := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme"}))

	// The known mix.
	for range 3 {
		assert.Equal(t, 200, f.get(t, "/orders", reader))
	}
	assert.Equal(t, 403, f.get(t, "/orders", other))
	assert.Equal(t, 401, f.get(t, "/", apikey.Secret{}))
	assert.Equal(t, 401, f.get(t, "/", revoked))
	assert.Equal(t, 401, f.get(t, "/", apikey.NewSecret("acme_test_nonsense")))
	assert.Equal(t, 200, f.get(t, "/", limited))
	assert.Equal(t, 429, f.get(t, "/", limited))
	assert.Equal(t, 200, f.get(t, "/", quota))
	assert.Equal(t, 429, f.get(t, "/", quota))
	f.store.failing = true
	assert.Equal(t, 503, f.get(t, "/", stale))
	f.store.failing = false

	rm := f.collect(t)
	for _, c := range []struct {
		attrs []attribute.KeyValue
		want  int64
	}{
		{outcome(apikey.OutcomeAuthenticated, ""), 5},
		{outcome(apikey.OutcomeForbidden, apikey.ReasonInsufficientScope), 1},
		{outcome(apikey.OutcomeNoCredential, apikey.ReasonNoCredential), 1},
		{outcome(apikey.OutcomeInvalidKey, apikey.ReasonRevoked), 1},
		{outcome(apikey.OutcomeInvalidKey, apikey.ReasonMalformed), 1},
		{outcome(apikey.OutcomeLimited, apikey.ReasonRateLimit), 1},
		{outcome(apikey.OutcomeLimited, apikey.ReasonQuota), 1},
		{outcome(apikey.OutcomeUnavailable, apikey.ReasonStore), 1},
		{nil, 12},
	} {
		assert.Equal(t, c.want, value(rm, apikeyotel.MetricVerifications, c.attrs...), "%v", c.attrs)
	}
	assert.Equal(t, uint64(12), histogramCount(rm, apikeyotel.MetricDuration))
	assert.Equal(t, uint64(5), histogramCount(rm, apikeyotel.MetricDuration, apikeyotel.KeyOutcome.String("authenticated")))

	// The cache: the first use of each of the six keys, the revoked one
	// included, is a miss (the failing one too); every later use a hit.
	st := f.m.CacheStats()
	assert.Equal(t, int64(st.Hits), value(rm, apikeyotel.MetricCacheHits))
	assert.Equal(t, int64(st.Misses), value(rm, apikeyotel.MetricCacheMisses))
	assert.Equal(t, int64(6), value(rm, apikeyotel.MetricCacheMisses))
	assert.Equal(t, int64(4), value(rm, apikeyotel.MetricCacheHits))
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricStoreErrors))
	assert.Equal(t, int64(st.Entries), value(rm, apikeyotel.MetricCacheEntries, apikeyotel.KeyKind.String("key")))
	assert.Zero(t, value(rm, apikeyotel.MetricCacheEvicted))

	// The wrapped limiter and counter: only keys with limits ask them.
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricLimiter, apikeyotel.KeyPolicy.String("key"), apikeyotel.KeyDecision.String("allowed")))
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricLimiter, apikeyotel.KeyPolicy.String("key"), apikeyotel.KeyDecision.String("limited")))
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricQuota, apikeyotel.KeyDecision.String("allowed")))
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricQuota, apikeyotel.KeyDecision.String("limited")))

	// No attribute of any metric holds a key or a key ID.
	text := fmt.Sprintf("%+v", rm)
	for _, s := range []apikey.Secret{reader, other, limited, quota, revoked, stale} {
		tok, err := apikey.Parse(s.Reveal())
		require.NoError(t, err)
		assert.NotContains(t, text, tok.ID)
	}
	require.NoError(t, apikey.Scan(strings.NewReader(text), func(fd apikey.Finding) error {
		t.Errorf("a key in the metrics: %s", fd.ID)
		return nil
	}))
}

func TestMetricsNotifications(t *testing.T) {
	// Two Managers on one Watcher store: the adapter of one sees the
	// other's revocation arrive.
	ctx := context.Background()
	store := memstore.New()
	a, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer a.Close()
	b, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer b.Close()
	reader := sdkmetric.NewManualReader()
	adapter, err := apikeyotel.New(b, apikeyotel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	require.NoError(t, err)
	defer adapter.Close()
	notified := func() int64 {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(ctx, &rm))
		return value(rm, apikeyotel.MetricNotifications)
	}
	var k *apikey.Key
	// b may not be watching yet when the first key is issued: issue
	// until it hears of one.
	require.Eventually(t, func() bool {
		_, k, err = a.Issue(ctx, apikey.IssueRequest{Owner: "o"})
		require.NoError(t, err)
		return notified() >= 1
	}, time.Second, 10*time.Millisecond)
	n := notified()
	require.NoError(t, a.Revoke(ctx, k.ID))
	require.Eventually(t, func() bool { return notified() > n }, time.Second, time.Millisecond, "the revocation")
}

func TestCounterKeepsRefunder(t *testing.T) {
	f := newFixture(t, true)
	mc, err := memlimit.NewCounter()
	require.NoError(t, err)
	c := f.a.Counter(mc)
	_, ok := c.(apikey.Refunder)
	assert.True(t, ok, "a Refunder stays one")
	c = f.a.Counter(addOnly{})
	_, ok = c.(apikey.Refunder)
	assert.False(t, ok, "and a Counter that is not one does not become one")

	// A refusal by RequireScopes gives the quota back through the wrapper.
	ctx := context.Background()
	s, _ := must2(f.m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Quota: apikey.Quota{Limit: 1, Period: time.Hour}}))
	assert.Equal(t, 403, f.get(t, "/orders", s))
	assert.Equal(t, 200, f.get(t, "/", s), "the refused request cost no quota")
}

type addOnly struct{}

func (addOnly) Add(context.Context, string, apikey.Quota, int64) (apikey.Decision, error) {
	return apikey.Decision{Allowed: true}, nil
}

func TestNewRejects(t *testing.T) {
	_, err := apikeyotel.New(nil)
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	_, err = apikeyotel.New(m, nil)
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
	_, err = apikeyotel.New(m, apikeyotel.WithMeterProvider(nil))
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
	_, err = apikeyotel.New(m, apikeyotel.WithProducer(nil))
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func TestMetricsThresholds(t *testing.T) {
	// A crossing is counted in apikey.quota.thresholds, not as a request.
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	a, reader := producerAdapter(t, m)
	cnt, err := memlimit.NewCounter()
	require.NoError(t, err)
	defer cnt.Close()
	h := m.Middleware(append(a.MiddlewareOptions(), apikey.WithLimits(apikey.Limits{Counter: a.Counter(cnt)}),
		apikey.WithQuotaThresholds(0.5, 1))...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s, _ := must2(m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Quota: apikey.Quota{Limit: 4, Period: time.Hour}}))
	assert.Equal(t, []int{200, 200, 200, 200, 429}, statuses(h, s, 5))
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	assert.Equal(t, int64(2), value(rm, apikeyotel.MetricThresholds, apikeyotel.KeyPolicy.String("quota")), "50% and 100%")
	assert.Equal(t, int64(5), value(rm, apikeyotel.MetricVerifications), "one per request, crossings apart")
	assert.Equal(t, uint64(5), histogramCount(rm, apikeyotel.MetricDuration))
}

func TestMetricsCredits(t *testing.T) {
	// Credits: the Ledger's decisions in apikey.credits.decisions, the
	// refusal under its own reason, the crossings under the credits policy.
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	a, reader := producerAdapter(t, m)
	l, err := memlimit.NewLedger()
	require.NoError(t, err)
	defer l.Close()
	h := m.Middleware(append(a.MiddlewareOptions(), apikey.WithLimits(apikey.Limits{Ledger: a.Ledger(l)}),
		apikey.WithQuotaThresholds(0.5, 1))...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s, _ := must2(m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Credits: apikey.Credits{Grant: 2, Period: apikey.NoRefill}}))
	assert.Equal(t, []int{200, 200, 429}, statuses(h, s, 3))
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	assert.Equal(t, int64(2), value(rm, apikeyotel.MetricCredits, apikeyotel.KeyDecision.String("allowed")))
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricCredits, apikeyotel.KeyDecision.String("limited")))
	assert.Equal(t, int64(1), value(rm, apikeyotel.MetricVerifications,
		apikeyotel.KeyOutcome.String("limited"), apikeyotel.KeyReason.String("credits")))
	assert.Equal(t, int64(2), value(rm, apikeyotel.MetricThresholds, apikeyotel.KeyPolicy.String("credits")), "50% and 100%")
	assert.Equal(t, int64(0), value(rm, apikeyotel.MetricThresholds, apikeyotel.KeyPolicy.String("other")))
}

// statuses sends n requests with key s through h and returns their
// statuses.
func statuses(h http.Handler, s apikey.Secret, n int) []int {
	codes := make([]int, n)
	for i := range codes {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+s.Reveal())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes[i] = w.Code
	}
	return codes
}
