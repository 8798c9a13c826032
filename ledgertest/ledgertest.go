// Package ledgertest is a conformance suite for apikey.Ledger
// implementations, in the spirit of storetest: a backend's own test calls
// Run, and passes only if its balances behave as the Ledger contract and
// apikey.Credits say.
//
//	func TestLedgerConformance(t *testing.T) {
//		ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
//			return memlimit.NewLedger(memlimit.WithClock(now))
//		})
//	}
//
// Refills happen at the windows of apikey.Credits.Window, so the suite
// needs to move time: newLedger receives the clock that the Ledger it
// returns must read for every Spend, Refund and TopUp. A backend whose
// clock is normally its server's (Redis's TIME, say) offers a way to use a
// given clock instead, for tests; one whose methods take an explicit time
// can be wrapped by the test in a Ledger that passes now(). The clock only
// moves between calls, never during one, and it is safe for concurrent
// use.
//
// One subtest puts the Ledger behind the middleware (Limits.Ledger) of a
// Manager on memstore, and sends one key's requests from 64 goroutines at
// once: exactly its balance is let through, with the requests that
// apikey.RequireScopes refuses behind the middleware refunded.
//
// Each subtest calls newLedger once, with a clock of its own. The suite
// works whether newLedger returns a fresh Ledger or one over a shared
// backend (a database that outlives the test): every subtest uses its own
// random ledger keys.
package ledgertest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
)

// Run runs the conformance suite against the Ledgers newLedger returns.
func Run(t *testing.T, newLedger func(now func() time.Time) apikey.Ledger) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"SpendRefuseAndRead", testSpendRefuseAndRead},
		{"GrantFirstThenTopUps", testGrantFirstThenTopUps},
		{"DailyRefill", testDailyRefill},
		{"MonthlyRefillOnDay", testMonthlyRefillOnDay},
		{"RollOverCarriesTopUps", testRollOverCarriesTopUps},
		{"NoRefill", testNoRefill},
		{"TopUpsOnly", testTopUpsOnly},
		{"Refund", testRefund},
		{"RefundAfterRefill", testRefundAfterRefill},
		{"TopUpOverflow", testTopUpOverflow},
		{"SpendAboveMaxCredits", testSpendAboveMaxCredits},
		{"InvalidCredits", testInvalidCredits},
		{"NegativeUnits", testNegativeUnits},
		{"BadKeys", testBadKeys},
		{"KeysAreIndependent", testKeysAreIndependent},
		{"ConcurrentSpends", testConcurrentSpends},
		{"ConcurrentTopUps", testConcurrentTopUps},
		{"RandomAgainstModel", testRandomAgainstModel},
		{"MiddlewareOneBalance", testMiddlewareOneBalance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &suite{t: t}
			s.clock.Store(start.UnixNano())
			s.l = newLedger(s.now)
			if s.l == nil {
				t.Fatal("newLedger returned nil")
			}
			tt.fn(t, s)
		})
	}
}

// start is the suite's first time: a weekday afternoon in a leap year,
// on a whole second, so that every backend's resolution holds it exactly.
var start = time.Date(2028, time.February, 10, 15, 4, 5, 0, time.UTC)

// suite is one subtest's Ledger and clock.
type suite struct {
	t     *testing.T
	l     apikey.Ledger
	clock atomic.Int64 // Unix ns
}

func (s *suite) now() time.Time { return time.Unix(0, s.clock.Load()).UTC() }

// set moves the clock to at.
func (s *suite) set(at time.Time) { s.clock.Store(at.UnixNano()) }

// key returns a ledger key no other subtest or run uses.
func key(t *testing.T) string {
	t.Helper()
	b := make([]byte, 9)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "credits:ledgertest-" + hex.EncodeToString(b)
}

// spend calls Spend and fails the test on an error.
func (s *suite) spend(k string, c apikey.Credits, n int64) apikey.Decision {
	s.t.Helper()
	d, err := s.l.Spend(context.Background(), k, c, n)
	if err != nil {
		s.t.Fatalf("Spend(%q, %v, %d) at %v: %v", k, c, n, s.now(), err)
	}
	return d
}

