package sqlstore

import (
	"context"
	"errors"
	"time"
)

// NotifyWaiter is the driver-specific half of Watch on PostgreSQL, which
// keeps this package free of driver imports. It blocks until the next
// notification arrives on driverConn and returns its payload. driverConn
// is the driver's connection as (*sql.Conn).Raw hands it over, already
// listening. A NotifyWaiter must return when ctx is done and must return
// an error when the connection is lost; an error wrapping
// ErrNoNotifications (a connection of a driver it does not know) makes
// Watch give up instead of retrying. pglisten.Wait is one for
// github.com/jackc/pgx/v5/stdlib.
type NotifyWaiter func(ctx context.Context, driverConn any) (payload string, err error)

// Bounds of the delay between attempts to re-establish watching.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Watch implements apikey.Watcher. It calls changed with the ID of every
// key inserted, changed (other than by RecordLastUsed) or deleted by any
// client of the database, and with "" once watching has begun and again
// whenever changes may have been missed. It returns ctx.Err() when ctx is
// done. Database errors do not end it: it retries with backoff (100 ms
// doubling to 5 s), so a Manager keeps watching through an outage.
//
// On PostgreSQL Watch holds one connection of db's pool, LISTENs on
// channel prefix+"changes", which a trigger on the keys table notifies,
// and needs the WithNotifications option (else it returns ErrNoNotifications
// at once). After a lost connection it reconnects and calls changed("").
//
// On SQLite and MySQL Watch polls a change log, maintained by triggers,
// every WithPollInterval; a watcher that fell more than 1000 changes
// behind gets changed("").
//
// changed is called from Watch's goroutine, one call at a time.
func (s *Store) Watch(ctx context.Context, changed func(id string)) error {
	if s.dialect == Postgres {
		if s.cfg.wait == nil {
			return ErrNoNotifications
		}
		return s.watchPostgres(ctx, changed)
	}
	return s.watchLog(ctx, changed)
}

func (s *Store) watchPostgres(ctx context.Context, changed func(string)) error {
	backoff := minBackoff
	for {
		start := time.Now()
		listened, err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrNoNotifications) {
			return err // the waiter cannot work with this driver: retrying will not help
		}
		if listened && time.Since(start) > maxBackoff {
			// It worked for a while: a fresh failure, retry soon. A
			// connection that fails as soon as it listens keeps backing
			// off, so that its changed("") does not empty caches in a loop.
			backoff = minBackoff
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen takes a connection, LISTENs on it, and passes notifications to
// changed until the connection fails or ctx is done. listened reports
// whether LISTEN succeeded.
func (s *Store) listen(ctx context.Context, changed func(string)) (listened bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		// Never give this connection back to the pool: it is listening,
		// or broken, or was interrupted mid-wait.
		conn.Raw(func(any) error { return errBadConn })
		conn.Close()
	}()
	// The prefix is validated as [a-z0-9_]+, so it needs no quoting.
	if _, err := conn.ExecContext(ctx, "LISTEN "+s.cfg.prefix+"changes"); err != nil {
		return false, err
	}
	changed("") // anything before this moment went unheard
	for {
		var payload string
		err := conn.Raw(func(dc any) error {
			var err error
			payload, err = s.cfg.wait(ctx, dc)
			return err
		})
		if err != nil {
			return true, err
		}
		changed(payload)
	}
}

// watchLog polls the change log (SQLite, MySQL).
func (s *Store) watchLog(ctx context.Context, changed func(string)) error {
	t := time.NewTicker(s.cfg.pollInterval)
	defer t.Stop()
	last := int64(-1) // no position in the log yet
	for {
		if last < 0 {
			if err := s.check(ctx); err == nil {
				if err := s.db.QueryRowContext(ctx, s.q.changesMax).Scan(&last); err == nil {
					changed("")
				} else {
					last = -1
				}
			}
		} else {
			// On error keep the position and try again next tick: the log
			// keeps what happened meanwhile.
			last, _ = s.pollChanges(ctx, last, changed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pollChanges reports the log's entries after seq last and returns the
// new position.
func (s *Store) pollChanges(ctx context.Context, last int64, changed func(string)) (int64, error) {
	for {
		rows, err := s.db.QueryContext(ctx, s.q.changesSince, last)
		if err != nil {
			return last, err
		}
		var ids []string
		pos := last
		for rows.Next() {
			var seq int64
			var id string
			if err := rows.Scan(&seq, &id); err != nil {
				rows.Close()
				return last, err
			}
			if pos == last && seq != last+1 {
				// Entries were trimmed before we read them.
				ids = append(ids[:0], "")
			}
			ids = append(ids, id)
			pos = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return last, err
		}
		if len(ids) > 0 && ids[0] == "" {
			changed("")
		} else {
			for _, id := range ids {
				changed(id)
			}
		}
		if len(ids) < 1000 {
			return pos, nil
		}
		last = pos
	}
}

// sleep waits for d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
