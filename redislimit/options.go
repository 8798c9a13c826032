package redislimit

// A LimiterOption configures NewLimiter.
type LimiterOption interface {
	applyLimiter(*config) error
}

// A CounterOption configures NewCounter.
type CounterOption interface {
	applyCounter(*config) error
}

// An Option configures both NewLimiter and NewCounter.
type Option interface {
	LimiterOption
	CounterOption
}

type config struct {
	prefix string
}

// bothOption sets what a Limiter and a Counter have in common.
type bothOption func(*config) error

func (o bothOption) applyLimiter(c *config) error { return o(c) }
func (o bothOption) applyCounter(c *config) error { return o(c) }

// WithPrefix sets the prefix of the Redis keys (default
// DefaultLimiterPrefix for a Limiter, DefaultCounterPrefix for a Counter).
// Use distinct prefixes for distinct applications sharing a Redis. It may
// be empty.
func WithPrefix(prefix string) Option {
	return bothOption(func(c *config) error {
		c.prefix = prefix
		return nil
	})
}
