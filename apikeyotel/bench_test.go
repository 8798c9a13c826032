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
	a, syncA := benchAdapters(b, m)
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
		// A hook that does nothing: what the middleware spends on Events.
		{"auth+hook", m.Middleware(apikey.WithOnEvent(func(apikey.Event) {}))(noop)},
		{"auth+span", spanned(m.Middleware()(noop))},
		{"auth+otel+span", spanned(m.Middleware(a.MiddlewareOptions()...)(apikeyotel.Handler(noop)))},
		// The adapter without a Producer: its histogram is the SDK's
		// synchronous one.
		{"auth+otel-sync", m.Middleware(syncA.MiddlewareOptions()...)(noop)},
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

// BenchmarkOnEvent measures OnEvent alone on a real SDK meter provider:
// "producer" adds to atomics only, "sync-histogram" records on the SDK's
// synchronous histogram. The Events' durations vary as a cache hit's and
// a miss's do, so that the bucket search cannot be predicted.
func BenchmarkOnEvent(b *testing.B) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	a, syncA := benchAdapters(b, m)
	events := make([]apikey.Event, 1024)
	for i := range events {
		d := time.Duration(500 + rand.IntN(4000)) // a cache hit: 0.5-4.5 µs
		if i%8 == 0 {
			d = time.Duration(rand.Int64N(int64(20 * time.Millisecond))) // a miss, up to 20 ms
		}
		events[i] = apikey.Event{Outcome: apikey.OutcomeAuthenticated, KeyID: "0123456789ab", Owner: "o", Duration: d}
	}
	for _, c := range []struct {
		name string
		a    *apikeyotel.Adapter
	}{{"producer", a}, {"sync-histogram", syncA}} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.a.OnEvent(events[i%len(events)])
				i++
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(events))
				for pb.Next() {
					c.a.OnEvent(events[i%len(events)])
					i++
				}
			})
		})
	}
}

// benchAdapters returns two adapters for m on real SDK meter providers:
// one with a Producer registered with its reader, as the Prometheus
// example has, and one without, whose histogram is synchronous.
func benchAdapters(b *testing.B, m *apikey.Manager) (producer, sync *apikeyotel.Adapter) {
	p := apikeyotel.NewProducer()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(sdkmetric.WithProducer(p))))
	b.Cleanup(func() { mp.Shutdown(context.Background()) })
	producer, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp), apikeyotel.WithProducer(p))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { producer.Close() })
	smp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { smp.Shutdown(context.Background()) })
	sync, err = apikeyotel.New(m, apikeyotel.WithMeterProvider(smp))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sync.Close() })
	return producer, sync
}