// topUp calls TopUp and fails the test on an error.
func (s *suite) topUp(k string, c apikey.Credits, n int64) int64 {
	s.t.Helper()
	b, err := s.l.TopUp(context.Background(), k, c, n)
	if err != nil {
		s.t.Fatalf("TopUp(%q, %v, %d) at %v: %v", k, c, n, s.now(), err)
	}
	return b
}

// refund calls Refund and fails the test on an error.
func (s *suite) refund(k string, c apikey.Credits, n int64) {
	s.t.Helper()
	if err := s.l.Refund(context.Background(), k, c, n); err != nil {
		s.t.Fatalf("Refund(%q, %v, %d) at %v: %v", k, c, n, s.now(), err)
	}
}

// reset returns the time from the clock's now to the end of c's window.
func (s *suite) reset(c apikey.Credits) time.Duration {
	_, end := c.Window(s.now())
	if end.IsZero() {
		return 0
	}
	return end.Sub(s.now())
}

// want checks a Decision's fields. retry is RetryAfter on a refusal.
func (s *suite) want(what string, d apikey.Decision, allowed bool, limit, remaining int64, reset, retry time.Duration) {
	s.t.Helper()
	if d.Allowed != allowed || d.Limit != limit || d.Remaining != remaining || d.Reset != reset || d.RetryAfter != retry {
		s.t.Errorf("%s: got %+v, want Allowed %v, Limit %d, Remaining %d, Reset %v, RetryAfter %v",
			what, d, allowed, limit, remaining, reset, retry)
	}
}

// balance reads k's balance with Spend(0), checking that it is allowed.
func (s *suite) balance(k string, c apikey.Credits) int64 {
	s.t.Helper()
	d := s.spend(k, c, 0)
	if !d.Allowed {
		s.t.Errorf("Spend(0) refused: %+v", d)
	}
	return d.Remaining
}

var daily = apikey.Credits{Grant: 10, Period: 24 * time.Hour}

func testSpendRefuseAndRead(t *testing.T, s *suite) {
	k := key(t)
	r := s.reset(daily)
	s.want("Spend(0) on a new balance", s.spend(k, daily, 0), true, 10, 10, r, 0)
	s.want("Spend(4)", s.spend(k, daily, 4), true, 10, 6, r, 0)
	// More than the balance: refused, nothing taken; the refill holds it.
	s.want("Spend(7) of 6", s.spend(k, daily, 7), false, 10, 6, r, r)
	// More than any refill holds: only a top-up helps.
	s.want("Spend(11) above the grant", s.spend(k, daily, 11), false, 10, 6, r, 0)
	s.want("Spend(0) after refusals", s.spend(k, daily, 0), true, 10, 6, r, 0)
	s.want("Spend(6), the rest", s.spend(k, daily, 6), true, 10, 0, r, 0)
	s.want("Spend(1) of 0", s.spend(k, daily, 1), false, 10, 0, r, r)
	s.want("Spend(0) of 0", s.spend(k, daily, 0), true, 10, 0, r, 0)

	// A first Spend larger than the grant takes nothing either.
	k2 := key(t)
	s.want("first Spend(11)", s.spend(k2, daily, 11), false, 10, 10, r, 0)
	s.want("Spend(10) after it", s.spend(k2, daily, 10), true, 10, 0, r, 0)
}

func testGrantFirstThenTopUps(t *testing.T, s *suite) {
	k := key(t)
	r := s.reset(daily)
	if b := s.topUp(k, daily, 5); b != 15 {
		t.Errorf("TopUp(5) on a new balance of 10: balance %d, want 15", b)
	}
	s.want("Spend(0)", s.spend(k, daily, 0), true, 15, 15, r, 0)
	s.want("Spend(12)", s.spend(k, daily, 12), true, 15, 3, r, 0)
	s.want("Spend(4) of 3", s.spend(k, daily, 4), false, 15, 3, r, r)
	if b := s.topUp(k, daily, 7); b != 10 {
		t.Errorf("TopUp(7) on 3: balance %d, want 10", b)
	}
	s.want("Spend(4) after the top-up", s.spend(k, daily, 4), true, 22, 6, r, 0)
}

