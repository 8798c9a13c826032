package apikey

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limit is a token-bucket rate limit: Rate requests per Period on average,
// with bursts of up to Burst requests. The zero Limit means "not set".
//
// The bucket holds BurstSize tokens and starts full; a request takes one
// token, and one token comes back every Period/Rate (truncated to the
// nanosecond): the semantics of golang.org/x/time/rate with
// rate.Every(Period/Rate) and burst BurstSize. Burst 0 means Burst = Rate:
// "100/s" allows 100 requests at once, then one every 10ms.
//
// A usable Limit has Rate ≥ 1, Period ≥ Rate nanoseconds (at most one
// request per nanosecond), Burst ≥ 0, and a bucket that refills from
// empty within MaxLimitHorizon; limiters refuse other Limits with an error
// wrapping ErrInvalidRequest. Longer horizons are quotas (see Quota).
//
// Its text form, read by ParseLimit and written by String, is
// "RATE/PERIOD" or "RATE/PERIOD,burst=BURST", e.g. "100/s", "10/30s",
// "1000/m,burst=50".
type Limit struct {
	Rate   int           // requests per Period, ≥ 1
	Period time.Duration // ≥ 1ns
	Burst  int           // bucket size; 0 means Rate
}

// MaxLimitHorizon is the longest time a Limit's bucket may take to refill
// from empty (Burst × Period/Rate). It is 2^53 nanoseconds, about 104
// days: every duration a limiter computes then stays exact in a float64,
// which lets the Redis limiter (whose Lua numbers are doubles) make
// exactly the decisions the in-memory one makes.
const MaxLimitHorizon = time.Duration(1 << 53)

// IsZero reports whether l is the zero Limit (no limit set).
func (l Limit) IsZero() bool { return l == Limit{} }

// Quota is a usage cap: at most Limit units (requests, or credits when a
// request has a cost) per Period. The zero Quota means "not set".
//
// Periods are fixed windows aligned to the Unix epoch in UTC: a window
// starts at a multiple of Period since 1970-01-01T00:00:00Z, so a 24h
// quota resets at midnight UTC and a 1h quota on the hour; "720h" is
// 30-day windows counted from the epoch. A Period of MonthPeriod counts
// calendar months instead: a window starts at 00:00 UTC on day Day of a
// month (the 1st when Day is 0) and ends at 00:00 UTC on that day of the
// next month, a billing cycle. In a month too short for Day, the window
// starts on its last day: with Day 31, on 30 April and 28 or 29 February
// (see Window).
//
// Its text form, read by ParseQuota and written by String, is
// "LIMIT/PERIOD", e.g. "10000/d", "1000000/720h", "LIMIT/month", or
// "LIMIT/month@15" for months starting on the 15th.
type Quota struct {
	Limit  int64         // units per Period, ≥ 1
	Period time.Duration // ≥ 1ns, or MonthPeriod
	Day    int           // with MonthPeriod, 1–31, the day months start on; 0 means 1
}

// MonthPeriod is the Period of a Quota counted per calendar month in UTC
// ("1000000/month"). It is not a duration: months have 28 to 31 days.
const MonthPeriod time.Duration = -1

// Window returns the window of q that holds t: [start, end), in UTC. It
// is for Counters on other backends, which must count the same windows.
// Its result is meaningless for a q that Validate refuses.
func (q Quota) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	if q.Period == MonthPeriod {
		return monthWindow(t, q.Day)
	}
	return fixedWindow(t, q.Period)
}

// fixedWindow returns the window of length period (> 0) aligned to the
// Unix epoch that holds t, in UTC; [t, t) for a period that is not.
func fixedWindow(t time.Time, period time.Duration) (start, end time.Time) {
	if period <= 0 {
		return t, t
	}
	n := t.UnixNano()
	m := n % int64(period)
	if m < 0 {
		m += int64(period)
	}
	start = time.Unix(0, n-m).UTC()
	return start, start.Add(period)
}

// monthWindow returns the calendar month starting on day (1–31; 0 means
// 1, and a day past a month's end is its last day) that holds t, in UTC.
func monthWindow(t time.Time, day int) (start, end time.Time) {
	y, m, _ := t.Date()
	start = monthStart(y, m, day)
	if start.After(t) {
		start = monthStart(y, m-1, day)
	}
	y, m, _ = start.Date()
	return start, monthStart(y, m+1, day)
}

// monthStart returns 00:00 UTC on day (0 means 1) of month m of year y,
// or on that month's last day if it is shorter. m may be out of range, as
// time.Date allows.
func monthStart(y int, m time.Month, day int) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(max(day, 1), last)-1)
}

