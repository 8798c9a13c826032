package redislimit

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

// DefaultLedgerPrefix is the default prefix of a Ledger's Redis keys.
const DefaultLedgerPrefix = "apikey:credits:"

// Ledger is an apikey.Ledger on Redis: credit balances shared by every
// instance that uses the Redis. Every Spend, Refund and TopUp is one Lua
// script run with EVALSHA, one round trip, that decides and writes at
// once: a balance never goes below zero and no top-up is lost, however
// many instances spend from it. Refill periods are those of
// apikey.Credits.Window, by Redis's clock (TIME) unless WithClock says
// otherwise. Each balance is a hash of one key (the refill period it
// counts in, the units used, the top-ups left), so a Ledger works on Redis
// Cluster as is. Balances do not expire: they hold top-ups, which are
// paid for. A Ledger is safe for concurrent use.
type Ledger struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time // nil: Redis's TIME
}

// NewLedger returns a Ledger that keeps balances in the Redis that client
// talks to, under keys DefaultLedgerPrefix + the ledger key unless
// WithPrefix says otherwise. It refuses the clients that NewLimiter
// refuses and bad options, with an error wrapping
// apikey.ErrInvalidRequest. It does not contact Redis.
func NewLedger(client redis.UniversalClient, opts ...LedgerOption) (*Ledger, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	c := ledgerConfig{config: config{prefix: DefaultLedgerPrefix}}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: redislimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyLedger(&c); err != nil {
			return nil, err
		}
	}
	return &Ledger{client: client, prefix: c.prefix, now: c.now}, nil
}

// ledgerScript applies one operation to a balance.
//
// KEYS[1]: a hash {w: the start of the refill period it counts in, Unix
// µs (0 for a balance never refilled), u: units used in it, x: top-ups
// left}. ARGV[1]: the operation, "spend", "refund" or "topup"; ARGV[2]:
// the grant; ARGV[3]: the refill period in µs, 0 for calendar months, -1
// for never; ARGV[4]: the day months start on; ARGV[5]: the units;
// ARGV[6]: the time in Unix µs, or -1 for Redis's TIME; ARGV[7]: the
// largest balance, apikey.MaxCredits. Every number is at most 2^53, so
// exact.
//
// A hash counting in an earlier period is rolled over first: u goes to 0,
// and x to what the period's spends beyond the grant left of it. Only an
// operation that changes the balance writes. Returns {ok, u, x, µs to the
// period's end (0 for never)}; ok is 0 for a refused spend or a top-up
// past ARGV[7].
var ledgerScript = redis.NewScript(monthWindowLua + `
local op = ARGV[1]
local grant = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local n = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local maxBalance = tonumber(ARGV[7])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local start, wend = 0, now
if period >= 0 then start, wend = window(now, period, tonumber(ARGV[4])) end

local v = redis.call('HMGET', KEYS[1], 'w', 'u', 'x')
local w, used, extra = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
if w and w < start then
  local over = used - grant
  if over < 0 then over = 0 end
  extra = extra - over
  if extra < 0 then extra = 0 end
  used = 0
end
-- The balance, computed so that no intermediate passes 2^53.
local balance
if used <= grant then balance = (grant - used) + extra else balance = extra - (used - grant) end

local ok = 1
if op == 'spend' then
  if n > balance then
    ok = 0
  elseif n > 0 then
    used = used + n
  else
    op = 'read'
  end
elseif op == 'refund' then
  if not w or used == 0 then
    op = 'read'
  elseif n > used then
    used = 0
  else
    used = used - n
  end
else
  if n > maxBalance - balance then ok = 0 else extra = extra + n end
end
if ok == 1 and op ~= 'read' then
  redis.call('HSET', KEYS[1], 'w', string.format('%d', start), 'u', string.format('%d', used), 'x', string.format('%d', extra))
end
return {ok, used, extra, wend - now}
`)

