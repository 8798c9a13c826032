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
	MetricCredits       = "apikey.credits.decisions"     // counter: decision
	MetricThresholds    = "apikey.quota.thresholds"      // counter: policy (quota, owner-quota, credits, owner-credits)
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
var durationBuckets = [...]float64{
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
//     middleware took to decide (Event.Duration), by apikey.outcome:
//     aggregated in the adapter with atomics and exported by the
//     Producer of WithProducer, or else recorded on a synchronous
//     histogram of the meter provider (see WithProducer for the cost);
//   - apikey.cache.hits, .misses, .evictions (apikey.cache.kind "key" or
//     "negative") and .entries, apikey.store.errors and
//     apikey.store.notifications (the changes, revocations among them,
//     that the Store's Watcher reported), observed from
//     Manager.CacheStats when the reader collects;
//   - apikey.limiter.decisions by apikey.limit.policy ("key", "owner",
//     "failed_auth") and apikey.limit.decision ("allowed", "limited",
//     "error"), and apikey.quota.decisions by apikey.limit.decision, for
//     the Limiter and Counter wrapped with Limiter and Counter, counted
//     with atomics and observed when the reader collects;
//   - apikey.credits.decisions by apikey.limit.decision, the same for
//     the Ledger wrapped with Ledger;
//   - apikey.quota.thresholds by apikey.limit.policy ("quota",
//     "owner-quota", "credits", "owner-credits", or "other" for a policy
//     added later), the crossings apikey.WithQuotaThresholds reports,
//     which are not requests and so are not in apikey.verifications.
//
// No attribute holds a key, a key ID or an owner: their number is not
// bounded. An Adapter is safe for concurrent use.
type Adapter struct {
	m            *apikey.Manager
	verified     metric.Int64ObservableCounter
	duration     metric.Float64Histogram // nil with a Producer
	producer     *Producer
	limiter      metric.Int64ObservableCounter
	quota        metric.Int64ObservableCounter
	registration metric.Registration

	// events holds the attribute set of every known (outcome, reason)
	// pair, built once and found by index (see index.go): recording an
	// Event then allocates nothing and hashes nothing.
	events  [len(outcomes)][len(reasons)]*eventAttrs
	unknown sync.Map // eventKey → *eventAttrs, for reasons added later

	thresholds   metric.Int64ObservableCounter
	crossings    [len(thresholdPolicies)]atomic.Int64
	crossingSets [len(thresholdPolicies)]metric.ObserveOption
	limits       [len(policies)][len(decisions)]atomic.Int64 // by policy, decision (see limits.go)
	limitSets    [len(policies)][len(decisions)]metric.ObserveOption
	quotas       [len(decisions)]atomic.Int64
	quotaSets    [len(decisions)]metric.ObserveOption // by decision: quotas' and spends'
	credits      metric.Int64ObservableCounter
	spends       [len(decisions)]atomic.Int64
}

type eventKey struct {
	outcome apikey.Outcome
	reason  apikey.Reason
}

// eventAttrs counts the Events of one (outcome, reason) pair, observed
// as apikey.verifications when the reader collects: an atomic add costs
// the request far less than a synchronous counter would. hist is the
// outcome's histogram in the Producer; without one, duration is the
// option of the synchronous histogram's records, a slice built once, so
// that a variadic call allocates nothing.
type eventAttrs struct {
	n        atomic.Int64
	set      metric.MeasurementOption // outcome and reason
	hist     *histogram
	duration []metric.RecordOption // outcome
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
	a := &Adapter{m: m, producer: o.producer}
	var errs []error
	record := func(err error) { errs = append(errs, err) }

	var err error
	a.verified, err = meter.Int64ObservableCounter(MetricVerifications, metric.WithUnit("{request}"),
		metric.WithDescription("Requests the API key middleware decided on, by outcome and reason."))
	record(err)
	if o.producer == nil {
		a.duration, err = meter.Float64Histogram(MetricDuration, metric.WithUnit("s"),
			metric.WithDescription(durationDescription),
			metric.WithExplicitBucketBoundaries(durationBuckets[:]...))
		record(err)
	}
	a.limiter, err = meter.Int64ObservableCounter(MetricLimiter, metric.WithUnit("{decision}"),
		metric.WithDescription("Rate limiter decisions, by policy and decision."))
	record(err)
	a.thresholds, err = meter.Int64ObservableCounter(MetricThresholds, metric.WithUnit("{crossing}"),
		metric.WithDescription("Quota thresholds crossed (apikey.WithQuotaThresholds), by policy."))
	record(err)
	a.quota, err = meter.Int64ObservableCounter(MetricQuota, metric.WithUnit("{decision}"),
		metric.WithDescription("Quota counter decisions, by decision."))
	record(err)
	a.credits, err = meter.Int64ObservableCounter(MetricCredits, metric.WithUnit("{decision}"),
		metric.WithDescription("Credit ledger decisions, by decision."))
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

	for i, oc := range outcomes {
		for j, r := range reasons {
			a.events[i][j] = a.newEventAttrs(oc, r)
		}
	}
	for p, policy := range policies {
		for d, decision := range decisions {
			a.limitSets[p][d] = metric.WithAttributeSet(attribute.NewSet(KeyPolicy.String(policy), KeyDecision.String(decision)))
		}
	}
	for d, decision := range decisions {
		a.quotaSets[d] = metric.WithAttributeSet(attribute.NewSet(KeyDecision.String(decision)))
	}
	for p, policy := range thresholdPolicies {
		a.crossingSets[p] = metric.WithAttributeSet(attribute.NewSet(KeyPolicy.String(policy)))
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
		for i := range a.events {
			for _, e := range a.events[i] {
				if n := e.n.Load(); n > 0 {
					obs.ObserveInt64(a.verified, n, e.set)
				}
			}
		}
		a.unknown.Range(func(_, v any) bool {
			e := v.(*eventAttrs)
			obs.ObserveInt64(a.verified, e.n.Load(), e.set)
			return true
		})
		for p := range a.limits {
			for d := range a.limits[p] {
				if n := a.limits[p][d].Load(); n > 0 {
					obs.ObserveInt64(a.limiter, n, a.limitSets[p][d])
				}
			}
		}
		for d := range a.quotas {
			if n := a.quotas[d].Load(); n > 0 {
				obs.ObserveInt64(a.quota, n, a.quotaSets[d])
			}
			if n := a.spends[d].Load(); n > 0 {
				obs.ObserveInt64(a.credits, n, a.quotaSets[d])
			}
		}
		for p := range a.crossings {
			if n := a.crossings[p].Load(); n > 0 {
				obs.ObserveInt64(a.thresholds, n, a.crossingSets[p])
			}
		}
		return nil
	}, a.verified, a.limiter, a.quota, a.credits, a.thresholds, hits, misses, evictions, entries, storeErrors, notifications)
	if err != nil {
		return nil, fmt.Errorf("apikeyotel: %w", err)
	}
	return a, nil
}

