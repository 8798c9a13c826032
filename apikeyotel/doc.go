// Package apikeyotel exports what apikey's Manager and middleware do as
// OpenTelemetry metrics, and annotates the request's span with the key
// that authenticated it or the refusal.
//
//	metrics, err := apikeyotel.New(m) // otel.GetMeterProvider(), or WithMeterProvider
//	auth := m.Middleware(metrics.MiddlewareOptions()...)
//	http.Handle("/", auth(apikeyotel.Handler(mux)))
//
// MiddlewareOptions feeds every request's apikey.Event to OnEvent (a
// counter by outcome and reason, and a histogram of the time taken to
// decide) and wraps the error handler so that refusals are recorded on
// the span; Handler records the key (kid and owner) on the span of each
// request let through.
//
// # Cost on the request path
//
// A request costs the adapter a few atomic adds and no allocation: every
// counter is an observable (asynchronous) instrument read from atomics
// when the reader collects, with its attribute sets built in New. The
// OpenTelemetry API has no asynchronous histogram, so the latency
// histogram is aggregated by the adapter itself, in fixed buckets, and
// reaches the reader through a Producer, the SDK's interface for metrics
// aggregated outside it:
//
//	p := apikeyotel.NewProducer()
//	exporter, err := otelprom.New(otelprom.WithProducer(p))
//	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
//	metrics, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp), apikeyotel.WithProducer(p))
//
// The trade-off: the Producer must be registered with each reader when
// the reader is made, it works only with the SDK's readers (not with
// another implementation of the API), its histogram is always cumulative
// and the MeterProvider's Views do not apply to it. Without WithProducer
// the histogram is the SDK's synchronous one, which honours Views and
// temporality and needs nothing from the reader, but whose Record costs
// the request several times what the rest of the adapter does (see
// BENCHMARKS.md).
//
// Spans cost only when the request's span is recording: then Handler
// (or AnnotateKey) sets three attributes and adds one event, and
// ErrorHandler (or AnnotateRefusal) three or four, which the SDK copies
// and allocates for. A span that is not recording costs a type assertion. New also observes Manager.CacheStats (hits,
// misses, evictions, entries, store errors, change notifications) when
// the reader collects. Wrap the Limits' Limiter, Counter and Ledger with
// Adapter.Limiter, Adapter.Counter and Adapter.Ledger to count their
// decisions.
//
// For gRPC, pass apikeygrpc.WithOnEvent(metrics.OnEvent)
// and apikeygrpc.WithOnRefusal(apikeyotel.AnnotateRefusal) to NewInterceptor,
// and call AnnotateKey from a handler or an interceptor after apikeygrpc's.
//
// No metric attribute holds a key ID or an owner, whose number has no
// bound; spans hold the kid and owner, never a secret.
//
// This package is a module of its own, so that go.opentelemetry.io is a
// dependency only of programs that import it. See example/prometheus for
// a server that exports these metrics to Prometheus.
package apikeyotel
