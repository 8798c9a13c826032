package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
)

// Ledger is an apikey.Ledger in the Store's database: credit balances
// shared by every process that uses the database, for deployments without
// Redis. Each balance is one row of the credits table (migration 7): the
// start of the refill period it counts in, the units used in it and the
// top-ups left. Windows are apikey.Credits.Window's, by the calling
// process's clock.
//
// On SQLite and PostgreSQL every Spend, Refund and TopUp is one statement
// that decides and writes at once (an upsert whose WHERE refuses what the
// balance does not hold), so concurrent calls, from any number of
// processes, never overdraw a balance or lose a top-up; a refused Spend
// costs one more read, to report the balance. On MySQL and MariaDB, which
// have no RETURNING for an upsert, Spend and TopUp are the same kind of
// upsert followed by a read of the row in one transaction (four round
// trips); Refund is one UPDATE. A Ledger is safe for concurrent use.
type Ledger struct {
	s                          *Store
	spend, topUp, refund, read string // the statements, for the Store's dialect
}

// Ledger returns a credit Ledger that uses the Store's database and table
// prefix. It needs a migrated schema, like the Store.
func (s *Store) Ledger() *Ledger {
	d, p := s.dialect, s.cfg.prefix
	l := &Ledger{s: s, spend: ledgerSpend(d, p), topUp: ledgerTopUp(d, p), refund: ledgerRefund(d, p),
		read: ledgerQuery(d, `SELECT window_start, used, extra FROM `+p+`credits WHERE ledger_key = {key}`)}
	if d == MySQL {
		l.spend, l.topUp = ledgerSpendMySQL(p), ledgerTopUpMySQL(p)
	}
	return l
}

// Spend implements apikey.Ledger: SpendAt at time.Now().
func (l *Ledger) Spend(ctx context.Context, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	return l.SpendAt(ctx, key, c, n, time.Now())
}

// SpendAt takes n units from key's balance under c, in the refill period
// of c that holds now, as apikey.Ledger's Spend says. It refuses what
// apikey.Credits.Validate refuses and, beyond that, a refill period
// longer than a century, a negative n and a key that is not UTF-8 without
// NUL bytes, with an error wrapping apikey.ErrInvalidRequest; a database
// that does not answer fails with an error wrapping apikey.ErrUnavailable.
// An n above apikey.MaxCredits, which no balance holds, is refused
// without a write.
func (l *Ledger) SpendAt(ctx context.Context, key string, c apikey.Credits, n int64, now time.Time) (apikey.Decision, error) {
	if err := checkLedger(key, c, n); err != nil {
		return apikey.Decision{}, err
	}
	if err := l.checkLedgerKey(key); err != nil {
		return apikey.Decision{}, err
	}
	if err := l.s.check(ctx); err != nil {
		return apikey.Decision{}, err
	}
	w, reset := creditWindow(c, now)
	if n > apikey.MaxCredits {
		st, err := l.readState(ctx, l.s.db, key, c, w)
		if err != nil {
			return apikey.Decision{}, err
		}
		return st.decision(c, false, n, reset), nil
	}
	var (
		st  ledgerState
		ok  bool
		err error
	)
	if l.s.dialect == MySQL {
		st, ok, err = l.upsertMySQL(ctx, l.spend, key, c, w, n)
	} else {
		err = l.s.db.QueryRowContext(ctx, l.spend, key, w, n, c.Grant).Scan(&st.used, &st.extra)
		// A row comes back from an accepted update, which leaves at least
		// n used, or from the insert of a new balance, which holds n if
		// the grant did and 0 otherwise.
		ok = err == nil && (n == 0 || st.used >= n)
		if errors.Is(err, sql.ErrNoRows) {
			st, err = l.readState(ctx, l.s.db, key, c, w)
		}
	}
	if err != nil {
		return apikey.Decision{}, unavailableLedger("spend", err)
	}
	return st.decision(c, ok, n, reset), nil
}

// Refund implements apikey.Ledger: RefundAt at time.Now().
func (l *Ledger) Refund(ctx context.Context, key string, c apikey.Credits, n int64) error {
	return l.RefundAt(ctx, key, c, n, time.Now())
}

