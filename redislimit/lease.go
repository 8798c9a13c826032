package redislimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/redis/go-redis/v9"
)

// DefaultSyncInterval is how long a LeaseLimiter's share of a bucket
// stays usable, unless WithSyncInterval says otherwise.
const DefaultSyncInterval = 100 * time.Millisecond

// DefaultAdvance is how many requests per key a LeaseLimiter allows
// before Redis has charged them, unless WithAdvance says otherwise.
const DefaultAdvance = 1

// LeaseLimiter is an apikey.Limiter on Redis that decides locally. For
// each key it takes a share of the key's bucket from Redis (a lease of
// several tokens, in one script call) and spends it in memory, without a
// round trip; it takes a new share when its share runs out, and ahead of
// time when three quarters of it are spent. A share left unspent when its
// sync interval ends is dropped, never carried over, and never given
// back.
//
// The buckets are those of Limiter (same keys, same GCRA state): a share
// of k tokens is what k requests to Limiter at the moment of the lease
// would have taken, so LeaseLimiters and Limiters with the same prefix
// share buckets.
//
// # Advances
//
// A request for a key that has no token in this instance's share is
// allowed at once, without waiting for Redis, when the key has fewer than
// n requests allowed that way and not yet charged to its bucket (n is
// WithAdvance's, DefaultAdvance by default): an advance. The advance goes
// to Redis as debt in the next batched script call, together with the
// lease of the next share, and Redis charges it to the bucket whether or
// not the bucket holds it; once that call returns, the debt is settled.
// An instance makes no advance for a key while Redis's refusal of it is
// in force (when the debt overdrew the bucket, until the bucket has a
// token again, counted from the reply's arrival), while a script call for
// it is on its way to Redis, and from a failed call until a call
// succeeds. The lease that goes with an advance is sized as any other
// (see below), except that it may be empty: a key whose last share ended
// its interval with nothing spent leases no tokens, so that a key asked
// for less than once per sync interval costs its bucket one token per
// request, as with Limiter. Without advances (WithAdvance(0)) a request
// with no token waits for the lease of a share.
//
// # The overshoot bound
//
// Let T be the sync interval, I the limit's emission interval
// (Period/Rate), B its BurstSize, n the advance and N the number of
// instances that use the key. In any span of time of length W, the
// requests that the fleet allows for one key number at most
//
//	B + floor((W + T) / I) + N×n
//
// against B + floor(W/I) for the exact Limiter: at most ceil(T/I) + N×n
// requests beyond the limit, that is the requests the limit grants per
// sync interval (10 for 100/s and the default 100ms) and n per instance.
// Without advances it is ceil(T/I), however many instances share the
// Redis.
//
// Why: every request allowed is charged to the bucket once, as one
// emission interval added to its theoretical arrival time (TAT): a token
// of a share when the script call that leased it ran, less than T before
// the token is spent (a share's interval starts before the call is sent,
// however long the call takes); an advance when the call that carries
// its debt runs, after the request. So the requests allowed in a span
// [a, b] number at most the intervals charged in (a−T, b] plus the
// advances not yet charged at b, at most n per instance, which what
// follows counts as charged at b. Those charges move the TAT from after
// a−T to at most b + B×I + E, where E is how far debts overdraw the
// bucket at b, so they number at most B + floor((W + T + E)/I). Leases
// never overdraw the bucket: without advances E = 0.
//
// With advances, E ≤ N×n×I. Let t be the last moment up to b when the
// bucket was not overdrawn. Every call after t finds it overdrawn: it
// grants nothing, and its reply refuses until the bucket, as that call
// left it, has a token again. An instance makes no advance before that
// reply's arrival plus that wait, none while a call for the key is on its
// way, and forgets the key only after the wait. So each instance's debts
// charged after t come in groups, one per call, of at most n each, and
// each group but the instance's first after t was allowed once the
// bucket, as the instance's previous call left it, had a token. For each
// instance with two groups or more, the call before its last group's
// allowed that group, by b, so it left the TAT at most b + B×I − I; let
// c be the latest of these calls. After c each instance charges at most
// one group, so E ≤ (N×n − 1)×I. If no instance has two groups after t,
// at most N×n intervals were charged after t, when the TAT was at most
// t + B×I, so E ≤ N×n×I.
//
// The bound holds while Redis is slow or down: a call in flight holds
// back the key's advances, a failed call's debt stays owed (at most n per
// key per instance) and goes with a later call, and no advance is made
// until a call succeeds. A call that timed out after Redis ran it has its
// debt charged again by a later call: Redis counts those requests twice,
// which lowers what the fleet allows over long spans, but while the
// bucket stays overdrawn it can add that debt to the excess of a span.
// Over long spans the fleet allows at most the limit's rate; shares
// dropped unspent make it allow less than the exact Limiter when
// instances hold shares that others would have used. The bound is that of
// a key whose limit does not change within the span.
//
// # Redis commands
//
// Leases are batched: the leases and debts that requests (and leases
// ahead of time) ask for while one script call is in flight go together
// in the next one, up to 128 keys per call, on a *redis.Client (a single
// Redis, or one behind Sentinel). On a ClusterClient, a Ring or another
// UniversalClient, whose keys may live on different nodes, each lease is
// a call of its own. The size of a share adapts to the key's traffic on
// this instance: it starts at one token, doubles each time a share is
// spent before its interval ends, up to the limit's burst, and shrinks to
// what was spent when an interval ends with tokens left. A key that makes
// m requests per sync interval on an instance costs about one lease per m
// decisions there; a key used less than once per interval costs one
// lease per decision, as with Limiter, but leases of concurrent requests
// (and, with advances, of successive ones) share a script call. A refusal
// by Redis is kept locally until the bucket has a token again (Redis says
// when), so a flood over the limit costs no commands.
//
// # When Redis cannot be reached
//
// Allow keeps spending the shares it holds, and making the advances the
// keys have left, until they run out or their interval ends. Then it
// fails closed: it returns an error wrapping apikey.ErrUnavailable (at
// once, without asking Redis, for a sync interval after a lease failed,
// so that a Redis that is down or slow costs one failed call per
// interval, not one per request), unless WithLocalFallback was given, in
// which case each instance applies the limit on its own in memory (a
// fleet of N instances then allows up to N times the limit) until Redis
// answers again.
//
// Decisions report, in Remaining, the tokens of this instance's share
// still unspent (what it can allow without asking Redis), and in Reset
// the time until the bucket is full as Redis last said.
//
// A LeaseLimiter is safe for concurrent use. It runs a goroutine that
// forgets idle keys (and sends the debts of failed calls again), which
// Close stops, and one that makes the batched script calls while there
// are leases to take.
type LeaseLimiter struct {
	client   redis.UniversalClient
	prefix   string
	interval time.Duration
	advance  int64             // advances per key outstanding at most
	batch    bool              // batch leases of distinct keys in one call
	fallback *memlimit.Limiter // nil: fail closed
	epoch    time.Time         // local times are nanoseconds since epoch, on the monotonic clock
	seed     maphash.Seed
	shards   [leaseShards]leaseShard
	// After a lease fails, keys without a share do not ask Redis again
	// until then (local ns): a Redis that is down costs one failed call
	// per sync interval, not one per request.
	downUntil atomic.Int64
	// A script call failed for Redis's sake and none has succeeded
	// since: no advances.
	failing atomic.Bool

	bmu      sync.Mutex
	pending  []*leaseReq // leases waiting for the next batched call
	flushing bool        // a goroutine is making batched calls

	stop    chan struct{}
	done    chan struct{}
	closeMu sync.Once
}

