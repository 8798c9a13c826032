package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
)

// Defaults of New's options.
const (
	DefaultDataKeyCacheSize = 1000
	DefaultDataKeyCacheTTL  = 5 * time.Minute
	DefaultRevealResolution = time.Minute
)

// Option configures a Vault in New. An Option that cannot apply its
// argument returns an error wrapping ErrInvalidRequest, which New
// returns.
type Option func(*config) error

type config struct {
	audit      func(context.Context, AuditEvent)
	cacheSize  int
	cacheTTL   time.Duration
	resolution time.Duration
}

// WithAudit has every Put, Reveal and Delete, successful or not, reported
// to fn, synchronously, before the call returns: fn must be fast and safe
// for concurrent use. fn must not be nil.
func WithAudit(fn func(ctx context.Context, e AuditEvent)) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithAudit(nil)", ErrInvalidRequest)
		}
		c.audit = fn
		return nil
	}
}

// WithDataKeyCache keeps the ciphers of up to size unwrapped data keys,
// each for ttl after its unwrap, so that revealing a secret again costs
// one Store read and no KEK call. The default is
// DefaultDataKeyCacheSize for DefaultDataKeyCacheTTL. size 0 turns the
// cache off; a negative size, or a positive size with a ttl that is not
// positive, is refused.
func WithDataKeyCache(size int, ttl time.Duration) Option {
	return func(c *config) error {
		if size < 0 || size > 0 && ttl <= 0 {
			return fmt.Errorf("%w: WithDataKeyCache(%d, %v): want size >= 0 and, with a size, ttl > 0", ErrInvalidRequest, size, ttl)
		}
		c.cacheSize, c.cacheTTL = size, ttl
		return nil
	}
}

// WithRevealResolution sets how stale a secret's recorded last-revealed
// time may be: Reveal writes it to the Store only when the recorded time
// is at least d old, so that a secret revealed on every request costs
// one write per d, not one per request. The default is
// DefaultRevealResolution; 0 records every Reveal. d must not be
// negative.
func WithRevealResolution(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: WithRevealResolution(%v): negative", ErrInvalidRequest, d)
		}
		c.resolution = d
		return nil
	}
}

// PutOption configures one Put. An option that cannot apply its argument
// returns an error wrapping ErrInvalidRequest, which Put returns.
type PutOption func(*putConfig) error

type putConfig struct {
	validate func(context.Context, apikey.Secret) error
}

// WithValidation has Put call fn with the secret before storing it, for
// example to make a cheap call to the provider with it; an error from fn
// stores nothing and is returned wrapping ErrValidation. The returned
// error's text is fn's with every occurrence of the secret replaced by
// [REDACTED], and it wraps fn's error only if that error's text does not
// hold the secret. fn must not be nil.
func WithValidation(fn func(ctx context.Context, secret apikey.Secret) error) PutOption {
	return func(c *putConfig) error {
		if fn == nil {
			return fmt.Errorf("%w: WithValidation(nil)", ErrInvalidRequest)
		}
		c.validate = fn
		return nil
	}
}
