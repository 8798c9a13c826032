package memlimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

func newTestCounter(t testing.TB) *memlimit.Counter {
	c := must(memlimit.NewCounter(memlimit.WithClock(func() time.Time { return t0 })))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCounterWindows(t *testing.T) {
	c := newTestCounter(t)
	q := apikey.Quota{Limit: 10, Period: time.Hour}
	start := t0.Truncate(time.Hour) // t0 is 12:00 UTC: a window start
	steps := []struct {
		at   time.Duration
		n    int64
		want apikey.Decision
	}{
		{0, 3, apikey.Decision{Allowed: true, Limit: 10, Remaining: 7, Reset: time.Hour}},
		{30 * time.Minute, 7, apikey.Decision{Allowed: true, Limit: 10, Remaining: 0, Reset: 30 * time.Minute}},
		// Refused: does not count.
		{40 * time.Minute, 1, apikey.Decision{Limit: 10, Remaining: 0, Reset: 20 * time.Minute, RetryAfter: 20 * time.Minute}},
		{40 * time.Minute, 0, apikey.Decision{Allowed: true, Limit: 10, Remaining: 0, Reset: 20 * time.Minute}},
		// The next window starts from zero.
		{time.Hour, 4, apikey.Decision{Allowed: true, Limit: 10, Remaining: 6, Reset: time.Hour}},
		{time.Hour + time.Second, 7, apikey.Decision{Limit: 10, Remaining: 6, Reset: time.Hour - time.Second, RetryAfter: time.Hour - time.Second}},
		{time.Hour + time.Second, 6, apikey.Decision{Allowed: true, Limit: 10, Remaining: 0, Reset: time.Hour - time.Second}},
		// A cost above the whole quota is refused, not an error.
		{3 * time.Hour, 11, apikey.Decision{Limit: 10, Remaining: 10, Reset: time.Hour, RetryAfter: time.Hour}},
	}
	for i, s := range steps {
		d, err := c.AddAt(start.Add(s.at), "k", q, s.n)
		if err != nil || d != s.want {
			t.Fatalf("step %d (+%v, n=%d): %+v, %v; want %+v", i, s.at, s.n, d, err, s.want)
		}
	}
}

// Windows are aligned to the Unix epoch in UTC, whatever the time zone
// of the time passed in.
func TestCounterWindowsAlignedToUTC(t *testing.T) {
	c := newTestCounter(t)
	tz := time.FixedZone("UTC+5:30", 5*3600+1800)
	now := time.Date(2026, 11, 26, 23, 0, 0, 0, tz) // 17:30 UTC
	d, _ := c.AddAt(now, "k", apikey.Quota{Limit: 5, Period: 24 * time.Hour}, 1)
	if want := 6*time.Hour + 30*time.Minute; d.Reset != want {
		t.Fatalf("Reset %v, want %v (to midnight UTC)", d.Reset, want)
	}
}

func TestCounterConcurrent(t *testing.T) {
	c := newTestCounter(t)
	q := apikey.Quota{Limit: 1000, Period: 24 * time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				d, err := c.Add(context.Background(), "shared", q, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 1000 {
		t.Fatalf("%d allowed, want exactly 1000", got)
	}
}

func TestCounterInvalid(t *testing.T) {
	c := newTestCounter(t)
	ctx := context.Background()
	for _, tc := range []struct {
		q apikey.Quota
		n int64
	}{
		{apikey.Quota{}, 1},
		{apikey.Quota{Limit: 10}, 1},
		{apikey.Quota{Period: time.Hour}, 1},
		{apikey.Quota{Limit: 10, Period: time.Hour}, -1},
	} {
		if d, err := c.Add(ctx, "k", tc.q, tc.n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Add(%+v, %d) = %+v, %v; want ErrInvalidRequest", tc.q, tc.n, d, err)
		}
	}
}

func TestCounterAddDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	c := newTestCounter(t)
	q := apikey.Quota{Limit: 1 << 40, Period: 24 * time.Hour}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%09d", i)
		c.AddAt(t0, keys[i], q, 1)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		c.AddAt(t0, keys[i%len(keys)], q, 1)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Add on a known key: %v allocs, want 0", allocs)
	}
}

// TestCounterRefund gives back what a refused request cost: Remaining
// goes back up, never above the quota, and only in the current window.
func TestCounterRefund(t *testing.T) {
	c := newTestCounter(t)
	ctx := context.Background()
	q := apikey.Quota{Limit: 5, Period: time.Hour}
	for range 5 {
		must(c.Add(ctx, "k", q, 1))
	}
	if d := must(c.Add(ctx, "k", q, 1)); d.Allowed {
		t.Fatal("quota not exhausted")
	}
	if err := c.Refund(ctx, "k", q, 2); err != nil {
		t.Fatal(err)
	}
	if d := must(c.Add(ctx, "k", q, 0)); d.Remaining != 2 {
		t.Fatalf("after refunding 2: %+v", d)
	}
	if err := c.Refund(ctx, "k", q, 50); err != nil {
		t.Fatal(err)
	}
	if d := must(c.Add(ctx, "k", q, 0)); d.Remaining != 5 {
		t.Fatalf("a refund above the usage: %+v, want Remaining 5", d)
	}
	// A window that has ended is not touched by a refund in the next.
	must(c.AddAt(t0, "w", q, 3))
	if err := c.RefundAt(t0.Add(q.Period), "w", q, 3); err != nil {
		t.Fatal(err)
	}
	if d := must(c.AddAt(t0, "w", q, 0)); d.Remaining != 2 {
		t.Fatalf("refund in the next window: %+v", d)
	}
	for _, tc := range []struct {
		q apikey.Quota
		n int64
	}{{apikey.Quota{}, 1}, {apikey.Quota{Limit: -1, Period: time.Hour}, 1}, {q, -1}} {
		if err := c.Refund(ctx, "k", tc.q, tc.n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Refund(%v, %d): %v, want ErrInvalidRequest", tc.q, tc.n, err)
		}
	}
	var _ apikey.Refunder = c
}

// TestCounterCalendarMonth: a monthly quota resets at 00:00 UTC on the
// 1st, February's included, and not before.
func TestCounterCalendarMonth(t *testing.T) {
	c, err := memlimit.NewCounter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := apikey.Quota{Limit: 3, Period: apikey.MonthPeriod}
	feb := time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{feb, feb.AddDate(0, 0, 28), feb.AddDate(0, 1, 0).Add(-time.Nanosecond)} {
		if d, _ := c.AddAt(at, "k", q, 1); !d.Allowed {
			t.Fatalf("%v: refused", at)
		}
	}
	d, _ := c.AddAt(feb.AddDate(0, 1, 0).Add(-time.Nanosecond), "k", q, 1)
	if d.Allowed || d.RetryAfter != time.Nanosecond {
		t.Fatalf("the 4th in February: %+v, want refused until 1 March", d)
	}
	if d, _ := c.AddAt(feb.AddDate(0, 1, 0), "k", q, 3); !d.Allowed || d.Reset != 31*24*time.Hour {
		t.Fatalf("1 March: %+v, want a fresh 31-day window", d)
	}
}

// Quota.Day: windows of a month starting on the 15th, and on the 31st
// (the last day of a shorter month).
func TestCounterMonthDay(t *testing.T) {
	c := newTestCounter(t)
	utc := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, time.UTC) }
	for _, tt := range []struct {
		day            int
		fill, same, at time.Time // fill the quota at fill; still full at same; empty again at at
	}{
		{15, utc(3, 15, 0), utc(4, 14, 23), utc(4, 15, 0)},
		{31, utc(1, 31, 0), utc(2, 27, 23), utc(2, 28, 0)},
		{31, utc(4, 30, 0), utc(5, 30, 23), utc(5, 31, 0)},
	} {
		q := apikey.Quota{Limit: 3, Period: apikey.MonthPeriod, Day: tt.day}
		key := fmt.Sprintf("day%d-%v", tt.day, tt.fill)
		if d, _ := c.AddAt(tt.fill, key, q, 3); !d.Allowed || d.Reset != tt.at.Sub(tt.fill) {
			t.Errorf("%s: Add(3) = %+v, want allowed, reset at %v", key, d, tt.at)
		}
		if d, _ := c.AddAt(tt.same, key, q, 1); d.Allowed {
			t.Errorf("%s: Add(1) at %v allowed, want the same full window", key, tt.same)
		}
		if d, _ := c.AddAt(tt.at, key, q, 3); !d.Allowed {
			t.Errorf("%s: Add(3) at %v refused, want a new window", key, tt.at)
		}
	}
}
