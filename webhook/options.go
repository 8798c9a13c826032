package webhook

import (
	"fmt"
	"net/http"
	"time"

	"github.com/apikeykit/apikey"
)

// Defaults of a Sender's options.
const (
	DefaultQueueSize      = 1000
	DefaultAttempts       = 6
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultAttemptTimeout = 15 * time.Second
)

// ErrInvalidOption reports an option or argument that breaks a rule; it
// also matches apikey.ErrInvalidRequest.
var ErrInvalidOption = fmt.Errorf("webhook: invalid option: %w", apikey.ErrInvalidRequest)

// Option configures a Sender in New.
type Option func(*config) error

type config struct {
	client         *http.Client
	queueSize      int
	attempts       int
	backoff        time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	onError        func(error)
	now            func() time.Time
}

// WithHTTPClient sets the client that delivers (default: a client of its
// own; each attempt is bounded by WithAttemptTimeout either way).
func WithHTTPClient(c *http.Client) Option {
	return func(cfg *config) error {
		if c == nil {
			return fmt.Errorf("%w: WithHTTPClient(nil)", ErrInvalidOption)
		}
		cfg.client = c
		return nil
	}
}

// WithQueueSize bounds how many messages wait for delivery (default
// DefaultQueueSize). When it is full, Send fails with ErrQueueFull.
func WithQueueSize(n int) Option {
	return func(cfg *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithQueueSize(%d): want > 0", ErrInvalidOption, n)
		}
		cfg.queueSize = n
		return nil
	}
}

// WithRetries sets how many times a message is attempted in all (default
// DefaultAttempts) and the backoff between attempts: base before the
// second, doubling each time up to max, each wait chosen at random
// between half of it and all of it (jitter), so that receivers coming
// back are not hit by every sender at once.
func WithRetries(attempts int, base, max time.Duration) Option {
	return func(cfg *config) error {
		if attempts <= 0 || base <= 0 || max < base {
			return fmt.Errorf("%w: WithRetries(%d, %v, %v): want attempts > 0 and 0 < base <= max", ErrInvalidOption, attempts, base, max)
		}
		cfg.attempts, cfg.backoff, cfg.maxBackoff = attempts, base, max
		return nil
	}
}

// WithAttemptTimeout bounds one delivery attempt (default
// DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) Option {
	return func(cfg *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithAttemptTimeout(%v): want > 0", ErrInvalidOption, d)
		}
		cfg.attemptTimeout = d
		return nil
	}
}

// WithBackgroundErrors sets the function that receives delivery failures:
// a message given up after its last attempt, or refused by a full queue
// (through Notify). By default they are logged with slog.Default at
// level Error. It is called from the Sender's goroutines and must be safe
// for concurrent use. Errors name the message ID, the event type and the
// key ID; never a secret.
func WithBackgroundErrors(fn func(error)) Option {
	return func(cfg *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithBackgroundErrors(nil)", ErrInvalidOption)
		}
		cfg.onError = fn
		return nil
	}
}

// WithClock replaces time.Now for the webhook-timestamp header, for
// tests.
func WithClock(now func() time.Time) Option {
	return func(cfg *config) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock(nil)", ErrInvalidOption)
		}
		cfg.now = now
		return nil
	}
}
