package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apikeykit/apikey"
)

// The event_claims table of schema version 5 holds one row per key and
// hygiene event claimed (apikey.EventClaimer). Schema version 8 deletes a
// key's claims with the key; PruneEvents deletes those that can no longer
// matter, as apikey.ClaimObsolete says.

// ClaimEvent implements apikey.EventClaimer with one INSERT that does
// nothing if the claim is there, so that of many processes exactly one
// claims each event.
func (s *Store) ClaimEvent(ctx context.Context, id, event string, at time.Time) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if !validText(id) || !validText(event) {
		return false, fmt.Errorf("%w: sqlstore: claim: key ID and event must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	if s.dialect == MySQL && (len(id) > mysqlMaxBytes || len(event) > mysqlMaxBytes) {
		return false, fmt.Errorf("%w: sqlstore: claim: key ID and event are at most %d bytes on MySQL", apikey.ErrInvalidRequest, mysqlMaxBytes)
	}
	if s.dialect == MySQL && !at.IsZero() && (at.Before(mysqlMinTime) || !at.Before(mysqlMaxTime)) {
		return false, fmt.Errorf("%w: sqlstore: claim: time %v outside the years 1000 to 9999 that MySQL can store", apikey.ErrInvalidRequest, at)
	}
	res, err := s.db.ExecContext(ctx, s.q.claimEvent, id, event, s.timeArg(at))
	if err != nil {
		return false, fmt.Errorf("sqlstore: claim event %q of key %s: %w", event, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: claim event %q of key %s: %w", event, id, err)
	}
	return n == 1, nil
}

// PruneEvents implements apikey.EventPruner with one DELETE over the
// claims table's primary key, from one key ID to another: the claims made
// before before of IDs that no key has, of keys revoked before before, and
// "expiring:<t>" claims whose t (decimal Unix microseconds) is before
// before, which it compares as text: fewer digits, or as many and less.
// A zero before, a to before from, text that is not UTF-8 without NUL,
// or on MySQL a before outside the years 1000 to 9999, fails with an error
// wrapping apikey.ErrInvalidRequest and deletes nothing.
func (s *Store) PruneEvents(ctx context.Context, from, to string, before time.Time) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	switch {
	case before.IsZero():
		return 0, fmt.Errorf("%w: sqlstore: prune event claims: want a time before which claims may go", apikey.ErrInvalidRequest)
	case to != "" && to < from:
		return 0, fmt.Errorf("%w: sqlstore: prune event claims: key ID range from %.40q to %.40q is backwards", apikey.ErrInvalidRequest, from, to)
	case !validText(from) || !validText(to):
		return 0, fmt.Errorf("%w: sqlstore: prune event claims: key IDs must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	case s.dialect == MySQL && (before.Before(mysqlMinTime) || !before.Before(mysqlMaxTime)):
		return 0, fmt.Errorf("%w: sqlstore: prune event claims: time %v outside the years 1000 to 9999 that MySQL can store", apikey.ErrInvalidRequest, before)
	}
	// The bound an expiring claim is compared with; "" (length 0, which
	// no such claim has) before 1970, when none is obsolete.
	bound := ""
	if us := before.UTC().Truncate(time.Microsecond).UnixMicro(); us > 0 {
		bound = "expiring:" + strconv.FormatInt(us, 10)
	}
	query, args := s.q.pruneEventsAll, []any{from, s.timeArg(before), len(bound), bound}
	if to != "" {
		query, args = s.q.pruneEvents, []any{from, to, s.timeArg(before), len(bound), bound}
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune event claims: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune event claims: %w", err)
	}
	return int(n), nil
}

// pruneEventsSQL is PruneEvents' DELETE on the claims table of prefix p,
// with key IDs after $1 and, if bounded, up to $2; the next parameters
// are the time before which claims may go, and the length and text of
// the bound of expiring claims. It is the same on every dialect: substr,
// length and replace are everywhere, and the columns compare bytewise
// (COLLATE "C", VARBINARY, SQLite's BINARY). The digits are checked with
// replace, not a regular expression, which MySQL refuses on binary
// strings, and never converted to a number, which MySQL's strict mode
// would make an error for text that is not one.
func pruneEventsSQL(p string, bounded bool) string {
	c, k := p+"event_claims", p+"keys"
	next := 2
	upper := ""
	if bounded {
		upper, next = ` AND key_id <= $2`, 3
	}
	param := func(i int) string { return "$" + strconv.Itoa(next+i) }
	before, length, bound := param(0), param(1), param(2)
	digits := `substr(event, 10)`
	for d := range 10 {
		digits = `replace(` + digits + `, '` + strconv.Itoa(d) + `', '')`
	}
	return `DELETE FROM ` + c + ` WHERE key_id > $1` + upper + ` AND claimed_at < ` + before + ` AND (
		NOT EXISTS (SELECT 1 FROM ` + k + ` WHERE ` + k + `.id = ` + c + `.key_id)
		OR EXISTS (SELECT 1 FROM ` + k + ` WHERE ` + k + `.id = ` + c + `.key_id AND ` + k + `.revoked_at < ` + before + `)
		OR substr(event, 1, 9) = 'expiring:' AND length(event) > 9 AND ` + digits + ` = ''
			AND (length(event) < ` + length + ` OR length(event) = ` + length + ` AND event < ` + bound + `))`
}
