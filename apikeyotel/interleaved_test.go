package apikeyotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// BenchmarkAdapterCost runs the middleware without and with the adapter (its
// histogram aggregated by a Producer, as in the Prometheus example) in
// alternating batches of 128 requests, over many distinct keys, so that a
// change in the machine's load between the two hits both alike (the
// machine may be shared). It reports the median batch of each, per request
// (base-ns/req, otel-ns/req), the median difference between adjacent
// batches (added-ns/req), which is the adapter's cost, and the median
// ratio of adjacent batches (ratio); hook-ns/req is the
// part of it that a no-op apikey.WithOnEvent costs as well (the
// middleware building Events: clock readings, the client address), and
// adapter-ns/req the median difference between the adapter's batch and
// the no-op hook's, which is what the adapter's own code costs.
// sync-added-ns/req is added-ns/req for the adapter without a Producer.
func BenchmarkAdapterCost(b *testing.B) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(2*benchKeys, time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	reqs := make([]*http.Request, benchKeys)
	base := httptest.NewRequest(http.MethodGet, "/orders", nil)
	base.RemoteAddr = "198.51.100.7:40000"
	for i := range reqs {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o"})
		if err != nil {
			b.Fatal(err)
		}
		r := base.WithContext(base.Context())
		r.Header = http.Header{"Authorization": {"Bearer " + s.Reveal()}}
		reqs[i] = r
	}
	a, syncA := benchAdapters(b, m)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	plain := m.Middleware()(noop)
	otel := m.Middleware(a.MiddlewareOptions()...)(noop)
	hook := m.Middleware(apikey.WithOnEvent(func(apikey.Event) {}))(noop)
	otelSync := m.Middleware(syncA.MiddlewareOptions()...)(noop)
	w := &discardWriter{h: make(http.Header)}
	for _, r := range reqs {
		plain.ServeHTTP(w, r)
		otel.ServeHTTP(w, r)
		hook.ServeHTTP(w, r)
		otelSync.ServeHTTP(w, r)
	}
	const batch = 128
	i := 0
	run := func(h http.Handler) time.Duration {
		start := time.Now()
		for range batch {
			h.ServeHTTP(w, reqs[i%len(reqs)])
			i++
		}
		return time.Since(start)
	}
	var plainT, otelT, diff, ratio, hookDiff, ownDiff, syncDiff []float64
	for n := 0; b.Loop(); n++ {
		// Alternate which goes first, so that neither always follows
		// the other.
		var p, o, h, s time.Duration
		if n%2 == 0 {
			p, o, h, s = run(plain), run(otel), run(hook), run(otelSync)
		} else {
			s, h, o, p = run(otelSync), run(hook), run(otel), run(plain)
		}
		plainT = append(plainT, float64(p)/batch)
		otelT = append(otelT, float64(o)/batch)
		diff = append(diff, float64(o-p)/batch)
		ratio = append(ratio, float64(o)/float64(p))
		hookDiff = append(hookDiff, float64(h-p)/batch)
		ownDiff = append(ownDiff, float64(o-h)/batch)
		syncDiff = append(syncDiff, float64(s-p)/batch)
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(plainT), "base-ns/req")
	b.ReportMetric(median(otelT), "otel-ns/req")
	b.ReportMetric(median(diff), "added-ns/req")
	b.ReportMetric(median(ratio), "ratio")
	// The part of it that any event hook costs the middleware (clock
	// readings, the client address), with a hook that does nothing.
	b.ReportMetric(median(hookDiff), "hook-ns/req")
	// What the adapter itself adds over that no-op hook: its OnEvent.
	b.ReportMetric(median(ownDiff), "adapter-ns/req")
	// The adapter without a Producer, its histogram synchronous.
	b.ReportMetric(median(syncDiff), "sync-added-ns/req")
}