func (a *Adapter) newEventAttrs(oc apikey.Outcome, r apikey.Reason) *eventAttrs {
	e := &eventAttrs{set: metric.WithAttributeSet(attribute.NewSet(KeyOutcome.String(string(oc)), KeyReason.String(string(r))))}
	if a.producer != nil {
		e.hist = a.producer.histogram(oc)
	} else {
		e.duration = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(KeyOutcome.String(string(oc))))}
	}
	return e
}

// clamp converts a counter to the int64 OpenTelemetry observes.
func clamp(n uint64) int64 { return int64(min(n, 1<<63-1)) }

// OnEvent records ev: use it as apikey.WithOnEvent(a.OnEvent), or call it
// from a hook of your own that also logs. It allocates nothing for the
// outcomes and reasons this package knows. With a Producer it does only
// atomic adds.
//
// An Event of OutcomeQuotaThreshold, which is not a request's decision
// but a crossing reported beside it, is counted in apikey.quota.thresholds
// only.
func (a *Adapter) OnEvent(ev apikey.Event) {
	if ev.Outcome == apikey.OutcomeQuotaThreshold {
		a.crossings[thresholdPolicy(ev.Policy)].Add(1)
		return
	}
	var attrs *eventAttrs
	if i, j := outcomeIndex(ev.Outcome), reasonIndex(ev.Reason); i >= 0 && j >= 0 {
		attrs = a.events[i][j]
	} else {
		k := eventKey{ev.Outcome, ev.Reason}
		v, ok := a.unknown.Load(k)
		if !ok {
			v, _ = a.unknown.LoadOrStore(k, a.newEventAttrs(ev.Outcome, ev.Reason))
		}
		attrs = v.(*eventAttrs)
	}
	attrs.n.Add(1)
	if attrs.hist != nil {
		attrs.hist.observe(ev.Duration)
		return
	}
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

// Close stops observing the Manager's cache statistics and the counters
// fed by OnEvent, Limiter and Counter, which keep counting but are no
// longer exported. A Producer goes on exporting the histogram.
func (a *Adapter) Close() error { return a.registration.Unregister() }

// outcomes and reasons are the ones the root package defines, for the
// attribute sets built in advance, in the order of outcomeIndex and
// reasonIndex (index.go). OutcomeQuotaThreshold is not among them: it is
// counted apart, in apikey.quota.thresholds.
var (
	outcomes = [...]apikey.Outcome{
		apikey.OutcomeAuthenticated, apikey.OutcomeAnonymous, apikey.OutcomeNoCredential, apikey.OutcomeBadRequest,
		apikey.OutcomeInvalidKey, apikey.OutcomeForbidden, apikey.OutcomeLimited, apikey.OutcomeUnavailable,
	}
	reasons = [...]apikey.Reason{"",
		apikey.ReasonNoCredential, apikey.ReasonTwoCredentials, apikey.ReasonMalformedAuthorization,
		apikey.ReasonTooLong, apikey.ReasonMalformed, apikey.ReasonChecksum, apikey.ReasonWrongPrefix,
		apikey.ReasonInvalid, apikey.ReasonRevoked, apikey.ReasonExpired, apikey.ReasonSuspended,
		apikey.ReasonNotYetValid, apikey.ReasonIPNotAllowed, apikey.ReasonInsufficientScope,
		apikey.ReasonRateLimit, apikey.ReasonOwnerRateLimit, apikey.ReasonQuota, apikey.ReasonOwnerQuota,
		apikey.ReasonFailedAuthLimit, apikey.ReasonStore, apikey.ReasonLimiter, apikey.ReasonCanceled,
		apikey.ReasonLegacyBusy, apikey.ReasonPreflight, apikey.ReasonCredits, apikey.ReasonOwnerCredits,
	}
)
