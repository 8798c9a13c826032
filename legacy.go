package apikey

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLegacyHashWait is how long a check of a slow legacy hash waits
// for a free slot (LegacyConfig.MaxConcurrentHashes) before the request
// is refused as busy.
const DefaultLegacyHashWait = 100 * time.Millisecond

// LegacyReplacedByHeader is the response header that names the key ID of
// the replacement of an upgraded legacy key (LegacyUpgrade), on every
// response to a request authenticated with the legacy key while its grace
// period lasts. It carries the ID only, never a key: the customer picks
// the new key up where LegacyUpgrade.Deliver put it.
const LegacyReplacedByHeader = "API-Key-Replaced-By"

// ErrLegacyBusy reports a legacy key whose slow hash (bcrypt, argon2id)
// could not be checked because LegacyConfig.MaxConcurrentHashes checks
// were running for longer than LegacyConfig.HashWait. It also matches
// ErrUnavailable: the key may be valid, so it is neither a success nor an
// authentication failure, and the middleware answers 503 with
// Retry-After.
var ErrLegacyBusy error = &busyError{}

type busyError struct{}

func (*busyError) Error() string        { return "apikey: too many legacy key checks at once" }
func (*busyError) Is(target error) bool { return target == ErrUnavailable }

// LegacyConfig lets a Manager accept keys imported from another system
// (Manager.ImportLegacy) besides its own. A presented key that does not
// parse as one of this package's is then looked up among the imported
// ones: by a keyed digest of its SHA-256 or HMAC-SHA256, and by the ID
// that ID extracts for bcrypt and argon2id. A key that verifies works as
// the Key record it was imported into: scopes, limits, IP rules, expiry,
// suspension and revocation apply as to a native key.
type LegacyConfig struct {
	// ID extracts the record ID from keys verified by salted hashes. The
	// zero rule finds only unsalted (SHA-256, HMAC-SHA256) keys.
	ID LegacyIDRule
	// HMACSecret is the old system's secret for hmac-sha256 hashes. Nil:
	// such keys are not looked for.
	HMACSecret []byte
	// Until ends legacy keys: from then on, they are not even looked for
	// and fail as malformed keys do. Zero: no end.
	Until time.Time
	// Upgrade, if set, replaces each legacy key by a key of this package
	// on its first use.
	Upgrade *LegacyUpgrade
	// Cost caps slow hashes: Manager.ImportLegacy refuses costlier ones,
	// and a costlier one found in the store never verifies (it is
	// reported as a broken record).
	Cost LegacyCost
	// MaxConcurrentHashes bounds how many slow hashes this Manager
	// checks at once; 0 means runtime.GOMAXPROCS(0). A check that finds
	// no free slot within HashWait fails with ErrLegacyBusy (503).
	MaxConcurrentHashes int
	// HashWait is how long a check waits for a slot; 0 means
	// DefaultLegacyHashWait, a negative value not at all.
	HashWait time.Duration
}

// LegacyUpgrade replaces legacy keys on first use: the first request that
// a legacy key authenticates (after Manager.ImportLegacy) rotates it, as
// Manager.Rotate does, with the given grace period, and hands the
// replacement to Deliver. From then on the legacy key works until the
// grace period ends, and every response to it names the replacement's
// key ID in the LegacyReplacedByHeader header.
type LegacyUpgrade struct {
	// Grace is how long the legacy key keeps working after its
	// replacement is issued; it must be positive.
	Grace time.Duration
	// Deliver gives the replacement to its owner through the service's
	// own channel: the customer's portal (for example stored in a
	// vault.Vault for the customer to reveal once), an e-mail, a
	// webhook. It runs during the request that triggered the upgrade,
	// once per key. If it fails, the replacement is revoked and the
	// legacy key is as it was; the upgrade is tried again after the
	// cache TTL. Required.
	Deliver func(ctx context.Context, old *Key, replacement Secret) error
}

