package apikey

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Usage reports how much keys were used: the requests and units counted
// by the middleware in hourly buckets, summed per hour, per day or per
// calendar month in UTC, as q says. With q.KeyID set, the rows are that
// key's (and q.Owner, if set, must be its owner); with only q.Owner set,
// each row sums every key of the owner, with KeyID "", or, with q.PerKey,
// is one key's, so that one call answers for all of an owner's keys.
// Rows come in ascending order of Start (and of KeyID within a Start),
// one per bucket (and key) that counted anything.
//
// It reads what has been flushed to the Store and adds what this Manager
// still holds in memory, so that it is exact for one process; the buckets
// other processes have not flushed yet are missing until they do (at most
// their flush interval, see WithUsageFlush). A bad query is an error
// wrapping ErrInvalidUsageQuery and ErrInvalidRequest; a Store that does
// not implement UsageRecorder gives ErrUsageUnsupported; a Store failure
// wraps ErrUnavailable.
func (m *Manager) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	q, err := q.normalize()
	if err != nil {
		return nil, err
	}
	rec, ok := m.store.(UsageRecorder)
	if !ok {
		return nil, ErrUsageUnsupported
	}
	var rows []UsageRow
	if m.usage != nil {
		rows, err = m.usage.read(ctx, q)
	} else {
		rows, err = rec.Usage(ctx, q)
	}
	if err != nil {
		return nil, storeError("read usage", err)
	}
	return rows, nil
}

// UsageRow is the usage of one key, or of all of an owner's keys, in one
// bucket: an hour, a day or a calendar month in UTC.
type UsageRow struct {
	// KeyID is the key's ID, or "" for a row that sums an owner's keys.
	KeyID string `json:"key_id,omitzero"`
	// Owner is the key's owner, as it was when the requests were counted.
	Owner string `json:"owner"`
	// Start is the bucket's start, in UTC: the hour, 00:00 of the day, or
	// 00:00 of the 1st of the month.
	Start time.Time `json:"start"`
	// Requests is how many requests were counted.
	Requests int64 `json:"requests"`
	// Units is the sum of their costs (1 each, unless Limits.Cost or
	// SetCost says otherwise).
	Units int64 `json:"units"`
}

// UsageQuery selects usage for Manager.Usage and UsageRecorder.Usage.
type UsageQuery struct {
	// Owner selects the owner's keys, summed per bucket when KeyID is ""
	// and PerKey is false.
	Owner string
	// KeyID selects one key. At least one of Owner and KeyID is required.
	KeyID string
	// PerKey, with Owner set and KeyID "", returns one row per key and
	// bucket, each with its KeyID, instead of the owner's sums: the rows
	// that a query per key with that Owner would return, in one query,
	// however many keys the owner has. Keys with nothing counted have no
	// rows. PerKey with a KeyID, or without an Owner, is an error.
	PerKey bool
	// From and To bound the hours counted, [From, To): an hour counts if
	// it starts at or after From and before To. A bucket whose hours are
	// only partly inside holds only those; its Start is still the
	// bucket's. A zero From is the beginning of time, a zero To the end.
	// From and To are truncated down to the hour.
	From, To time.Time
	// Granularity is the size of the buckets; "" is Hour.
	Granularity Granularity
}

// Granularity is the size of a usage bucket.
type Granularity string

// Granularities of UsageQuery. Days and months are in UTC.
const (
	Hour  Granularity = "hour"
	Day   Granularity = "day"
	Month Granularity = "month"
)

// ParseGranularity returns the Granularity named s: "hour", "day" or
// "month". Anything else is an error wrapping ErrInvalidUsageQuery.
func ParseGranularity(s string) (Granularity, error) {
	switch g := Granularity(s); g {
	case Hour, Day, Month:
		return g, nil
	}
	return "", usageQueryError("unknown granularity %q (want hour, day or month)", s)
}