func testDailyRefill(t *testing.T, s *suite) {
	k := key(t)
	_, end := daily.Window(s.now())
	s.set(end.Add(-time.Millisecond))
	s.want("Spend(10) 1ms before midnight", s.spend(k, daily, 10), true, 10, 0, time.Millisecond, 0)
	s.want("Spend(1) 1ms before midnight", s.spend(k, daily, 1), false, 10, 0, time.Millisecond, time.Millisecond)
	s.set(end)
	s.want("Spend(0) at midnight", s.spend(k, daily, 0), true, 10, 10, 24*time.Hour, 0)
	// The grant is refilled, not carried over: unused units are lost.
	s.want("Spend(3) at midnight", s.spend(k, daily, 3), true, 10, 7, 24*time.Hour, 0)
	s.set(end.Add(36 * time.Hour)) // the next day but one
	s.want("Spend(0) two days on", s.spend(k, daily, 0), true, 10, 10, 12*time.Hour, 0)

	// A fixed period other than a day, counted from the epoch.
	hourly := apikey.Credits{Grant: 2, Period: time.Hour}
	k2 := key(t)
	s.spend(k2, hourly, 2)
	if b := s.balance(k2, hourly); b != 0 {
		t.Errorf("hourly: balance %d after spending the grant, want 0", b)
	}
	_, hend := hourly.Window(s.now())
	s.set(hend)
	if b := s.balance(k2, hourly); b != 2 {
		t.Errorf("hourly: balance %d at the next hour, want 2", b)
	}
}

func testMonthlyRefillOnDay(t *testing.T, s *suite) {
	for _, tc := range []struct {
		name    string
		day     int
		refills []time.Time // consecutive refill times, checked against Credits.Window
	}{
		{"1st", 0, []time.Time{
			time.Date(2028, time.March, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2028, time.April, 1, 0, 0, 0, 0, time.UTC),
		}},
		{"15th", 15, []time.Time{
			time.Date(2028, time.February, 15, 0, 0, 0, 0, time.UTC),
			time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC),
		}},
		// Day 31: the last day of a short month, 29 February in a leap year.
		{"31st", 31, []time.Time{
			time.Date(2028, time.February, 29, 0, 0, 0, 0, time.UTC),
			time.Date(2028, time.March, 31, 0, 0, 0, 0, time.UTC),
			time.Date(2028, time.April, 30, 0, 0, 0, 0, time.UTC),
			time.Date(2028, time.May, 31, 0, 0, 0, 0, time.UTC),
		}},
		{"30th", 30, []time.Time{
			time.Date(2028, time.February, 29, 0, 0, 0, 0, time.UTC),
			time.Date(2028, time.March, 30, 0, 0, 0, 0, time.UTC),
		}},
	} {
		// One balance per case, through consecutive refills; the clock is
		// the suite's, so the cases run one after the other.
		c := apikey.Credits{Grant: 100, Period: apikey.MonthPeriod, Day: tc.day}
		k := key(t)
		for i, at := range tc.refills {
			if _, end := c.Window(at.Add(-time.Second)); !end.Equal(at) {
				t.Fatalf("day %s: Credits.Window says the window before %v ends at %v", tc.name, at, end)
			}
			_, next := c.Window(at)
			if i+1 < len(tc.refills) && !next.Equal(tc.refills[i+1]) {
				t.Fatalf("day %s: Credits.Window says the window from %v ends at %v, want %v", tc.name, at, next, tc.refills[i+1])
			}
			s.set(at.Add(-time.Second))
			s.spend(k, c, s.balance(k, c))
			s.want("day "+tc.name+": Spend(1) a second before the refill of "+at.Format(time.DateOnly),
				s.spend(k, c, 1), false, 100, 0, time.Second, time.Second)
			s.set(at)
			s.want("day "+tc.name+": Spend(1) at the refill of "+at.Format(time.DateOnly),
				s.spend(k, c, 1), true, 100, 99, next.Sub(at), 0)
		}
	}
}