// RefundAt gives back n units to key's balance in the refill period of c
// that holds now, never more than the period used, in one UPDATE. A
// balance last spent in an earlier period is left as it is: its new
// period has used nothing yet. It refuses what SpendAt refuses.
func (l *Ledger) RefundAt(ctx context.Context, key string, c apikey.Credits, n int64, now time.Time) error {
	if err := checkLedger(key, c, n); err != nil {
		return err
	}
	if err := l.checkLedgerKey(key); err != nil {
		return err
	}
	if err := l.s.check(ctx); err != nil {
		return err
	}
	w, _ := creditWindow(c, now)
	if _, err := l.s.db.ExecContext(ctx, l.refund, key, w, n); err != nil {
		return unavailableLedger("refund", err)
	}
	return nil
}

// TopUp implements apikey.Ledger: TopUpAt at time.Now().
func (l *Ledger) TopUp(ctx context.Context, key string, c apikey.Credits, n int64) (int64, error) {
	return l.TopUpAt(ctx, key, c, n, time.Now())
}

// TopUpAt adds n ≥ 1 units that do not expire to key's balance, in the
// refill period of c that holds now, and returns the new balance. A top-up
// that would take the balance past apikey.MaxCredits fails with an error
// wrapping apikey.ErrInvalidRequest and adds nothing. It refuses what
// SpendAt refuses, and an n below 1.
func (l *Ledger) TopUpAt(ctx context.Context, key string, c apikey.Credits, n int64, now time.Time) (int64, error) {
	if err := checkLedger(key, c, n); err != nil {
		return 0, err
	}
	if err := l.checkLedgerKey(key); err != nil {
		return 0, err
	}
	if n < 1 || n > apikey.MaxCredits {
		return 0, fmt.Errorf("%w: sqlstore: top-up of %d credits: want 1 to %d", apikey.ErrInvalidRequest, n, apikey.MaxCredits)
	}
	if err := l.s.check(ctx); err != nil {
		return 0, err
	}
	w, _ := creditWindow(c, now)
	var (
		st  ledgerState
		ok  bool
		err error
	)
	if l.s.dialect == MySQL {
		st, ok, err = l.upsertMySQL(ctx, l.topUp, key, c, w, n)
	} else {
		err = l.s.db.QueryRowContext(ctx, l.topUp, key, w, n, c.Grant, apikey.MaxCredits).Scan(&st.used, &st.extra)
		// As in SpendAt: an accepted update leaves at least n top-ups, a
		// new balance holds n if they fit and 0 otherwise.
		ok = err == nil && st.extra >= n
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	}
	if err != nil {
		return 0, unavailableLedger("top-up", err)
	}
	if !ok {
		return 0, fmt.Errorf("%w: sqlstore: a top-up of %d would take the balance of %.40q past %d", apikey.ErrInvalidRequest, n, key, apikey.MaxCredits)
	}
	return c.Grant + st.extra - st.used, nil
}

// ledgerState is a balance's row: the units used in its period and the
// top-ups left.
type ledgerState struct{ used, extra int64 }

// decision is the Decision for a Spend of n that ok says was taken,
// st being the balance after it.
func (st ledgerState) decision(c apikey.Credits, ok bool, n int64, reset time.Duration) apikey.Decision {
	capacity := c.Grant + st.extra
	d := apikey.Decision{Allowed: ok, Limit: capacity, Remaining: capacity - st.used, Reset: reset}
	if !ok && c.Grant >= n {
		d.RetryAfter = reset
	}
	return d
}

// readState reads key's balance as a Spend in window w would find it:
// rolled over if its row counts in an earlier period, the grant alone if
// there is no row.
func (l *Ledger) readState(ctx context.Context, db execer, key string, c apikey.Credits, w int64) (ledgerState, error) {
	var (
		start int64
		st    ledgerState
	)
	err := db.QueryRowContext(ctx, l.read, key).Scan(&start, &st.used, &st.extra)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ledgerState{}, nil
	case err != nil:
		return ledgerState{}, unavailableLedger("read", err)
	case start < w:
		st = ledgerState{used: 0, extra: max(st.extra-max(st.used-c.Grant, 0), 0)}
	}
	return st, nil
}