// IsZero reports whether q is the zero Quota (no quota set).
func (q Quota) IsZero() bool { return q == Quota{} }

// Decision is a Limiter's or Counter's answer for one request. A refusal
// is a Decision with Allowed false, not an error.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the policy's size: the bucket's burst, or the quota.
	Limit int64
	// Remaining is what is left after this request: whole tokens in the
	// bucket, or units of the quota.
	Remaining int64
	// Reset is how long until the full Limit is available again (the
	// bucket refilled, or the quota period over).
	Reset time.Duration
	// RetryAfter is, when Allowed is false, how long until the request
	// could succeed; zero otherwise.
	RetryAfter time.Duration
}

// Limiter applies rate limits by key (a key ID, an owner, a client IP).
// Implementations must be safe for concurrent use. An error means no
// decision could be made (a backend is down); callers fail closed on it
// unless configured otherwise.
type Limiter interface {
	// Allow takes one request from key's bucket under limit.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}

// Counter counts usage against quotas by key. Implementations must be
// safe for concurrent use.
type Counter interface {
	// Add adds n units to key's usage in the current period of q and
	// reports whether the usage stays within q.Limit. A refused Add does
	// not count.
	Add(ctx context.Context, key string, q Quota, n int64) (Decision, error)
}

// Refunder is implemented by Counters that can give units back. The
// middleware uses it when RequireScopes, RequireAnyScope or Require
// refuses a request (403) after the Counter counted it, so that a refused
// request costs no quota. With a Counter that does not implement it, such a
// request keeps its cost. Every Counter in this module implements it.
type Refunder interface {
	// Refund takes n units off key's usage in the current window of q,
	// never below zero: the units Add counted for a request that was
	// refused after all. If the window Add counted them in has ended
	// since, they come off the current one, which then allows up to n
	// more. It refuses what Add refuses (an invalid q, a negative n) with
	// an error wrapping ErrInvalidRequest, and fails with one wrapping
	// ErrUnavailable when the backend does not answer.
	Refund(ctx context.Context, key string, q Quota, n int64) error
}

// Validate reports whether a Limiter can apply l. It returns an error
// wrapping ErrInvalidRequest, which says what is wrong, if l is zero (a
// limiter cannot apply "no limit") or breaks a rule of Limit: Rate and
// Period positive, at most one request per nanosecond, Burst not
// negative, and a bucket that refills from empty within MaxLimitHorizon.
// Every Limiter, in this module or not, should refuse what Validate
// refuses.
func (l Limit) Validate() error {
	_, _, err := l.GCRA()
	return err
}

// GCRA returns the emission interval (Period/Rate, truncated to the
// nanosecond: the time one token takes to come back) and the tolerance
// (BurstSize × interval: the time an empty bucket takes to refill) with
// which the in-memory limiter applies l, for Limiters on other backends
// that must decide the same way. It returns Validate's error if l is not
// usable.
func (l Limit) GCRA() (interval, tolerance time.Duration, err error) {
	switch {
	case l.IsZero():
		return 0, 0, fmt.Errorf("%w: zero rate limit", ErrInvalidRequest)
	case l.Rate <= 0 || l.Period <= 0 || l.Burst < 0:
		return 0, 0, fmt.Errorf("%w: rate limit %d per %v, burst %d: rate and period must be positive, burst not negative", ErrInvalidRequest, l.Rate, l.Period, l.Burst)
	case int64(l.Rate) > int64(l.Period):
		return 0, 0, fmt.Errorf("%w: rate limit %d per %v: more than one request per nanosecond", ErrInvalidRequest, l.Rate, l.Period)
	}
	i := l.Period / time.Duration(l.Rate)
	if int64(l.BurstSize()) > int64(MaxLimitHorizon/i) {
		return 0, 0, fmt.Errorf("%w: rate limit %d per %v, burst %d: the bucket would take longer than %v to refill", ErrInvalidRequest, l.Rate, l.Period, l.Burst, MaxLimitHorizon)
	}
	return i, time.Duration(l.BurstSize()) * i, nil
}

// BurstSize returns the bucket size: Burst, or Rate when Burst is 0.
func (l Limit) BurstSize() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Validate reports whether a Counter can apply q. It returns an error
// wrapping ErrInvalidRequest if q is zero (a counter cannot apply "no
// quota"), its Limit or Period is not positive, or its Day is not 0 to 31
// (or not 0 for a Period other than MonthPeriod). Every Counter should
// refuse what Validate refuses; a backend may refuse more (a period it
// cannot represent, say) and says so in its documentation.
func (q Quota) Validate() error {
	switch {
	case q.IsZero():
		return fmt.Errorf("%w: zero quota", ErrInvalidRequest)
	case q.Limit <= 0 || q.Period <= 0 && q.Period != MonthPeriod:
		return fmt.Errorf("%w: quota %d per %v: limit and period must be positive", ErrInvalidRequest, q.Limit, q.Period)
	case q.Day != 0 && q.Period != MonthPeriod:
		return fmt.Errorf("%w: quota %d per %v: a day of the month is only for monthly quotas", ErrInvalidRequest, q.Limit, q.Period)
	case q.Day < 0 || q.Day > 31:
		return fmt.Errorf("%w: quota %d per month: day %d of the month, want 1 to 31", ErrInvalidRequest, q.Limit, q.Day)
	}
	return nil
}

// ParseLimit parses a rate limit written "RATE/PERIOD" with an optional
// ",burst=BURST": "100/s", "1000/m", "10000/h", "5/1s", "10/30s",
// "100/s,burst=200". RATE and BURST are decimal integers; PERIOD is an
// optional decimal count followed by a unit, one of ns, us (or µs), ms, s,
// m, h and d (24h): "s" is "1s", "30s" is 30 seconds. Compound durations
// such as "1m30s" and spaces are not accepted. An omitted burst is 0,
// which means Burst = Rate. The result is a usable Limit (see Limit);
// errors wrap ErrInvalidRequest and say where the text went wrong.
func ParseLimit(s string) (Limit, error) {
	text, burstText, hasBurst := strings.Cut(s, ",")
	rate, period, err := parseRatio(s, text, "limit")
	if err != nil {
		return Limit{}, err
	}
	if rate > math.MaxInt {
		return Limit{}, parseError("limit", s, 0, "rate out of range")
	}
	l := Limit{Rate: int(rate), Period: period}
	if hasBurst {
		off := len(text) + 1
		n, ok := strings.CutPrefix(burstText, "burst=")
		if !ok {
			return Limit{}, parseError("limit", s, off, `want "burst=N" after the comma`)
		}
		off += len("burst=")
		b, err := parseCount(n)
		if err != "" {
			return Limit{}, parseError("limit", s, off, "burst "+err)
		}
		if b > math.MaxInt {
			return Limit{}, parseError("limit", s, off, "burst out of range")
		}
		l.Burst = int(b)
	}
	if err := l.Validate(); err != nil {
		return Limit{}, err
	}
	return l, nil
}

// ParseQuota parses a usage quota written "LIMIT/PERIOD": "10000/d",
// "10000/24h", "1000000/720h", "100/h", or "1000000/month" for calendar
// months in UTC (MonthPeriod), "1000000/month@15" for months that start
// on the 15th (Day 15; the day is 1 to 31). LIMIT is a decimal integer and
// PERIOD is as for ParseLimit, or "month". Errors wrap ErrInvalidRequest
// and say where the text went wrong.
func ParseQuota(s string) (Quota, error) {
	if num, day, ok, err := parseMonth(s, s, "quota"); ok {
		if err != nil {
			return Quota{}, err
		}
		return Quota{Limit: num, Period: MonthPeriod, Day: day}, nil
	}
	n, period, err := parseRatio(s, s, "quota")
	if err != nil {
		return Quota{}, err
	}
	return Quota{Limit: int64(n), Period: period}, nil
}

// String returns l in the form ParseLimit reads, with the period in the
// largest unit that divides it exactly: Limit{100, time.Second, 0} is
// "100/s", Limit{10, 30 * time.Second, 20} is "10/30s,burst=20". The zero
// Limit is "0/0s", which does not parse.
func (l Limit) String() string {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, int64(l.Rate), 10)
	b = append(b, '/')
	b = appendPeriod(b, l.Period)
	if l.Burst != 0 {
		b = append(b, ",burst="...)
		b = strconv.AppendInt(b, int64(l.Burst), 10)
	}
	return string(b)
}