func testRollOverCarriesTopUps(t *testing.T, s *suite) {
	k := key(t)
	s.topUp(k, daily, 5) // balance 15: grant 10, top-ups 5
	s.spend(k, daily, 12)
	// 12 took the grant's 10 and 2 of the top-ups: 3 top-ups are left.
	_, end := daily.Window(s.now())
	s.set(end)
	s.want("Spend(0) after the refill", s.spend(k, daily, 0), true, 13, 13, 24*time.Hour, 0)
	s.want("Spend(11)", s.spend(k, daily, 11), true, 13, 2, 24*time.Hour, 0)

	// Top-ups untouched in a period are all carried over.
	k2 := key(t)
	s.topUp(k2, daily, 4)
	s.spend(k2, daily, 9)
	s.set(end.Add(24 * time.Hour))
	s.want("k2 after the refill", s.spend(k2, daily, 0), true, 14, 14, 24*time.Hour, 0)
	// And a refill does not bring back top-ups that were spent.
	s.spend(k2, daily, 14)
	s.set(end.Add(48 * time.Hour))
	s.want("k2 after spending all", s.spend(k2, daily, 0), true, 10, 10, 24*time.Hour, 0)
}

func testNoRefill(t *testing.T, s *suite) {
	c := apikey.Credits{Grant: 5, Period: apikey.NoRefill}
	k := key(t)
	s.want("Spend(0)", s.spend(k, c, 0), true, 5, 5, 0, 0)
	s.want("Spend(5)", s.spend(k, c, 5), true, 5, 0, 0, 0)
	// No refill ever holds it: RetryAfter is 0.
	s.want("Spend(1) of 0", s.spend(k, c, 1), false, 5, 0, 0, 0)
	s.set(start.AddDate(3, 0, 0))
	s.want("Spend(0) three years on", s.spend(k, c, 0), true, 5, 0, 0, 0)
	if b := s.topUp(k, c, 2); b != 2 {
		t.Errorf("TopUp(2) on 0: balance %d, want 2", b)
	}
	s.want("Spend(2) of the top-up", s.spend(k, c, 2), true, 7, 0, 0, 0)
}

func testTopUpsOnly(t *testing.T, s *suite) {
	c := apikey.Credits{Grant: 0, Period: apikey.NoRefill}
	k := key(t)
	s.want("Spend(1) of nothing", s.spend(k, c, 1), false, 0, 0, 0, 0)
	if b := s.topUp(k, c, 3); b != 3 {
		t.Errorf("TopUp(3): balance %d, want 3", b)
	}
	s.want("Spend(2)", s.spend(k, c, 2), true, 3, 1, 0, 0)
	s.want("Spend(2) of 1", s.spend(k, c, 2), false, 3, 1, 0, 0)

	// Top-ups only, on a refilling policy with a zero grant: they last.
	m := apikey.Credits{Grant: 0, Period: 24 * time.Hour}
	k2 := key(t)
	s.topUp(k2, m, 4)
	s.spend(k2, m, 1)
	s.set(start.Add(72 * time.Hour))
	if b := s.balance(k2, m); b != 3 {
		t.Errorf("a zero daily grant with top-ups: balance %d three days on, want 3", b)
	}
}

func testRefund(t *testing.T, s *suite) {
	k := key(t)
	r := s.reset(daily)
	s.topUp(k, daily, 5)
	s.spend(k, daily, 12)
	s.refund(k, daily, 4)
	s.want("after Refund(4) of 12", s.spend(k, daily, 0), true, 15, 7, r, 0)
	// A refund never takes the balance above what the period holds.
	s.refund(k, daily, 100)
	s.want("after Refund(100)", s.spend(k, daily, 0), true, 15, 15, r, 0)
	s.refund(k, daily, 0)
	s.want("after Refund(0)", s.spend(k, daily, 0), true, 15, 15, r, 0)
	// A refund on a balance never spent changes nothing.
	k2 := key(t)
	s.refund(k2, daily, 3)
	s.want("Refund(3) on a new balance", s.spend(k2, daily, 0), true, 10, 10, r, 0)
}