// WithLegacy makes the Manager accept keys imported with ImportLegacy
// (see LegacyConfig). The Store must implement LegacyStore. Without it,
// ImportLegacy still works, with the default cost caps, but the keys it
// imports do not verify.
func WithLegacy(cfg LegacyConfig) Option {
	return func(s *settings) error {
		switch {
		case cfg.MaxConcurrentHashes < 0:
			return fmt.Errorf("%w: WithLegacy: negative MaxConcurrentHashes", ErrInvalidRequest)
		case cfg.Cost.MaxBcryptCost < 0 || cfg.Cost.MaxBcryptCost > 31:
			return fmt.Errorf("%w: WithLegacy: MaxBcryptCost must be from 4 to 31 (0: %d)", ErrInvalidRequest, DefaultMaxBcryptCost)
		case cfg.Upgrade != nil && cfg.Upgrade.Deliver == nil:
			return fmt.Errorf("%w: WithLegacy: LegacyUpgrade needs Deliver: without it the customer never gets the replacement", ErrInvalidRequest)
		case cfg.Upgrade != nil && cfg.Upgrade.Grace <= 0:
			return fmt.Errorf("%w: WithLegacy: LegacyUpgrade needs a positive Grace, the time the customer has to switch", ErrInvalidRequest)
		}
		if cfg.HMACSecret != nil {
			cfg.HMACSecret = append([]byte(nil), cfg.HMACSecret...)
		}
		if cfg.Upgrade != nil {
			u := *cfg.Upgrade
			cfg.Upgrade = &u
		}
		s.legacy = &cfg
		return nil
	}
}

// legacyState is a Manager's legacy configuration and what it keeps:
// the cache of verified keys, the slots for slow hashes, the upgrades
// tried.
type legacyState struct {
	store      LegacyStore // nil if the Store is not one
	on         bool        // WithLegacy was given
	cfg        LegacyConfig
	cost       LegacyCost
	digesters  []*digester // every accepted digest, the current one first
	sem        chan struct{}
	wait       time.Duration
	cache      *legacyCache
	slowChecks atomic.Int64
	// inSlow counts slow checks running, and maxInSlow the most seen at
	// once (for the tests of the concurrency cap).
	inSlow, maxInSlow atomic.Int64
}

func newLegacyState(cfg *LegacyConfig, store Store, ds *digesters, size int, ttl time.Duration) (*legacyState, error) {
	c := LegacyConfig{}
	if cfg != nil {
		c = *cfg
	}
	l := &legacyState{cfg: c, on: cfg != nil, cost: c.Cost.withDefaults(), cache: newLegacyCache(size, ttl)}
	if ls, ok := store.(LegacyStore); ok {
		l.store = ls
	} else if cfg != nil {
		return nil, fmt.Errorf("%w: WithLegacy: the Store (%T) does not implement LegacyStore", ErrInvalidRequest, store)
	}
	l.digesters = append(l.digesters, ds.current)
	for _, d := range ds.byName {
		if d != ds.current {
			l.digesters = append(l.digesters, d)
		}
	}
	n := c.MaxConcurrentHashes
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	l.sem = make(chan struct{}, n)
	switch {
	case c.HashWait == 0:
		l.wait = DefaultLegacyHashWait
	case c.HashWait > 0:
		l.wait = c.HashWait
	}
	return l, nil
}

// enabled reports whether legacy keys are looked for at now.
func (l *legacyState) enabled(now time.Time) bool {
	return l.on && l.store != nil && (l.cfg.Until.IsZero() || now.Before(l.cfg.Until))
}

// legacyDigest is the old system's digest of a whole key: SHA-256, or
// HMAC-SHA256 under its secret.
func legacyDigest(kind, key string, hmacSecret []byte) [sha256.Size]byte {
	if kind == LegacyHMACSHA256 {
		h := hmac.New(sha256.New, hmacSecret)
		h.Write([]byte(key))
		var sum [sha256.Size]byte
		h.Sum(sum[:0])
		return sum
	}
	return sha256.Sum256([]byte(key))
}

// legacyLookup is the Lookup of an unsalted legacy hash: its kind, the
// digest version, and the digest of the old digest under d (the pepper),
// so that the store holds nothing a key can be tested against without
// the pepper.
func legacyLookup(d *digester, kind string, oldDigest []byte) string {
	var h hash.Hash
	if d.pepper != nil {
		h = hmac.New(sha256.New, d.pepper)
	} else {
		h = sha256.New()
	}
	h.Write([]byte("apikey legacy v1|" + kind + "|"))
	h.Write(oldDigest)
	var sum [sha256.Size]byte
	return kind + "@" + d.version + ":" + hex.EncodeToString(h.Sum(sum[:0]))
}

// legacyIDLookup is the Lookup of a salted legacy hash.
func legacyIDLookup(id string) string { return "id:" + id }

// lookups returns what key may be stored under.
func (l *legacyState) lookups(key string) []string {
	var out []string
	kinds := []string{LegacySHA256}
	if l.cfg.HMACSecret != nil {
		kinds = append(kinds, LegacyHMACSHA256)
	}
	for _, kind := range kinds {
		sum := legacyDigest(kind, key, l.cfg.HMACSecret)
		for _, d := range l.digesters {
			out = append(out, legacyLookup(d, kind, sum[:]))
		}
	}
	if id, ok := l.cfg.ID.Extract(key); ok {
		out = append(out, legacyIDLookup(id))
	}
	return out
}

