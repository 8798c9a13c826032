package apikeyotel

import (
	"fmt"

	"github.com/apikeykit/apikey"
	"go.opentelemetry.io/otel/metric"
)

// An Option configures New.
type Option func(*options) error

type options struct {
	provider metric.MeterProvider
	producer *Producer
}

// WithMeterProvider creates the adapter's instruments on mp rather than
// on otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) error {
		if mp == nil {
			return fmt.Errorf("%w: apikeyotel: WithMeterProvider(nil)", apikey.ErrInvalidRequest)
		}
		o.provider = mp
		return nil
	}
}

// WithProducer aggregates the apikey.verification.duration histogram in
// the adapter, into the buckets of p, which the readers p is registered
// with export (see Producer). A request then costs the adapter only
// atomic adds. Without it, New creates the histogram on the meter
// provider and every request records on it synchronously, which costs
// the request about ten times as much (see BENCHMARKS.md), but needs
// nothing from the reader and honours the provider's Views.
func WithProducer(p *Producer) Option {
	return func(o *options) error {
		if p == nil {
			return fmt.Errorf("%w: apikeyotel: WithProducer(nil)", apikey.ErrInvalidRequest)
		}
		o.producer = p
		return nil
	}
}