func testRefundAfterRefill(t *testing.T, s *suite) {
	k := key(t)
	s.spend(k, daily, 3)
	_, end := daily.Window(s.now())
	s.set(end.Add(time.Hour))
	s.spend(k, daily, 2)
	// The refund goes to the new period: it gives back at most what the
	// new period used.
	s.refund(k, daily, 3)
	s.want("after the refund", s.spend(k, daily, 0), true, 10, 10, 23*time.Hour, 0)
}

func testTopUpOverflow(t *testing.T, s *suite) {
	ctx := context.Background()
	c := apikey.Credits{Grant: apikey.MaxCredits - 10, Period: apikey.NoRefill}
	k := key(t)
	if b := s.topUp(k, c, 10); b != apikey.MaxCredits {
		t.Fatalf("TopUp to MaxCredits: balance %d, want %d", b, apikey.MaxCredits)
	}
	for _, n := range []int64{1, apikey.MaxCredits, 1 << 62} {
		b, err := s.l.TopUp(ctx, k, c, n)
		if !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("TopUp(%d) past MaxCredits: balance %d, error %v, want ErrInvalidRequest", n, b, err)
		}
	}
	if b := s.balance(k, c); b != apikey.MaxCredits {
		t.Errorf("balance after refused top-ups: %d, want %d", b, apikey.MaxCredits)
	}
	// Spending makes room again.
	s.spend(k, c, 5)
	if b := s.topUp(k, c, 5); b != apikey.MaxCredits {
		t.Errorf("TopUp(5) after Spend(5): balance %d, want %d", b, apikey.MaxCredits)
	}

	// The largest grant, on a new balance: no room for a top-up.
	k2 := key(t)
	full := apikey.Credits{Grant: apikey.MaxCredits, Period: 24 * time.Hour}
	if _, err := s.l.TopUp(ctx, k2, full, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
		t.Errorf("TopUp(1) on a new balance of MaxCredits: %v, want ErrInvalidRequest", err)
	}
	if b := s.balance(k2, full); b != apikey.MaxCredits {
		t.Errorf("balance of MaxCredits after a refused top-up: %d", b)
	}
}

func testSpendAboveMaxCredits(t *testing.T, s *suite) {
	k := key(t)
	r := s.reset(daily)
	for _, n := range []int64{apikey.MaxCredits + 1, 1<<63 - 1} {
		s.want("Spend of more than any balance", s.spend(k, daily, n), false, 10, 10, r, 0)
	}
	s.refund(k, daily, 1<<63-1)
	if b := s.balance(k, daily); b != 10 {
		t.Errorf("balance after huge refusals and refund: %d, want 10", b)
	}
}

func testInvalidCredits(t *testing.T, s *suite) {
	ctx := context.Background()
	k := key(t)
	s.spend(k, daily, 4)
	for _, c := range []apikey.Credits{
		{},
		{Grant: -1, Period: 24 * time.Hour},
		{Grant: apikey.MaxCredits + 1, Period: 24 * time.Hour},
		{Grant: 10, Period: 0},
		{Grant: 10, Period: -3},
		{Grant: 10, Period: 24 * time.Hour, Day: 1},
		{Grant: 10, Period: apikey.NoRefill, Day: 1},
		{Grant: 10, Period: apikey.MonthPeriod, Day: 32},
		{Grant: 10, Period: apikey.MonthPeriod, Day: -1},
	} {
		if d, err := s.l.Spend(ctx, k, c, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Spend under %+v: %+v, %v; want ErrInvalidRequest", c, d, err)
		}
		if d, err := s.l.Spend(ctx, k, c, 0); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Spend(0) under %+v: %+v, %v; want ErrInvalidRequest", c, d, err)
		}
		if err := s.l.Refund(ctx, k, c, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Refund under %+v: %v; want ErrInvalidRequest", c, err)
		}
		if b, err := s.l.TopUp(ctx, k, c, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("TopUp under %+v: %d, %v; want ErrInvalidRequest", c, b, err)
		}
	}
	if b := s.balance(k, daily); b != 6 {
		t.Errorf("balance after refused calls: %d, want 6", b)
	}
}

