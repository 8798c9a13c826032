package memlimit

import (
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
)

// A LimiterOption configures NewLimiter.
type LimiterOption interface {
	applyLimiter(*limiterConfig) error
}

// A CounterOption configures NewCounter.
type CounterOption interface {
	applyCounter(*counterConfig) error
}

// A LedgerOption configures NewLedger.
type LedgerOption interface {
	applyLedger(*ledgerConfig) error
}

// An Option configures NewLimiter, NewCounter and NewLedger.
type Option interface {
	LimiterOption
	CounterOption
	LedgerOption
}

// config is what a Limiter and a Counter have in common.
type config struct {
	now   func() time.Time
	sweep time.Duration
}

type limiterConfig struct {
	config
	maxKeys int
}

type counterConfig struct {
	config
}

type ledgerConfig struct {
	config
}

// bothOption sets what a Limiter, a Counter and a Ledger have in common.
type bothOption func(*config) error

func (o bothOption) applyLimiter(c *limiterConfig) error { return o(&c.config) }
func (o bothOption) applyCounter(c *counterConfig) error { return o(&c.config) }
func (o bothOption) applyLedger(c *ledgerConfig) error   { return o(&c.config) }

type limiterOption func(*limiterConfig) error

func (o limiterOption) applyLimiter(c *limiterConfig) error { return o(c) }

// WithClock sets the clock that Allow, Add and Spend read, and that the sweeper
// uses (default time.Now). Tests pass a fake clock so that they need not
// sleep. now must be safe for concurrent use.
func WithClock(now func() time.Time) Option {
	return bothOption(func(c *config) error {
		if now == nil {
			return fmt.Errorf("%w: memlimit: WithClock(nil)", apikey.ErrInvalidRequest)
		}
		c.now = now
		return nil
	})
}

// WithSweepInterval sets how long the background sweeper takes to visit
// every key once (default DefaultSweepInterval). A key is forgotten at most
// this long after its state is back to that of a key never seen: a full
// bucket, or an ended window. The sweeper visits at most one of its 256
// shards per millisecond, so a round takes at least 256ms. d must be
// positive.
func WithSweepInterval(d time.Duration) Option {
	return bothOption(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: memlimit: WithSweepInterval(%v): want > 0", apikey.ErrInvalidRequest, d)
		}
		c.sweep = d
		return nil
	})
}

// WithMaxKeys bounds the number of keys a Limiter tracks at once to about
// n, but never below one per shard, 256 in all (default: no bound beyond
// the sweeper's). When a shard is full, a new key displaces the sampled
// key whose bucket is closest to full; that key then starts over with a
// full bucket, so it may get a few more requests than its limit allows.
// Set n well above the number of keys active within a bucket's refill
// time. n must not be negative; 0 means no bound.
func WithMaxKeys(n int) LimiterOption {
	return limiterOption(func(c *limiterConfig) error {
		if n < 0 {
			return fmt.Errorf("%w: memlimit: WithMaxKeys(%d): negative", apikey.ErrInvalidRequest, n)
		}
		c.maxKeys = n
		return nil
	})
}
