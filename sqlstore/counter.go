package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apikeykit/apikey"
)

// maxQuotaPeriod bounds a quota's period so that window arithmetic in
// Unix nanoseconds cannot overflow.
const maxQuotaPeriod = 100 * 365 * 24 * time.Hour

// cleanupEvery is how often a Counter deletes windows that have ended,
// and cleanupGrace how long after its end a window is kept, so that a
// process whose clock lags a little does not start it again from zero.
const (
	cleanupEvery = time.Minute
	cleanupGrace = time.Minute
)

// Counter is an apikey.Counter in the Store's database, for deployments
// without Redis. Usage is counted in fixed windows aligned to the quota's
// period (counted from the Unix epoch, by the calling process's clock),
// with one upsert per Add; a refused Add writes nothing and costs one more
// read (on MySQL, so does an Add of 0 units). Refund is one UPDATE. About once a minute an Add also deletes windows that ended over
// a minute ago. A Counter is safe for concurrent use, and processes
// sharing the database share the counts.
type Counter struct {
	s           *Store
	refund      string       // the Refund statement
	lastCleanup atomic.Int64 // Unix nanoseconds
}

// Counter returns a quota Counter that uses the Store's database and
// table prefix. It needs a migrated schema, like the Store.
func (s *Store) Counter() *Counter {
	// $1 the counter key, $2 the window's start, $3 the units; CASE
	// rather than MAX or GREATEST, which only one dialect has.
	q := `UPDATE ` + s.cfg.prefix + `quota_usage SET used = CASE WHEN used > $3 THEN used - $3 ELSE 0 END
		WHERE counter_key = $1 AND window_start = $2`
	if s.dialect == SQLite {
		q = sqlitePlaceholders(q)
	}
	return &Counter{s: s, refund: q}
}

// Add implements apikey.Counter: AddAt at time.Now().
func (c *Counter) Add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	return c.AddAt(ctx, key, q, n, time.Now())
}

// AddAt adds n units to key's usage in the window of q that contains now,
// if the usage stays within q.Limit, and reports the decision. n may be 0
// to read the usage. It refuses what apikey.Quota.Validate refuses and,
// beyond that, a period longer than a century, a negative n and a key
// that is not UTF-8 without NUL bytes, with an error wrapping
// apikey.ErrInvalidRequest; a database that does not answer fails with
// an error wrapping apikey.ErrUnavailable.
func (c *Counter) AddAt(ctx context.Context, key string, q apikey.Quota, n int64, now time.Time) (apikey.Decision, error) {
	if err := checkQuota(key, q, n); err != nil {
		return apikey.Decision{}, err
	}
	if err := c.s.check(ctx); err != nil {
		return apikey.Decision{}, err
	}
	t := now.UnixNano()
	start, end := window(t, q)
	reset := time.Duration(end - t)

	var used int64
	var err error
	if c.s.dialect == MySQL {
		used, err = c.addMySQL(ctx, key, start, end, n, q.Limit)
	} else {
		err = c.s.db.QueryRowContext(ctx, c.s.q.quotaAdd, key, start, end, n, q.Limit).Scan(&used)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Refused: report the usage as it stands.
		err = c.s.db.QueryRowContext(ctx, c.s.q.quotaGet, key, start).Scan(&used)
		if errors.Is(err, sql.ErrNoRows) {
			used, err = 0, nil
		}
		if err != nil {
			return apikey.Decision{}, fmt.Errorf("%w: sqlstore: quota: %w", apikey.ErrUnavailable, err)
		}
		return apikey.Decision{Allowed: false, Limit: q.Limit, Remaining: max(0, q.Limit-used), Reset: reset, RetryAfter: reset}, nil
	}
	if err != nil {
		return apikey.Decision{}, fmt.Errorf("%w: sqlstore: quota: %w", apikey.ErrUnavailable, err)
	}
	c.cleanup(ctx, t)
	return apikey.Decision{Allowed: true, Limit: q.Limit, Remaining: q.Limit - used, Reset: reset}, nil
}