func testNegativeUnits(t *testing.T, s *suite) {
	ctx := context.Background()
	k := key(t)
	s.spend(k, daily, 4)
	for _, n := range []int64{-1, -1 << 63} {
		if d, err := s.l.Spend(ctx, k, daily, n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Spend(%d): %+v, %v; want ErrInvalidRequest", n, d, err)
		}
		if err := s.l.Refund(ctx, k, daily, n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Refund(%d): %v; want ErrInvalidRequest", n, err)
		}
	}
	for _, n := range []int64{0, -1, -1 << 63} {
		if b, err := s.l.TopUp(ctx, k, daily, n); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("TopUp(%d): %d, %v; want ErrInvalidRequest", n, b, err)
		}
	}
	if b := s.balance(k, daily); b != 6 {
		t.Errorf("balance after refused calls: %d, want 6", b)
	}
}

func testBadKeys(t *testing.T, s *suite) {
	ctx := context.Background()
	for _, k := range []string{"credits:\xff", "credits:a\x00b", "\x00", "credits:\xc3"} {
		if d, err := s.l.Spend(ctx, k, daily, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Spend on key %q: %+v, %v; want ErrInvalidRequest", k, d, err)
		}
		if err := s.l.Refund(ctx, k, daily, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("Refund on key %q: %v; want ErrInvalidRequest", k, err)
		}
		if b, err := s.l.TopUp(ctx, k, daily, 1); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Errorf("TopUp on key %q: %d, %v; want ErrInvalidRequest", k, b, err)
		}
	}
	// A key that is valid text but unusual works, and is not confused
	// with its neighbours.
	k := key(t) + " é\u202e"
	s.spend(k, daily, 3)
	if b := s.balance(k, daily); b != 7 {
		t.Errorf("balance of a key with spaces and non-ASCII: %d, want 7", b)
	}
	if b := s.balance(k[:len(k)-len(" é\u202e")], daily); b != 10 {
		t.Errorf("balance of the key's prefix: %d, want 10", b)
	}
}

func testKeysAreIndependent(t *testing.T, s *suite) {
	a, b := key(t), key(t)
	s.spend(a, daily, 7)
	s.topUp(b, daily, 1)
	if got := s.balance(a, daily); got != 3 {
		t.Errorf("balance of a: %d, want 3", got)
	}
	if got := s.balance(b, daily); got != 11 {
		t.Errorf("balance of b: %d, want 11", got)
	}
	// Owner and key balances of the same name do not collide.
	kid := "ledgertest" + a[len(a)-12:]
	s.spend(apikey.CreditsKey(&apikey.Key{ID: kid}), daily, 10)
	if got := s.balance(apikey.OwnerCreditsKey(kid), daily); got != 10 {
		t.Errorf("owner balance named like a spent key: %d, want 10", got)
	}
}

// testConcurrentSpends: 64 goroutines spend from one balance until it
// refuses them. The balance never goes below zero and exactly
// balance/cost spends succeed.
func testConcurrentSpends(t *testing.T, s *suite) {
	const (
		workers = 64
		cost    = 3
	)
	c := apikey.Credits{Grant: 200, Period: 24 * time.Hour}
	k := key(t)
	s.topUp(k, c, 100) // 300: the grant and top-ups both in play
	s.spend(k, c, 1)   // 299 = 99 * 3 + 2
	var (
		wg        sync.WaitGroup
		successes atomic.Int64
		failed    atomic.Value
	)
	ctx := context.Background()
	for range workers {
		wg.Go(func() {
			for {
				d, err := s.l.Spend(ctx, k, c, cost)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				if d.Remaining < 0 {
					failed.Store("negative balance reported")
					return
				}
				if !d.Allowed {
					return
				}
				successes.Add(1)
			}
		})
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(msg)
	}
	if got := successes.Load(); got != 299/cost {
		t.Errorf("%d goroutines spending %d from 299: %d succeeded, want %d", workers, cost, got, 299/cost)
	}
	if b := s.balance(k, c); b != 299%cost {
		t.Errorf("balance left: %d, want %d", b, 299%cost)
	}
}

