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
// read. About once a minute an Add also deletes windows that ended over
// a minute ago. A Counter is safe for concurrent use, and processes
// sharing the database share the counts.
type Counter struct {
	s           *Store
	lastCleanup atomic.Int64 // Unix nanoseconds
}

// Counter returns a quota Counter that uses the Store's database and
// table prefix. It needs a migrated schema, like the Store.
func (s *Store) Counter() *Counter { return &Counter{s: s} }

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
	if err := q.Validate(); err != nil {
		return apikey.Decision{}, err
	}
	switch {
	case q.Period > maxQuotaPeriod:
		return apikey.Decision{}, fmt.Errorf("%w: sqlstore: quota period %v above the maximum of %v", apikey.ErrInvalidRequest, q.Period, maxQuotaPeriod)
	case n < 0:
		return apikey.Decision{}, fmt.Errorf("%w: sqlstore: negative quota cost %d", apikey.ErrInvalidRequest, n)
	case !validText(key):
		return apikey.Decision{}, fmt.Errorf("%w: sqlstore: quota key must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	if err := c.s.check(ctx); err != nil {
		return apikey.Decision{}, err
	}
	t, period := now.UnixNano(), int64(q.Period)
	start := t - t%period
	if t < 0 && t%period != 0 {
		start -= period // floor, not truncation, before 1970
	}
	end := start + period
	reset := time.Duration(end - t)

	var used int64
	err := c.s.db.QueryRowContext(ctx, c.s.q.quotaAdd, key, start, end, n, q.Limit).Scan(&used)
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

// cleanup deletes ended windows if none of this Counter's calls did in
// the last cleanupEvery. It is best effort: a failure is retried later.
func (c *Counter) cleanup(ctx context.Context, now int64) {
	last := c.lastCleanup.Load()
	if now-last < int64(cleanupEvery) || !c.lastCleanup.CompareAndSwap(last, now) {
		return
	}
	c.s.db.ExecContext(ctx, c.s.q.quotaCleanup, now-int64(cleanupGrace))
}

var _ apikey.Counter = (*Counter)(nil)
