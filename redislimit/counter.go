package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

// Counter is an apikey.Counter on Redis. It is safe for concurrent use,
// by any number of processes sharing the Redis, and its counts outlive
// the processes.
type Counter struct {
	client redis.UniversalClient
	prefix string
}

// NewCounter returns a Counter that keeps usage in the Redis that client
// talks to. It refuses the clients and options that NewLimiter refuses,
// with an error wrapping apikey.ErrInvalidRequest. It does not contact
// Redis.
func NewCounter(client redis.UniversalClient, opts ...CounterOption) (*Counter, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	c := config{prefix: DefaultCounterPrefix}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: redislimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyCounter(&c); err != nil {
			return nil, err
		}
	}
	return &Counter{client: client, prefix: c.prefix}, nil
}

// monthWindowLua defines window(now, period, day): the start and end, in
// Unix µs, of the window that holds now (Unix µs): fixed windows of period
// µs from the epoch, or for period 0 the calendar month in UTC that starts
// at 00:00 on day (nil or 0 means 1; a day past a month's end is its last
// day), as apikey.Quota.Window. Dates come from Howard Hinnant's
// days-from-civil and civil-from-days arithmetic (exact in doubles: days
// fit in 2^53 many times over).
const monthWindowLua = `
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153) -- months from March
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end
local function month_start(y, m, day)
  if m < 1 then y, m = y - 1, m + 12 end
  if m > 12 then y, m = y + 1, m - 12 end
  local last = ({31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31})[m]
  if m == 2 and ((y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0) then last = 29 end
  local d = day or 0
  if d < 1 then d = 1 end
  if d > last then d = last end
  return days_from_civil(y, m, d), y, m
end
local function window(now, period, day)
  if period > 0 then
    local start = now - (now % period)
    return start, start + period
  end
  local today = math.floor(now / 86400000000)
  local y, m = civil(today)
  local first, sy, sm = month_start(y, m, day)
  if first > today then first, sy, sm = month_start(y, m - 1, day) end
  local after = month_start(sy, sm + 1, day)
  return first * 86400000000, after * 86400000000
end
`

// quotaScript counts usage in fixed windows aligned to the Unix epoch, or
// in calendar months.
//
// KEYS[1]: a hash {w: window start in Unix µs, n: units used in it}.
// ARGV[1]: the quota's limit; ARGV[2]: its period in µs, 0 for calendar
// months; ARGV[3]: the units to add; ARGV[4]: the day months start on (0
// for the 1st). All at most 2^53, and so is the time in µs (until the
// year 2255), so every number here is exact.
//
// An add that would exceed the limit is refused before anything is
// written. Returns {allowed, used, µs to window end, now_s, now_us}.
var quotaScript = redis.NewScript(monthWindowLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local start, wend = window(now, period, tonumber(ARGV[4]))

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
// memlimit.Counter's AddAt does at the time Redis reads from its clock: a
// refused Add does not count, n = 0 reports the usage. It refuses what
// apikey.Quota.Validate refuses and, because Lua numbers are float64,
// also a period that is not a whole number of microseconds, a limit
// above 2^53 and an n that is negative or above 2^53, with an error
// wrapping apikey.ErrInvalidRequest. It returns an error wrapping
// apikey.ErrUnavailable if Redis does not answer.
func (c *Counter) Add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	d, _, err := c.add(ctx, key, q, n)
	return d, err
}

func (c *Counter) add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, time.Time, error) {
	if err := checkQuota(q, n); err != nil {
		return apikey.Decision{}, time.Time{}, err
	}
	res, err := quotaScript.Run(ctx, c.client, []string{c.prefix + key}, q.Limit, periodArg(q), n, q.Day).Int64Slice()
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

// refundScript takes units off the usage of the current window.
//
// KEYS[1]: the hash of quotaScript. ARGV[1]: the quota's period in µs;
// ARGV[2]: the units to take off; ARGV[3]: the day months start on. A key whose hash holds another window
// (or none) is left alone; HSET keeps the key's expiry. Returns the
// usage left.
var refundScript = redis.NewScript(monthWindowLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local start = window(now, period, tonumber(ARGV[3]))
local v = redis.call('HMGET', KEYS[1], 'w', 'n')
if not (v[1] and tonumber(v[1]) == start) then
  return 0
end
local left = (tonumber(v[2]) or 0) - tonumber(ARGV[2])
if left < 0 then left = 0 end
redis.call('HSET', KEYS[1], 'n', string.format('%d', left))
return left
`)

// Refund implements apikey.Refunder: it takes n units off key's usage in
// the current window of q, never below zero, at the time Redis reads from
// its clock, in one round trip. It refuses what Add refuses, with an error
// wrapping apikey.ErrInvalidRequest, and returns an error wrapping
// apikey.ErrUnavailable if Redis does not answer.
func (c *Counter) Refund(ctx context.Context, key string, q apikey.Quota, n int64) error {
	if err := checkQuota(q, n); err != nil {
		return err
	}
	if err := refundScript.Run(ctx, c.client, []string{c.prefix + key}, periodArg(q), n, q.Day).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// checkQuota refuses the quotas and costs that the scripts cannot count
// exactly.
func checkQuota(q apikey.Quota, n int64) error {
	if err := q.Validate(); err != nil {
		return err
	}
	switch {
	case q.Period%time.Microsecond != 0 && q.Period != apikey.MonthPeriod:
		return fmt.Errorf("%w: redislimit: quota period %v is not a whole number of microseconds", apikey.ErrInvalidRequest, q.Period)
	case q.Limit > maxExact:
		return fmt.Errorf("%w: redislimit: quota limit %d above 2^53", apikey.ErrInvalidRequest, q.Limit)
	case n < 0 || n > maxExact:
		return fmt.Errorf("%w: redislimit: quota cost %d out of range [0, 2^53]", apikey.ErrInvalidRequest, n)
	}
	return nil
}

// maxExact is the largest integer that every Lua number (a float64)
// holds exactly.
const maxExact = 1 << 53

var (
	_ apikey.Counter  = (*Counter)(nil)
	_ apikey.Refunder = (*Counter)(nil)
)

// periodArg is the scripts' period argument: µs, or 0 for calendar months.
func periodArg(q apikey.Quota) int64 {
	if q.Period == apikey.MonthPeriod {
		return 0
	}
	return int64(q.Period / time.Microsecond)
}
