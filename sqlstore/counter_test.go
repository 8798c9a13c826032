package sqlstore_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

func TestCounter(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			c := newStore(t, db, b.dialect).Counter()
			q := apikey.Quota{Limit: 10, Period: time.Hour}
			// 12:30 is in the window [12:00, 13:00).
			now := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)

			steps := []struct {
				key       string
				n         int64
				at        time.Time
				allowed   bool
				remaining int64
				reset     time.Duration
				name      string
			}{
				{"a", 3, now, true, 7, 30 * time.Minute, "first add"},
				{"a", 3, now, true, 4, 30 * time.Minute, "second add"},
				{"a", 3, now.Add(15 * time.Minute), true, 1, 15 * time.Minute, "third add, later in the window"},
				{"a", 2, now, false, 1, 30 * time.Minute, "over the limit: refused, not counted"},
				{"a", 1, now, true, 0, 30 * time.Minute, "exactly to the limit"},
				{"a", 1, now, false, 0, 30 * time.Minute, "exhausted"},
				{"a", 0, now, true, 0, 30 * time.Minute, "n = 0 reads the usage"},
				{"a", 1, now.Add(30 * time.Minute), true, 9, time.Hour, "next window starts at zero"},
				{"b", 11, now, false, 10, 30 * time.Minute, "first add above the limit: refused, not counted"},
				{"b", 10, now, true, 0, 30 * time.Minute, "then the whole quota at once"},
				{`c'; DELETE FROM apikey_quota_usage; --`, 1, now, true, 9, 30 * time.Minute, "SQL in the key is data"},
				{"a", 0, now.Add(30 * time.Minute), true, 9, time.Hour, "other keys untouched"},
			}
			for _, s := range steps {
				d, err := c.AddAt(ctx, s.key, q, s.n, s.at)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				want := apikey.Decision{Allowed: s.allowed, Limit: 10, Remaining: s.remaining, Reset: s.reset}
				if !s.allowed {
					want.RetryAfter = s.reset
				}
				if d != want {
					t.Fatalf("%s: got %+v, want %+v", s.name, d, want)
				}
			}
		})
	}
}

// TestCounterConcurrent: with many concurrent adds, exactly Limit succeed.
func TestCounterConcurrent(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			c := newStore(t, db, b.dialect).Counter()
			q := apikey.Quota{Limit: 25, Period: time.Hour}
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 5; i++ {
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
			if allowed.Load() != 25 {
				t.Fatalf("%d of 40 adds allowed, want exactly 25", allowed.Load())
			}
		})
	}
}

// TestCounterCleanup: windows that ended are deleted now and then.
func TestCounterCleanup(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			c := newStore(t, db, b.dialect).Counter()
			q := apikey.Quota{Limit: 5, Period: time.Minute}
			t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			for i := 0; i < 10; i++ {
				if _, err := c.AddAt(ctx, "k", q, 1, t0.Add(time.Duration(i)*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			var rows int
			if err := db.QueryRow(`SELECT COUNT(*) FROM apikey_quota_usage`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			// The add at 12:09 cleaned up windows that ended before 12:08.
			if rows > 3 {
				t.Fatalf("%d windows kept, want at most 3", rows)
			}
		})
	}
}

func TestCounterRejects(t *testing.T) {
	db, _ := openSQLite(t)
	c := newStore(t, db, 1).Counter()
	tests := []struct {
		name string
		key  string
		q    apikey.Quota
		n    int64
	}{
		{"zero quota", "k", apikey.Quota{}, 1},
		{"zero period", "k", apikey.Quota{Limit: 1}, 1},
		{"negative limit", "k", apikey.Quota{Limit: -1, Period: time.Hour}, 1},
		{"zero limit", "k", apikey.Quota{Period: time.Hour}, 1},
		{"negative period", "k", apikey.Quota{Limit: 1, Period: -time.Hour}, 1},
		{"huge period", "k", apikey.Quota{Limit: 1, Period: 200 * 365 * 24 * time.Hour}, 1},
		{"period a nanosecond above a century", "k", apikey.Quota{Limit: 1, Period: 100*365*24*time.Hour + 1}, 1},
		{"negative n", "k", apikey.Quota{Limit: 1, Period: time.Hour}, -1},
		{"NUL in key", "a\x00b", apikey.Quota{Limit: 1, Period: time.Hour}, 1},
		{"bad UTF-8 key", "\xff", apikey.Quota{Limit: 1, Period: time.Hour}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Add(context.Background(), tt.key, tt.q, tt.n); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Fatalf("Add = %v, want ErrInvalidRequest", err)
			}
		})
	}
}

