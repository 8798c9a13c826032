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