// verifyLegacy is Verify for a key that did not parse (parseErr): a key
// imported from another system, if WithLegacy is on. Keys that are not
// found fail with parseErr, as they would without it.
func (m *Manager) verifyLegacy(ctx context.Context, key string, parseErr error) (*Key, error) {
	l := m.legacy
	if !l.on || key == "" || len(key) > MaxTokenLen {
		return nil, parseErr
	}
	now := m.now()
	if !l.enabled(now) {
		return nil, parseErr
	}
	sum := l.cache.sum(key)
	id, e, ok := l.cache.get(&sum, now)
	if !ok {
		var err error
		if id, err = m.findLegacy(ctx, key, parseErr); err != nil {
			return nil, err
		}
		e = l.cache.put(&sum, id, now)
	}
	k, err := m.legacyKey(ctx, id, now)
	if err != nil {
		return nil, err
	}
	if l.cfg.Upgrade != nil && k.ReplacedBy == "" && e.upgradeTried.CompareAndSwap(false, true) {
		k = m.upgradeLegacy(ctx, k)
	}
	return k, nil
}

// findLegacy looks key up among the imported keys and verifies it, and
// returns the ID of its Key record.
func (m *Manager) findLegacy(ctx context.Context, key string, parseErr error) (string, error) {
	l := m.legacy
	lookups := l.lookups(key)
	recs, err := l.store.GetLegacy(ctx, lookups)
	if err != nil {
		return "", storeError("look up legacy key", err)
	}
	if len(recs) == 0 {
		return "", parseErr
	}
	for _, r := range recs {
		ok, err := m.checkLegacy(ctx, &r, key, lookups)
		if err != nil {
			return "", err
		}
		if ok {
			return r.KeyID, nil
		}
	}
	return "", ErrInvalidKey
}

// checkLegacy verifies key against one record found for it.
func (m *Manager) checkLegacy(ctx context.Context, r *LegacyRecord, key string, lookups []string) (bool, error) {
	l := m.legacy
	if r.Hash == LegacySHA256 || r.Hash == LegacyHMACSHA256 {
		// Found by its keyed digest: the record is the key's if that is
		// one this key has (the store matched it; check, in constant
		// time, rather than trust the match).
		match := 0
		for _, want := range lookups {
			match |= subtle.ConstantTimeCompare([]byte(r.Lookup), []byte(want))
		}
		return match == 1 && len(r.KeyID) == IDLen, nil
	}
	h, err := ParseLegacyHash(r.Hash)
	if err == nil && !h.Salted() {
		err = fmt.Errorf("%w: unsalted hash stored in full", ErrInvalidLegacyHash)
	}
	if err == nil {
		err = l.cost.Check(h)
	}
	if err != nil {
		m.reportBroken(&Key{ID: r.KeyID}, fmt.Errorf("legacy record %.40q: %w", r.Lookup, err))
		return false, nil
	}
	if err := l.acquire(ctx); err != nil {
		return false, err
	}
	defer l.release()
	return h.Verify(key, nil) && len(r.KeyID) == IDLen, nil
}

// acquire takes a slot for a slow hash, waiting up to l.wait.
func (l *legacyState) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
	default:
		if l.wait <= 0 {
			return ErrLegacyBusy
		}
		t := time.NewTimer(l.wait)
		defer t.Stop()
		select {
		case l.sem <- struct{}{}:
		case <-t.C:
			return ErrLegacyBusy
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.slowChecks.Add(1)
	n := l.inSlow.Add(1)
	for {
		seen := l.maxInSlow.Load()
		if n <= seen || l.maxInSlow.CompareAndSwap(seen, n) {
			break
		}
	}
	return nil
}

func (l *legacyState) release() {
	l.inSlow.Add(-1)
	<-l.sem
}

// legacyKey returns the Key record id of a verified legacy key, through
// the Manager's cache, so that revocation and every other change reach
// it as they reach a native key.
func (m *Manager) legacyKey(ctx context.Context, id string, now time.Time) (*Key, error) {
	e, err := m.cache.get(ctx, id, now, m.store)
	if err != nil {
		return nil, storeError("look up key", err)
	}
	if e.key == nil || e.key.DigestVersion != LegacyDigestVersion {
		return nil, ErrInvalidKey // the record is gone, or not an imported one
	}
	if err := e.status(now.UnixNano()); err != nil {
		return nil, err
	}
	if m.lastUsed != nil {
		m.lastUsed.touch(e, e.key.ID, now)
	}
	return e.key, nil
}

