package apikey

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/apikeykit/apikey/internal/inmem"
)

// localLimits holds the Manager's own limiter, counter and ledger.
type localLimits struct {
	sync.Mutex
	limiter *inmem.Limiter
	counter *inmem.Counter
	ledger  *inmem.Ledger
	closed  bool // Close was called: stop the sweepers of any made later
}

// localSweepInterval is how long the sweepers of the Manager's own limiter
// and counter take to visit every key once.
const localSweepInterval = time.Minute

// localLimiter is the Limiter a Middleware uses when Limits.Limiter is
// nil: the in-memory limiter that package memlimit exports, on the
// Manager's clock.
type localLimiter struct{ l *inmem.Limiter }

func (l localLimiter) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	interval, tolerance, err := limit.GCRA()
	if err != nil {
		return Decision{}, err
	}
	return Decision(l.l.AllowAt(l.l.Now(), key, interval, tolerance)), nil
}

// localCounter is the Counter a Middleware uses when Limits.Counter is
// nil, as localLimiter is for Limits.Limiter.
type localCounter struct{ c *inmem.Counter }

func (c localCounter) Add(_ context.Context, key string, q Quota, n int64) (Decision, error) {
	if err := q.Validate(); err != nil {
		return Decision{}, err
	}
	if n < 0 {
		return Decision{}, fmt.Errorf("%w: negative quota cost %d", ErrInvalidRequest, n)
	}
	return Decision(c.c.AddAt(c.c.Now(), key, q.Limit, q.Period, q.Day, n)), nil
}

func (c localCounter) Refund(_ context.Context, key string, q Quota, n int64) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: negative quota refund %d", ErrInvalidRequest, n)
	}
	c.c.RefundAt(c.c.Now(), key, q.Period, q.Day, n)
	return nil
}

// localLedger is the Ledger a Middleware uses when Limits.Ledger is nil,
// as localLimiter is for Limits.Limiter: memlimit.Ledger's, on the
// Manager's clock.
type localLedger struct{ l *inmem.Ledger }

func (l localLedger) Spend(_ context.Context, key string, c Credits, n int64) (Decision, error) {
	if err := checkLedgerCall(key, c, n, "spend"); err != nil {
		return Decision{}, err
	}
	return Decision(l.l.SpendAt(l.l.Now(), key, inmem.Credits(c), n)), nil
}

func (l localLedger) Refund(_ context.Context, key string, c Credits, n int64) error {
	if err := checkLedgerCall(key, c, n, "refund"); err != nil {
		return err
	}
	l.l.RefundAt(l.l.Now(), key, inmem.Credits(c), n)
	return nil
}

func (l localLedger) TopUp(_ context.Context, key string, c Credits, n int64) (int64, error) {
	if err := checkLedgerCall(key, c, n, "top-up"); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: top-up of 0 credits", ErrInvalidRequest)
	}
	b, ok := l.l.TopUpAt(l.l.Now(), key, inmem.Credits(c), n, MaxCredits)
	if !ok {
		return 0, fmt.Errorf("%w: a top-up of %d would take the balance of %d past %d", ErrInvalidRequest, n, b, MaxCredits)
	}
	return b, nil
}

// checkLedgerCall refuses what every Ledger refuses.
func checkLedgerCall(key string, c Credits, n int64, op string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: %s of %d credits", ErrInvalidRequest, op, n)
	}
	if !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("%w: ledger key %q: want valid UTF-8 without NUL", ErrInvalidRequest, key)
	}
	return nil
}

// localLimiter returns the Manager's own limiter, made on first use and
// shared by all its middlewares, so that a key's limit is one bucket
// whichever routes it calls. Close stops its sweeper.
func (m *Manager) localLimiter() Limiter {
	m.local.Lock()
	defer m.local.Unlock()
	if m.local.limiter == nil {
		m.local.limiter = inmem.NewLimiter(inmem.Config{Now: m.now, Sweep: localSweepInterval})
		if m.local.closed {
			m.local.limiter.Close()
		}
	}
	return localLimiter{m.local.limiter}
}

// localCounter returns the Manager's own counter, as localLimiter does.
func (m *Manager) localCounter() Counter {
	m.local.Lock()
	defer m.local.Unlock()
	if m.local.counter == nil {
		m.local.counter = inmem.NewCounter(inmem.Config{Now: m.now, Sweep: localSweepInterval})
		if m.local.closed {
			m.local.counter.Close()
		}
	}
	return localCounter{m.local.counter}
}

// Ledger returns the Manager's own Ledger: the balances in this process's
// memory that its Middlewares draw credits from when Limits.Ledger is nil,
// shared by all of them. Top balances up through it (TopUp), and read
// them (Spend of 0 units). Its balances are lost when the process exits;
// a service that sells credits sets Limits.Ledger to one on a database or
// Redis and tops up through that one instead. It keeps answering after
// Close. It is safe for concurrent use.
func (m *Manager) Ledger() Ledger { return m.localLedger() }

// localLedger returns the Manager's own ledger, as localLimiter does.
func (m *Manager) localLedger() Ledger {
	m.local.Lock()
	defer m.local.Unlock()
	if m.local.ledger == nil {
		m.local.ledger = inmem.NewLedger(inmem.Config{Now: m.now, Sweep: localSweepInterval})
		if m.local.closed {
			m.local.ledger.Close()
		}
	}
	return localLedger{m.local.ledger}
}

// closeLocal stops the sweepers of the Manager's own limiter, counter and
// ledger, and those of any made later. They keep answering afterwards.
func (m *Manager) closeLocal() {
	m.local.Lock()
	defer m.local.Unlock()
	m.local.closed = true
	if m.local.limiter != nil {
		m.local.limiter.Close()
	}
	if m.local.counter != nil {
		m.local.counter.Close()
	}
	if m.local.ledger != nil {
		m.local.ledger.Close()
	}
}