// testConcurrentTopUps: no top-up is lost, with spends in between.
func testConcurrentTopUps(t *testing.T, s *suite) {
	const workers = 64
	c := apikey.Credits{Grant: 0, Period: apikey.NoRefill}
	k := key(t)
	var (
		wg     sync.WaitGroup
		spent  atomic.Int64
		failed atomic.Value
	)
	ctx := context.Background()
	for i := range workers {
		wg.Go(func() {
			if _, err := s.l.TopUp(ctx, k, c, 7); err != nil {
				failed.Store(err.Error())
				return
			}
			if i%2 == 0 {
				d, err := s.l.Spend(ctx, k, c, 2)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				if d.Allowed {
					spent.Add(2)
				}
			}
		})
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(msg)
	}
	if got, want := s.balance(k, c), workers*7-spent.Load(); got != want {
		t.Errorf("balance after %d top-ups of 7 and %d units spent: %d, want %d", workers, spent.Load(), got, want)
	}
}

// model is the Ledger contract applied literally to one balance, for
// testRandomAgainstModel.
type model struct {
	window      time.Time // start of the period the state counts in
	used, extra int64
	seen        bool
}

// roll brings m to the period of c that holds now.
func (m *model) roll(c apikey.Credits, now time.Time) {
	start, _ := c.Window(now)
	if m.seen && m.window.Before(start) {
		m.extra = max(m.extra-max(m.used-c.Grant, 0), 0)
		m.used = 0
	}
	if !m.seen || m.window.Before(start) {
		m.window = start
	}
	m.seen = true
}

// testRandomAgainstModel runs random sequences of Spends, Refunds and
// TopUps, with the clock moving by random steps across refills, and
// checks every answer against the model: the Decisions, the balances
// TopUp returns, and the refusals.
func testRandomAgainstModel(t *testing.T, s *suite) {
	ctx := context.Background()
	policies := []apikey.Credits{
		{Grant: 10, Period: 24 * time.Hour},
		{Grant: 50, Period: apikey.MonthPeriod, Day: 31},
		{Grant: 0, Period: apikey.NoRefill},
		{Grant: 7, Period: time.Hour},
	}
	r := rand.New(rand.NewPCG(14, uint64(start.Unix())))
	steps := []time.Duration{0, 0, time.Second, 17 * time.Minute, 5 * time.Hour, 26 * time.Hour, 9 * 24 * time.Hour}
	for _, c := range policies {
		k := key(t)
		var m model
		s.set(start)
		for i := range 120 {
			s.set(s.now().Add(steps[r.IntN(len(steps))]))
			now := s.now()
			m.roll(c, now)
			n := r.Int64N(max(c.Grant, 8)*2 + 1)
			reset := s.reset(c)
			what := func(op string) string {
				return fmt.Sprintf("%v, step %d at %v: %s(%d) on used %d, top-ups %d", c, i, now, op, n, m.used, m.extra)
			}
			switch r.IntN(3) {
			case 0:
				d, err := s.l.Spend(ctx, k, c, n)
				if err != nil {
					t.Fatalf("%s: %v", what("Spend"), err)
				}
				capacity := c.Grant + m.extra
				ok := n <= capacity-m.used
				want := apikey.Decision{Allowed: ok, Limit: capacity, Reset: reset}
				if ok {
					m.used += n
				} else if c.Grant >= n {
					want.RetryAfter = reset
				}
				want.Remaining = capacity - m.used
				if d != want {
					t.Fatalf("%s: got %+v, want %+v", what("Spend"), d, want)
				}
			case 1:
				if err := s.l.Refund(ctx, k, c, n); err != nil {
					t.Fatalf("%s: %v", what("Refund"), err)
				}
				m.used -= min(n, m.used)
			default:
				n = max(n, 1)
				b, err := s.l.TopUp(ctx, k, c, n)
				if err != nil {
					t.Fatalf("%s: %v", what("TopUp"), err)
				}
				m.extra += n
				if want := c.Grant + m.extra - m.used; b != want {
					t.Fatalf("%s: balance %d, want %d", what("TopUp"), b, want)
				}
			}
		}
	}
}