const (
	leaseShards = 64
	maxBatch    = 128 // keys per script call
)

// leaseShard holds the states of keys by a 64-bit hash of the key; a key
// whose hash another key's state holds takes the slot over, which drops
// the other key's share (unspent tokens are never a risk).
type leaseShard struct {
	mu sync.Mutex
	m  map[uint64]*leaseState
}

// leaseState is one key's local share. Times are local nanoseconds (see
// LeaseLimiter.now). Guarded by its shard's mutex.
type leaseState struct {
	key   string
	limit apikey.Limit

	tokens  int64 // unspent tokens of the current share
	expires int64 // when the current share must no longer be spent
	// A share leased ahead of time leaves the rest of the previous one
	// here, spent first, until its own interval ends.
	prevTokens  int64
	prevExpires int64

	leased    int64 // size of the current share
	want      int64 // size of the next lease
	denyUntil int64 // Redis refused: no token before then
	resetAt   int64 // the bucket is full then, as Redis last said
	lastSeen  int64

	// Advances: requests allowed before Redis charged them. debt is
	// those not yet sent in a script call; the call on its way carries
	// the others (req.debt). No advance before advanceAfter: Redis's
	// refusal, counted from the arrival of its reply.
	debt         int64
	advanceAfter int64

	req *leaseReq // the lease waiting for a call or in flight; nil if none
}

