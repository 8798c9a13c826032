package ledgertest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/ledgertest"
)

// TestReference runs the suite against refLedger, a plain reading of the
// Ledger contract, so that the suite itself is checked: a case it gets
// wrong fails here, not only in a backend.
func TestReference(t *testing.T) {
	ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
		return &refLedger{now: now, m: map[string]*refState{}}
	})
}

// TestSuiteCatchesFaults runs the suite's cases against Ledgers that are
// each wrong in one way, and checks that some case fails for each.
func TestSuiteCatchesFaults(t *testing.T) {
	for _, f := range []string{"carry-grant", "lose-top-ups", "read-then-write", "overdraw", "no-overflow-check", "accept-bad-key"} {
		t.Run(f, func(t *testing.T) {
			failed := runIsolated(func(t *testing.T) {
				ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
					return &refLedger{now: now, m: map[string]*refState{}, fault: f}
				})
			})
			if !failed {
				t.Errorf("the suite passes a Ledger with fault %q", f)
			}
		})
	}
}

// runIsolated reports whether fn fails, run by testing.RunTests as a
// test of its own, so that its failures do not fail the caller. Its
// report, full of the failures it is expected to have, is discarded.
func runIsolated(fn func(*testing.T)) bool {
	stdout := os.Stdout
	if devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		os.Stdout = devNull
		defer func() { os.Stdout = stdout; devNull.Close() }()
	}
	ok := testing.RunTests(func(pat, str string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "Fault", F: fn}})
	return !ok
}

type refState struct {
	window int64 // Unix ns of the window's start
	used   int64
	extra  int64
}

// refLedger is a reference Ledger: one mutex, the model of
// apikey.Credits applied literally.
type refLedger struct {
	now   func() time.Time
	mu    sync.Mutex
	m     map[string]*refState
	fault string
}

func (l *refLedger) check(key string, c apikey.Credits, n int64) error {
	if l.fault != "accept-bad-key" && (!utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0) {
		return fmt.Errorf("%w: bad key", apikey.ErrInvalidRequest)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: negative units", apikey.ErrInvalidRequest)
	}
	return nil
}

// state returns key's state rolled over to the window of now.
func (l *refLedger) state(key string, c apikey.Credits, now time.Time) *refState {
	start, _ := c.Window(now)
	st := l.m[key]
	if st == nil {
		st = &refState{window: start.UnixNano()}
		l.m[key] = st
	}
	if st.window < start.UnixNano() {
		if l.fault != "carry-grant" {
			st.extra = max(st.extra-max(st.used-c.Grant, 0), 0)
			st.used = 0
		}
		if l.fault == "lose-top-ups" {
			st.extra = 0
		}
		st.window = start.UnixNano()
	}
	return st
}

func (l *refLedger) lock() func() {
	l.mu.Lock()
	return l.mu.Unlock
}

func (l *refLedger) Spend(ctx context.Context, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	if err := l.check(key, c, n); err != nil {
		return apikey.Decision{}, err
	}
	unlock := l.lock()
	defer func() { unlock() }()
	now := l.now()
	st := l.state(key, c, now)
	_, end := c.Window(now)
	var reset time.Duration
	if !end.IsZero() {
		reset = end.Sub(now)
	}
	capacity := c.Grant + st.extra
	ok := n <= capacity-st.used || l.fault == "overdraw" && n <= capacity-st.used+1
	d := apikey.Decision{Allowed: ok, Limit: capacity, Reset: reset}
	if ok {
		used := st.used + n
		if l.fault == "read-then-write" {
			// Decided on a read, written later: another Spend may
			// decide on the same read in between.
			unlock()
			time.Sleep(time.Microsecond)
			unlock = l.lock()
		}
		st.used = used
	} else if c.Grant >= n {
		d.RetryAfter = reset
	}
	d.Remaining = capacity - st.used
	return d, nil
}

func (l *refLedger) Refund(ctx context.Context, key string, c apikey.Credits, n int64) error {
	if err := l.check(key, c, n); err != nil {
		return err
	}
	defer l.lock()()
	st := l.state(key, c, l.now())
	st.used -= min(n, st.used)
	return nil
}

func (l *refLedger) TopUp(ctx context.Context, key string, c apikey.Credits, n int64) (int64, error) {
	if err := l.check(key, c, n); err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("%w: top-up of %d", apikey.ErrInvalidRequest, n)
	}
	defer l.lock()()
	st := l.state(key, c, l.now())
	balance := c.Grant + st.extra - st.used
	if n > apikey.MaxCredits-balance && l.fault != "no-overflow-check" {
		return 0, fmt.Errorf("%w: overflow", apikey.ErrInvalidRequest)
	}
	st.extra += n
	return balance + n, nil
}
