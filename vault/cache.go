package vault

import (
	"bytes"
	"crypto/cipher"
	"sync"
	"time"
)

// dataKeyCache keeps the ciphers of recently unwrapped data keys, so that
// revealing a secret again costs no KEK call. An entry serves only the
// exact row it came from: the same version, KEK version and wrapped
// bytes, so that a changed row is unwrapped, and refused, again. When
// full, it drops an arbitrary entry. A cache of size 0 keeps nothing.
type dataKeyCache struct {
	size int
	ttl  time.Duration

	mu sync.Mutex
	m  map[Ref]*dataKeyEntry
}

type dataKeyEntry struct {
	version    int64
	kekVersion string
	wrapped    []byte
	aead       cipher.AEAD
	expires    time.Time
}

func newDataKeyCache(size int, ttl time.Duration) *dataKeyCache {
	return &dataKeyCache{size: size, ttl: ttl, m: make(map[Ref]*dataKeyEntry)}
}

// get returns the cipher for r's data key if it is cached.
func (c *dataKeyCache) get(r *Record, now time.Time) cipher.AEAD {
	if c.size == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[Ref{r.Owner, r.Name}]
	if e == nil || e.version != r.Version || e.kekVersion != r.KEKVersion ||
		!bytes.Equal(e.wrapped, r.WrappedKey) || !now.Before(e.expires) {
		return nil
	}
	return e.aead
}

// put caches the cipher for r's data key.
func (c *dataKeyCache) put(r *Record, aead cipher.AEAD, now time.Time) {
	if c.size == 0 {
		return
	}
	ref := Ref{r.Owner, r.Name}
	e := &dataKeyEntry{version: r.Version, kekVersion: r.KEKVersion,
		wrapped: bytes.Clone(r.WrappedKey), aead: aead, expires: now.Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ref]; !ok && len(c.m) >= c.size {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[ref] = e
}

// drop forgets (owner, name)'s data key.
func (c *dataKeyCache) drop(ref Ref) {
	c.mu.Lock()
	delete(c.m, ref)
	c.mu.Unlock()
}