// upsertMySQL runs a MySQL Spend or TopUp upsert and reads back the row it
// decided on, in one transaction, so that the read sees this call's
// outcome (last_ok) and no other's. A refusal is reported with the
// balance rolled over, as readState does.
func (l *Ledger) upsertMySQL(ctx context.Context, upsert, key string, c apikey.Credits, w, n int64) (ledgerState, bool, error) {
	tx, err := l.s.db.BeginTx(ctx, nil)
	if err != nil {
		return ledgerState{}, false, err
	}
	defer tx.Rollback()
	db := l.s.rebind(tx)
	if _, err := db.ExecContext(ctx, upsert, key, w, n, c.Grant, apikey.MaxCredits); err != nil {
		return ledgerState{}, false, err
	}
	var (
		start int64
		ok    bool
		st    ledgerState
	)
	if err := db.QueryRowContext(ctx, `SELECT window_start, used, extra, last_ok FROM `+l.s.cfg.prefix+`credits WHERE ledger_key = $1`,
		key).Scan(&start, &st.used, &st.extra, &ok); err != nil {
		return ledgerState{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return ledgerState{}, false, err
	}
	if !ok && start < w {
		st = ledgerState{used: 0, extra: max(st.extra-max(st.used-c.Grant, 0), 0)}
	}
	return st, ok, nil
}

// creditWindow returns the start of c's refill period that holds now, in
// Unix ns (0 for NoRefill), and the time from now to its end (0 for
// NoRefill).
func creditWindow(c apikey.Credits, now time.Time) (start int64, reset time.Duration) {
	s, e := c.Window(now)
	if c.Period == apikey.NoRefill {
		return 0, 0
	}
	return s.UnixNano(), e.Sub(now)
}

// checkLedger refuses what a Ledger cannot apply.
func checkLedger(key string, c apikey.Credits, n int64) error {
	if err := c.Validate(); err != nil {
		return err
	}
	switch {
	case c.Period > maxQuotaPeriod:
		return fmt.Errorf("%w: sqlstore: credits refill period %v above the maximum of %v", apikey.ErrInvalidRequest, c.Period, maxQuotaPeriod)
	case n < 0:
		return fmt.Errorf("%w: sqlstore: negative credits %d", apikey.ErrInvalidRequest, n)
	case !validText(key):
		return fmt.Errorf("%w: sqlstore: ledger key must be UTF-8 without NUL bytes", apikey.ErrInvalidRequest)
	}
	return nil
}

// mysqlMaxLedgerKey is the size of the MySQL credits table's ledger_key.
const mysqlMaxLedgerKey = 512

// checkLedgerKey refuses a key the dialect's credits table cannot hold.
func (l *Ledger) checkLedgerKey(key string) error {
	if l.s.dialect == MySQL && len(key) > mysqlMaxLedgerKey {
		return fmt.Errorf("%w: sqlstore: ledger key of %d bytes, at most %d on MySQL", apikey.ErrInvalidRequest, len(key), mysqlMaxLedgerKey)
	}
	return nil
}

func unavailableLedger(op string, err error) error {
	return fmt.Errorf("%w: sqlstore: credits %s: %w", apikey.ErrUnavailable, op, err)
}

// The Ledger's statements are written with named parameters, replaced
// per dialect by ledgerQuery: {key} the ledger key, {w} the period's
// start (Unix ns), {n} the units, {g} the grant, {max} apikey.MaxCredits.
// In every statement, a row whose window_start is before {w} is rolled
// over first: used goes to 0, and the top-ups to what the period's spends
// beyond its grant left of them.

// ledgerQuery replaces the named parameters of q with the dialect's:
// typed $N on PostgreSQL (which would otherwise take a parameter in a
// VALUES list for text), ?N on SQLite, $N on MySQL (rebound to ?s).
func ledgerQuery(d Dialect, q string) string {
	names := []string{"{key}", "{w}", "{n}", "{g}", "{max}"}
	pgTypes := []string{"text", "bigint", "bigint", "bigint", "bigint"}
	var pairs []string
	for i, name := range names {
		p := fmt.Sprintf("$%d", i+1)
		switch d {
		case Postgres:
			p += "::" + pgTypes[i]
		case SQLite:
			p = fmt.Sprintf("?%d", i+1)
		}
		pairs = append(pairs, name, p)
	}
	return strings.NewReplacer(pairs...).Replace(q)
}

// greatest is the larger of two SQL expressions.
func greatest(d Dialect, a, b string) string {
	if d == SQLite {
		return "max(" + a + ", " + b + ")"
	}
	return "GREATEST(" + a + ", " + b + ")"
}

// rolled returns the expressions of a row's used and extra after the
// roll-over into {w}, for the row's columns named by col.
func rolled(d Dialect, col func(string) string) (used, extra string) {
	same := col("window_start") + " >= {w}"
	used = "CASE WHEN " + same + " THEN " + col("used") + " ELSE 0 END"
	extra = "CASE WHEN " + same + " THEN " + col("extra") + " ELSE " +
		greatest(d, col("extra")+" - "+greatest(d, col("used")+" - {g}", "0"), "0") + " END"
	return used, extra
}

// ledgerSpend is Spend on SQLite and PostgreSQL: the update's WHERE
// refuses a spend the balance does not hold, writing nothing and
// returning no row; a new balance is inserted holding n, or 0 if the
// grant does not hold n.
func ledgerSpend(d Dialect, p string) string {
	used, extra := rolled(d, func(c string) string { return "c." + c })
	return ledgerQuery(d, `INSERT INTO `+p+`credits AS c (ledger_key, window_start, used, extra)
		VALUES ({key}, {w}, CASE WHEN {n} <= {g} THEN {n} ELSE 0 END, 0)
		ON CONFLICT (ledger_key) DO UPDATE SET extra = `+extra+`, used = `+used+` + {n},
			window_start = `+greatest(d, "c.window_start", "{w}")+`
		WHERE `+used+` + {n} <= {g} + `+extra+`
		RETURNING used, extra`)
}

// ledgerTopUp is TopUp on SQLite and PostgreSQL: the update's WHERE
// refuses a top-up that would take the balance past {max}; a new balance
// is inserted holding the top-up, or none of it if it does not fit.
func ledgerTopUp(d Dialect, p string) string {
	used, extra := rolled(d, func(c string) string { return "c." + c })
	return ledgerQuery(d, `INSERT INTO `+p+`credits AS c (ledger_key, window_start, used, extra)
		VALUES ({key}, {w}, 0, CASE WHEN {g} + {n} <= {max} THEN {n} ELSE 0 END)
		ON CONFLICT (ledger_key) DO UPDATE SET extra = `+extra+` + {n}, used = `+used+`,
			window_start = `+greatest(d, "c.window_start", "{w}")+`
		WHERE {g} + `+extra+` - `+used+` + {n} <= {max}
		RETURNING used, extra`)
}

// ledgerRefund is Refund on every dialect: one column, so MySQL's
// left-to-right assignments do not matter.
func ledgerRefund(d Dialect, p string) string {
	return ledgerQuery(d, `UPDATE `+p+`credits SET used = CASE WHEN used > {n} THEN used - {n} ELSE 0 END
		WHERE ledger_key = {key} AND window_start >= {w}`)
}

// ledgerSpendMySQL is Spend on MySQL. Its assignments run left to right,
// each seeing the columns assigned before it: last_ok decides first, from
// the row as it was, and the others follow it, extra before used (whose
// old value it reads) and window_start last (which both read).
func ledgerSpendMySQL(p string) string {
	used, extra := rolled(MySQL, func(c string) string { return c })
	return ledgerQuery(MySQL, `INSERT INTO `+p+`credits (ledger_key, window_start, used, extra, last_ok)
		VALUES ({key}, {w}, IF({n} <= {g}, {n}, 0), 0, {n} <= {g})
		ON DUPLICATE KEY UPDATE last_ok = (`+used+` + {n} <= {g} + `+extra+`),
			extra = IF(last_ok, `+extra+`, extra),
			used = IF(last_ok, `+used+` + {n}, used),
			window_start = IF(last_ok, GREATEST(window_start, {w}), window_start)`)
}

// ledgerTopUpMySQL is TopUp on MySQL, in the order ledgerSpendMySQL
// explains.
func ledgerTopUpMySQL(p string) string {
	used, extra := rolled(MySQL, func(c string) string { return c })
	return ledgerQuery(MySQL, `INSERT INTO `+p+`credits (ledger_key, window_start, used, extra, last_ok)
		VALUES ({key}, {w}, 0, IF({g} + {n} <= {max}, {n}, 0), {g} + {n} <= {max})
		ON DUPLICATE KEY UPDATE last_ok = ({g} + `+extra+` - `+used+` + {n} <= {max}),
			extra = IF(last_ok, `+extra+` + {n}, extra),
			used = IF(last_ok, `+used+`, used),
			window_start = IF(last_ok, GREATEST(window_start, {w}), window_start)`)
}

var _ apikey.Ledger = (*Ledger)(nil)
