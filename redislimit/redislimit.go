// Package redislimit is an apikey.Limiter and an apikey.Counter on Redis,
// for services that run on more than one machine: every instance that
// shares a Redis shares the limits and quotas.
//
// Each decision is one Lua script run with EVALSHA (go-redis falls back to
// EVAL, once, when Redis does not have the script yet): one round trip.
// Scripts read Redis's own clock (TIME), so the application servers'
// clocks do not matter; this needs effects replication, the default since
// Redis 5 and the only mode since Redis 7. Each script touches a single
// key, so it works on Redis Cluster as is.
//
// The Limiter makes exactly the decisions of apikey.MemoryLimiter (GCRA,
// the semantics of golang.org/x/time/rate) given the times Redis reads.
// Its keys hold the key's theoretical arrival time and expire on their own
// once the bucket is full again. The Counter keeps fixed windows aligned
// to the Unix epoch, like apikey.MemoryCounter; its keys expire when
// their window ends.
//
// When Redis cannot be reached, Allow and Add return an error wrapping
// apikey.ErrUnavailable (and the underlying error). Bound how long that
// takes with the client's options: DialTimeout, ReadTimeout, MaxRetries.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

// Default key prefixes.
const (
	DefaultLimiterPrefix = "apikey:rl:"
	DefaultCounterPrefix = "apikey:quota:"
)

// maxExact is the largest integer that every Lua number (a float64)
// holds exactly.
const maxExact = 1 << 53

// Option configures New and NewCounter.
type Option func(*config)

type config struct {
	prefix string
}

// WithPrefix sets the prefix of the Redis keys (default
// DefaultLimiterPrefix for a Limiter, DefaultCounterPrefix for a Counter).
// Use distinct prefixes for distinct applications sharing a Redis. It may
// be empty.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

func newConfig(client redis.UniversalClient, defaultPrefix string, opts []Option) (config, error) {
	c := config{prefix: defaultPrefix}
	for _, o := range opts {
		o(&c)
	}
	if client == nil {
		return c, fmt.Errorf("%w: redislimit: nil Redis client", apikey.ErrInvalidRequest)
	}
	if ignoresDeadlines(client) {
		return c, fmt.Errorf("%w: redislimit: the Redis client ignores request deadlines, so a slow Redis "+
			"would hold every request for the client's read timeout: set ContextTimeoutEnabled: true in its options",
			apikey.ErrInvalidRequest)
	}
	return c, nil
}

// ignoresDeadlines reports whether client is a go-redis client that waits
// on the network for its own timeouts only, whatever the context's
// deadline: go-redis's default (ContextTimeoutEnabled false). A limiter
// sits in the path of every request, so it must give up when the request
// does.
func ignoresDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return !c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return !c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return !c.Options().ContextTimeoutEnabled
	}
	return false
}

// Limiter is an apikey.Limiter on Redis. It is safe for concurrent use,
// by any number of processes sharing the Redis.
type Limiter struct {
	client redis.UniversalClient
	prefix string
}

// New returns a Limiter that keeps its buckets in the Redis that client
// talks to. It returns an error wrapping apikey.ErrInvalidRequest if
// client is nil, or is a go-redis Client, ClusterClient or Ring (which is
// what NewFailoverClient, NewFailoverClusterClient and NewUniversalClient
// return) without ContextTimeoutEnabled: such a client would make a
// request wait out the client's read timeout on a slow Redis, past the
// request's own deadline. redis.ParseURL does not set that option; set it
// on the Options it returns. A UniversalClient of another type is not
// checked. New does not contact Redis.
func New(client redis.UniversalClient, opts ...Option) (*Limiter, error) {
	c, err := newConfig(client, DefaultLimiterPrefix, opts)
	if err != nil {
		return nil, err
	}
	return &Limiter{client: client, prefix: c.prefix}, nil
}

