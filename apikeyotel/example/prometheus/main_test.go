package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScrape sends a known mix of requests, scrapes /metrics over HTTP as
// Prometheus does, and checks the counters.
func TestScrape(t *testing.T) {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", []byte("test-pepper-0123456789abcdef0123")))
	require.NoError(t, err)
	defer m.Close()
	handler, shutdown, err := newServer(m, prometheus.NewRegistry())
	require.NoError(t, err)
	defer shutdown(ctx)
	srv := httptest.NewServer(handler)
	defer srv.Close()

	reader, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Scopes: []string{"orders:read"}})
	require.NoError(t, err)
	plain, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "acme"})
	require.NoError(t, err)
	revoked, rk, err := m.Issue(ctx, apikey.IssueRequest{Owner: "acme"})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, rk.ID))

	get := func(path string, s apikey.Secret) int {
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		require.NoError(t, err)
		if !s.IsZero() {
			req.Header.Set("X-API-Key", s.Reveal())
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 4 {
		assert.Equal(t, 200, get("/v1/orders", reader))
	}
	assert.Equal(t, 200, get("/v1/whoami", plain))
	assert.Equal(t, 403, get("/v1/orders", plain))
	assert.Equal(t, 401, get("/v1/whoami", revoked))
	assert.Equal(t, 401, get("/v1/whoami", revoked))
	assert.Equal(t, 401, get("/v1/whoami", apikey.Secret{}))

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, apikey.Scan(strings.NewReader(string(body)), func(f apikey.Finding) error {
		t.Errorf("a key in /metrics: %s", f.ID)
		return nil
	}))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)

	counter := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		require.True(t, ok, "no %s in /metrics; have %v", name, keys(families))
		total := 0.0
		for _, mt := range f.Metric {
			if hasLabels(mt, labels) {
				switch {
				case mt.Counter != nil:
					total += mt.Counter.GetValue()
				case mt.Gauge != nil:
					total += mt.Gauge.GetValue()
				case mt.Histogram != nil:
					total += float64(mt.Histogram.GetSampleCount())
				}
			}
		}
		return total
	}
	v := "apikey_verifications_total"
	assert.Equal(t, 5.0, counter(v, map[string]string{"apikey_outcome": "authenticated"}))
	assert.Equal(t, 1.0, counter(v, map[string]string{"apikey_outcome": "forbidden", "apikey_reason": "insufficient_scope"}))
	assert.Equal(t, 2.0, counter(v, map[string]string{"apikey_outcome": "invalid_key", "apikey_reason": "revoked"}))
	assert.Equal(t, 1.0, counter(v, map[string]string{"apikey_outcome": "no_credential"}))
	assert.Equal(t, 9.0, counter(v, nil))
	assert.Equal(t, 9.0, counter("apikey_verification_duration_seconds", nil), "one observation per request")
	// Three keys: three misses, then six hits.
	assert.Equal(t, 3.0, counter("apikey_cache_misses_total", nil))
	assert.Equal(t, 5.0, counter("apikey_cache_hits_total", nil))
	assert.Equal(t, 0.0, counter("apikey_store_errors_total", nil))
	assert.Equal(t, 3.0, counter("apikey_cache_entries", map[string]string{"apikey_cache_kind": "key"}))
}

func hasLabels(mt *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range mt.Label {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
