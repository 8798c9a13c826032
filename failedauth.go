package apikey

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// blockedFor returns how long the request's client remains blocked for
// exceeding Limits.FailedAuth, or 0. While nobody is blocked, the usual
// case, it reads neither the client's address nor the clock.
func (mw *middleware) blockedFor(q *request) time.Duration {
	if mw.blocked == nil || mw.blocked.empty() {
		return 0
	}
	return mw.blocked.wait(limiterAddr(q.clientIP(mw)), mw.m.now())
}

// countFailure counts a failed authentication against the client under
// Limits.FailedAuth. When that puts the client over the limit, it blocks
// the client and returns how long for; otherwise, and when the limiter
// fails, it returns 0.
func (mw *middleware) countFailure(q *request) time.Duration {
	if mw.blocked == nil {
		return 0
	}
	addr := limiterAddr(q.clientIP(mw))
	d, err := mw.limits.Limiter.Allow(q.r.Context(), "authfail:"+addrKey(addr), mw.limits.FailedAuth)
	if err != nil || d.Allowed {
		return 0
	}
	wait := d.RetryAfter
	if wait <= 0 {
		wait = time.Second
	}
	now := mw.m.now()
	mw.blocked.add(addr, now, now.Add(wait))
	return wait
}

func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}

// maxBlocked bounds how many client addresses Limits.FailedAuth
// remembers as blocked.
const maxBlocked = 1 << 16

// blockList remembers client addresses that exceeded the failed
// authentication limit, and until when. It is safe for concurrent use.
type blockList struct {
	mu    sync.RWMutex
	until map[netip.Addr]int64 // unix nanoseconds
	max   int
	// size mirrors len(until), so the common case, nobody blocked, costs
	// an atomic load instead of a shared lock.
	size atomic.Int64
}

func newBlockList(max int) *blockList {
	return &blockList{until: make(map[netip.Addr]int64), max: max}
}

// empty reports whether no address is blocked, without taking the lock.
func (b *blockList) empty() bool { return b.size.Load() == 0 }

// wait returns how long addr remains blocked at now, or 0.
func (b *blockList) wait(addr netip.Addr, now time.Time) time.Duration {
	if b.empty() {
		return 0
	}
	b.mu.RLock()
	until, ok := b.until[addr]
	b.mu.RUnlock()
	if !ok {
		return 0
	}
	if wait := time.Duration(until - now.UnixNano()); wait > 0 {
		return wait
	}
	// Expired: forget it, so that once attacks stop the list empties and
	// wait is back to one atomic load.
	b.mu.Lock()
	if u, ok := b.until[addr]; ok && u <= now.UnixNano() {
		delete(b.until, addr)
		b.size.Store(int64(len(b.until)))
	}
	b.mu.Unlock()
	return 0
}

// add blocks addr until the given time; now is the Manager's clock. When
// the list is full it first drops expired entries, then, if it must,
// arbitrary ones: forgetting a block only costs one more limiter call for
// that client.
func (b *blockList) add(addr netip.Addr, now, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.until[addr]; !ok && len(b.until) >= b.max {
		for a, u := range b.until {
			if u <= now.UnixNano() {
				delete(b.until, a)
			}
		}
		for a := range b.until {
			if len(b.until) < b.max {
				break
			}
			delete(b.until, a)
		}
	}
	b.until[addr] = until.UnixNano()
	b.size.Store(int64(len(b.until)))
}
