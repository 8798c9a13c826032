package inmem

import (
	"math"
	"testing"
	"time"
)

func newTestLedger(t *testing.T) *Ledger {
	l := NewLedger(Config{Now: at0, Sweep: time.Minute})
	t.Cleanup(l.Close)
	return l
}

func (l *Ledger) sweepAll(now time.Time) {
	for i := range l.shards {
		l.sweepShard(i, now)
	}
}

// TestLedgerModel walks one balance through the model of apikey.Credits:
// the grant first, then top-ups, a refill that does not carry the grant
// over but keeps what is left of the top-ups, and refunds.
func TestLedgerModel(t *testing.T) {
	l := newTestLedger(t)
	daily := Credits{Grant: 10, Period: 24 * time.Hour}
	day := it0.Truncate(24 * time.Hour)
	type step struct {
		at        time.Time
		op        string // spend, refund, topup
		n         int64
		allowed   bool
		limit     int64 // capacity (spend), or 0 to skip
		remaining int64 // balance after
	}
	for i, s := range []step{
		{day, "spend", 4, true, 10, 6},
		{day, "spend", 7, false, 10, 6},
		{day, "topup", 5, true, 0, 11},
		{day, "spend", 7, true, 15, 4}, // 10 of the grant used, 1 top-up
		{day, "refund", 2, true, 0, 6},
		{day, "spend", 0, true, 15, 6},
		{day, "spend", 5, true, 15, 1}, // the grant and 4 of the top-ups
		{day, "spend", 2, false, 15, 1},
		// The next day: the grant is back, the one top-up left carries over.
		{day.Add(24 * time.Hour), "spend", 0, true, 11, 11},
		{day.Add(24*time.Hour + time.Hour), "spend", 11, true, 11, 0},
		// And the day after: nothing left of the top-ups.
		{day.Add(48 * time.Hour), "spend", 0, true, 10, 10},
	} {
		switch s.op {
		case "spend":
			d := l.SpendAt(s.at, "k", daily, s.n)
			if d.Allowed != s.allowed || d.Limit != s.limit || d.Remaining != s.remaining {
				t.Fatalf("step %d: Spend(%d) = %+v, want allowed %v, limit %d, remaining %d", i, s.n, d, s.allowed, s.limit, s.remaining)
			}
		case "refund":
			l.RefundAt(s.at, "k", daily, s.n)
			if d := l.SpendAt(s.at, "k", daily, 0); d.Remaining != s.remaining {
				t.Fatalf("step %d: after Refund(%d) balance %d, want %d", i, s.n, d.Remaining, s.remaining)
			}
		case "topup":
			b, ok := l.TopUpAt(s.at, "k", daily, s.n, 1<<53)
			if !ok || b != s.remaining {
				t.Fatalf("step %d: TopUp(%d) = %d, %v, want %d", i, s.n, b, ok, s.remaining)
			}
		}
	}
}

func TestLedgerDecisionTimes(t *testing.T) {
	l := newTestLedger(t)
	daily := Credits{Grant: 10, Period: 24 * time.Hour}
	now := it0 // 12:00
	if d := l.SpendAt(now, "a", daily, 10); !d.Allowed || d.Reset != 12*time.Hour {
		t.Fatalf("Spend(10) = %+v, want allowed, reset 12h", d)
	}
	if d := l.SpendAt(now, "a", daily, 1); d.Allowed || d.RetryAfter != 12*time.Hour {
		t.Fatalf("Spend(1) on an empty balance = %+v, want refused, retry after 12h", d)
	}
	if d := l.SpendAt(now, "a", daily, 11); d.Allowed || d.RetryAfter != 0 {
		t.Fatalf("Spend(11) above the grant = %+v, want refused with no retry time", d)
	}
	once := Credits{Grant: 3, Period: noRefill}
	if d := l.SpendAt(now, "b", once, 3); !d.Allowed || d.Reset != 0 || d.Remaining != 0 {
		t.Fatalf("NoRefill Spend(3) = %+v, want allowed, no reset", d)
	}
	if d := l.SpendAt(now.Add(1000*24*time.Hour), "b", once, 1); d.Allowed || d.RetryAfter != 0 {
		t.Fatalf("NoRefill Spend(1) much later = %+v, want refused with no retry time", d)
	}
	monthly := Credits{Grant: 5, Period: -1, Day: 15}
	// 2026-11-26 12:00: the period started on 15 November, ends 15 December.
	want := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC).Sub(now)
	if d := l.SpendAt(now, "c", monthly, 1); d.Reset != want {
		t.Fatalf("monthly@15 reset %v, want %v", d.Reset, want)
	}
}

