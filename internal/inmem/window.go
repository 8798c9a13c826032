package inmem

import (
	"math"
	"sync/atomic"
	"time"
)

// window returns the window [start, end) (Unix ns) that holds t (Unix
// ns): of length period (ns, > 0) aligned to the Unix epoch, or, for a
// negative period (apikey.MonthPeriod), the calendar month in UTC that
// starts at 00:00 on day (0 means 1; a day past a month's end is its last
// day), as apikey.Quota.Window has it. The end saturates at
// math.MaxInt64 for periods too long to represent it.
func window(t, period int64, day int) (start, end int64) {
	if period < 0 {
		return monthWindow(t, day)
	}
	m := t % period
	if m < 0 {
		m += period
	}
	start = t - m
	if start > math.MaxInt64-period {
		return start, math.MaxInt64
	}
	return start, start + period
}

// A span is a window [start, end) in Unix ns.
type span struct{ start, end int64 }

// lastMonth holds, for each day a month may start on (0 to 31), the last
// month monthWindow computed for it: the calendar arithmetic costs more
// than the rest of a Counter's Add, and a month is asked for many times
// before the next one. The spans are immutable; a new month replaces one.
var lastMonth [32]atomic.Pointer[span]

// monthWindow returns the month starting on day that holds t, as
// apikey.Quota.Window computes it.
func monthWindow(t int64, day int) (start, end int64) {
	if day < 0 || day >= len(lastMonth) {
		return computeMonthWindow(t, day)
	}
	if w := lastMonth[day].Load(); w != nil && w.start <= t && t < w.end {
		return w.start, w.end
	}
	start, end = computeMonthWindow(t, day)
	lastMonth[day].Store(&span{start, end})
	return start, end
}

// computeMonthWindow is monthWindow without the cache.
func computeMonthWindow(t int64, day int) (start, end int64) {
	y, m, _ := time.Unix(0, t).UTC().Date()
	s := monthStart(y, m, day)
	if s.UnixNano() > t {
		s = monthStart(y, m-1, day)
	}
	y, m, _ = s.Date()
	return s.UnixNano(), monthStart(y, m+1, day).UnixNano()
}

// monthStart returns 00:00 UTC on day (0 means 1) of month m of year y,
// or on that month's last day if it is shorter.
func monthStart(y int, m time.Month, day int) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(max(day, 1), last)-1)
}
