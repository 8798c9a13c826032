package apikey

import (
	"context"
	"fmt"
	"time"
)

// Limit is a token-bucket rate limit: Rate requests per Period on average,
// with bursts of up to Burst requests. The zero Limit means "not set".
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// IsZero reports whether l is the zero Limit (no limit set).
func (l Limit) IsZero() bool { return l == Limit{} }

// Quota is a usage cap: at most Limit units (requests, or credits when a
// request has a cost) per Period. The zero Quota means "not set".
type Quota struct {
	Limit  int64
	Period time.Duration
}

// IsZero reports whether q is the zero Quota (no quota set).
func (q Quota) IsZero() bool { return q == Quota{} }

// Decision is a Limiter's or Counter's answer for one request.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the policy's size: the bucket's burst, or the quota.
	Limit int64
	// Remaining is what is left after this request.
	Remaining int64
	// Reset is how long until the full Limit is available again (the
	// bucket refilled, or the quota period over).
	Reset time.Duration
	// RetryAfter is, when Allowed is false, how long until the request
	// could succeed; zero otherwise.
	RetryAfter time.Duration
}

// Limiter applies rate limits by key (a key ID, an owner, a client IP).
// Implementations must be safe for concurrent use. An error means no
// decision could be made (a backend is down); callers fail closed on it
// unless configured otherwise.
type Limiter interface {
	// Allow takes one request from key's bucket under limit.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}

// Counter counts usage against quotas by key. Implementations must be
// safe for concurrent use.
type Counter interface {
	// Add adds n units to key's usage in the current period of q and
	// reports whether the usage stays within q.Limit. A refused Add does
	// not count.
	Add(ctx context.Context, key string, q Quota, n int64) (Decision, error)
}

func (l Limit) validate() error {
	if l.IsZero() {
		return nil
	}
	if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 {
		return fmt.Errorf("%w: rate limit %d per %v, burst %d: rate and period must be positive, burst not negative", ErrInvalidRequest, l.Rate, l.Period, l.Burst)
	}
	return nil
}

func (q Quota) validate() error {
	if q.IsZero() {
		return nil
	}
	if q.Limit <= 0 || q.Period <= 0 {
		return fmt.Errorf("%w: quota %d per %v: limit and period must be positive", ErrInvalidRequest, q.Limit, q.Period)
	}
	return nil
}
