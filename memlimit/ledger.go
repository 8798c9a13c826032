package memlimit

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/inmem"
)

// Ledger is an apikey.Ledger that keeps credit balances in memory, for a
// service that runs as one process: balances, and the top-ups customers
// paid for, are lost when the process exits, so a service that sells
// credits keeps them in a Ledger on a database (package sqlstore) or Redis
// (package redislimit) instead, or records each top-up where it can
// replay it. It is safe for concurrent use; every Spend, Refund and TopUp
// is atomic.
//
// A balance is tracked by a 64-bit hash of its key seeded at random,
// never by the key itself; two keys whose hashes collide (about one
// chance in 2^64 per pair) would share one balance. The sweeper forgets a
// balance once its refill period has ended with no top-ups left, when it
// is the same as one never seen. A balance that holds top-ups, or whose
// credits are NoRefill, is never forgotten: memory grows with the number
// of such balances (a 56-byte slot each, in hash tables kept at most three
// quarters full), until the process exits.
// Spend does not allocate.
type Ledger struct {
	l *inmem.Ledger
}

// NewLedger returns a Ledger and starts its sweeper, which runs until
// Close. It returns an error wrapping apikey.ErrInvalidRequest if an
// option is invalid.
func NewLedger(opts ...LedgerOption) (*Ledger, error) {
	c := ledgerConfig{config: config{now: time.Now, sweep: DefaultSweepInterval}}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: memlimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyLedger(&c); err != nil {
			return nil, err
		}
	}
	return &Ledger{l: inmem.NewLedger(inmem.Config{Now: c.now, Sweep: c.sweep})}, nil
}

// Spend implements apikey.Ledger: SpendAt at the ledger's clock's time.
func (l *Ledger) Spend(_ context.Context, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	return l.SpendAt(l.l.Now(), key, c, n)
}

// SpendAt takes n units from key's balance under c at time now, as
// apikey.Ledger's Spend says: the period's grant first, then top-ups; a
// refused Spend takes nothing, and n = 0 reports the balance. It returns
// an error wrapping apikey.ErrInvalidRequest if c.Validate refuses c, n
// is negative or key is not valid UTF-8 or holds a NUL byte, and no
// other error.
func (l *Ledger) SpendAt(now time.Time, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	if err := check(key, c, n, "spend"); err != nil {
		return apikey.Decision{}, err
	}
	return apikey.Decision(l.l.SpendAt(now, key, inmem.Credits(c), n)), nil
}

// Refund implements apikey.Ledger: RefundAt at the ledger's clock's time.
func (l *Ledger) Refund(_ context.Context, key string, c apikey.Credits, n int64) error {
	return l.RefundAt(l.l.Now(), key, c, n)
}

// RefundAt gives back n units that Spend took from key's balance, in the
// refill period that holds now (after a refill if one is due), never
// taking the units used in it below zero. It refuses what SpendAt refuses,
// with the same errors.
func (l *Ledger) RefundAt(now time.Time, key string, c apikey.Credits, n int64) error {
	if err := check(key, c, n, "refund"); err != nil {
		return err
	}
	l.l.RefundAt(now, key, inmem.Credits(c), n)
	return nil
}

// TopUp implements apikey.Ledger: TopUpAt at the ledger's clock's time.
func (l *Ledger) TopUp(_ context.Context, key string, c apikey.Credits, n int64) (int64, error) {
	return l.TopUpAt(l.l.Now(), key, c, n)
}

// TopUpAt adds n ≥ 1 units that do not expire to key's balance at time
// now and returns the new balance. It refuses what SpendAt refuses, n < 1,
// and a top-up that would take the balance past apikey.MaxCredits, with
// an error wrapping apikey.ErrInvalidRequest; nothing is added then.
func (l *Ledger) TopUpAt(now time.Time, key string, c apikey.Credits, n int64) (int64, error) {
	if err := check(key, c, n, "top-up"); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: memlimit: top-up of 0 credits", apikey.ErrInvalidRequest)
	}
	b, ok := l.l.TopUpAt(now, key, inmem.Credits(c), n, apikey.MaxCredits)
	if !ok {
		return 0, fmt.Errorf("%w: memlimit: a top-up of %d would take the balance of %d past %d", apikey.ErrInvalidRequest, n, b, apikey.MaxCredits)
	}
	return b, nil
}

// check refuses what every Ledger refuses.
func check(key string, c apikey.Credits, n int64, op string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: memlimit: %s of %d credits", apikey.ErrInvalidRequest, op, n)
	}
	if !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("%w: memlimit: ledger key %q: want valid UTF-8 without NUL", apikey.ErrInvalidRequest, key)
	}
	return nil
}

// Len returns the number of balances tracked, for tests and metrics.
func (l *Ledger) Len() int { return l.l.Len() }

// Close stops the sweeper and waits for it to exit. The ledger still
// answers afterwards, but no longer forgets balances. Close is idempotent
// and always returns nil.
func (l *Ledger) Close() error {
	l.l.Close()
	return nil
}

var _ apikey.Ledger = (*Ledger)(nil)
