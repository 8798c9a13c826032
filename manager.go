package apikey

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Manager issues, verifies, rotates and revokes API keys over a Store. It
// does not depend on HTTP: middleware, gRPC interceptors and queue
// consumers all call Verify. A Manager is safe for concurrent use; call
// Close when done with it, to stop its background work and flush
// last-used times.
type Manager struct {
	store   Store
	prefix  string
	digests digesters
	now     func() time.Time
	// realClock is set when now is time.Now, so that a time the middleware
	// read already can stand for it.
	realClock bool
	cache     *keyCache
	lastUsed  *lastUsedBatch // nil if the store cannot record last use
	usage     *usageMeter    // nil if the store cannot record usage, or WithoutUsage
	onError   func(error)    // background failures
	local     localLimits    // the middleware's limiter and counter by default
	reported  reportedSet    // broken records already reported
	legacy    *legacyState   // keys imported from another system (legacy.go)
	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once

	// Key lifecycle (issue 15): manager_options.go, sweep.go.
	maxLife       time.Duration  // WithMaxLifetime; 0: no cap
	onKeyEvent    func(KeyEvent) // WithKeyEvents; nil: none
	sweeper       *sweeper       // nil without sweeps
	notifications atomic.Uint64  // changes the Watcher reported, for CacheStats
}

// NewManager returns a Manager over store. WithPrefix is required, and so
// is WithPepper unless WithUnkeyedDigest is given. If store implements
// Watcher, the Manager watches it; if it implements LastUsedRecorder, the
// Manager flushes last-used times in the background; with a sweep option
// (WithExpiringSweep, WithUnusedSweep, WithAutoRevokeUnused) it sweeps in
// the background. All stop at Close.
func NewManager(store Store, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil Store", ErrInvalidRequest)
	}
	s := settings{
		now:              time.Now,
		onError:          logBackgroundError,
		cacheSize:        DefaultCacheSize,
		cacheTTL:         DefaultCacheTTL,
		negativeSize:     DefaultNegativeCacheSize,
		negativeTTL:      DefaultNegativeCacheTTL,
		lastUsedInterval: DefaultLastUsedInterval,
		sweep:            sweepConfig{interval: DefaultSweepInterval, batch: DefaultSweepBatch},
		usageInterval:    DefaultUsageFlushInterval,
		usageBatch:       DefaultUsageBatchSize,
	}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return nil, err
		}
	}
	if s.prefix == "" {
		return nil, fmt.Errorf("%w: WithPrefix is required (for example WithPrefix(\"acme_live\"))", ErrInvalidPrefix)
	}
	if s.unkeyed && s.digests.current == nil && len(s.digests.byName) > 0 {
		// Plain SHA-256 would become the current digest, and Verify would
		// re-digest peppered keys down to it.
		return nil, fmt.Errorf("%w: WithPreviousPepper needs WithPepper: with WithUnkeyedDigest alone, peppered keys would be re-digested without a pepper", ErrInvalidRequest)
	}
	if s.unkeyed {
		unkeyed := newUnkeyedDigester()
		if err := s.digests.add(unkeyed); err != nil {
			return nil, err
		}
		if s.digests.current == nil {
			s.digests.current = unkeyed
		}
	}
	if s.digests.current == nil {
		return nil, fmt.Errorf("%w: no pepper: give WithPepper(version, secret), or opt in to WithUnkeyedDigest()", ErrInvalidRequest)
	}

	legacy, err := newLegacyState(s.legacy, store, &s.digests, s.cacheSize, s.cacheTTL)
	if err != nil {
		return nil, err
	}

	m := &Manager{
		store:     store,
		prefix:    s.prefix,
		digests:   s.digests,
		now:       s.now,
		realClock: !s.clockSet,
		onError:   s.onError,
		legacy:    legacy,
	}
	m.maxLife, m.onKeyEvent = s.maxLifetime, s.onKeyEvent
	m.cache = newKeyCache(s.cacheSize, s.cacheTTL, s.negativeSize, s.negativeTTL, &m.digests)
	m.cache.onBroken = m.reportBroken
	m.cache.staleIfError = s.staleIfError
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	if w, ok := store.(Watcher); ok {
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			m.watch(ctx, w)
		}()
	}
	if s.sweep.on() {
		m.sweeper = &sweeper{cfg: s.sweep, claimed: make(map[[2]string]time.Time)}
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			m.runSweeps(ctx)
		}()
	}
	if r, ok := store.(LastUsedRecorder); ok {
		m.lastUsed = newLastUsedBatch(r, s.lastUsedInterval, m.onError)
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			m.lastUsed.run(ctx)
		}()
	}
	if r, ok := store.(UsageRecorder); ok && !s.usageOff {
		m.usage = newUsageMeter(r, s.usageInterval, s.usageBatch, m.onError)
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			m.usage.run(ctx)
		}()
	}
	return m, nil
}

// Close stops the Manager's background work and flushes pending last-used
// times and usage (see WithUsageFlush). It is safe to call more than once. Verify and the middleware keep
// working after Close, but uses are no longer recorded, and the
// middleware's own limiter and counter no longer forget idle keys.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.stop()
		m.done.Wait()
		m.closeLocal()
		if m.lastUsed != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = m.lastUsed.flush(ctx)
		}
		if m.usage != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = errors.Join(err, m.usage.flush(ctx))
		}
	})
	return err
}