// TestCounterUnavailable: a database that stopped answering is
// ErrUnavailable, as for redislimit's Counter, so callers can tell it
// from a bad argument.
func TestCounterUnavailable(t *testing.T) {
	db, _ := openSQLite(t)
	c := newStore(t, db, 1).Counter() // SQLite
	if _, err := c.Add(context.Background(), "k", apikey.Quota{Limit: 5, Period: time.Hour}, 1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := c.Add(context.Background(), "k", apikey.Quota{Limit: 5, Period: time.Hour}, 1)
	if !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("Add on a closed database: %v, want ErrUnavailable", err)
	}
}

// TestCounterRefund gives units back with one statement, on every
// backend: never below zero, only in the window it is in, creating no row,
// in a Store with its own table prefix too.
func TestCounterRefund(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		for _, prefix := range []string{"", "other_"} {
			t.Run(b.name+"/"+prefix, func(t *testing.T) {
				need(t, b)
				db, _ := b.open(t)
				var opts []sqlstore.Option
				table := "apikey_quota_usage"
				if prefix != "" {
					opts = append(opts, sqlstore.WithTablePrefix(prefix))
					table = prefix + "quota_usage"
				}
				c := newStore(t, db, b.dialect, opts...).Counter()
				q := apikey.Quota{Limit: 5, Period: time.Hour}
				now := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
				remaining := func(key string, at time.Time) int64 {
					t.Helper()
					d, err := c.AddAt(ctx, key, q, 0, at)
					if err != nil {
						t.Fatal(err)
					}
					return d.Remaining
				}
				if _, err := c.AddAt(ctx, "k", q, 5, now); err != nil {
					t.Fatal(err)
				}
				steps := []struct {
					name      string
					n         int64
					remaining int64
				}{
					{"refund 2", 2, 2},
					{"refund 0", 0, 2},
					{"refund more than used: zero, not below", 1 << 40, 5},
				}
				for _, s := range steps {
					if err := c.RefundAt(ctx, "k", q, s.n, now.Add(time.Minute)); err != nil {
						t.Fatalf("%s: %v", s.name, err)
					}
					if got := remaining("k", now); got != s.remaining {
						t.Fatalf("%s: remaining %d, want %d", s.name, got, s.remaining)
					}
				}
				// The next window is another row: a refund there leaves this
				// one alone and creates nothing.
				if _, err := c.AddAt(ctx, "k", q, 3, now); err != nil {
					t.Fatal(err)
				}
				if err := c.RefundAt(ctx, "k", q, 3, now.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				if got := remaining("k", now); got != 2 {
					t.Fatalf("a refund in the next window: remaining %d, want 2", got)
				}
				var rows int
				if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&rows); err != nil {
					t.Fatal(err)
				}
				if err := c.RefundAt(ctx, `x'; DELETE FROM `+table+`; --`, q, 1, now); err != nil {
					t.Fatal(err)
				}
				var after int
				if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&after); err != nil {
					t.Fatal(err)
				}
				if after != rows {
					t.Fatalf("%d rows after refunding a key with no usage, %d before", after, rows)
				}
				if err := c.Refund(ctx, "k", q, -1); !errors.Is(err, apikey.ErrInvalidRequest) {
					t.Fatalf("Refund(-1) = %v, want ErrInvalidRequest", err)
				}
				if err := c.Refund(ctx, "a\x00b", q, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
					t.Fatalf("Refund of a key with NUL = %v, want ErrInvalidRequest", err)
				}
			})
		}
	}
}

func TestCounterRefundUnavailable(t *testing.T) {
	db, _ := openSQLite(t)
	c := newStore(t, db, sqlstore.SQLite).Counter()
	q := apikey.Quota{Limit: 5, Period: time.Hour}
	if _, err := c.Add(context.Background(), "k", q, 1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := c.Refund(context.Background(), "k", q, 1); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("Refund on a closed database: %v, want ErrUnavailable", err)
	}
}

