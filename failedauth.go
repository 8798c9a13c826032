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
	addr, ok := mw.failureAddr(q)
	if !ok {
		return 0
	}
	return mw.blocked.wait(addr, mw.m.now())
}

// countFailure counts a failed authentication against the client under
// Limits.FailedAuth. When that puts the client over the limit, it blocks
// the client and returns how long for; otherwise, when the limiter fails
// and when the client has no address of its own, it returns 0.
func (mw *middleware) countFailure(q *request) time.Duration {
	if mw.blocked == nil {
		return 0
	}
	addr, ok := mw.failureAddr(q)
	if !ok {
		return 0
	}
	d, err := mw.limits.Limiter.Allow(q.r.Context(), "authfail:"+addr.String(), mw.limits.FailedAuth)
	if err != nil || d.Allowed {
		return 0
	}
	wait := d.RetryAfter
	if wait <= 0 {
		wait = time.Second
	}
	mw.blocked.add(addr, mw.m.now().Add(wait))
	return wait
}

// failureAddr returns the address that q's failed authentications count
// under: the client's (its /64 for IPv6). It returns false when the client
// has no address of its own: none at all (a Unix socket, an empty
// RemoteAddr), or a trusted proxy's, found when the proxy named no client.
// A bucket shared by such requests would let any one client lock out all
// the others, so they are neither counted nor blocked.
func (mw *middleware) failureAddr(q *request) (netip.Addr, bool) {
	a := q.clientIP(mw)
	if !a.IsValid() || containsAddr(mw.proxies, a) {
		return netip.Addr{}, false
	}
	return limiterAddr(a), true
}

// maxBlocked bounds how many client addresses Limits.FailedAuth
// remembers as blocked.
const maxBlocked = 1 << 16

// blockList remembers client addresses that exceeded the failed
// authentication limit, and until when, for at most max addresses. When
// it is full, a new block pushes out the oldest one, in constant time:
// forgetting a block only costs one more limiter call for that client,
// and since every block lasts about as long, the oldest is about the
// first to expire. It is safe for concurrent use.
type blockList struct {
	mu    sync.RWMutex
	until map[netip.Addr]block
	// order holds the blocked addresses in the order they were added: a
	// ring of n slots starting at head, which grows to max slots and then
	// wraps. A slot whose address was forgotten on expiry is stale: that
	// address is gone, or was blocked again in a newer slot.
	order   []netip.Addr
	head, n int
	max     int
	// size mirrors len(until), so the common case, nobody blocked, costs
	// an atomic load instead of a shared lock.
	size atomic.Int64
}

type block struct {
	until int64 // unix nanoseconds
	slot  int   // index in order
}

func newBlockList(max int) *blockList {
	return &blockList{until: make(map[netip.Addr]block), max: max}
}

// empty reports whether no address is blocked, without taking the lock.
func (b *blockList) empty() bool { return b.size.Load() == 0 }

// wait returns how long addr remains blocked at now, or 0.
func (b *blockList) wait(addr netip.Addr, now time.Time) time.Duration {
	if b.empty() {
		return 0
	}
	b.mu.RLock()
	e, ok := b.until[addr]
	b.mu.RUnlock()
	if !ok {
		return 0
	}
	if wait := time.Duration(e.until - now.UnixNano()); wait > 0 {
		return wait
	}
	// Expired: forget it, so that once attacks stop the list empties and
	// wait is back to one atomic load. Its slot in order goes stale.
	b.mu.Lock()
	if e, ok := b.until[addr]; ok && e.until <= now.UnixNano() {
		delete(b.until, addr)
		b.size.Store(int64(len(b.until)))
	}
	b.mu.Unlock()
	return 0
}

// add blocks addr until the given time. A new address takes the newest
// slot; when every slot is taken it first drops the oldest slot, and with
// it that address's block unless the slot is stale. An address still in
// the list (its block expired but not yet forgotten, or a concurrent
// failure) keeps its slot.
func (b *blockList) add(addr netip.Addr, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.until[addr]; ok {
		b.until[addr] = block{until: until.UnixNano(), slot: e.slot}
		return
	}
	if b.n == b.max {
		if old := b.order[b.head]; b.until[old].slot == b.head {
			delete(b.until, old) // not stale: the oldest block goes
		}
		b.head = (b.head + 1) % b.max
		b.n--
	}
	slot := (b.head + b.n) % b.max
	if slot == len(b.order) {
		b.order = append(b.order, addr)
	} else {
		b.order[slot] = addr
	}
	b.n++
	b.until[addr] = block{until: until.UnixNano(), slot: slot}
	b.size.Store(int64(len(b.until)))
}