// upgradeLegacy rotates legacy key k and delivers the replacement; it
// returns k as it now is. Failures are reported, and k goes on working.
func (m *Manager) upgradeLegacy(ctx context.Context, k *Key) *Key {
	u := m.legacy.cfg.Upgrade
	secret, repl, err := m.Rotate(ctx, k.ID, u.Grace)
	if errors.Is(err, ErrConflict) {
		return k // a concurrent first use upgraded it
	}
	if err != nil {
		m.onError(fmt.Errorf("apikey: upgrading legacy key %s: %w", k.ID, err))
		return k
	}
	if err := u.Deliver(ctx, k, secret); err != nil {
		m.onError(fmt.Errorf("apikey: upgrading legacy key %s: delivering its replacement %s failed, so it is revoked: %w", k.ID, repl.ID, err))
		m.undoUpgrade(ctx, k, repl)
		return k
	}
	if now, err := m.legacyKey(ctx, k.ID, m.now()); err == nil {
		return now
	}
	c := k.Clone()
	c.ReplacedBy = repl.ID
	return c
}

// undoUpgrade revokes an undelivered replacement and gives the legacy key
// back its expiry.
func (m *Manager) undoUpgrade(ctx context.Context, old, repl *Key) {
	ctx = context.WithoutCancel(ctx)
	if err := m.Revoke(ctx, repl.ID); err != nil {
		m.onError(fmt.Errorf("apikey: revoking undelivered replacement %s: %w", repl.ID, err))
	}
	_, err := m.update(ctx, old.ID, func(k *Key) error {
		if k.ReplacedBy != repl.ID {
			return errNoChange
		}
		k.ReplacedBy, k.ExpiresAt = "", old.ExpiresAt
		return nil
	})
	if err != nil {
		m.onError(fmt.Errorf("apikey: restoring legacy key %s after a failed upgrade: %w", old.ID, err))
	}
}

// legacyCache maps a keyed digest of a verified legacy key (never the key
// itself) to the ID of its Key record, so that a slow hash is paid once
// per key per cache lifetime. It is bounded; when full, an arbitrary
// entry goes. It is safe for concurrent use.
type legacyCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*legacyEntry
	size    int
	ttl     time.Duration
	pool    sync.Pool // of *legacySumState
}

// legacySumState is a pooled HMAC under the cache's key, with scratch
// space kept off the caller's stack so that a cache hit allocates
// nothing.
type legacySumState struct {
	h   hash.Hash
	buf [MaxTokenLen]byte
	sum [sha256.Size]byte
}

type legacyEntry struct {
	id           string
	expires      int64 // unix nanoseconds
	upgradeTried atomic.Bool
}

func newLegacyCache(size int, ttl time.Duration) *legacyCache {
	c := &legacyCache{entries: make(map[[sha256.Size]byte]*legacyEntry), size: size, ttl: ttl}
	if ttl <= 0 {
		c.size = 0
	}
	key := make([]byte, 32)
	rand.Read(key)
	c.pool.New = func() any { return &legacySumState{h: hmac.New(sha256.New, key)} }
	return c
}

// sum is the cache's key for a presented key, at most MaxTokenLen bytes.
func (c *legacyCache) sum(key string) [sha256.Size]byte {
	s := c.pool.Get().(*legacySumState)
	n := copy(s.buf[:], key)
	s.h.Reset()
	s.h.Write(s.buf[:n])
	s.h.Sum(s.sum[:0])
	sum := s.sum
	clear(s.buf[:n]) // the key is secret
	c.pool.Put(s)
	return sum
}

func (c *legacyCache) get(sum *[sha256.Size]byte, now time.Time) (string, *legacyEntry, bool) {
	c.mu.RLock()
	e, ok := c.entries[*sum]
	c.mu.RUnlock()
	if !ok || now.UnixNano() >= e.expires {
		return "", nil, false
	}
	return e.id, e, true
}

// put caches id for sum and returns the entry (a fresh one, uncached, if
// the cache is disabled).
func (c *legacyCache) put(sum *[sha256.Size]byte, id string, now time.Time) *legacyEntry {
	e := &legacyEntry{id: id, expires: expiry(now, c.ttl)}
	if c.size == 0 {
		return e
	}
	c.mu.Lock()
	if old, ok := c.entries[*sum]; ok && old.id == id {
		// Keep the flag: an upgrade is tried once per entry.
		e.upgradeTried.Store(old.upgradeTried.Load())
	}
	if len(c.entries) >= c.size {
		for victim := range c.entries {
			delete(c.entries, victim)
			break
		}
	}
	c.entries[*sum] = e
	c.mu.Unlock()
	return e
}

// errLegacyOff is ImportLegacy's answer for a Store without LegacyStore.
var errLegacyOff = errors.New("the Store does not implement apikey.LegacyStore")