// TestCounterCalendarMonth: a monthly quota counts from 00:00 UTC on the
// 1st, across February of a leap year, and refunds in the same month.
func TestCounterCalendarMonth(t *testing.T) {
	ctx := context.Background()
	q := apikey.Quota{Limit: 2, Period: apikey.MonthPeriod}
	feb := time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			c := newStore(t, db, b.dialect).Counter()
			steps := []struct {
				at    time.Time
				n     int64
				ok    bool
				reset time.Duration
			}{
				{feb, 1, true, 29 * 24 * time.Hour},
				{feb.AddDate(0, 0, 28).Add(23 * time.Hour), 1, true, time.Hour}, // 29 Feb 23:00
				{feb.AddDate(0, 1, 0).Add(-time.Microsecond), 1, false, time.Microsecond},
				{feb.AddDate(0, 1, 0), 2, true, 31 * 24 * time.Hour}, // 1 March
			}
			for i, s := range steps {
				d, err := c.AddAt(ctx, "k", q, s.n, s.at)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != s.ok || d.Reset != s.reset {
					t.Fatalf("step %d at %v: %+v, want allowed %v, reset %v", i, s.at, d, s.ok, s.reset)
				}
			}
			march := feb.AddDate(0, 1, 5)
			if err := c.RefundAt(ctx, "k", q, 1, march); err != nil {
				t.Fatal(err)
			}
			if d, _ := c.AddAt(ctx, "k", q, 1, march); !d.Allowed {
				t.Fatal("the refunded unit is not back in March")
			}
		})
	}
}

// TestMonthQuotaStored: a key's calendar-month quota survives the
// database, and the key verifies (it is not reported broken).
func TestMonthQuotaStored(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			m := newManager(t, newStore(t, db, b.dialect))
			q := apikey.Quota{Limit: 1000000, Period: apikey.MonthPeriod}
			s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", Quota: q})
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Get(ctx, k.ID)
			if err != nil || got.Quota != q {
				t.Fatalf("Get: %v, %v; want quota %v", got, err, q)
			}
			if v, err := m.Verify(ctx, s.Reveal()); err != nil || v.Quota != q {
				t.Fatalf("Verify: %v, %v", v, err)
			}
		})
	}
}

// TestCounterMonthOnDay: a monthly quota whose months start on day 15 or
// 31 counts from 00:00 UTC on that day, on a short month's last day for
// 31 (29 February in a leap year), at the moments Quota.Window says.
func TestCounterMonthOnDay(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			db, _ := b.open(t)
			c := newStore(t, db, b.dialect).Counter()
			for _, tc := range []struct {
				day    int
				starts []time.Time
			}{
				{15, []time.Time{time.Date(2028, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 15, 0, 0, 0, 0, time.UTC)}},
				{31, []time.Time{time.Date(2028, 1, 31, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 31, 0, 0, 0, 0, time.UTC)}},
			} {
				q := apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: tc.day}
				for i, start := range tc.starts[1:] {
					key := "day" + strconv.Itoa(tc.day) + "-" + strconv.Itoa(i)
					before := start.Add(-time.Microsecond)
					if s, _ := q.Window(before); !s.Equal(tc.starts[i]) {
						t.Fatalf("Quota.Window(%v) starts at %v, want %v", before, s, tc.starts[i])
					}
					if d, err := c.AddAt(ctx, key, q, 1, before); err != nil || !d.Allowed || d.Reset != time.Microsecond {
						t.Fatalf("day %d: Add 1µs before %v: %+v, %v", tc.day, start, d, err)
					}
					if d, err := c.AddAt(ctx, key, q, 1, before); err != nil || d.Allowed {
						t.Fatalf("day %d: a second Add 1µs before %v: %+v, %v; want refused", tc.day, start, d, err)
					}
					_, end := q.Window(start)
					if d, err := c.AddAt(ctx, key, q, 1, start); err != nil || !d.Allowed || d.Reset != end.Sub(start) {
						t.Fatalf("day %d: Add at %v: %+v, %v; want allowed, reset %v", tc.day, start, d, err, end.Sub(start))
					}
					if d, err := c.AddAt(ctx, key, q, 1, end.Add(-time.Microsecond)); err != nil || d.Allowed {
						t.Fatalf("day %d: Add at the end of the window from %v: %+v, %v; want refused", tc.day, start, d, err)
					}
				}
			}
		})
	}
}
