package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

// Limiter is an apikey.Limiter on Redis. It is safe for concurrent use,
// by any number of processes sharing the Redis.
type Limiter struct {
	client redis.UniversalClient
	prefix string
}

// NewLimiter returns a Limiter that keeps its buckets in the Redis that
// client talks to. It returns an error wrapping apikey.ErrInvalidRequest
// if client is nil, or is a go-redis Client, ClusterClient or Ring (which
// is what NewFailoverClient, NewFailoverClusterClient and
// NewUniversalClient return) without ContextTimeoutEnabled: such a client
// would make a request wait out the client's read timeout on a slow
// Redis, past the request's own deadline. redis.ParseURL does not set
// that option; set it on the Options it returns. A UniversalClient of
// another type is not checked. A nil option is an error too. NewLimiter
// does not contact Redis.
func NewLimiter(client redis.UniversalClient, opts ...LimiterOption) (*Limiter, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	c := config{prefix: DefaultLimiterPrefix}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: redislimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyLimiter(&c); err != nil {
			return nil, err
		}
	}
	return &Limiter{client: client, prefix: c.prefix}, nil
}

// gcraScript is the in-memory limiter's GCRA decision (memlimit.Limiter)
// in Lua, with the interval and tolerance of apikey.Limit.GCRA; keep the
// two in step.
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
// are those of memlimit.Limiter at the time Redis reads from its clock.
// It returns limit.Validate's error (wrapping apikey.ErrInvalidRequest)
// if limit is not usable, and an error wrapping apikey.ErrUnavailable if
// Redis does not answer.
func (l *Limiter) Allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, error) {
	d, _, err := l.allow(ctx, key, limit)
	return d, err
}

// allow is Allow that also returns the time Redis read, for tests.
func (l *Limiter) allow(ctx context.Context, key string, limit apikey.Limit) (apikey.Decision, time.Time, error) {
	interval, tolerance, err := limit.GCRA()
	if err != nil {
		return apikey.Decision{}, time.Time{}, err
	}
	res, err := gcraScript.Run(ctx, l.client, []string{l.prefix + key}, int64(interval), int64(tolerance)).Int64Slice()
	if err != nil {
		return apikey.Decision{}, time.Time{}, unavailable(err)
	}
	if len(res) != 6 {
		return apikey.Decision{}, time.Time{}, unavailable(fmt.Errorf("unexpected script reply %v", res))
	}
	return apikey.Decision{
		Allowed:    res[0] == 1,
		Limit:      int64(limit.BurstSize()),
		Remaining:  res[1],
		Reset:      time.Duration(res[2]),
		RetryAfter: time.Duration(res[3]),
	}, time.Unix(res[4], res[5]*1000), nil
}

var _ apikey.Limiter = (*Limiter)(nil)
