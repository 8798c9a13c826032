package redislimit

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

// TestMonthWindowLua checks the scripts' calendar arithmetic against
// Go's, at month ends, leap days and century years, and at random times
// until 2255 (where µs since the epoch leave 2^53).
func TestMonthWindowLua(t *testing.T) {
	c := testClient(t)
	script := redis.NewScript(monthWindowLua + `
local out = {}
for i = 1, #ARGV do
  local s, e = window(tonumber(ARGV[i]), 0)
  out[#out + 1] = s
  out[#out + 1] = e
end
return out
`)
	var times []time.Time
	for _, y := range []int{1970, 2000, 2024, 2026, 2028, 2100, 2200, 2254} {
		for m := time.January; m <= time.December; m++ {
			first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
			times = append(times, first, first.Add(time.Microsecond), first.AddDate(0, 1, 0).Add(-time.Microsecond))
		}
	}
	r := rand.New(rand.NewPCG(14, 14))
	for range 2000 {
		times = append(times, time.UnixMicro(r.Int64N(time.Date(2255, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())).UTC())
	}
	q := apikey.Quota{Limit: 1, Period: apikey.MonthPeriod}
	for len(times) > 0 {
		batch := times[:min(len(times), 500)]
		times = times[len(batch):]
		args := make([]any, len(batch))
		for i, at := range batch {
			args[i] = at.UnixMicro()
		}
		got, err := script.Run(context.Background(), c, nil, args...).Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		for i, at := range batch {
			s, e := q.Window(at)
			if got[2*i] != s.UnixMicro() || got[2*i+1] != e.UnixMicro() {
				t.Errorf("%v: Lua [%v, %v), Go [%v, %v)", at, time.UnixMicro(got[2*i]).UTC(), time.UnixMicro(got[2*i+1]).UTC(), s, e)
			}
		}
	}
}

// TestCounterMonth: a monthly quota on Redis counts in the month of
// Redis's clock, in one round trip, and resets at its end.
func TestCounterMonth(t *testing.T) {
	c := testClient(t)
	counter := newTestCounter(t, c, testPrefix())
	ctx := context.Background()
	q := apikey.Quota{Limit: 2, Period: apikey.MonthPeriod}
	for i := range 3 {
		d, now, err := counter.add(ctx, "m", q, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, end := q.Window(now)
		if d.Allowed != (i < 2) || d.Reset != end.Sub(now).Truncate(time.Microsecond) {
			t.Fatalf("add %d: %+v, want allowed %v and a reset at %v", i, d, i < 2, end)
		}
	}
	if err := counter.Refund(ctx, "m", q, 1); err != nil {
		t.Fatal(err)
	}
	if d, _ := counter.Add(ctx, "m", q, 1); !d.Allowed {
		t.Fatal("refunded unit not available")
	}
}

// TestMonthWindowLuaDay checks the scripts' months that start on day N
// against Quota.Window: days 15, 28 to 31 (clamped to a short month's last
// day, 29 February in a leap year), around every month's boundaries of
// several years and at random times.
func TestMonthWindowLuaDay(t *testing.T) {
	c := testClient(t)
	script := redis.NewScript(monthWindowLua + `
local day = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local s, e = window(tonumber(ARGV[i]), 0, day)
  out[#out + 1] = s
  out[#out + 1] = e
end
return out
`)
	var times []time.Time
	for _, y := range []int{1970, 2000, 2024, 2026, 2028, 2100, 2254} {
		for m := time.January; m <= time.December; m++ {
			for d := 1; d <= 31; d++ {
				at := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
				if at.Month() != m {
					break
				}
				times = append(times, at, at.Add(-time.Microsecond), at.Add(12*time.Hour))
			}
		}
	}
	r := rand.New(rand.NewPCG(15, 31))
	for range 1000 {
		times = append(times, time.UnixMicro(r.Int64N(time.Date(2255, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())).UTC())
	}
	for _, day := range []int{0, 1, 15, 28, 29, 30, 31} {
		q := apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: day}
		bad := 0
		for rest := times; len(rest) > 0; {
			batch := rest[:min(len(rest), 500)]
			rest = rest[len(batch):]
			args := []any{day}
			for _, at := range batch {
				args = append(args, at.UnixMicro())
			}
			got, err := script.Run(context.Background(), c, nil, args...).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			for i, at := range batch {
				s, e := q.Window(at)
				if got[2*i] != s.UnixMicro() || got[2*i+1] != e.UnixMicro() {
					if bad++; bad < 5 {
						t.Errorf("day %d, %v: Lua [%v, %v), Go [%v, %v)", day, at, time.UnixMicro(got[2*i]).UTC(), time.UnixMicro(got[2*i+1]).UTC(), s, e)
					}
				}
			}
		}
	}
}

// TestCounterMonthOnDay: a quota whose months start on the 15th counts
// in the month of Redis's clock that starts on the 15th.
func TestCounterMonthOnDay(t *testing.T) {
	c := testClient(t)
	counter := newTestCounter(t, c, testPrefix())
	ctx := context.Background()
	for _, day := range []int{15, 31} {
		q := apikey.Quota{Limit: 5, Period: apikey.MonthPeriod, Day: day}
		d, now, err := counter.add(ctx, "m", q, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, end := q.Window(now)
		if !d.Allowed || d.Reset != end.Sub(now).Truncate(time.Microsecond) {
			t.Fatalf("day %d: %+v, want a reset at %v (%v)", day, d, end, end.Sub(now))
		}
		if err := counter.Refund(ctx, "m", q, 1); err != nil {
			t.Fatal(err)
		}
		if d, _, _ := counter.add(ctx, "m", q, 0); d.Remaining != 5 {
			t.Fatalf("day %d: the refund did not reach the window: %+v", day, d)
		}
	}
}
