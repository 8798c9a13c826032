package leaks

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/apikeykit/apikey"
)

// Action is what a handler does with a reported token that is a real,
// current key of its Manager.
type Action int

// Actions, for WithAction.
const (
	// Revoke revokes the key at once, with the reason "leaked: <url>"
	// (Manager.RevokeWithReason). It is the default.
	Revoke Action = iota
	// Suspend suspends the key (Manager.Suspend): it stops working at
	// once, and an operator can Resume it after looking.
	Suspend
	// ReportOnly changes nothing, not even the key's last use: the report
	// is only emitted as a KeyLeaked event, again for each delivery of
	// the same report.
	ReportOnly
)

// String returns "revoke", "suspend" or "report-only".
func (a Action) String() string {
	switch a {
	case Revoke:
		return "revoke"
	case Suspend:
		return "suspend"
	case ReportOnly:
		return "report-only"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Defaults of the handlers' options.
const (
	// GitHubKeysURL is where GitHub publishes the public keys that sign
	// its secret scanning partner reports.
	GitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"
	// DefaultMaxBodySize bounds a report's body, in bytes.
	DefaultMaxBodySize = 1 << 20
	// DefaultMaxBatch bounds how many tokens one report may hold.
	DefaultMaxBatch = 1000
	// DefaultRefetchInterval is how often, at most, an unknown key
	// identifier makes the handler fetch the key document again.
	DefaultRefetchInterval = time.Minute
	// DefaultFetchTimeout bounds one fetch of the key document.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultConcurrency is how many tokens of a report are looked up at
	// once.
	DefaultConcurrency = 8
)

// ErrInvalidOption reports an option that refuses its argument; it also
// matches apikey.ErrInvalidRequest.
var ErrInvalidOption = fmt.Errorf("leaks: invalid option: %w", apikey.ErrInvalidRequest)

// Option configures a handler made by GitHub or GitLab.
type Option func(*config) error

type config struct {
	keysURL      string
	client       *http.Client
	action       Action
	maxBody      int64
	maxBatch     int
	refetch      time.Duration
	fetchTimeout time.Duration
	concurrency  int
	onEvent      func(apikey.KeyEvent)
	onError      func(error)
	now          func() time.Time
}

// WithKeysURL sets the URL of the key document, an HTTPS (or, for tests,
// HTTP) URL. GitHub's handler defaults to GitHubKeysURL.
func WithKeysURL(rawURL string) Option {
	return func(c *config) error {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: WithKeysURL(%q): want an http or https URL", ErrInvalidOption, rawURL)
		}
		c.keysURL = rawURL
		return nil
	}
}

// WithHTTPClient sets the client that fetches the key document (default:
// a client of its own, with DefaultFetchTimeout).
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) error {
		if client == nil {
			return fmt.Errorf("%w: WithHTTPClient(nil)", ErrInvalidOption)
		}
		c.client = client
		return nil
	}
}

// WithAction sets what is done with a reported key that is real and
// current (default Revoke).
func WithAction(a Action) Option {
	return func(c *config) error {
		if a != Revoke && a != Suspend && a != ReportOnly {
			return fmt.Errorf("%w: WithAction(%v)", ErrInvalidOption, a)
		}
		c.action = a
		return nil
	}
}

// WithMaxBodySize bounds a report's body (default DefaultMaxBodySize); a
// larger one is answered 413 and changes nothing.
func WithMaxBodySize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxBodySize(%d): want > 0", ErrInvalidOption, n)
		}
		c.maxBody = n
		return nil
	}
}

// WithMaxBatch bounds how many tokens one report may hold (default
// DefaultMaxBatch); a report with more is answered 413 and changes
// nothing.
func WithMaxBatch(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxBatch(%d): want > 0", ErrInvalidOption, n)
		}
		c.maxBatch = n
		return nil
	}
}

// WithRefetchInterval sets how often, at most, a signature by an unknown
// key identifier makes the handler fetch the key document again (default
// DefaultRefetchInterval). Between fetches such a report is answered 401.
func WithRefetchInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithRefetchInterval(%v): want > 0", ErrInvalidOption, d)
		}
		c.refetch = d
		return nil
	}
}

// WithConcurrency sets how many tokens of one report are looked up and
// acted on at once (default DefaultConcurrency).
func WithConcurrency(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithConcurrency(%d): want > 0", ErrInvalidOption, n)
		}
		c.concurrency = n
		return nil
	}
}

// WithOnEvent sets a function called with a KeyLeaked event for each
// real, current key of the Manager a report names, after the action was
// taken. It is called from the request's goroutines, possibly several
// at once, and must be safe for concurrent use. The event names the key,
// its owner, the platform and the URL where the key was found, never the
// key.
func WithOnEvent(fn func(apikey.KeyEvent)) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithOnEvent(nil)", ErrInvalidOption)
		}
		c.onEvent = fn
		return nil
	}
}

// WithErrors sets the function that receives failures a report could not
// be answered for: the key document could not be fetched, or the Store
// failed. By default they are logged with slog.Default at level Error.
// It must be safe for concurrent use.
func WithErrors(fn func(error)) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithErrors(nil)", ErrInvalidOption)
		}
		c.onError = fn
		return nil
	}
}

// WithClock replaces time.Now, for tests of the refetch interval.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock(nil)", ErrInvalidOption)
		}
		c.now = now
		return nil
	}
}

var errNilManager = errors.New("leaks: nil *apikey.Manager")
