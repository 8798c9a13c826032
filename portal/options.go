package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/apikeykit/apikey"
)

// Defaults of the policy, used when the matching option is not given.
const (
	DefaultMaxKeys          = 20
	DefaultLifetime         = 90 * 24 * time.Hour
	DefaultMaxLifetime      = 365 * 24 * time.Hour
	DefaultRotationGrace    = 24 * time.Hour
	DefaultMaxRotationGrace = 7 * 24 * time.Hour
)

// ErrInvalidOption reports an option New cannot use; the wrapping error
// names the option.
var ErrInvalidOption = errors.New("portal: invalid option")

// Option configures New. Options return an error when their arguments
// make no sense, and New returns it.
type Option func(*config) error

// config is the portal's policy and its hooks.
type config struct {
	scopes          []string
	maxKeys         int
	lifetime        time.Duration
	maxLifetime     time.Duration
	requireIPs      bool
	prefixes        []string
	grace, maxGrace time.Duration
	audit           func(AuditEvent)
	actor           func(*http.Request) string
	trusted         []netip.Prefix
	now             func() time.Time
}

func defaultConfig(m *apikey.Manager) config {
	return config{
		maxKeys:     DefaultMaxKeys,
		lifetime:    DefaultLifetime,
		maxLifetime: DefaultMaxLifetime,
		prefixes:    []string{m.Prefix()},
		grace:       DefaultRotationGrace,
		maxGrace:    DefaultMaxRotationGrace,
		audit:       logAudit,
		now:         time.Now,
	}
}

// WithGrantableScopes sets the scopes a customer may give a key: each
// scope of a new or changed key must be within them, as
// apikey.ScopeWithin says, so a customer allowed "orders:*" may grant
// "orders:read" or "orders:*" but never "billing:read". The page offers
// exactly these scopes to pick from. By default no scope is grantable,
// and keys made in the portal carry no scopes.
func WithGrantableScopes(scopes ...string) Option {
	return func(c *config) error {
		if err := apikey.ValidateScopes(scopes); err != nil {
			return fmt.Errorf("%w: WithGrantableScopes: %w", ErrInvalidOption, err)
		}
		c.scopes = slices.Clone(scopes)
		return nil
	}
}

// WithMaxKeys sets how many live keys an owner may hold: keys that are
// not revoked, not expired and not replaced by a rotation. A create past
// it is refused with 400; rotation replaces a key and is not counted. The
// count is kept exact within one process; several processes creating keys
// for one owner at the same instant may each pass it once. n must be
// positive; the default is DefaultMaxKeys (20).
func WithMaxKeys(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxKeys(%d): want at least 1", ErrInvalidOption, n)
		}
		c.maxKeys = n
		return nil
	}
}

// WithLifetime sets the lifetime of a key a customer creates without
// choosing one (def), and the longest a customer may choose (max). Keys
// expire by default, because keys should be rotated regularly: the
// defaults are DefaultLifetime (90 days) and DefaultMaxLifetime (365
// days). A max of 0 sets no maximum and lets customers create keys that
// never expire ("expires_in": "never"); then def may be 0 too, so that keys
// do not expire unless asked. Otherwise def must be positive and at most
// max.
func WithLifetime(def, max time.Duration) Option {
	return func(c *config) error {
		switch {
		case def < 0 || max < 0:
			return fmt.Errorf("%w: WithLifetime(%v, %v): negative lifetime", ErrInvalidOption, def, max)
		case max > 0 && (def == 0 || def > max):
			return fmt.Errorf("%w: WithLifetime(%v, %v): the default must be positive and at most the maximum", ErrInvalidOption, def, max)
		}
		c.lifetime, c.maxLifetime = def, max
		return nil
	}
}

// WithRequireAllowedIPs requires every key to carry an IP allowlist: a
// create with no allowed_ips, or a change that empties them, is refused
// with 400. By default the allowlist is optional.
func WithRequireAllowedIPs() Option {
	return func(c *config) error {
		c.requireIPs = true
		return nil
	}
}

// WithPrefixes sets the prefixes a customer may choose from, such as
// "acme_live" and "acme_test"; the first is the default. By default the
// only prefix is the Manager's own. Scanners recognise keys by prefix, so
// register every one of them.
func WithPrefixes(prefixes ...string) Option {
	return func(c *config) error {
		if len(prefixes) == 0 {
			return fmt.Errorf("%w: WithPrefixes: no prefix", ErrInvalidOption)
		}
		for i, p := range prefixes {
			if err := apikey.ValidatePrefix(p); err != nil {
				return fmt.Errorf("%w: WithPrefixes: %w", ErrInvalidOption, err)
			}
			if slices.Contains(prefixes[:i], p) {
				return fmt.Errorf("%w: WithPrefixes: %q listed twice", ErrInvalidOption, p)
			}
		}
		c.prefixes = slices.Clone(prefixes)
		return nil
	}
}

// WithRotationGrace sets how long the old key keeps working after a
// rotation when the customer does not say (def), and the longest a
// customer may ask for (max). A grace of 0 ends the old key at once. The
// defaults are DefaultRotationGrace (24 hours) and DefaultMaxRotationGrace
// (7 days); def must be at most max.
func WithRotationGrace(def, max time.Duration) Option {
	return func(c *config) error {
		if def < 0 || max < 0 || def > max {
			return fmt.Errorf("%w: WithRotationGrace(%v, %v): want 0 <= default <= maximum", ErrInvalidOption, def, max)
		}
		c.grace, c.maxGrace = def, max
		return nil
	}
}

// WithAudit sets the function every change is reported to, once it is
// stored: create, update, rotate and revoke. It is called synchronously,
// from the request's goroutine, and may be called concurrently. By default
// events are logged with slog's default logger at level Info. Events never
// hold a secret.
func WithAudit(fn func(AuditEvent)) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithAudit(nil)", ErrInvalidOption)
		}
		c.audit = fn
		return nil
	}
}

// WithActor sets a function naming who, in the host's terms, made a
// change: the signed-in user, or a support engineer acting for the
// owner. Audit events carry it as Actor. By default Actor is empty.
func WithActor(fn func(*http.Request) string) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithActor(nil)", ErrInvalidOption)
		}
		c.actor = fn
		return nil
	}
}

// WithTrustedProxies says which reverse proxies' X-Forwarded-For names the
// client in audit events, as apikey.WithTrustedProxies does for the
// middleware (see apikey.ClientIP). By default no proxy is trusted and the
// client is the connection's address.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(c *config) error {
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("%w: WithTrustedProxies: invalid prefix %v", ErrInvalidOption, p)
			}
		}
		c.trusted = slices.Clone(prefixes)
		return nil
	}
}

// WithClock sets the portal's clock, which computes expiry times, key
// statuses and badges. Give it the Manager's clock. The default is
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock(nil)", ErrInvalidOption)
		}
		c.now = now
		return nil
	}
}
