package apikeyotel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apikeykit/apikey"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the adapter's meter.
const ScopeName = "github.com/apikeykit/apikey/apikeyotel"

// Metric names. Exported through Prometheus they become apikey_…_total
// for counters and apikey_…_seconds for the histogram.
const (
	MetricVerifications = "apikey.verifications"         // counter: outcome, reason
	MetricDuration      = "apikey.verification.duration" // histogram, seconds: outcome
	MetricCacheHits     = "apikey.cache.hits"            // observable counter
	MetricCacheMisses   = "apikey.cache.misses"          // observable counter
	MetricCacheEvicted  = "apikey.cache.evictions"       // observable counter: kind (key, negative)
	MetricCacheEntries  = "apikey.cache.entries"         // observable gauge: kind
	MetricStoreErrors   = "apikey.store.errors"          // observable counter
	MetricNotifications = "apikey.store.notifications"   // observable counter
	MetricLimiter       = "apikey.limiter.decisions"     // counter: policy, decision
	MetricQuota         = "apikey.quota.decisions"       // counter: decision
)

// Attribute keys on metrics and spans.
const (
	KeyOutcome  = attribute.Key("apikey.outcome")
	KeyReason   = attribute.Key("apikey.reason")
	KeyKind     = attribute.Key("apikey.cache.kind")
	KeyPolicy   = attribute.Key("apikey.limit.policy")
	KeyDecision = attribute.Key("apikey.limit.decision")
	KeyKeyID    = attribute.Key("apikey.key_id")
	KeyOwner    = attribute.Key("apikey.owner")
	KeyStatus   = attribute.Key("apikey.status")
)