// leaseReq is one lease to take: st's next share, of want tokens (0:
// only st's debt), under limit. done is closed when the call ends, after
// err is set.
type leaseReq struct {
	sh                  *leaseShard
	key                 string
	st                  *leaseState
	limit               apikey.Limit
	done                chan struct{}
	interval, tolerance time.Duration
	want                int64
	err                 error

	// Set when the call is sent, under sh.mu: the debt it carries.
	sent bool
	debt int64
}

// NewLeaseLimiter returns a LeaseLimiter on the Redis that client talks
// to, and starts the goroutine that forgets idle keys. It refuses the
// clients NewLimiter refuses, a nil option and an invalid one, with an
// error wrapping apikey.ErrInvalidRequest. It does not contact Redis.
func NewLeaseLimiter(client redis.UniversalClient, opts ...LeaseOption) (*LeaseLimiter, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	c := leaseConfig{config: config{prefix: DefaultLimiterPrefix}, interval: DefaultSyncInterval, advance: DefaultAdvance}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: redislimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyLease(&c); err != nil {
			return nil, err
		}
	}
	_, single := client.(*redis.Client)
	l := &LeaseLimiter{
		client:   client,
		prefix:   c.prefix,
		interval: c.interval,
		advance:  int64(c.advance),
		batch:    single,
		epoch:    time.Now(),
		seed:     maphash.MakeSeed(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if c.fallback {
		fb, err := memlimit.NewLimiter()
		if err != nil {
			return nil, err
		}
		l.fallback = fb
	}
	for i := range l.shards {
		l.shards[i].m = make(map[uint64]*leaseState)
	}
	go l.sweep()
	return l, nil
}

// leaseScript charges, for each KEYS[i], ARGV[4i] requests already
// allowed (the debt) to the bucket of gcraScript (same key, same format),
// whatever it holds, then takes up to ARGV[4i-1] tokens at once: the most
// k ≤ ARGV[4i-1] such that k requests to gcraScript then would all be
// allowed. ARGV[4i-3] and ARGV[4i-2] are gcraScript's interval and
// tolerance. With a debt of 0 it takes what k requests to gcraScript
// would take, and a grant of 0 changes nothing; a debt the bucket cannot
// hold moves its TAT beyond the tolerance, so that gcraScript and this
// script refuse until the bucket has recovered.
//
// Returns, for each key in turn, {granted, left in the bucket, reset_ns,
// retry_after_ns}. retry_after_ns is 0 when tokens were granted or the
// bucket still holds one, and otherwise the time until it does.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_ns = tonumber(t[2]) * 1000
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[4*i-3])
  local tolerance = tonumber(ARGV[4*i-2])
  local want = tonumber(ARGV[4*i-1])
  local debt = tonumber(ARGV[4*i])

  local ahead = 0
  local v = redis.call('GET', key)
  if v then
    local s = tonumber(string.sub(v, 1, -10))
    local ns = tonumber(string.sub(v, -9))
    if s and ns then
      ahead = (s - now_s) * 1000000000 + (ns - now_ns)
      if ahead < 0 then ahead = 0 end
    end
  end
  local nxt = ahead + debt * interval

  -- avail = floor((tolerance - nxt) / interval), corrected for the
  -- rounding of the division: the tokens in the bucket once the debt is
  -- paid (negative when the debt overdraws it).
  local x = tolerance - nxt
  local avail = math.floor(x / interval)
  if avail * interval > x then avail = avail - 1 end
  if (avail + 1) * interval <= x then avail = avail + 1 end
  local k = 0
  if avail >= 1 then
    k = want
    if k > avail then k = avail end
  end
  nxt = nxt + k * interval
  if nxt > ahead then
    local q = math.floor(nxt / 1000000000)
    local r = nxt - q * 1000000000
    local sec = now_s + q
    local nsec = now_ns + r
    if nsec >= 1000000000 then
      nsec = nsec - 1000000000
      sec = sec + 1
    end
    redis.call('SET', key, string.format('%d%09d', sec, nsec), 'PX', math.floor(nxt / 1000000) + 1)
  end
  local n = #out
  if k == 0 and avail < 1 then
    out[n+1], out[n+2], out[n+3], out[n+4] = 0, 0, nxt, nxt + interval - tolerance
  else
    out[n+1], out[n+2], out[n+3], out[n+4] = k, avail - k, nxt, 0
  end
