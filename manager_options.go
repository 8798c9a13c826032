package apikey

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults for the Manager's options.
const (
	DefaultCacheSize         = 100_000
	DefaultCacheTTL          = 30 * time.Second
	DefaultNegativeCacheSize = 10_000
	DefaultNegativeCacheTTL  = 5 * time.Second
	DefaultLastUsedInterval  = 5 * time.Second
)

// Option configures a Manager in NewManager.
type Option func(*settings) error

type settings struct {
	prefix           string
	digests          digesters
	unkeyed          bool
	now              func() time.Time
	clockSet         bool // WithClock replaced time.Now
	cacheSize        int
	cacheTTL         time.Duration
	negativeSize     int
	negativeTTL      time.Duration
	lastUsedInterval time.Duration
	staleIfError     time.Duration
	onError          func(error)
	legacy           *LegacyConfig // WithLegacy
	maxLifetime      time.Duration
	onKeyEvent       func(KeyEvent)
	sweep            sweepConfig
	usageInterval    time.Duration // see usage_meter.go
	usageBatch       int
	usageOff         bool
}

// WithPrefix sets the prefix of issued keys, for example "acme_live". It is
// required: it makes leaked keys recognisable. It must satisfy
// ValidatePrefix.
func WithPrefix(prefix string) Option {
	return func(s *settings) error {
		if err := ValidatePrefix(prefix); err != nil {
			return err
		}
		s.prefix = prefix
		return nil
	}
}

// WithPepper sets the server secret under which new keys are digested
// (HMAC-SHA256), and a version name recorded with each key so the pepper
// can be rotated later (see WithPreviousPepper). The pepper must be at
// least MinPepperLen bytes of random data and must never be written to the
// Store. Give WithPepper exactly once, unless WithUnkeyedDigest is used.
func WithPepper(version string, pepper []byte) Option {
	return func(s *settings) error {
		if err := checkPepper(version, pepper); err != nil {
			return err
		}
		if s.digests.current != nil {
			return fmt.Errorf("%w: WithPepper given twice; use WithPreviousPepper for older versions", ErrInvalidRequest)
		}
		d := newHMACDigester(version, pepper)
		s.digests.current = d
		return s.digests.add(d)
	}
}

// WithPreviousPepper adds a pepper that verifies keys digested under it
// but is not used for new keys. A key that verifies under a previous pepper
// is re-digested under the current one, so once every key has been used
// (or rotated) the previous pepper can be dropped.
func WithPreviousPepper(version string, pepper []byte) Option {
	return func(s *settings) error {
		if err := checkPepper(version, pepper); err != nil {
			return err
		}
		return s.digests.add(newHMACDigester(version, pepper))
	}
}

func checkPepper(version string, pepper []byte) error {
	if version == "" || len(version) > 32 || !isQuotable(version) || strings.Contains(version, " ") {
		return fmt.Errorf("%w: pepper version must be 1 to 32 printable ASCII characters other than space, '\"' and '\\'", ErrInvalidRequest)
	}
	if len(pepper) < MinPepperLen {
		return fmt.Errorf("%w: pepper %q is %d bytes, want at least %d random bytes", ErrInvalidRequest, version, len(pepper), MinPepperLen)
	}
	return nil
}

// WithUnkeyedDigest accepts keys digested with plain SHA-256 instead of a
// peppered HMAC. Alone, it is an explicit opt-in for deployments that have
// no secret manager: new keys are digested that way, and anyone who reads
// the store can then test a candidate key offline (but still cannot
// recover keys, which carry 256 random bits). Given with WithPepper, new
// keys use the pepper and unkeyed keys keep verifying (and are re-digested
// under the pepper on use), which is how a deployment moves to a pepper.
// Without this option unkeyed digests are refused, so that someone able to
// write to the store cannot plant a digest they can compute.
func WithUnkeyedDigest() Option {
	return func(s *settings) error {
		s.unkeyed = true
		return nil
	}
}

// WithClock replaces time.Now, for tests. now must be safe for concurrent
// use.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock(nil)", ErrInvalidRequest)
		}
		s.now, s.clockSet = now, true
		return nil
	}
}

// WithCache sets about how many entries the verification cache holds and
// how long a found key stays cached (defaults: DefaultCacheSize,
// DefaultCacheTTL). When the cache is full, an arbitrary entry makes room.
// Revocation and rotation through this Manager, or reported by a Store
// that implements Watcher, take effect at once whatever the TTL; other
// changes take effect within ttl. A size or ttl of 0 disables the cache,
// and every Verify then reads the Store.
func WithCache(size int, ttl time.Duration) Option {
	return func(s *settings) error {
		if size < 0 || ttl < 0 {
			return fmt.Errorf("%w: WithCache(%d, %v): negative", ErrInvalidRequest, size, ttl)
		}
		s.cacheSize, s.cacheTTL = size, ttl
		return nil
	}
}