// durationBuckets are the histogram's bounds in seconds: a cache hit takes
// microseconds, a store lookup milliseconds.
var durationBuckets = []float64{
	0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

// Adapter turns what a Manager and its middleware do into OpenTelemetry
// metrics, and annotates the request's span (see ErrorHandler, Handler).
//
// Its metrics are
//
//   - apikey.verifications, a counter of the middleware's Events by
//     apikey.outcome and apikey.reason, one per request, counted with
//     atomics and observed when the reader collects;
//   - apikey.verification.duration, a histogram of the time the
//     middleware took to decide (Event.Duration), by apikey.outcome;
//   - apikey.cache.hits, .misses, .evictions (apikey.cache.kind "key" or
//     "negative") and .entries, apikey.store.errors and
//     apikey.store.notifications (the changes, revocations among them,
//     that the Store's Watcher reported), observed from
//     Manager.CacheStats when the reader collects;
//   - apikey.limiter.decisions by apikey.limit.policy ("key", "owner",
//     "failed_auth") and apikey.limit.decision ("allowed", "limited",
//     "error"), and apikey.quota.decisions by apikey.limit.decision, for
//     the Limiter and Counter wrapped with Limiter and Counter.
//
// No attribute holds a key, a key ID or an owner: their number is not
// bounded. An Adapter is safe for concurrent use.
type Adapter struct {
	m            *apikey.Manager
	verified     metric.Int64ObservableCounter
	duration     metric.Float64Histogram
	limiter      metric.Int64Counter
	quota        metric.Int64Counter
	registration metric.Registration

	// events holds the attribute set of every known (outcome, reason)
	// pair, built once: recording an Event then allocates nothing.
	events  map[eventKey]*eventAttrs
	unknown sync.Map // eventKey → *eventAttrs, for reasons added later

	limitSets [3][3][]metric.AddOption // by policy, decision (see limits.go)
	quotaSets [3][]metric.AddOption    // by decision
}

type eventKey struct {
	outcome apikey.Outcome
	reason  apikey.Reason
}

// eventAttrs counts the Events of one (outcome, reason) pair, observed
// as apikey.verifications when the reader collects: an atomic add costs
// the request far less than a synchronous counter would. duration is the
// option of its histogram records, a slice built once, so that a variadic
// call allocates nothing.
type eventAttrs struct {
	n        atomic.Int64
	set      metric.MeasurementOption // outcome and reason
	duration []metric.RecordOption    // outcome
}

// New returns an Adapter for m, with its instruments created on the
// meter provider of WithMeterProvider, or otel.GetMeterProvider(). Its
// observable instruments read m.CacheStats until Close.
func New(m *apikey.Manager, opts ...Option) (*Adapter, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: apikeyotel: nil Manager", apikey.ErrInvalidRequest)
	}
	var o options
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: apikeyotel: nil option", apikey.ErrInvalidRequest)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.provider == nil {
		o.provider = otel.GetMeterProvider()
	}
	meter := o.provider.Meter(ScopeName)
	a := &Adapter{m: m}
	var errs []error
	record := func(err error) { errs = append(errs, err) }

	var err error
	a.verified, err = meter.Int64ObservableCounter(MetricVerifications, metric.WithUnit("{request}"),
		metric.WithDescription("Requests the API key middleware decided on, by outcome and reason."))
	record(err)
	a.duration, err = meter.Float64Histogram(MetricDuration, metric.WithUnit("s"),
		metric.WithDescription("Time the API key middleware took to decide on a request."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	record(err)
	a.limiter, err = meter.Int64Counter(MetricLimiter, metric.WithUnit("{decision}"),
		metric.WithDescription("Rate limiter decisions, by policy and decision."))
	record(err)
	a.quota, err = meter.Int64Counter(MetricQuota, metric.WithUnit("{decision}"),
		metric.WithDescription("Quota counter decisions, by decision."))
	record(err)

	hits, err := meter.Int64ObservableCounter(MetricCacheHits, metric.WithUnit("{lookup}"),
		metric.WithDescription("Key lookups the verification cache answered."))
	record(err)
	misses, err := meter.Int64ObservableCounter(MetricCacheMisses, metric.WithUnit("{lookup}"),
		metric.WithDescription("Key lookups that went to the Store."))
	record(err)
	evictions, err := meter.Int64ObservableCounter(MetricCacheEvicted, metric.WithUnit("{entry}"),
		metric.WithDescription("Cache entries dropped to make room, by kind (key, negative)."))
	record(err)
	entries, err := meter.Int64ObservableGauge(MetricCacheEntries, metric.WithUnit("{entry}"),
		metric.WithDescription("Entries in the verification cache, by kind (key, negative)."))
	record(err)
	storeErrors, err := meter.Int64ObservableCounter(MetricStoreErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Store lookups that failed."))
	record(err)
	notifications, err := meter.Int64ObservableCounter(MetricNotifications, metric.WithUnit("{notification}"),
		metric.WithDescription("Changes to keys (revocations among them) that the Store reported from other processes."))
	record(err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("apikeyotel: %w", err)
	}

	a.events = make(map[eventKey]*eventAttrs, len(outcomes)*len(reasons))
	for _, oc := range outcomes {
		for _, r := range reasons {
			a.events[eventKey{oc, r}] = newEventAttrs(oc, r)
		}
	}
	key := metric.WithAttributeSet(attribute.NewSet(KeyKind.String("key")))
	negative := metric.WithAttributeSet(attribute.NewSet(KeyKind.String("negative")))
	a.registration, err = meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		st := m.CacheStats()
		obs.ObserveInt64(hits, clamp(st.Hits))
		obs.ObserveInt64(misses, clamp(st.Misses))
		obs.ObserveInt64(evictions, clamp(st.Evictions), key)
		obs.ObserveInt64(evictions, clamp(st.NegativeEvictions), negative)
		obs.ObserveInt64(entries, int64(st.Entries), key)
		obs.ObserveInt64(entries, int64(st.NegativeEntries), negative)
		obs.ObserveInt64(storeErrors, clamp(st.StoreErrors))
		obs.ObserveInt64(notifications, clamp(st.Notifications))
		for _, e := range a.events {
			if n := e.n.Load(); n > 0 {
				obs.ObserveInt64(a.verified, n, e.set)
			}
		}
		a.unknown.Range(func(_, v any) bool {
			e := v.(*eventAttrs)
			obs.ObserveInt64(a.verified, e.n.Load(), e.set)
			return true
		})
		return nil
	}, a.verified, hits, misses, evictions, entries, storeErrors, notifications)
	if err != nil {
		return nil, fmt.Errorf("apikeyotel: %w", err)
	}

	for p, policy := range policies {
		for d, decision := range decisions {
			a.limitSets[p][d] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(KeyPolicy.String(policy), KeyDecision.String(decision)))}
		}
	}
	for d, decision := range decisions {
		a.quotaSets[d] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(KeyDecision.String(decision)))}
	}
	return a, nil
}