func TestLedgerTopUpLimit(t *testing.T) {
	l := newTestLedger(t)
	c := Credits{Grant: 10, Period: noRefill}
	if b, ok := l.TopUpAt(it0, "k", c, 91, 100); ok || b != 10 {
		t.Fatalf("TopUp past the limit = %d, %v, want 10, false", b, ok)
	}
	if b, ok := l.TopUpAt(it0, "k", c, 90, 100); !ok || b != 100 {
		t.Fatalf("TopUp to the limit = %d, %v, want 100, true", b, ok)
	}
	if d := l.SpendAt(it0, "k", c, math.MaxInt64); d.Allowed || d.Remaining != 100 {
		t.Fatalf("Spend(MaxInt64) = %+v, want refused, 100 left", d)
	}
}

// The sweeper forgets only balances that equal a fresh one: an ended
// period with no top-ups. Top-ups and NoRefill balances stay.
func TestLedgerSweep(t *testing.T) {
	l := newTestLedger(t)
	hourly := Credits{Grant: 10, Period: time.Hour}
	l.SpendAt(it0, "plain", hourly, 3)
	l.TopUpAt(it0, "topped", hourly, 5, 1<<53)
	l.SpendAt(it0, "once", Credits{Grant: 10, Period: noRefill}, 3)
	l.SpendAt(it0, "fresh", hourly, 0) // reads never insert
	if n := l.Len(); n != 3 {
		t.Fatalf("%d balances, want 3", n)
	}
	l.sweepAll(it0.Add(30 * time.Minute))
	if n := l.Len(); n != 3 {
		t.Fatalf("within the period: %d balances, want 3", n)
	}
	l.sweepAll(it0.Add(time.Hour))
	if n := l.Len(); n != 2 {
		t.Fatalf("after the period: %d balances, want 2 (topped, once)", n)
	}
	if d := l.SpendAt(it0.Add(time.Hour), "topped", hourly, 0); d.Remaining != 15 {
		t.Fatalf("topped-up balance after the sweep: %d, want 15", d.Remaining)
	}
	if d := l.SpendAt(it0.Add(time.Hour), "once", Credits{Grant: 10, Period: noRefill}, 0); d.Remaining != 7 {
		t.Fatalf("NoRefill balance after the sweep: %d, want 7", d.Remaining)
	}
}

func TestLedgerRefundUnknownKey(t *testing.T) {
	l := newTestLedger(t)
	l.RefundAt(it0, "nobody", Credits{Grant: 10, Period: time.Hour}, 5)
	if n := l.Len(); n != 0 {
		t.Fatalf("Refund of an unknown key tracked it: %d", n)
	}
}

// The in-memory Counter honours Quota.Day: a month starting on the 15th,
// and on the 31st (the last day of shorter months).
func TestCounterMonthDay(t *testing.T) {
	c := NewCounter(Config{Now: at0, Sweep: time.Minute})
	t.Cleanup(c.Close)
	for _, tt := range []struct {
		day        int
		at, resets time.Time
	}{
		{15, time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC), time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)},
		{15, time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC)},
		{31, time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)},
		{31, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)},
		{31, time.Date(2026, 4, 30, 1, 0, 0, 0, time.UTC), time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC)},
	} {
		if d := c.AddAt(tt.at, "k", 10, -1, tt.day, 0); d.Reset != tt.resets.Sub(tt.at) {
			t.Errorf("day %d at %v: resets in %v, want at %v", tt.day, tt.at, d.Reset, tt.resets)
		}
	}
}

// A clock that steps back into the previous period refills nothing; a
// change of the credits' period starts a new one.
func TestLedgerClockStepBackAndPolicyChange(t *testing.T) {
	l := newTestLedger(t)
	daily := Credits{Grant: 10, Period: 24 * time.Hour}
	day := it0.Truncate(24 * time.Hour)
	l.SpendAt(day.Add(time.Minute), "k", daily, 10)
	if d := l.SpendAt(day.Add(-time.Minute), "k", daily, 1); d.Allowed {
		t.Fatalf("a step back into yesterday refilled the grant: %+v", d)
	}
	if d := l.SpendAt(day.Add(24*time.Hour), "k", daily, 10); !d.Allowed {
		t.Fatalf("tomorrow's grant refused: %+v", d)
	}
	hourly := Credits{Grant: 3, Period: time.Hour}
	if d := l.SpendAt(day.Add(24*time.Hour+time.Minute), "k", hourly, 3); !d.Allowed || d.Reset != 59*time.Minute {
		t.Fatalf("after a change to hourly credits: %+v, want a fresh hourly grant", d)
	}
	// The grant alone changing keeps the period and what it used.
	if d := l.SpendAt(day.Add(24*time.Hour+2*time.Minute), "k", Credits{Grant: 5, Period: time.Hour}, 0); d.Remaining != 2 {
		t.Fatalf("after raising the grant to 5: balance %d, want 2", d.Remaining)
	}
}
