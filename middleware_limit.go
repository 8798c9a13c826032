package apikey

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Policy names in the RateLimit-Policy and RateLimit fields.
const (
	policyKey   = "key"
	policyOwner = "owner"
	policyQuota = "quota"
)

// Canonical header names, for writing the Header map directly.
const (
	headerRateLimitPolicy = "Ratelimit-Policy"
	headerRateLimit       = "Ratelimit"
)

// limit applies the key's rate limits and quota. It writes the RateLimit
// fields, and on refusal or limiter failure the whole response, in which
// case it returns false.
//
// The fields' []string values are slices of lc.fields, which is allocated
// with the request's context anyway. A RateLimit-Policy value that does not
// depend on the key (the default and owner limits) is one of the strings
// built once in mw.policies; the RateLimit value, and any other policy
// value, cost one allocation together.
//
// kid is the key's ID sliced from the token (see tokenID): the quota
// counter's key is a copy of it, and a limiter that keeps only hashes
// (limiterHashes) is given it as is.
func (mw *middleware) limit(q *request, k *Key, kid string, lc *limitedContext) bool {
	ctx := q.r.Context()
	var buf [256]byte
	pol := buf[:0] // RateLimit-Policy items
	var items [3]struct {
		name string
		d    Decision
	}
	n := 0
	var refused *Decision
	var reason, desc string
	allowed := func(d Decision, name string) {
		items[n].name, items[n].d = name, d
		n++
		if !d.Allowed && refused == nil {
			refused = &items[n-1].d
		}
	}
	if mw.limiter != nil {
		l, policy := k.RateLimit, ""
		if l.IsZero() || l == mw.defaultLimit {
			l, policy = mw.defaultLimit, mw.defaultPolicy
		}
		if !l.IsZero() {
			lkey := kid
			if !mw.limiterHashes {
				lkey = k.ID
			}
			d, err := mw.limiter.Allow(ctx, lkey, l)
			if err != nil {
				if mw.limiterFailed(q, err) {
					return false
				}
			} else {
				pol = appendSep(pol, n)
				if policy != "" {
					pol = append(pol, policy...)
				} else {
					pol = appendLimitPolicy(pol, policyKey, l)
				}
				allowed(d, policyKey)
				reason, desc = "rate_limit", descRate
			}
		}
		if refused == nil && !mw.ownerLimit.IsZero() {
			d, err := mw.limiter.Allow(ctx, "owner:"+k.Owner, mw.ownerLimit)
			if err != nil {
				if mw.limiterFailed(q, err) {
					return false
				}
			} else {
				pol = appendSep(pol, n)
				pol = append(pol, mw.ownerPolicy...)
				allowed(d, policyOwner)
				if refused == &items[n-1].d {
					reason, desc = "owner_rate_limit", descRate
				}
			}
		}
	}
	if refused == nil && mw.counter != nil && !k.Quota.IsZero() {
		cost := int64(1)
		if mw.cost != nil {
			cost = mw.cost(q.r)
		}
		if cost > 0 {
			d, err := mw.counter.Add(ctx, "quota:"+kid, k.Quota, cost)
			if err != nil {
				if mw.limiterFailed(q, err) {
					return false
				}
			} else {
				pol = appendSep(pol, n)
				pol = appendQuotaPolicy(pol, k.Quota)
				allowed(d, policyQuota)
				if refused == &items[n-1].d {
					reason, desc = "quota", descQuota
				}
			}
		}
	}
	if n > 0 {
		vals := &lc.fields
		for _, p := range mw.policies {
			if string(pol) == p { // compared without converting
				vals[0] = p
				pol = pol[:0]
				break
			}
		}
		split := len(pol)
		b := pol
		for i := 0; i < n; i++ {
			b = appendSep(b, i)
			b = appendRateItem(b, items[i].name, items[i].d)
		}
		s := string(b)
		if split > 0 {
			vals[0] = s[:split]
		}
		vals[1] = s[split:]
		h := q.w.Header()
		h[headerRateLimitPolicy] = vals[0:1:1]
		h[headerRateLimit] = vals[1:2:2]
	}
	if refused != nil {
		wait := refused.RetryAfter
		if wait <= 0 {
			wait = refused.Reset
		}
		mw.reject(q, OutcomeLimited, reason, "", &AuthError{
			Status: http.StatusTooManyRequests, Description: desc, RetryAfter: max(wait, time.Second)})
		return false
	}
	return true
}

// limiterFailed handles an error from the limiter or the counter: a 503
// unless WithLimiterFailOpen lets the request through (the error then
// travels in its Event). It reports whether the request has been answered.
func (mw *middleware) limiterFailed(q *request, err error) bool {
	if !mw.failOpen {
		mw.unavailable(q, "limiter", err)
		return true
	}
	q.err = err
	return false
}

func appendSep(b []byte, i int) []byte {
	if i > 0 {
		b = append(b, ", "...)
	}
	return b
}

// appendLimitPolicy appends a RateLimit-Policy item for a token bucket,
// its sustained rate as quota q per window w:
//
//	"key";q=100;w=60
func appendLimitPolicy(b []byte, name string, l Limit) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, int64(l.Rate), 10)
	b = append(b, ";w="...)
	return strconv.AppendInt(b, max(ceilSeconds(l.Period), 1), 10)
}

func appendQuotaPolicy(b []byte, quota Quota) []byte {
	b = append(b, `"`+policyQuota+`";q=`...)
	b = strconv.AppendInt(b, quota.Limit, 10)
	b = append(b, ";w="...)
	return strconv.AppendInt(b, max(ceilSeconds(quota.Period), 1), 10)
}

// appendRateItem appends a RateLimit item: what remains and how many
// seconds until the policy resets.
//
//	"key";r=42;t=17
func appendRateItem(b []byte, name string, d Decision) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, max(d.Remaining, 0), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
}

// maxBlocked bounds how many client addresses WithFailedAuthLimit
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

// add blocks addr until the given time; now is the Manager's clock. When the list is full it first
// drops expired entries, then, if it must, arbitrary ones: forgetting a
// block only costs one more limiter call for that client.
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