end
return out
`)

// Allow takes one request from key's bucket under limit: from this
// instance's share when it has one; otherwise as an advance, when the key
// may have one (see LeaseLimiter); otherwise from a new share that it
// leases from Redis while the request waits. It returns limit.Validate's
// error if limit is not usable, and an error wrapping
// apikey.ErrUnavailable when it has no share, may not advance and cannot
// lease a share (Redis does not answer, or ctx ends first), unless
// WithLocalFallback was given. It does not allocate when the share has a
// token.
func (l *LeaseLimiter) Allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, error) {
	d, _, err := l.allow(ctx, key, limit)
	return d, err
}

// allow is Allow that also returns the local time of the decision, for
// the tests of the overshoot bound.
func (l *LeaseLimiter) allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, int64, error) {
	interval, tolerance, err := limit.GCRA()
	if err != nil {
		return apikey.Decision{}, 0, err
	}
	h := maphash.String(l.seed, key)
	sh := &l.shards[h%leaseShards]
	for {
		sh.mu.Lock()
		now := l.now()
		st := sh.m[h]
		switch {
		case st == nil || st.key != key:
			// A new key (or, once in 2^64, another key of the same
			// hash, whose share is dropped).
			st = &leaseState{key: key, limit: limit, want: 1}
			sh.m[h] = st
		case st.limit != limit:
			// A share leased under another limit is not spent
			// under this one; the debt stays owed.
			st.setLimit(limit)
		}
		st.lastSeen = now
		if st.take(now) {
			d := st.decision(now, true)
			if st.req == nil && st.leased >= 4 && st.tokens*4 <= st.leased && now >= l.downUntil.Load() {
				// Three quarters spent: lease the next share now,
				// so that requests do not wait for it.
				r := l.newReq(sh, st, st.nextWant(now, false), interval, tolerance)
				if l.batch {
					l.enqueue(r)
				} else {
					go func() {
						// A share that arrives after its interval
						// would be no use.
						ctx, cancel := context.WithTimeout(context.Background(), l.interval)
						defer cancel()
						l.call(ctx, []*leaseReq{r})
					}()
				}
			}
			sh.mu.Unlock()
			return d, now, nil
		}
		if now < st.denyUntil {
			d := st.decision(now, false)
			d.RetryAfter = time.Duration(st.denyUntil - now)
			sh.mu.Unlock()
			return d, now, nil
		}
		if l.mayAdvance(st, now) {
			st.debt++
			if st.req == nil {
				// The debt goes with the lease of the next share;
				// an unsent lease takes it along.
				l.send(l.newReq(sh, st, st.nextWant(now, true), interval, tolerance))
			}
			d := st.decision(now, true)
			sh.mu.Unlock()
			return d, now, nil
		}
		if r := st.req; r != nil {
			sh.mu.Unlock()
			select {
			case <-r.done:
				continue
			case <-ctx.Done():
				return l.failed(ctx, key, limit, ctx.Err())
			}
		}
		if now < l.downUntil.Load() {
			sh.mu.Unlock()
			return l.failed(ctx, key, limit, errRedisDown)
		}
		if err := ctx.Err(); err != nil {
			sh.mu.Unlock()
			return l.failed(ctx, key, limit, err)
		}
		r := l.newReq(sh, st, st.nextWant(now, false), interval, tolerance)
		sh.mu.Unlock()
		if l.batch {
			l.enqueue(r)
			select {
			case <-r.done:
				err = r.err
			case <-ctx.Done():
				err = ctx.Err()
			}
		} else {
			l.call(ctx, []*leaseReq{r})
			err = r.err
		}
		if err != nil {
			return l.failed(ctx, key, limit, err)
		}
	}
}

// mayAdvance reports whether st, which has no token, may allow a request
// as an advance now. The caller holds st's shard's mutex.
func (l *LeaseLimiter) mayAdvance(st *leaseState, now int64) bool {
	return st.debt < l.advance &&
		(st.req == nil || !st.req.sent) &&
		now >= st.advanceAfter &&
		!l.failing.Load() && now >= l.downUntil.Load()
}

// errRedisDown is the error of a request that did not ask Redis because
// a lease failed less than a sync interval ago.
var errRedisDown = errors.New("a lease failed less than a sync interval ago")

// newReq returns the lease of want tokens to take for st, which it
// records as st's lease in progress. The caller holds sh.mu.
func (l *LeaseLimiter) newReq(sh *leaseShard, st *leaseState, want int64, interval, tolerance time.Duration) *leaseReq {
	r := &leaseReq{sh: sh, key: st.key, st: st, limit: st.limit, done: make(chan struct{}), interval: interval, tolerance: tolerance, want: want}
	st.req = r
	return r
}

// send has r taken without a request waiting for it: in the next batched
// call, or in a call of its own.
func (l *LeaseLimiter) send(r *leaseReq) {
	if l.batch {
		l.enqueue(r)
		return
	}
	// No request's context: the client's timeouts bound the call.
	go l.call(context.Background(), []*leaseReq{r})
}

// failed is the answer when no share is left and none could be leased.
func (l *LeaseLimiter) failed(ctx context.Context, key string, limit apikey.Limit, err error) (apikey.Decision, int64, error) {
	if l.fallback != nil {
		d, ferr := l.fallback.Allow(ctx, key, limit)
		return d, l.now(), ferr
	}
	return apikey.Decision{}, 0, unavailable(err)
}

// enqueue adds r to the next batched call, and starts the goroutine that
// makes the calls if none runs.
func (l *LeaseLimiter) enqueue(r *leaseReq) {
	l.bmu.Lock()
	l.pending = append(l.pending, r)
	start := !l.flushing
	l.flushing = true
	l.bmu.Unlock()
	if start {
		go l.flush()
	}
}

// flush makes batched calls until no lease is pending. While one call is
// in flight, the leases asked for meanwhile gather for the next.
func (l *LeaseLimiter) flush() {
	for {
		l.bmu.Lock()
		n := min(len(l.pending), maxBatch)
		if n == 0 {
			l.flushing = false
			l.bmu.Unlock()
			return
		}
		batch := slices.Clone(l.pending[:n])
		l.pending = slices.Delete(l.pending, 0, n)
		l.bmu.Unlock()
		// No request's context: the call serves several requests, each
		// of which stops waiting at its own deadline. The client's
		// timeouts bound it.
		l.call(context.Background(), batch)
	}
}

// call takes the leases of batch in one script call, with the debts of
// their states, records each share in its state, sets each one's err, and
// closes each done channel. The debt of a failed call stays owed.
func (l *LeaseLimiter) call(ctx context.Context, batch []*leaseReq) {
	keys := make([]string, len(batch))
	args := make([]any, 0, 4*len(batch))
	for i, r := range batch {
		r.sh.mu.Lock()
		r.sent = true
		r.debt, r.st.debt = r.st.debt, 0
		r.sh.mu.Unlock()
		keys[i] = l.prefix + r.key
		args = append(args, int64(r.interval), int64(r.tolerance), r.want, r.debt)
	}
	// The shares' intervals start before the script runs, so no token is
	// spent more than l.interval after Redis handed it out.
	sent := l.now()
	res, err := leaseScript.Run(ctx, l.client, keys, args...).Int64Slice()
	if err == nil && len(res) != 4*len(batch) {
		err = fmt.Errorf("unexpected script reply of %d numbers for %d keys", len(res), len(batch))
	}
	switch {
	case err == nil:
		l.downUntil.Store(0)
		l.failing.Store(false)
	case ctx.Err() == nil:
		// Redis failed, not the request that asked.
		l.downUntil.Store(l.now() + int64(l.interval))
		l.failing.Store(true)
	}
	for i, r := range batch {
		r.sh.mu.Lock()
		r.st.req = nil
		if err != nil {
			r.err = err
			r.st.debt += r.debt
		} else {
			r.st.record(l.now(), sent, sent+int64(l.interval), r, res[4*i:4*i+4])
		}
		r.sh.mu.Unlock()
		close(r.done)
	}
}

// record sets the share that leaseScript returned (res) for r, sent at
// sent and usable until expires, and the refusal, if any, now that the
// reply has arrived.
func (st *leaseState) record(now, sent, expires int64, r *leaseReq, res []int64) {
	if r.limit != st.limit {
		// Leased under a limit since replaced: the debt is paid, the
		// share is not spent under the new limit.
		return
	}
	switch granted := res[0]; {
	case granted > 0:
		if st.tokens > 0 && now < st.expires {
			st.prevTokens, st.prevExpires = st.tokens, st.expires
		} else {
			st.prevTokens, st.prevExpires = 0, 0
		}
		st.tokens, st.expires, st.leased = granted, expires, granted
		st.denyUntil, st.advanceAfter = 0, 0
	case res[3] == 0:
		// A debt paid, no lease asked for and no refusal: an empty
		// share, so that a request within its interval asks for
		// tokens (see nextWant).
		if now >= st.expires {
			st.tokens, st.expires, st.leased = 0, expires, 0
		}
		st.denyUntil, st.advanceAfter = 0, 0
	default:
		st.denyUntil = sent + res[3]
		// Counted from the reply's arrival, not the call's start, so
		// that the next advance comes after the bucket, as this call
		// left it, has a token again, however long the call took.
		st.advanceAfter = now + res[3]
	}
	st.resetAt = sent + res[2]
}

// setLimit makes st a state under limit, without a share; the debt and
// the lease in progress stay.
func (st *leaseState) setLimit(limit apikey.Limit) {
	st.limit = limit
	st.tokens, st.expires, st.prevTokens, st.prevExpires = 0, 0, 0, 0
	st.leased, st.want = 0, 1
	st.denyUntil, st.advanceAfter, st.resetAt = 0, 0, 0
}

// take spends one token of st's shares, the older first.
func (st *leaseState) take(now int64) bool {
	if st.prevTokens > 0 && now < st.prevExpires {
		st.prevTokens--
		return true
	}
	if st.tokens > 0 && now < st.expires {
		st.tokens--
		return true
	}
	return false
}

// nextWant returns the size of the next share: twice the current one if
// it was (nearly) spent within its interval, what was spent of it if its
// interval ended first, at most the burst; at least one token, unless the
// request is an advance, whose lease may be empty.
func (st *leaseState) nextWant(now int64, advancing bool) int64 {
	switch {
	case st.expires == 0:
		// No share yet.
	case now < st.expires && st.tokens*4 <= st.leased:
		st.want = max(st.leased*2, 1)
	case now >= st.expires:
		st.want = st.leased - st.tokens
	}
	least := int64(1)
	if advancing {
		least = 0
	}
	return min(max(st.want, least), int64(st.limit.BurstSize()))
}

func (st *leaseState) decision(now int64, allowed bool) apikey.Decision {
	d := apikey.Decision{Allowed: allowed, Limit: int64(st.limit.BurstSize())}
	if now < st.expires {
		d.Remaining += st.tokens
	}
	if now < st.prevExpires {
		d.Remaining += st.prevTokens
	}
	if st.resetAt > now {
		d.Reset = time.Duration(st.resetAt - now)
	}
	return d
}

// now is the local time in nanoseconds since l.epoch, on the monotonic
// clock, so that a step of the wall clock neither stretches nor shortens
// a share's interval.
func (l *LeaseLimiter) now() int64 { return int64(time.Since(l.epoch)) }

// sweep forgets keys whose shares and refusals have all ended and that
// owe no debt, and sends the debts of failed calls again, every few sync
// intervals, until Close.
func (l *LeaseLimiter) sweep() {
	defer close(l.done)
	every := max(4*l.interval, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		for i := range l.shards {
			sh := &l.shards[i]
			sh.mu.Lock()
			now := l.now()
			for k, st := range sh.m {
				switch {
				case st.req != nil:
				case st.debt > 0:
					// The debt of a failed call: send it again
					// once Redis may answer.
					if now >= l.downUntil.Load() {
						interval, tolerance, _ := st.limit.GCRA()
						l.send(l.newReq(sh, st, 0, interval, tolerance))
					}
				case now >= max(st.expires, st.prevExpires, st.denyUntil, st.advanceAfter) && now-st.lastSeen >= int64(every):
					delete(sh.m, k)
				}
			}
			sh.mu.Unlock()
		}
	}
}

// Len returns the number of keys this instance holds state for, for
// tests and metrics.
func (l *LeaseLimiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Close stops the goroutine that forgets idle keys. Shares held are
// dropped unspent, which Redis counts as spent. The limiter still
// answers afterwards, and a lease in flight ends on its own, within the
// client's timeouts. Close is idempotent and returns nil.
func (l *LeaseLimiter) Close() error {
	l.closeMu.Do(func() {
		close(l.stop)
		<-l.done
		if l.fallback != nil {
			l.fallback.Close()
		}
	})
	return nil
}

var _ apikey.Limiter = (*LeaseLimiter)(nil)
