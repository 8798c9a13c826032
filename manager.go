package apikey

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults for the Manager's options.
const (
	DefaultCacheSize        = 100_000
	DefaultCacheTTL         = 30 * time.Second
	DefaultNegativeCacheTTL = 5 * time.Second
	DefaultLastUsedInterval = 5 * time.Second
)

// Bounds on what a key record may hold, checked when a key is issued.
const (
	MaxOwnerLen         = 255
	MaxNameLen          = 255
	MaxScopes           = 64
	MaxAllowedIPs       = 256
	MaxMetadataEntries  = 64
	MaxMetadataKeyLen   = 128
	MaxMetadataValueLen = 64 << 10
)

// Manager issues, verifies, rotates and revokes API keys over a Store. It
// does not depend on HTTP: middleware, gRPC interceptors and queue
// consumers all call Verify. A Manager is safe for concurrent use; call
// Close when done with it, to stop its background work and flush
// last-used times.
type Manager struct {
	store     Store
	prefix    string
	digests   digesters
	now       func() time.Time
	cache     *keyCache
	lastUsed  *lastUsedBatch // nil if the store cannot record last use
	onError   func(error)    // background failures
	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

// Option configures a Manager in NewManager.
type Option func(*settings) error

type settings struct {
	prefix           string
	digests          digesters
	unkeyed          bool
	now              func() time.Time
	cacheSize        int
	cacheTTL         time.Duration
	negativeTTL      time.Duration
	lastUsedInterval time.Duration
	staleIfError     time.Duration
	onError          func(error)
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
	if version == "" || len(version) > 32 || !isPrintableASCII(version) {
		return fmt.Errorf("%w: pepper version must be 1 to 32 printable ASCII characters", ErrInvalidRequest)
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
		s.now = now
		return nil
	}
}

// WithCache sets the verification cache's capacity in entries (kept to
// within an eighth for sizes in the thousands; as it is split in 64
// independently locked shards, a small size is rounded up to a few
// entries per shard) and how long
// a found key stays cached (defaults: DefaultCacheSize, DefaultCacheTTL).
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

// WithNegativeCacheTTL sets how long "no key with this ID" is remembered
// (default DefaultNegativeCacheTTL), which keeps floods of made-up keys
// away from the Store. 0 disables negative caching.
func WithNegativeCacheTTL(ttl time.Duration) Option {
	return func(s *settings) error {
		if ttl < 0 {
			return fmt.Errorf("%w: WithNegativeCacheTTL(%v): negative", ErrInvalidRequest, ttl)
		}
		s.negativeTTL = ttl
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

// watch runs the Store's Watch until ctx ends, restarting it (with
// backoff, and reporting each failure) if it returns early.
func (m *Manager) watch(ctx context.Context, w Watcher) {
	const maxBackoff = 30 * time.Second
	backoff := time.Second
	for {
		err := w.Watch(ctx, m.cache.invalidate)
		if ctx.Err() != nil {
			return
		}
		m.onError(fmt.Errorf("apikey: watching the store for changes stopped (retrying in %v; until then other processes' revocations take effect within the cache TTL): %w", backoff, err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
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

// NewManager returns a Manager over store. WithPrefix is required, and so
// is WithPepper unless WithUnkeyedDigest is given. If store implements
// Watcher, the Manager watches it; if it implements LastUsedRecorder, the
// Manager flushes last-used times in the background. Both stop at Close.
func NewManager(store Store, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil Store", ErrInvalidRequest)
	}
	s := settings{
		now:              time.Now,
		onError:          logBackgroundError,
		cacheSize:        DefaultCacheSize,
		cacheTTL:         DefaultCacheTTL,
		negativeTTL:      DefaultNegativeCacheTTL,
		lastUsedInterval: DefaultLastUsedInterval,
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

	m := &Manager{
		store:   store,
		prefix:  s.prefix,
		digests: s.digests,
		now:     s.now,
		onError: s.onError,
	}
	m.cache = newKeyCache(s.cacheSize, s.cacheTTL, s.negativeTTL, &m.digests)
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
	if r, ok := store.(LastUsedRecorder); ok {
		m.lastUsed = newLastUsedBatch(r, s.lastUsedInterval, m.onError)
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			m.lastUsed.run(ctx)
		}()
	}
	return m, nil
}

// Close stops the Manager's background work and flushes pending last-used
// times. It is safe to call more than once. Verify keeps working after
// Close, but uses are no longer recorded.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.stop()
		m.done.Wait()
		if m.lastUsed != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = m.lastUsed.flush(ctx)
		}
	})
	return err
}

// Prefix returns the prefix of keys this Manager issues.
func (m *Manager) Prefix() string { return m.prefix }

// IssueRequest describes a key to issue. Owner is required; every other
// field is optional, with the zero value meaning "not set".
type IssueRequest struct {
	Owner      string // the user, team or service the key acts for
	Name       string // human label
	Scopes     []string
	ExpiresAt  time.Time
	NotBefore  time.Time
	RateLimit  Limit
	Quota      Quota
	AllowedIPs []netip.Prefix
	Metadata   map[string]string
	// Prefix overrides the Manager's prefix for this key, for example to
	// issue "acme_test" keys from a Manager whose default is "acme_live".
	Prefix string
}

// Issue creates a key and returns it, once, as a Secret, with its stored
// record. Hand the Secret to the caller and forget it: only a digest is
// stored. An invalid request fails with an error wrapping
// ErrInvalidRequest, ErrInvalidScope or ErrInvalidPrefix and writes
// nothing.
func (m *Manager) Issue(ctx context.Context, req IssueRequest) (Secret, *Key, error) {
	now := m.now()
	if err := m.checkIssue(&req, now); err != nil {
		return Secret{}, nil, err
	}
	k := &Key{
		Prefix:     m.prefix,
		Owner:      req.Owner,
		Name:       req.Name,
		Scopes:     cloneSlice(req.Scopes),
		CreatedAt:  storedTime(now),
		ExpiresAt:  storedTime(req.ExpiresAt),
		NotBefore:  storedTime(req.NotBefore),
		RateLimit:  req.RateLimit,
		Quota:      req.Quota,
		AllowedIPs: maskedPrefixes(req.AllowedIPs),
		Metadata:   cloneMap(req.Metadata),
	}
	if req.Prefix != "" {
		k.Prefix = req.Prefix
	}
	secret, err := m.create(ctx, k, func(k *Key) error { return m.store.Create(ctx, k) })
	if err != nil {
		return Secret{}, nil, err
	}
	return secret, k.Clone(), nil
}

// create gives k a fresh token and digest and writes it with write,
// retrying with a new ID in the (astronomically unlikely) case that the ID
// is taken.
func (m *Manager) create(ctx context.Context, k *Key, write func(*Key) error) (Secret, error) {
	for attempt := 0; ; attempt++ {
		t, err := Generate(k.Prefix)
		if err != nil {
			return Secret{}, err
		}
		k.ID = t.ID
		k.DigestVersion = m.digests.current.version
		var sum [digestSize]byte
		m.digests.current.sum(&sum, t.ID, t.secretPart())
		k.Digest = sum[:]
		err = write(k)
		if err == nil {
			m.cache.invalidate(k.ID) // drop a negative entry for this ID, if any
			return t.Secret(), nil
		}
		if !errors.Is(err, ErrConflict) || attempt == 2 {
			return Secret{}, storeError("create key", err)
		}
	}
}

func (m *Manager) checkIssue(req *IssueRequest, now time.Time) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	if req.Prefix != "" {
		if err := ValidatePrefix(req.Prefix); err != nil {
			return err
		}
	}
	if err := checkText("owner", req.Owner, MaxOwnerLen); err != nil {
		return err
	}
	if req.Owner == "" {
		return bad("owner is required")
	}
	if err := checkText("name", req.Name, MaxNameLen); err != nil {
		return err
	}
	if len(req.Scopes) > MaxScopes {
		return bad("%d scopes, at most %d allowed", len(req.Scopes), MaxScopes)
	}
	if err := ValidateScopes(req.Scopes); err != nil {
		return err
	}
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return bad("expiry %s is not in the future", req.ExpiresAt.Format(time.RFC3339))
	}
	if !req.NotBefore.IsZero() && !req.ExpiresAt.IsZero() && !req.NotBefore.Before(req.ExpiresAt) {
		return bad("not-before %s is not before expiry %s", req.NotBefore.Format(time.RFC3339), req.ExpiresAt.Format(time.RFC3339))
	}
	if !req.RateLimit.IsZero() {
		if err := req.RateLimit.Validate(); err != nil {
			return err
		}
	}
	if !req.Quota.IsZero() {
		if err := req.Quota.Validate(); err != nil {
			return err
		}
	}
	if len(req.AllowedIPs) > MaxAllowedIPs {
		return bad("%d allowed IP prefixes, at most %d", len(req.AllowedIPs), MaxAllowedIPs)
	}
	for _, p := range req.AllowedIPs {
		if !p.IsValid() {
			return bad("allowed IP prefix %v is not valid", p)
		}
	}
	if len(req.Metadata) > MaxMetadataEntries {
		return bad("%d metadata entries, at most %d", len(req.Metadata), MaxMetadataEntries)
	}
	for name, v := range req.Metadata {
		if name == "" || len(name) > MaxMetadataKeyLen || !utf8.ValidString(name) {
			return bad("metadata key %.40q must be 1 to %d bytes of UTF-8", name, MaxMetadataKeyLen)
		}
		if len(v) > MaxMetadataValueLen || !utf8.ValidString(v) {
			return bad("metadata %.40q: value must be at most %d bytes of UTF-8", name, MaxMetadataValueLen)
		}
	}
	return nil
}