// addMySQL runs the upsert (queries.go) and returns the usage it left,
// or sql.ErrNoRows if it refused the units, as RETURNING would on the
// other dialects. The number of rows affected tells what happened: 1, a
// new window holding n; 2, an accepted add to an existing one, whose new
// usage is the LastInsertId the upsert set; 0, nothing changed: a refusal,
// or an add of 0 units, which is allowed if the usage is within limit.
func (c *Counter) addMySQL(ctx context.Context, key string, start, end, n, limit int64) (int64, error) {
	res, err := c.s.db.ExecContext(ctx, c.s.q.quotaAdd, key, start, end, n, limit)
	if err != nil {
		return 0, err
	}
	rows, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	switch {
	case rows == 1:
		return n, nil
	case rows == 2:
		return res.LastInsertId()
	case n > 0:
		return 0, sql.ErrNoRows
	}
	var used int64
	err = c.s.db.QueryRowContext(ctx, c.s.q.quotaGet, key, start).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err == nil && used > limit {
		return 0, sql.ErrNoRows
	}
	return used, err
}

// Refund implements apikey.Refunder: RefundAt at time.Now().
func (c *Counter) Refund(ctx context.Context, key string, q apikey.Quota, n int64) error {
	return c.RefundAt(ctx, key, q, n, time.Now())
}

// RefundAt takes n units off key's usage in the window of q that contains
// now, never below zero, in one statement: the units of a request counted
// by AddAt and then refused. It refuses what AddAt refuses, with an error
// wrapping apikey.ErrInvalidRequest; a database that does not answer fails
// with an error wrapping apikey.ErrUnavailable.
func (c *Counter) RefundAt(ctx context.Context, key string, q apikey.Quota, n int64, now time.Time) error {
	if err := checkQuota(key, q, n); err != nil {
		return err
	}
	if err := c.s.check(ctx); err != nil {
		return err
	}
	start, _ := window(now.UnixNano(), q)
	if _, err := c.s.db.ExecContext(ctx, c.refund, key, start, n); err != nil {
		return fmt.Errorf("%w: sqlstore: quota refund: %w", apikey.ErrUnavailable, err)
	}
	return nil
}

// checkQuota refuses what a Counter cannot count.
func checkQuota(key string, q apikey.Quota, n int64) error {
	if err := q.Validate(); err != nil {
		return err
	}
	switch {
	case q.Period > maxQuotaPeriod:
		return fmt.Errorf("%w: sqlstore: quota period %v above the maximum of %v", apikey.ErrInvalidRequest, q.Period, maxQuotaPeriod)
	case n < 0:
		return fmt.Errorf("%w: sqlstore: negative quota cost %d", apikey.ErrInvalidRequest, n)
	case !validText(key):
		return fmt.Errorf("%w: sqlstore: quota key must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	return nil
}

// window returns the start and end (Unix ns) of q's window that
// contains t (Unix ns): a calendar month for apikey.MonthPeriod, else
// fixed windows of q.Period from the epoch.
func window(t int64, q apikey.Quota) (start, end int64) {
	if q.Period == apikey.MonthPeriod {
		s, e := q.Window(time.Unix(0, t))
		return s.UnixNano(), e.UnixNano()
	}
	start = windowStart(t, int64(q.Period))
	return start, start + int64(q.Period)
}

// windowStart returns the start of the window of length period (ns) that
// contains t (Unix ns), windows starting at multiples of period since the
// epoch.
func windowStart(t, period int64) int64 {
	start := t - t%period
	if t < 0 && t%period != 0 {
		start -= period // floor, not truncation, before 1970
	}
	return start
}

// cleanup deletes ended windows if none of this Counter's calls did in
// the last cleanupEvery. It is best effort: a failure is retried later.
func (c *Counter) cleanup(ctx context.Context, now int64) {
	last := c.lastCleanup.Load()
	if now-last < int64(cleanupEvery) || !c.lastCleanup.CompareAndSwap(last, now) {
		return
	}
	c.s.db.ExecContext(ctx, c.s.q.quotaCleanup, now-int64(cleanupGrace))
}

var (
	_ apikey.Counter  = (*Counter)(nil)
	_ apikey.Refunder = (*Counter)(nil)
)
