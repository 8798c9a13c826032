package apikeyotel

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeykit/apikey"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A Producer exports the apikey.verification.duration histogram that the
// Adapters given it with WithProducer aggregate themselves, with atomic
// adds into fixed buckets, so that a request never calls the SDK's
// synchronous histogram. The OpenTelemetry API has no asynchronous
// histogram: a Producer is the SDK's way for a metric aggregated outside
// it to reach a reader. Register it with each reader that should export
// the histogram, when the reader is made:
//
//	p := apikeyotel.NewProducer()
//	exporter, err := otelprom.New(otelprom.WithProducer(p)) // or sdkmetric.NewPeriodicReader(exp, sdkmetric.WithProducer(p))
//	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
//	metrics, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp), apikeyotel.WithProducer(p))
//
// What the reader receives is one histogram with cumulative temporality
// (whatever temporality the reader asks of the SDK's own instruments),
// one data point per apikey.outcome, with the bounds of the adapter's
// buckets, the count, the sum and the minimum and maximum, in the
// adapter's instrumentation scope (ScopeName). The MeterProvider's Views
// do not apply to it. A collection reads the atomics one by one while
// requests go on adding to them: a data point's count is always the sum
// of its buckets, but its sum may include a request or two that its
// buckets do not yet.
//
// Several Adapters may share a Producer: their observations add up. A
// Producer is safe for concurrent use.
type Producer struct {
	start time.Time
	known map[apikey.Outcome]*histogram // every outcome the root package defines, built once
	other sync.Map                      // apikey.Outcome → *histogram, for outcomes added later
}

var _ sdkmetric.Producer = (*Producer)(nil)

// NewProducer returns a Producer with nothing recorded, whose cumulative
// data points start now.
func NewProducer() *Producer {
	p := &Producer{start: time.Now(), known: make(map[apikey.Outcome]*histogram, len(outcomes))}
	for _, oc := range outcomes {
		p.known[oc] = newHistogram(oc)
	}
	return p
}

// histogram returns the histogram of outcome oc, making it on first use.
func (p *Producer) histogram(oc apikey.Outcome) *histogram {
	if h, ok := p.known[oc]; ok {
		return h
	}
	v, _ := p.other.LoadOrStore(oc, newHistogram(oc))
	return v.(*histogram)
}

// Produce returns the histogram's data points, one for each outcome
// recorded at least once. It never fails.
func (p *Producer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	now := time.Now()
	var points []metricdata.HistogramDataPoint[float64]
	for _, oc := range outcomes {
		if dp, ok := p.known[oc].point(p.start, now); ok {
			points = append(points, dp)
		}
	}
	p.other.Range(func(_, v any) bool {
		if dp, ok := v.(*histogram).point(p.start, now); ok {
			points = append(points, dp)
		}
		return true
	})
	if len(points) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: ScopeName},
		Metrics: []metricdata.Metrics{{
			Name:        MetricDuration,
			Description: durationDescription,
			Unit:        "s",
			Data: metricdata.Histogram[float64]{
				Temporality: metricdata.CumulativeTemporality,
				DataPoints:  points,
			},
		}},
	}}, nil
}

const durationDescription = "Time the API key middleware took to decide on a request."

// durationBounds are durationBuckets as durations, for the search on the
// request path.
var durationBounds = func() []time.Duration {
	b := make([]time.Duration, len(durationBuckets))
	for i, s := range durationBuckets {
		b[i] = time.Duration(s*float64(time.Second) + 0.5)
	}
	return b
}()

// histogram aggregates the durations of one outcome. Bucket i counts the
// durations d with durationBounds[i-1] < d ≤ durationBounds[i], the last
// one those above every bound, as OpenTelemetry's explicit buckets do.
type histogram struct {
	attrs    attribute.Set
	counts   [len(durationBuckets) + 1]atomic.Uint64
	sum      atomic.Int64 // nanoseconds
	min, max atomic.Int64 // nanoseconds; valid once a count is not zero
}

func newHistogram(oc apikey.Outcome) *histogram {
	h := &histogram{attrs: attribute.NewSet(KeyOutcome.String(string(oc)))}
	h.min.Store(1<<63 - 1)
	h.max.Store(-1 << 63)
	return h
}

// observe records d with a few atomic adds; the minimum and maximum are
// written only when d is a new extreme.
//
// The bucket is counted last: a collection that sees the count sees the
// minimum, maximum and sum that include d.
func (h *histogram) observe(d time.Duration) {
	for v := h.min.Load(); int64(d) < v && !h.min.CompareAndSwap(v, int64(d)); v = h.min.Load() {
	}
	for v := h.max.Load(); int64(d) > v && !h.max.CompareAndSwap(v, int64(d)); v = h.max.Load() {
	}
	h.sum.Add(int64(d))
	i, _ := slices.BinarySearch(durationBounds, d)
	h.counts[i].Add(1)
}

// point returns the histogram's data point, or false if it has recorded
// nothing.
func (h *histogram) point(start, now time.Time) (metricdata.HistogramDataPoint[float64], bool) {
	counts := make([]uint64, len(h.counts))
	var n uint64
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return metricdata.HistogramDataPoint[float64]{}, false
	}
	return metricdata.HistogramDataPoint[float64]{
		Attributes:   h.attrs,
		StartTime:    start,
		Time:         now,
		Count:        n,
		Bounds:       slices.Clone(durationBuckets[:]),
		BucketCounts: counts,
		Min:          metricdata.NewExtrema(time.Duration(h.min.Load()).Seconds()),
		Max:          metricdata.NewExtrema(time.Duration(h.max.Load()).Seconds()),
		Sum:          time.Duration(h.sum.Load()).Seconds(),
	}, true
}