// Prefix returns the prefix of keys this Manager issues.
func (m *Manager) Prefix() string { return m.prefix }

// Verify checks token and returns the key it belongs to. It parses the
// token offline (ErrMalformedKey, ErrChecksum), finds the record by ID in
// the cache or the Store, compares digests in constant time (ErrInvalidKey;
// unknown IDs take the same path against a dummy digest), and checks
// revocation (ErrRevoked), expiry (ErrExpired) and NotBefore
// (ErrNotYetValid). A Store failure returns an error wrapping
// ErrUnavailable: fail closed on it, it says nothing about the key. With
// WithLegacy, a token that does not parse is looked for among the keys
// imported from another system (see LegacyConfig); without it, or when it
// is not found there, it fails as before.
//
// The returned Key is shared with other callers and must not be modified;
// call Clone for a copy of your own. On a cache hit Verify does no I/O and
// no allocation, except once for a key digested under a previous pepper,
// which it re-digests under the current one in the Store before
// returning.
func (m *Manager) Verify(ctx context.Context, token string) (*Key, error) {
	t, err := Parse(token)
	if err != nil {
		return m.verifyLegacy(ctx, token, err) // err, unless WithLegacy finds it
	}
	e, err := m.verify(ctx, t, m.now())
	if err != nil {
		return nil, err
	}
	return e.key, nil
}

// Identify is Verify without the side effects of a use: it does not
// record the key's last use, and it does not move a key digested under a
// previous pepper to the current one. It is for code that checks a token
// it did not get from the key's holder, such as a leak report (package
// leaks), so that the key's last use stays the holder's and a key idle
// for months still looks idle. It answers as Verify does, except that it
// does not look among the keys imported with WithLegacy: a token that does
// not parse fails with Parse's error.
func (m *Manager) Identify(ctx context.Context, token string) (*Key, error) {
	t, err := Parse(token)
	if err != nil {
		return nil, err
	}
	e, err := m.check(ctx, t, m.now())
	if err != nil {
		return nil, err
	}
	return e.key, nil
}

// verify is Verify for a token already parsed, at now. It returns the
// key's cache entry.
func (m *Manager) verify(ctx context.Context, t Token, now time.Time) (*cacheEntry, error) {
	e, err := m.check(ctx, t, now)
	if err != nil {
		return nil, err
	}
	if e.digester != m.digests.current && e.redigested.CompareAndSwap(false, true) {
		m.redigest(ctx, t)
	}
	if m.lastUsed != nil {
		m.lastUsed.touch(e, e.key.ID, now) // not t.ID: a slice of the token, which holds the secret
	}
	return e, nil
}

// check finds t's key and checks its secret and status at now, and
// returns its cache entry.
func (m *Manager) check(ctx context.Context, t Token, now time.Time) (*cacheEntry, error) {
	e, err := m.cache.get(ctx, t.ID, now, m.store)
	if err != nil {
		return nil, storeError("look up key", err)
	}
	// Unknown IDs, and records whose pepper is gone, have entries holding
	// the current digester and a dummy digest (see cacheEntry), so they
	// take this very path, without a branch, and cost what a wrong secret
	// costs; their refusal, ErrInvalidKey, is only looked at once the
	// digests have matched.
	var got [digestSize]byte
	e.digester.sum(&got, t.ID, t.secretPart())
	if !hmac.Equal(got[:], e.digest[:]) || e.prefix != t.Prefix {
		return nil, ErrInvalidKey
	}
	if err := e.status(now.UnixNano()); err != nil {
		return nil, err
	}
	return e, nil
}

// redigest moves a key verified under a previous pepper to the current
// one. It is best effort: on failure the key still verifies under the old
// pepper, and the next Manager (or this one after the cache entry expires)
// tries again.
func (m *Manager) redigest(ctx context.Context, t Token) {
	_, _ = m.update(ctx, t.ID, func(k *Key) error {
		if k.DigestVersion == m.digests.current.version {
			return errNoChange
		}
		var sum [digestSize]byte
		m.digests.current.sum(&sum, t.ID, t.secretPart())
		k.Digest, k.DigestVersion = sum[:], m.digests.current.version
		return nil
	})
}

// Get returns a copy of the stored record of key id, or ErrNotFound; an id
// that is not a key ID is an error wrapping ErrInvalidRequest.
func (m *Manager) Get(ctx context.Context, id string) (*Key, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	k, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, storeError("get key", err)
	}
	return k, nil
}

// List returns a page of stored records; see Store.List. If some records
// of the page do not decode, it returns the others with an error matching
// ErrCorruptRecord that names them.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]*Key, string, error) {
	keys, next, err := m.store.List(ctx, opts)
	switch {
	case errors.Is(err, ErrCorruptRecord):
		return keys, next, err // the records that decode, and which did not
	case err != nil:
		return nil, "", storeError("list keys", err)
	}
	return keys, next, nil
}