// gcraScript is apikey's gcraDecide in Lua; keep the two in step.
//
// KEYS[1]: the bucket. It holds the theoretical arrival time (TAT), the
// time the bucket is full again, in Unix nanoseconds as a decimal string.
// ARGV[1]: the emission interval in ns; ARGV[2]: the tolerance (burst ×
// interval) in ns, at most 2^53.
//
// Unix nanoseconds (~1.8e18) do not fit a Lua number exactly, but every
// difference the algorithm needs does (it is at most the tolerance), so
// times are kept as (seconds, nanoseconds) and only differences are
// computed as numbers.
//
// Returns {allowed, remaining, reset_ns, retry_after_ns, now_s, now_us}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_ns = tonumber(t[2]) * 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])

local ahead = 0
local v = redis.call('GET', KEYS[1])
if v then
  local s = tonumber(string.sub(v, 1, -10))
  local ns = tonumber(string.sub(v, -9))
  if s and ns then
    ahead = (s - now_s) * 1000000000 + (ns - now_ns)
    if ahead < 0 then ahead = 0 end
  end
end

local nxt = ahead + interval
if nxt > tolerance then
  return {0, 0, ahead, nxt - tolerance, now_s, tonumber(t[2])}
end

-- remaining = floor((tolerance - nxt) / interval), corrected for the
-- rounding of the division.
local x = tolerance - nxt
local rem = math.floor(x / interval)
if rem * interval > x then rem = rem - 1 end
if (rem + 1) * interval <= x then rem = rem + 1 end

-- TAT = now + nxt, split exactly into seconds and nanoseconds.
local q = math.floor(nxt / 1000000000)
local r = nxt - q * 1000000000
local sec = now_s + q
local nsec = now_ns + r
if nsec >= 1000000000 then
  nsec = nsec - 1000000000
  sec = sec + 1
end
-- Expire when the bucket is full again (an absent key is a full bucket),
-- rounded up to the next millisecond.
redis.call('SET', KEYS[1], string.format('%d%09d', sec, nsec), 'PX', math.floor(nxt / 1000000) + 1)
return {1, rem, nxt, 0, now_s, tonumber(t[2])}
`)

// Allow takes one request from key's bucket under limit. Its decisions
// are those of apikey.MemoryLimiter at the time Redis reads from its
// clock. It returns an error wrapping apikey.ErrInvalidRequest if limit is
// not usable (see apikey.Limit), and one wrapping apikey.ErrUnavailable
// if Redis does not answer.
func (l *Limiter) Allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, error) {
	d, _, err := l.allow(ctx, key, limit)
	return d, err
}

// allow is Allow that also returns the time Redis read, for tests.
func (l *Limiter) allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, time.Time, error) {
	interval, tolerance, err := gcraParams(limit)
	if err != nil {
		return apikey.Decision{}, time.Time{}, err
	}
	res, err := gcraScript.Run(ctx, l.client, []string{l.prefix + key}, interval, tolerance).Int64Slice()
	if err != nil {
		return apikey.Decision{}, time.Time{}, unavailable(err)
	}
	if len(res) != 6 {
		return apikey.Decision{}, time.Time{}, unavailable(fmt.Errorf("unexpected script reply %v", res))
	}
	return apikey.Decision{
		Allowed:    res[0] == 1,
		Limit:      tolerance / interval,
		Remaining:  res[1],
		Reset:      time.Duration(res[2]),
		RetryAfter: time.Duration(res[3]),
	}, time.Unix(res[4], res[5]*1000), nil
}

// gcraParams returns limit's emission interval and tolerance in
// nanoseconds, as apikey.MemoryLimiter computes them.
func gcraParams(limit apikey.Limit) (interval, tolerance int64, err error) {
	i, t, err := limit.GCRA()
	return int64(i), int64(t), err
}

// Counter is an apikey.Counter on Redis. It is safe for concurrent use,
// by any number of processes sharing the Redis, and its counts outlive
// the processes.
type Counter struct {
	client redis.UniversalClient
	prefix string
}

// NewCounter returns a Counter that keeps usage in the Redis that client
// talks to. It refuses the clients that New refuses, with an error
// wrapping apikey.ErrInvalidRequest. It does not contact Redis.
func NewCounter(client redis.UniversalClient, opts ...Option) (*Counter, error) {
	c, err := newConfig(client, DefaultCounterPrefix, opts)
	if err != nil {
		return nil, err
	}
	return &Counter{client: client, prefix: c.prefix}, nil
}

// quotaScript counts usage in fixed windows aligned to the Unix epoch.
//
// KEYS[1]: a hash {w: window start in Unix µs, n: units used in it}.
// ARGV[1]: the quota's limit; ARGV[2]: its period in µs; ARGV[3]: the
// units to add. All at most 2^53, and so is the time in µs (until the
// year 2255), so every number here is exact.
//
// An add that would exceed the limit is refused before anything is
// written. Returns {allowed, used, µs to window end, now_s, now_us}.
var quotaScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local start = now - (now % period)
local wend = start + period

local v = redis.call('HMGET', KEYS[1], 'w', 'n')
local used = 0
local same = v[1] and tonumber(v[1]) == start
if same then used = tonumber(v[2]) or 0 end

if n > limit - used then
  return {0, used, wend - now, tonumber(t[1]), tonumber(t[2])}
end
if same then
  used = redis.call('HINCRBY', KEYS[1], 'n', n) -- keeps the window's expiry
else
  used = n
  redis.call('HSET', KEYS[1], 'w', string.format('%d', start), 'n', n)
  redis.call('PEXPIREAT', KEYS[1], math.floor(wend / 1000) + 1)
end
return {1, used, wend - now, tonumber(t[1]), tonumber(t[2])}
`)