// checkText accepts at most max bytes of UTF-8 without control characters.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalidRequest, field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRequest, field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %.40q contains a control character", ErrInvalidRequest, field, s)
		}
	}
	return nil
}

// Verify checks token and returns the key it belongs to. It parses the
// token offline (ErrMalformedKey, ErrChecksum), finds the record by ID in
// the cache or the Store, compares digests in constant time (ErrInvalidKey;
// unknown IDs take the same path against a dummy digest), and checks
// revocation (ErrRevoked), expiry (ErrExpired) and NotBefore
// (ErrNotYetValid). A Store failure returns an error wrapping
// ErrUnavailable: fail closed on it, it says nothing about the key.
//
// The returned Key is shared with other callers and must not be modified;
// call Clone for a copy of your own. On a cache hit Verify does no I/O and
// no allocation, except once for a key digested under a previous pepper,
// which it re-digests under the current one in the Store before
// returning.
func (m *Manager) Verify(ctx context.Context, token string) (*Key, error) {
	t, err := Parse(token)
	if err != nil {
		return nil, err
	}
	now := m.now()
	e, err := m.cache.get(ctx, t.ID, now, m.store)
	if err != nil {
		return nil, storeError("look up key", err)
	}
	// Unknown IDs, and records whose pepper is gone, have entries holding
	// the current digester and a dummy digest (see cacheEntry), so they
	// take this very path, without a branch, and cost what a wrong secret
	// costs; verifiable is only looked at once the digests have matched.
	var got [digestSize]byte
	e.digester.sum(&got, t.ID, t.secretPart())
	if !hmac.Equal(got[:], e.digest[:]) || !e.verifiable || e.prefix != t.Prefix {
		return nil, ErrInvalidKey
	}
	if err := e.status(now.UnixNano()); err != nil {
		return nil, err
	}
	if e.digester != m.digests.current && e.redigested.CompareAndSwap(false, true) {
		m.redigest(ctx, t)
	}
	if m.lastUsed != nil {
		m.lastUsed.touch(e, e.key.ID, now) // not t.ID: a slice of the token, which holds the secret
	}
	return e.key, nil
}

