package memlimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

func newTestLedger(t testing.TB) *memlimit.Ledger {
	l := must(memlimit.NewLedger(memlimit.WithClock(func() time.Time { return t0 })))
	t.Cleanup(func() { l.Close() })
	return l
}

// 64 goroutines spend, refund and top up one balance at once: it never
// goes below zero, and exactly what was granted and bought is spent.
func TestLedgerConcurrentOneBalance(t *testing.T) {
	l := newTestLedger(t)
	ctx := context.Background()
	c := apikey.Credits{Grant: 1000, Period: apikey.MonthPeriod}
	const goroutines, each = 64, 60
	var spent, refunded, bought atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := int64(1 + (g+i)%3)
				d, err := l.Spend(ctx, "credits:shared", c, n)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Remaining < 0 {
					t.Errorf("balance %d below zero", d.Remaining)
				}
				if d.Allowed {
					spent.Add(n)
					if i%10 == 0 {
						if err := l.Refund(ctx, "credits:shared", c, n); err != nil {
							t.Error(err)
						}
						refunded.Add(n)
					}
				}
				if g%16 == 0 && i%20 == 0 {
					if _, err := l.TopUp(ctx, "credits:shared", c, 7); err != nil {
						t.Error(err)
					}
					bought.Add(7)
				}
			}
		}()
	}
	wg.Wait()
	d, err := l.Spend(ctx, "credits:shared", c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1000 + bought.Load() - (spent.Load() - refunded.Load()); d.Remaining != want || d.Remaining < 0 {
		t.Fatalf("balance %d, want %d (1000 + %d bought - %d spent + %d refunded)", d.Remaining, want, bought.Load(), spent.Load(), refunded.Load())
	}
	// 64×60 requests of 2 on average ask for far more than there is.
	if d.Remaining > 3 {
		t.Fatalf("balance %d left although requests kept asking", d.Remaining)
	}
}

// The grant refills on the scheduled day and not before: a month starting
// on the 15th, one on the 31st, and a daily refill; top-ups carry over.
func TestLedgerRefillOnScheduledDay(t *testing.T) {
	l := newTestLedger(t)
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tt := range []struct {
		name            string
		c               apikey.Credits
		spendAt, before time.Time
		refill          time.Time
	}{
		{"monthly@15", apikey.Credits{Grant: 100, Period: apikey.MonthPeriod, Day: 15},
			utc(2026, 3, 20, 9), utc(2026, 4, 14, 23), utc(2026, 4, 15, 0)},
		{"monthly@31 in April", apikey.Credits{Grant: 100, Period: apikey.MonthPeriod, Day: 31},
			utc(2026, 4, 1, 0), utc(2026, 4, 29, 23), utc(2026, 4, 30, 0)},
		{"monthly@31 in February", apikey.Credits{Grant: 100, Period: apikey.MonthPeriod, Day: 31},
			utc(2026, 2, 1, 0), utc(2026, 2, 27, 23), utc(2026, 2, 28, 0)},
		{"daily", apikey.Credits{Grant: 100, Period: 24 * time.Hour},
			utc(2026, 3, 20, 9), utc(2026, 3, 20, 23), utc(2026, 3, 21, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := "credits:" + tt.name
			if _, err := l.TopUpAt(tt.spendAt, key, tt.c, 5); err != nil {
				t.Fatal(err)
			}
			d, err := l.SpendAt(tt.spendAt, key, tt.c, 102) // the grant and 2 top-ups
			if err != nil || !d.Allowed || d.Remaining != 3 {
				t.Fatalf("Spend(102) = %+v, %v; want allowed, 3 left", d, err)
			}
			if d.Reset != tt.refill.Sub(tt.spendAt) {
				t.Errorf("Reset %v, want %v (at %v)", d.Reset, tt.refill.Sub(tt.spendAt), tt.refill)
			}
			if d, _ := l.SpendAt(tt.before, key, tt.c, 4); d.Allowed || d.RetryAfter != tt.refill.Sub(tt.before) {
				t.Fatalf("Spend(4) the hour before the refill = %+v, want refused, retry at %v", d, tt.refill)
			}
			if d, _ := l.SpendAt(tt.refill, key, tt.c, 0); d.Remaining != 103 || d.Limit != 103 {
				t.Fatalf("at the refill: %+v, want 103 (the grant and 3 top-ups left)", d)
			}
		})
	}
}

func TestLedgerRefusesBadInput(t *testing.T) {
	l := newTestLedger(t)
	ctx := context.Background()
	good := apikey.Credits{Grant: 10, Period: 24 * time.Hour}
	for _, tt := range []struct {
		name string
		key  string
		c    apikey.Credits
		n    int64
	}{
		{"zero credits", "k", apikey.Credits{}, 1},
		{"negative grant", "k", apikey.Credits{Grant: -1, Period: apikey.NoRefill}, 1},
		{"grant above MaxCredits", "k", apikey.Credits{Grant: apikey.MaxCredits + 1, Period: apikey.NoRefill}, 1},
		{"bad period", "k", apikey.Credits{Grant: 10, Period: -7}, 1},
		{"day 32", "k", apikey.Credits{Grant: 10, Period: apikey.MonthPeriod, Day: 32}, 1},
		{"day without month", "k", apikey.Credits{Grant: 10, Period: time.Hour, Day: 3}, 1},
		{"negative n", "k", good, -1},
		{"key not UTF-8", "k\xff", good, 1},
		{"key with NUL", "k\x00", good, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Spend(ctx, tt.key, tt.c, tt.n); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("Spend: %v, want ErrInvalidRequest", err)
			}
			if err := l.Refund(ctx, tt.key, tt.c, tt.n); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("Refund: %v, want ErrInvalidRequest", err)
			}
			if _, err := l.TopUp(ctx, tt.key, tt.c, tt.n); !errors.Is(err, apikey.ErrInvalidRequest) {
				t.Errorf("TopUp: %v, want ErrInvalidRequest", err)
			}
		})
	}
	if _, err := l.TopUp(ctx, "k", good, 0); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("TopUp(0): %v, want ErrInvalidRequest", err)
	}
	// A top-up that would overflow MaxCredits adds nothing.
	if _, err := l.TopUp(ctx, "k", good, apikey.MaxCredits); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("TopUp(MaxCredits) on top of a grant: %v, want ErrInvalidRequest", err)
	}
	if b, err := l.TopUp(ctx, "k", good, apikey.MaxCredits-10); err != nil || b != apikey.MaxCredits {
		t.Errorf("TopUp to exactly MaxCredits = %d, %v", b, err)
	}
	if n := l.Len(); n != 1 {
		t.Errorf("%d balances tracked after the refusals, want 1", n)
	}
}

func TestLedgerSpendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	l := newTestLedger(t)
	ctx := context.Background()
	c := apikey.Credits{Grant: 1 << 50, Period: apikey.MonthPeriod}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "credits:" + string(rune('a'+i%26)) + time.Duration(i).String()
		l.Spend(ctx, keys[i], c, 1)
	}
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		l.Spend(ctx, keys[i%len(keys)], c, 1)
		i++
	}); a != 0 {
		t.Fatalf("Spend allocates %v times, want 0", a)
	}
}

func TestNewLedgerRejectsBadOptions(t *testing.T) {
	for _, opt := range []memlimit.LedgerOption{nil, memlimit.WithClock(nil), memlimit.WithSweepInterval(0)} {
		if _, err := memlimit.NewLedger(opt); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("NewLedger(%v): %v, want ErrInvalidRequest", opt, err)
		}
	}
}