func newEventAttrs(oc apikey.Outcome, r apikey.Reason) *eventAttrs {
	return &eventAttrs{
		set:      metric.WithAttributeSet(attribute.NewSet(KeyOutcome.String(string(oc)), KeyReason.String(string(r)))),
		duration: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(KeyOutcome.String(string(oc))))},
	}
}

// clamp converts a counter to the int64 OpenTelemetry observes.
func clamp(n uint64) int64 { return int64(min(n, 1<<63-1)) }

// OnEvent records ev: use it as apikey.WithOnEvent(a.OnEvent), or call it
// from a hook of your own that also logs. It allocates nothing for the
// outcomes and reasons this package knows.
func (a *Adapter) OnEvent(ev apikey.Event) {
	k := eventKey{ev.Outcome, ev.Reason}
	attrs, ok := a.events[k]
	if !ok {
		v, _ := a.unknown.LoadOrStore(k, newEventAttrs(ev.Outcome, ev.Reason))
		attrs = v.(*eventAttrs)
	}
	attrs.n.Add(1)
	a.duration.Record(context.Background(), ev.Duration.Seconds(), attrs.duration...)
}

// MiddlewareOptions returns the options that connect a middleware to the
// adapter: apikey.WithOnEvent(a.OnEvent), and apikey.WithErrorHandler
// with ErrorHandler(apikey.WriteProblem), which annotates the span of
// each refused request. A later WithErrorHandler or WithOnEvent replaces
// them; wrap your own error handler with ErrorHandler instead.
func (a *Adapter) MiddlewareOptions() []apikey.MiddlewareOption {
	return []apikey.MiddlewareOption{apikey.WithOnEvent(a.OnEvent), apikey.WithErrorHandler(ErrorHandler(apikey.WriteProblem))}
}

// Close stops observing the Manager's cache statistics. The counters
// fed by OnEvent, Limiter and Counter keep working.
func (a *Adapter) Close() error { return a.registration.Unregister() }

// outcomes and reasons are the ones the root package defines, for the
// attribute sets built in advance.
var (
	outcomes = []apikey.Outcome{
		apikey.OutcomeAuthenticated, apikey.OutcomeAnonymous, apikey.OutcomeNoCredential, apikey.OutcomeBadRequest,
		apikey.OutcomeInvalidKey, apikey.OutcomeForbidden, apikey.OutcomeLimited, apikey.OutcomeUnavailable,
	}
	reasons = []apikey.Reason{"",
		apikey.ReasonNoCredential, apikey.ReasonTwoCredentials, apikey.ReasonMalformedAuthorization,
		apikey.ReasonTooLong, apikey.ReasonMalformed, apikey.ReasonChecksum, apikey.ReasonWrongPrefix,
		apikey.ReasonInvalid, apikey.ReasonRevoked, apikey.ReasonExpired, apikey.ReasonSuspended,
		apikey.ReasonNotYetValid, apikey.ReasonIPNotAllowed, apikey.ReasonInsufficientScope,
		apikey.ReasonRateLimit, apikey.ReasonOwnerRateLimit, apikey.ReasonQuota, apikey.ReasonFailedAuthLimit,
		apikey.ReasonStore, apikey.ReasonLimiter, apikey.ReasonCanceled, apikey.ReasonPreflight,
	}
)