// redigest moves a key verified under a previous pepper to the current
// one. It is best effort: on failure the key still verifies under the old
// pepper, and the next Manager (or this one after the cache entry expires)
// tries again.
func (m *Manager) redigest(ctx context.Context, t Token) {
	_ = m.update(ctx, t.ID, func(k *Key) error {
		if k.DigestVersion == m.digests.current.version {
			return errNoChange
		}
		var sum [digestSize]byte
		m.digests.current.sum(&sum, t.ID, t.secretPart())
		k.Digest, k.DigestVersion = sum[:], m.digests.current.version
		return nil
	})
}

// errNoChange tells update that its change is already in place.
var errNoChange = errors.New("no change")

// update applies change to the stored key id and writes it back,
// retrying when another writer got there first, then drops the cached
// entry. change returning errNoChange ends it without a write.
func (m *Manager) update(ctx context.Context, id string, change func(*Key) error) error {
	defer m.cache.invalidate(id)
	for attempt := 0; ; attempt++ {
		k, err := m.store.Get(ctx, id)
		if err != nil {
			return storeError("get key", err)
		}
		if err := change(k); err != nil {
			if err == errNoChange {
				return nil
			}
			return err
		}
		err = m.store.Update(ctx, k)
		if err == nil || !errors.Is(err, ErrConflict) || attempt == 9 {
			return storeError("update key", err)
		}
	}
}

// Revoke revokes key id at once; Verify refuses it from then on in this
// Manager, and in every Manager whose Store implements Watcher. Revoking a
// revoked key does nothing and returns nil. An unknown id returns
// ErrNotFound.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	now := m.now()
	return m.update(ctx, id, func(k *Key) error {
		if !k.RevokedAt.IsZero() {
			return errNoChange
		}
		k.RevokedAt = storedTime(now)
		return nil
	})
}