// Truncate returns the start of the bucket of g that holds t, in UTC.
// It panics if g is not Hour, Day or Month.
func (g Granularity) Truncate(t time.Time) time.Time {
	t = t.UTC()
	switch g {
	case Hour, "":
		return t.Truncate(time.Hour)
	case Day:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	panic("apikey: Granularity.Truncate: unknown granularity " + string(g))
}

// Errors of usage.
var (
	// ErrInvalidUsageQuery is wrapped by the error of a UsageQuery that
	// makes no sense: no Owner and no KeyID, PerKey with a KeyID or
	// without an Owner, an unknown Granularity, From after To. It also
	// matches ErrInvalidRequest.
	ErrInvalidUsageQuery = errors.New("apikey: invalid usage query")
	// ErrUsageUnsupported is returned by Manager.Usage when the Store does
	// not implement UsageRecorder, and by SetCost on a request the
	// middleware did not authenticate.
	ErrUsageUnsupported = errors.New("apikey: usage not recorded by this store")
)

// usageQueryErr is a bad UsageQuery: it matches ErrInvalidUsageQuery and
// ErrInvalidRequest, and says what is wrong once.
type usageQueryErr struct{ msg string }

func (e *usageQueryErr) Error() string   { return ErrInvalidUsageQuery.Error() + ": " + e.msg }
func (e *usageQueryErr) Unwrap() []error { return []error{ErrInvalidUsageQuery, ErrInvalidRequest} }

func usageQueryError(format string, args ...any) error {
	return &usageQueryErr{fmt.Sprintf(format, args...)}
}

// normalize checks q and returns it with its times in UTC, truncated to
// the hour, and its Granularity set. A Store's Usage can rely on it.
func (q UsageQuery) normalize() (UsageQuery, error) {
	switch {
	case q.PerKey && q.KeyID != "":
		return q, usageQueryError("PerKey with a KeyID: want PerKey with an Owner alone, or the KeyID alone")
	case q.PerKey && q.Owner == "":
		return q, usageQueryError("PerKey wants an Owner")
	case q.Owner == "" && q.KeyID == "":
		return q, usageQueryError("want an Owner or a KeyID")
	}
	if q.KeyID != "" {
		if err := checkID(q.KeyID); err != nil {
			return q, usageQueryError("KeyID %q is not a key ID", q.KeyID)
		}
	}
	if err := checkText("owner", q.Owner, MaxOwnerLen); err != nil {
		return q, usageQueryError("Owner is not a valid owner")
	}
	if q.Granularity == "" {
		q.Granularity = Hour
	}
	if _, err := ParseGranularity(string(q.Granularity)); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return q, usageQueryError("From %v is after To %v", q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	}
	if !q.From.IsZero() {
		q.From = q.From.UTC().Truncate(time.Hour)
	}
	if !q.To.IsZero() {
		q.To = q.To.UTC().Truncate(time.Hour)
	}
	return q, nil
}

// Normalize returns q as Manager.Usage passes it to a Store: checked (an
// error wraps ErrInvalidUsageQuery), with From and To in UTC truncated to
// the hour and Granularity set. Stores need not call it; it is for stores
// used without a Manager, and for their tests.
func (q UsageQuery) Normalize() (UsageQuery, error) { return q.normalize() }

// ByKey reports whether q's rows are each one key's (KeyID or PerKey
// set), rather than sums of an owner's keys with KeyID "".
func (q UsageQuery) ByKey() bool { return q.KeyID != "" || q.PerKey }

// Includes reports whether hour (the start of an hourly bucket) is within
// q's From and To and belongs to q's Owner and KeyID (key, owner being the
// bucket's).
func (q UsageQuery) Includes(key, owner string, hour time.Time) bool {
	if q.KeyID != "" && key != q.KeyID || q.Owner != "" && owner != q.Owner {
		return false
	}
	return (q.From.IsZero() || !hour.Before(q.From)) && (q.To.IsZero() || hour.Before(q.To))
}