// String returns q in the form ParseQuota reads, with the period in the
// largest unit that divides it exactly: Quota{10000, 24 * time.Hour} is
// "10000/d". The zero Quota is "0/0s", which does not parse.
func (q Quota) String() string {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, q.Limit, 10)
	b = append(b, '/')
	if q.Period == MonthPeriod {
		return string(appendMonth(b, q.Day))
	}
	b = appendPeriod(b, q.Period)
	return string(b)
}

// appendMonth appends "month", and "@DAY" for a day other than 0.
func appendMonth(b []byte, day int) []byte {
	b = append(b, "month"...)
	if day != 0 {
		b = append(b, '@')
		b = strconv.AppendInt(b, int64(day), 10)
	}
	return b
}

// parseMonth parses "N/month" or "N/month@DAY" in text, which starts s
// (for error offsets). ok reports whether text is of that form at all;
// err says what is wrong with it if so.
func parseMonth(s, text, what string) (n int64, day int, ok bool, err error) {
	num, per, found := strings.Cut(text, "/")
	if !found || (per != "month" && !strings.HasPrefix(per, "month@")) {
		return 0, 0, false, nil
	}
	c, msg := parseCount(num)
	if msg == "" && c > math.MaxInt64 {
		msg = "number out of range"
	}
	if msg != "" {
		return 0, 0, true, parseError(what, s, 0, msg)
	}
	if d, has := strings.CutPrefix(per, "month@"); has {
		off := len(num) + len("/month@")
		v, msg := parseCount(d)
		if msg != "" {
			return 0, 0, true, parseError(what, s, off, "day of the month "+msg)
		}
		if v > 31 {
			return 0, 0, true, parseError(what, s, off, "day of the month past 31")
		}
		day = int(v)
	}
	return int64(c), day, true, nil
}