// Add adds n units to key's usage in the current window of q, as
// apikey.MemoryCounter.AddAt does at the time Redis reads from its clock:
// a refused Add does not count, n = 0 reports the usage. q.Period must be
// a whole number of microseconds and q.Limit and n at most 2^53; other
// arguments, and a zero q or a negative n, are refused with an error
// wrapping apikey.ErrInvalidRequest. It returns an error wrapping
// apikey.ErrUnavailable if Redis does not answer.
func (c *Counter) Add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	d, _, err := c.add(ctx, key, q, n)
	return d, err
}

func (c *Counter) add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, time.Time, error) {
	switch {
	case q.Limit <= 0 || q.Period <= 0:
		return apikey.Decision{}, time.Time{}, fmt.Errorf("%w: quota %d per %v: limit and period must be positive", apikey.ErrInvalidRequest, q.Limit, q.Period)
	case q.Period%time.Microsecond != 0:
		return apikey.Decision{}, time.Time{}, fmt.Errorf("%w: redislimit: quota period %v is not a whole number of microseconds", apikey.ErrInvalidRequest, q.Period)
	case q.Limit > maxExact:
		return apikey.Decision{}, time.Time{}, fmt.Errorf("%w: redislimit: quota limit %d above 2^53", apikey.ErrInvalidRequest, q.Limit)
	case n < 0 || n > maxExact:
		return apikey.Decision{}, time.Time{}, fmt.Errorf("%w: redislimit: quota cost %d out of range [0, 2^53]", apikey.ErrInvalidRequest, n)
	}
	res, err := quotaScript.Run(ctx, c.client, []string{c.prefix + key}, q.Limit, int64(q.Period/time.Microsecond), n).Int64Slice()
	if err != nil {
		return apikey.Decision{}, time.Time{}, unavailable(err)
	}
	if len(res) != 5 {
		return apikey.Decision{}, time.Time{}, unavailable(fmt.Errorf("unexpected script reply %v", res))
	}
	d := apikey.Decision{
		Allowed:   res[0] == 1,
		Limit:     q.Limit,
		Remaining: max(q.Limit-res[1], 0),
		Reset:     time.Duration(res[2]) * time.Microsecond,
	}
	if !d.Allowed {
		d.RetryAfter = d.Reset
	}
	return d, time.Unix(res[3], res[4]*1000), nil
}

// unavailable wraps a Redis failure so that it matches both
// apikey.ErrUnavailable and the underlying error (a context's error, a
// net.Error).
func unavailable(err error) error {
	if errors.Is(err, apikey.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: redislimit: %w", apikey.ErrUnavailable, err)
}

var (
	_ apikey.Limiter = (*Limiter)(nil)
	_ apikey.Counter = (*Counter)(nil)
)
