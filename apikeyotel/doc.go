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
// request let through. New also observes Manager.CacheStats (hits,
// misses, evictions, entries, store errors, change notifications) when
// the reader collects. Wrap the Limits' Limiter and Counter with
// Adapter.Limiter and Adapter.Counter to count their decisions.
//
// For gRPC, pass apikeygrpc.WithMiddlewareOptions(apikey.WithOnEvent(metrics.OnEvent))
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