// periodUnits are the period units, largest first, so appendPeriod
// picks the largest that divides a period exactly.
var periodUnits = [...]struct {
	name string
	d    time.Duration
}{
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
	{"us", time.Microsecond},
	{"ns", time.Nanosecond},
}

func appendPeriod(b []byte, d time.Duration) []byte {
	if d <= 0 {
		// Not a valid period; written so that it does not parse.
		b = strconv.AppendInt(b, int64(d), 10)
		return append(b, 's')
	}
	for _, u := range periodUnits {
		if d%u.d == 0 {
			if n := d / u.d; n != 1 {
				b = strconv.AppendInt(b, int64(n), 10)
			}
			return append(b, u.name...)
		}
	}
	panic("unreachable: every duration is a whole number of nanoseconds")
}

// parseRatio parses "N/PERIOD" in text, which starts s (for error
// offsets), and returns N ≥ 1 and PERIOD ≥ 1ns.
func parseRatio(s, text, what string) (uint64, time.Duration, error) {
	num, per, ok := strings.Cut(text, "/")
	if !ok {
		return 0, 0, parseError(what, s, len(text), `want "/" and a period, as in "100/s"`)
	}
	n, msg := parseCount(num)
	if msg != "" {
		return 0, 0, parseError(what, s, 0, msg)
	}
	if n > math.MaxInt64 {
		return 0, 0, parseError(what, s, 0, "number out of range")
	}
	off := len(num) + 1
	// PERIOD is [COUNT]UNIT.
	i := 0
	for i < len(per) && '0' <= per[i] && per[i] <= '9' {
		i++
	}
	count := uint64(1)
	if i > 0 {
		count, msg = parseCount(per[:i])
		if msg != "" {
			return 0, 0, parseError(what, s, off, "period "+msg)
		}
	}
	unit := per[i:]
	var d time.Duration
	switch unit {
	case "ns":
		d = time.Nanosecond
	case "us", "µs":
		d = time.Microsecond
	case "ms":
		d = time.Millisecond
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	case "d":
		d = 24 * time.Hour
	case "":
		return 0, 0, parseError(what, s, off+i, "missing period unit (ns, us, ms, s, m, h or d)")
	default:
		return 0, 0, parseError(what, s, off+i, fmt.Sprintf("unknown period unit %q (want ns, us, ms, s, m, h or d)", unit))
	}
	if count > uint64(math.MaxInt64/int64(d)) {
		return 0, 0, parseError(what, s, off, "period out of range")
	}
	return n, time.Duration(count) * d, nil
}

// parseCount parses a positive decimal integer, returning a reason
// when s is not one.
func parseCount(s string) (uint64, string) {
	if s == "" {
		return 0, "missing number"
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Sprintf("unexpected %q in number", c)
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, "number out of range"
		}
		n = n*10 + uint64(c-'0')
	}
	if n == 0 {
		return 0, "must be at least 1"
	}
	return n, ""
}

func parseError(what, s string, off int, reason string) error {
	return fmt.Errorf("%w: %s %q: at byte %d: %s", ErrInvalidRequest, what, s, off, reason)
}
