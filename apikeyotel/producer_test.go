package apikeyotel_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeyotel"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// producerFixture is an Adapter whose histogram a Producer, registered
// with a manual reader, aggregates.
func producerFixture(t *testing.T) (*apikeyotel.Adapter, *sdkmetric.ManualReader) {
	t.Helper()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return producerAdapter(t, m)
}

// producerAdapter returns an Adapter for m with a Producer, and the
// reader that collects both.
func producerAdapter(t *testing.T, m *apikey.Manager) (*apikeyotel.Adapter, *sdkmetric.ManualReader) {
	t.Helper()
	p := apikeyotel.NewProducer()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	a, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp), apikeyotel.WithProducer(p))
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a, reader
}

// durationPoints returns the histogram's data points by outcome.
func durationPoints(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.HistogramDataPoint[float64]{}
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != apikeyotel.MetricDuration {
				continue
			}
			n++
			assert.Equal(t, apikeyotel.ScopeName, sm.Scope.Name)
			assert.Equal(t, "s", m.Unit)
			h, ok := m.Data.(metricdata.Histogram[float64])
			require.True(t, ok, "%T", m.Data)
			assert.Equal(t, metricdata.CumulativeTemporality, h.Temporality)
			for _, p := range h.DataPoints {
				o, _ := p.Attributes.Value(apikeyotel.KeyOutcome)
				out[o.AsString()] = p
			}
		}
	}
	assert.LessOrEqual(t, n, 1, "the histogram is exported once")
	return out
}

func TestProducerBuckets(t *testing.T) {
	a, reader := producerFixture(t)
	assert.Empty(t, durationPoints(t, reader), "nothing recorded, no data point")

	ok := func(d time.Duration) apikey.Event {
		return apikey.Event{Outcome: apikey.OutcomeAuthenticated, Duration: d}
	}
	// The bounds are upper-inclusive, as OpenTelemetry's explicit
	// buckets are: 1µs is in the first bucket, 1µs+1ns in the second.
	for _, c := range []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0},
		{time.Microsecond, 0},
		{time.Microsecond + 1, 1},
		{2500 * time.Nanosecond, 1},
		{7 * time.Microsecond, 3},
		{3 * time.Millisecond, 11},
		{time.Second, 18},
		{time.Second + 1, 19},
		{time.Hour, 19},
	} {
		a.OnEvent(ok(c.d))
		p := durationPoints(t, reader)["authenticated"]
		require.Len(t, p.BucketCounts, len(p.Bounds)+1)
		assert.NotZero(t, p.BucketCounts[c.bucket], "%v in bucket %d (≤ %v)", c.d, c.bucket, p.Bounds[min(c.bucket, len(p.Bounds)-1)])
	}
	p := durationPoints(t, reader)["authenticated"]
	assert.Equal(t, []uint64{2, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2}, p.BucketCounts)
	assert.Equal(t, uint64(9), p.Count)
	assert.InDelta(t, (time.Microsecond + time.Microsecond + 1 + 2500 + 7*time.Microsecond + 3*time.Millisecond +
		time.Second + time.Second + 1 + time.Hour).Seconds(), p.Sum, 1e-9)
	mn, _ := p.Min.Value()
	mx, _ := p.Max.Value()
	assert.Equal(t, 0.0, mn)
	assert.Equal(t, 3600.0, mx)
	assert.Equal(t, 0.000001, p.Bounds[0])
	assert.Equal(t, 1.0, p.Bounds[len(p.Bounds)-1])

	// One data point per outcome, outcomes unknown to this package too.
	a.OnEvent(apikey.Event{Outcome: apikey.OutcomeInvalidKey, Reason: apikey.ReasonRevoked, Duration: 5 * time.Microsecond})
	a.OnEvent(apikey.Event{Outcome: "future", Reason: "new", Duration: 5 * time.Microsecond})
	pts := durationPoints(t, reader)
	assert.Len(t, pts, 3)
	assert.Equal(t, uint64(1), pts["invalid_key"].Count)
	assert.Equal(t, uint64(1), pts["future"].Count)
	assert.Equal(t, uint64(9), pts["authenticated"].Count, "cumulative: a collection resets nothing")
	mn, _ = pts["future"].Min.Value()
	assert.Equal(t, 5e-6, mn)
}

func TestProducerConcurrent(t *testing.T) {
	a, reader := producerFixture(t)
	const goroutines, each = 64, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				a.OnEvent(apikey.Event{Outcome: apikey.OutcomeAuthenticated, Duration: time.Duration(g*each+i) * time.Microsecond})
			}
		})
	}
	// Collections while the adds go on: every data point is whole.
	for range 20 {
		for _, p := range durationPoints(t, reader) {
			var n uint64
			for _, c := range p.BucketCounts {
				n += c
			}
			assert.Equal(t, p.Count, n)
			mn, _ := p.Min.Value()
			mx, _ := p.Max.Value()
			assert.LessOrEqual(t, mn, mx)
		}
	}
	wg.Wait()
	p := durationPoints(t, reader)["authenticated"]
	assert.Equal(t, uint64(goroutines*each), p.Count)
	total := goroutines * each
	assert.InDelta(t, float64(total-1)*float64(total)/2*1e-6, p.Sum, 1e-6)
	mn, _ := p.Min.Value()
	mx, _ := p.Max.Value()
	assert.Equal(t, 0.0, mn)
	assert.InDelta(t, float64(total-1)*1e-6, mx, 1e-12)
}

func TestProducerShared(t *testing.T) {
	// Two adapters, one Producer: their observations add up.
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	p := apikeyotel.NewProducer()
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(p))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	for range 2 {
		a, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(mp), apikeyotel.WithProducer(p))
		require.NoError(t, err)
		defer a.Close()
		a.OnEvent(apikey.Event{Outcome: apikey.OutcomeNoCredential, Reason: apikey.ReasonNoCredential})
	}
	assert.Equal(t, uint64(2), durationPoints(t, reader)["no_credential"].Count)
}

func TestOnEventAllocs(t *testing.T) {
	a, _ := producerFixture(t)
	ev := apikey.Event{Outcome: apikey.OutcomeAuthenticated, KeyID: "0123456789ab", Owner: "o", Duration: 800 * time.Nanosecond}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { a.OnEvent(ev) }))
}
