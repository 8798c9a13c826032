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
