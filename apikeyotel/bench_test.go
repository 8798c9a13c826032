package apikeyotel_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeyotel"
	"github.com/apikeykit/apikey/memstore"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const benchKeys = 10_000

// discardWriter is a resettable http.ResponseWriter that keeps nothing.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkMiddleware measures a request through the middleware to a
// no-op handler over many distinct keys on a warm cache: "auth" without
// the adapter, "auth+otel" with its MiddlewareOptions on a real SDK meter
// provider, "auth+otel+span" also with Handler and a recording span
// around the request (its baseline is "auth+span", the same span without
// the adapter). The only change between a case and its baseline is the
// adapter: report the difference, and the ratio, from one run.
func BenchmarkMiddleware(b *testing.B) {
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
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", Scopes: []string{"orders:read"}})
		if err != nil {
			b.Fatal(err)
		}
		r := base.WithContext(base.Context())
		r.Header = http.Header{"Authorization": {"Bearer " + s.Reveal()}}
		reqs[i] = r
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	a, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())).Tracer("bench")
	spanned := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := tracer.Start(r.Context(), "request")
			h.ServeHTTP(w, r.WithContext(ctx))
			span.End()
		})
	}

	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	cases := []struct {
		name string
		h    http.Handler
	}{
		{"auth", m.Middleware()(noop)},
		{"auth+otel", m.Middleware(a.MiddlewareOptions()...)(noop)},
		{"auth+span", spanned(m.Middleware()(noop))},
		{"auth+otel+span", spanned(m.Middleware(a.MiddlewareOptions()...)(apikeyotel.Handler(noop)))},
	}
	for _, c := range cases {
		w := &discardWriter{h: make(http.Header)}
		for _, r := range reqs {
			c.h.ServeHTTP(w, r)
			if w.code != 0 {
				b.Fatalf("%s: status %d", c.name, w.code)
			}
		}
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{h: make(http.Header)}
			i := 0
			for b.Loop() {
				c.h.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: make(http.Header)}
				i := rand.IntN(len(reqs))
				for pb.Next() {
					c.h.ServeHTTP(w, reqs[i%len(reqs)])
					i++
				}
			})
		})
	}
}

// BenchmarkOnEvent measures OnEvent alone: one counter add and one
// histogram record on a real SDK meter provider.
func BenchmarkOnEvent(b *testing.B) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	a, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ev := apikey.Event{Outcome: apikey.OutcomeAuthenticated, KeyID: "0123456789ab", Owner: "o", Duration: 800 * time.Nanosecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.OnEvent(ev)
		}
	})
}