// Rotate issues a replacement for key id, with the same owner, name,
// prefix, scopes, limits, allowed IPs and metadata, and the same lifetime
// if the old key had an expiry. The old key keeps working for grace and
// then fails with ErrExpired (grace 0 ends it at once). It returns the new
// key once, as a Secret. A revoked, expired or already rotated key cannot
// be rotated (ErrRevoked, ErrExpired, ErrConflict). If the Store
// implements Rotator both writes are one transaction; otherwise a failed
// second write is undone by revoking the replacement.
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (Secret, *Key, error) {
	if grace < 0 {
		return Secret{}, nil, fmt.Errorf("%w: negative grace period %v", ErrInvalidRequest, grace)
	}
	for attempt := 0; ; attempt++ {
		secret, k, err := m.rotateOnce(ctx, id, grace)
		switch {
		case !errors.Is(err, errOldChanged):
			return secret, k, err
		case attempt == 9:
			return Secret{}, nil, fmt.Errorf("%w: key %s kept changing during rotation", ErrConflict, id)
		}
	}
}

// errOldChanged reports that the key being rotated changed between Get
// and the rotating write; Rotate then starts again from a fresh read.
var errOldChanged = errors.New("apikey: key changed during rotation")

func (m *Manager) rotateOnce(ctx context.Context, id string, grace time.Duration) (Secret, *Key, error) {
	now := m.now()
	old, err := m.store.Get(ctx, id)
	if err != nil {
		return Secret{}, nil, storeError("get key", err)
	}
	switch {
	case old.ReplacedBy != "":
		return Secret{}, nil, fmt.Errorf("%w: key %s was already rotated to %s", ErrConflict, id, old.ReplacedBy)
	case old.Status(now) != nil:
		return Secret{}, nil, fmt.Errorf("key %s: %w", id, old.Status(now))
	}
	k := &Key{
		Prefix:      old.Prefix,
		Owner:       old.Owner,
		Name:        old.Name,
		Scopes:      cloneSlice(old.Scopes),
		CreatedAt:   storedTime(now),
		RateLimit:   old.RateLimit,
		Quota:       old.Quota,
		AllowedIPs:  cloneSlice(old.AllowedIPs),
		Metadata:    cloneMap(old.Metadata),
		RotatedFrom: old.ID,
	}
	if !old.ExpiresAt.IsZero() {
		k.ExpiresAt = storedTime(now.Add(old.ExpiresAt.Sub(old.CreatedAt)))
	}
	if end := storedTime(now.Add(grace)); old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
		old.ExpiresAt = end
	}
	defer m.cache.invalidate(old.ID)
	secret, err := m.create(ctx, k, func(k *Key) error {
		old.ReplacedBy = k.ID
		err := m.writeRotation(ctx, old, k)
		if errors.Is(err, ErrConflict) {
			if _, getErr := m.store.Get(ctx, k.ID); errors.Is(getErr, ErrNotFound) {
				return errOldChanged // the old key's revision moved on
			}
		}
		return err
	})
	if errors.Is(err, errOldChanged) {
		return Secret{}, nil, errOldChanged
	}
	if err != nil {
		return Secret{}, nil, err
	}
	return secret, k.Clone(), nil
}

// writeRotation writes the replacement and the old key's new expiry, in
// one transaction when the Store can.
func (m *Manager) writeRotation(ctx context.Context, old, replacement *Key) error {
	if r, ok := m.store.(Rotator); ok {
		return r.Rotate(ctx, old, replacement)
	}
	if err := m.store.Create(ctx, replacement); err != nil {
		return err
	}
	if err := m.store.Update(ctx, old); err != nil {
		// Undo: nobody has seen the replacement's secret, so revoking it
		// leaves the world as it was, less one dead record.
		replacement.RevokedAt = storedTime(m.now())
		if undoErr := m.store.Update(ctx, replacement); undoErr != nil {
			return fmt.Errorf("%w (and revoking the half-made replacement %s failed: %v)", err, replacement.ID, undoErr)
		}
		if errors.Is(err, ErrConflict) {
			return errOldChanged
		}
		return err
	}
	return nil
}

// Get returns a copy of the stored record of key id, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*Key, error) {
	k, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, storeError("get key", err)
	}
	return k, nil
}

// List returns a page of stored records; see Store.List.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]*Key, string, error) {
	keys, next, err := m.store.List(ctx, opts)
	if err != nil {
		return nil, "", storeError("list keys", err)
	}
	return keys, next, nil
}

// storeError passes the Store's own sentinel errors through and marks
// every other failure as ErrUnavailable, so callers fail closed.
func storeError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, errOldChanged),
		errors.Is(err, ErrInvalidRequest), isContextError(err):
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// storedTime is t as every Store can hold it: UTC, microsecond precision
// (PostgreSQL's), no monotonic reading. The zero time stays zero.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func maskedPrefixes(ps []netip.Prefix) []netip.Prefix {
	if ps == nil {
		return nil
	}
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Masked()
	}
	return out
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