// Spend implements apikey.Ledger, in one round trip. It refuses what
// apikey.Credits.Validate refuses and, because Lua numbers are float64, a
// refill period that is not a whole number of microseconds; also a
// negative n and a key that is not UTF-8 without NUL bytes: all with an
// error wrapping apikey.ErrInvalidRequest. It returns an error wrapping
// apikey.ErrUnavailable if Redis does not answer. An n above
// apikey.MaxCredits, which no balance holds, is refused as a Spend.
func (l *Ledger) Spend(ctx context.Context, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	if err := checkCredits(key, c, n); err != nil {
		return apikey.Decision{}, err
	}
	// No balance holds more than MaxCredits, which the script could not
	// tell from MaxCredits + 1 (Lua numbers are float64): read the balance
	// and refuse.
	units := n
	if n > apikey.MaxCredits {
		units = 0
	}
	res, err := l.run(ctx, "spend", key, c, units)
	if err != nil {
		return apikey.Decision{}, err
	}
	if units != n {
		res[0] = 0
	}
	capacity := c.Grant + res[2]
	d := apikey.Decision{
		Allowed:   res[0] == 1,
		Limit:     capacity,
		Remaining: capacity - res[1],
		Reset:     time.Duration(res[3]) * time.Microsecond,
	}
	if !d.Allowed && c.Grant >= n {
		d.RetryAfter = d.Reset
	}
	return d, nil
}

// Refund implements apikey.Ledger, in one round trip: it gives back up
// to n units that the current refill period used. It refuses what Spend
// refuses.
func (l *Ledger) Refund(ctx context.Context, key string, c apikey.Credits, n int64) error {
	if err := checkCredits(key, c, n); err != nil {
		return err
	}
	_, err := l.run(ctx, "refund", key, c, min(n, apikey.MaxCredits))
	return err
}

// TopUp implements apikey.Ledger, in one round trip. It refuses what
// Spend refuses and an n below 1 with an error wrapping
// apikey.ErrInvalidRequest, as it does a top-up that would take the
// balance past apikey.MaxCredits (which adds nothing).
func (l *Ledger) TopUp(ctx context.Context, key string, c apikey.Credits, n int64) (int64, error) {
	if err := checkCredits(key, c, n); err != nil {
		return 0, err
	}
	if n < 1 || n > apikey.MaxCredits {
		return 0, fmt.Errorf("%w: redislimit: top-up of %d credits: want 1 to %d", apikey.ErrInvalidRequest, n, apikey.MaxCredits)
	}
	res, err := l.run(ctx, "topup", key, c, n)
	if err != nil {
		return 0, err
	}
	if res[0] != 1 {
		return 0, fmt.Errorf("%w: redislimit: a top-up of %d would take the balance of %.40q past %d", apikey.ErrInvalidRequest, n, key, apikey.MaxCredits)
	}
	return c.Grant + res[2] - res[1], nil
}

// run runs ledgerScript and checks the shape of its reply.
func (l *Ledger) run(ctx context.Context, op, key string, c apikey.Credits, n int64) ([]int64, error) {
	now := int64(-1)
	if l.now != nil {
		now = l.now().UnixMicro()
	}
	period := int64(-1)
	switch c.Period {
	case apikey.MonthPeriod:
		period = 0
	case apikey.NoRefill:
	default:
		period = int64(c.Period / time.Microsecond)
	}
	res, err := ledgerScript.Run(ctx, l.client, []string{l.prefix + key},
		op, c.Grant, period, c.Day, n, now, apikey.MaxCredits).Int64Slice()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(res) != 4 {
		return nil, unavailable(fmt.Errorf("unexpected script reply %v", res))
	}
	if c.Period == apikey.NoRefill {
		res[3] = 0
	}
	return res, nil
}

// checkCredits refuses what the script cannot apply exactly.
func checkCredits(key string, c apikey.Credits, n int64) error {
	if err := c.Validate(); err != nil {
		return err
	}
	switch {
	case c.Period > 0 && c.Period%time.Microsecond != 0:
		return fmt.Errorf("%w: redislimit: credits refill period %v is not a whole number of microseconds", apikey.ErrInvalidRequest, c.Period)
	case n < 0:
		return fmt.Errorf("%w: redislimit: negative credits %d", apikey.ErrInvalidRequest, n)
	case !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: redislimit: ledger key must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	return nil
}

var _ apikey.Ledger = (*Ledger)(nil)