// WithNegativeCache sets how many "no key with this ID" answers are
// remembered, and for how long (defaults: DefaultNegativeCacheSize,
// DefaultNegativeCacheTTL), which keeps floods of made-up keys away from
// the Store. They are held apart from the keys WithCache holds, so that
// a flood of made-up IDs never evicts a real key: when they are full,
// the oldest goes. A size or ttl of 0 disables negative caching; so does
// disabling the cache.
func WithNegativeCache(size int, ttl time.Duration) Option {
	return func(s *settings) error {
		if size < 0 || ttl < 0 {
			return fmt.Errorf("%w: WithNegativeCache(%d, %v): negative", ErrInvalidRequest, size, ttl)
		}
		s.negativeSize, s.negativeTTL = size, ttl
		return nil
	}
}

// WithStaleIfError lets a cached key that has passed its TTL keep
// verifying for up to maxStale more while the Store is failing, so a
// database outage does not lock out callers who were just verified. It is
// off by default: without it a Store failure on a cache miss is always
// ErrUnavailable. Revocation through this Manager, or reported by a
// Watcher, still drops the entry at once; changes the Manager cannot see
// may take up to TTL + maxStale to take effect.
func WithStaleIfError(maxStale time.Duration) Option {
	return func(s *settings) error {
		if maxStale < 0 {
			return fmt.Errorf("%w: WithStaleIfError(%v): negative", ErrInvalidRequest, maxStale)
		}
		s.staleIfError = maxStale
		return nil
	}
}

// WithBackgroundErrors sets the function that receives failures of the
// Manager's background work: a Watcher that stops watching (revocations by
// other processes then take effect only as cache entries expire, until it
// recovers) and last-used batches that could not be written (they are
// retried). By default they are logged with slog.Default at level Error.
// fn is called from background goroutines and must be safe for concurrent
// use.
func WithBackgroundErrors(fn func(error)) Option {
	return func(s *settings) error {
		if fn == nil {
			return fmt.Errorf("%w: WithBackgroundErrors(nil)", ErrInvalidRequest)
		}
		s.onError = fn
		return nil
	}
}

func logBackgroundError(err error) {
	slog.Default().Error("apikey: background work failed", "err", err)
}

// WithLastUsedInterval sets how often recorded uses are flushed to a Store
// that implements LastUsedRecorder (default DefaultLastUsedInterval). A
// key's LastUsedAt is therefore accurate to about this interval.
func WithLastUsedInterval(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithLastUsedInterval(%v): want > 0", ErrInvalidRequest, d)
		}
		s.lastUsedInterval = d
		return nil
	}
}

// ErrLifetime reports a key that would not expire within the Manager's
// maximum lifetime (WithMaxLifetime). It also matches ErrInvalidRequest.
var ErrLifetime = fmt.Errorf("%w: key lifetime beyond the maximum", ErrInvalidRequest)

// WithMaxLifetime caps how long a key may live, as organisations cap
// their tokens' lifetimes: Issue refuses a key without an expiry, or
// whose expiry is more than max from now; Update refuses to clear a key's
// expiry or set it more than max from now; Rotate refuses to rotate into
// a replacement that would not expire within max of its creation (the
// replacement keeps the old key's lifetime). The error wraps ErrLifetime.
// Keys issued before the cap keep working as they are. Off (0) by
// default.
func WithMaxLifetime(max time.Duration) Option {
	return func(s *settings) error {
		if max <= 0 {
			return fmt.Errorf("%w: WithMaxLifetime(%v): want > 0", ErrInvalidRequest, max)
		}
		s.maxLifetime = max
		return nil
	}
}

// WithKeyEvents sets a function called with a KeyEvent after each change
// this Manager makes to a key's life: KeyCreated (Issue), KeyRotated
// (Rotate, with the replacement), KeyRevoked (Revoke and RevokeWithReason,
// once, by the call that revoked), KeySuspended (Suspend, once), and the
// sweeps' KeyExpiring and KeyUnused (see WithExpiringSweep and
// WithUnusedSweep). It is called synchronously, after the change is
// stored, from the goroutine that made it, and must be quick (hand the
// event to a queue, such as package webhook's Sender) and safe for
// concurrent use. Events carry the key's KeyView, never the key.
func WithKeyEvents(fn func(KeyEvent)) Option {
	return func(s *settings) error {
		if fn == nil {
			return fmt.Errorf("%w: WithKeyEvents(nil)", ErrInvalidRequest)
		}
		s.onKeyEvent = fn
		return nil
	}
}
