package apikey

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Defaults of the sweeps.
const (
	DefaultSweepInterval = time.Hour
	DefaultSweepBatch    = 1000
)

// sweepConfig says which sweeps run, how often and on how many keys.
type sweepConfig struct {
	expiring    time.Duration // report keys expiring within this; 0: off
	unused      time.Duration // report keys unused for this long; 0: off
	revokeAfter time.Duration // revoke keys unused for this long; 0: off
	interval    time.Duration
	batch       int
}

func (c sweepConfig) on() bool { return c.expiring > 0 || c.unused > 0 || c.revokeAfter > 0 }

// WithExpiringSweep makes the Manager look, every sweep interval, for
// keys that expire within the given window, and report each once as a
// KeyExpiring event (WithKeyEvents), so its owner can rotate it in time.
// A key whose expiry is changed is reported again for its new expiry.
// Revoked and suspended keys are not reported. Off by default.
func WithExpiringSweep(within time.Duration) Option {
	return func(s *settings) error {
		if within <= 0 {
			return fmt.Errorf("%w: WithExpiringSweep(%v): want > 0", ErrInvalidRequest, within)
		}
		s.sweep.expiring = within
		return nil
	}
}

// WithUnusedSweep makes the Manager look, every sweep interval, for keys
// not used for at least idle (by LastUsedAt, or CreatedAt for a key never
// used), and report each once as a KeyUnused event. A key used again and
// then idle again is reported again. Revoked, suspended and expired keys
// are not reported. Off by default. LastUsedAt is only kept for Stores
// that implement LastUsedRecorder.
func WithUnusedSweep(idle time.Duration) Option {
	return func(s *settings) error {
		if idle <= 0 {
			return fmt.Errorf("%w: WithUnusedSweep(%v): want > 0", ErrInvalidRequest, idle)
		}
		s.sweep.unused = idle
		return nil
	}
}

// WithAutoRevokeUnused makes the sweeps revoke keys not used for at least
// idle, with the reason "unused for <idle>", as GitHub does with tokens
// unused for a year; each is reported as a KeyRevoked event. Off by
// default. Give a longer idle than WithUnusedSweep's, so that owners are
// warned first.
func WithAutoRevokeUnused(idle time.Duration) Option {
	return func(s *settings) error {
		if idle <= 0 {
			return fmt.Errorf("%w: WithAutoRevokeUnused(%v): want > 0", ErrInvalidRequest, idle)
		}
		s.sweep.revokeAfter = idle
		return nil
	}
}

// WithSweepInterval sets how often the sweeps run (default
// DefaultSweepInterval) and batch how many keys each run looks at at
// most (default DefaultSweepBatch): a run continues where the previous
// one stopped, so every key is looked at once per ceil(keys/batch)
// intervals.
func WithSweepInterval(interval time.Duration, batch int) Option {
	return func(s *settings) error {
		if interval <= 0 || batch <= 0 {
			return fmt.Errorf("%w: WithSweepInterval(%v, %d): want > 0", ErrInvalidRequest, interval, batch)
		}
		s.sweep.interval, s.sweep.batch = interval, batch
		return nil
	}
}

// sweeper is the sweeps' state: where the next run starts, and the claims
// made in memory for a Store that cannot hold them.
type sweeper struct {
	cfg sweepConfig

	mu      sync.Mutex // one run at a time
	cursor  string
	claimed map[[2]string]time.Time // for Stores without EventClaimer: when each was claimed
}

// runSweeps runs Sweep every interval until ctx ends.
func (m *Manager) runSweeps(ctx context.Context) {
	t := time.NewTicker(m.sweeper.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
				m.onError(err)
			}
		}
	}
}

// Sweep runs the sweeps configured by WithExpiringSweep, WithUnusedSweep
// and WithAutoRevokeUnused once, on at most the sweep batch of keys,
// starting where the previous run stopped. The Manager calls it every
// sweep interval; call it yourself to run one now (from a cron job, say).
// Events are claimed in the Store (EventClaimer) before they are sent,
// so that across all Managers on one Store each is sent once.
//
// Each page of keys it looks at also prunes the claims of that page's
// range of key IDs that can no longer matter (ClaimObsolete, with
// EventClaimRetention): through the Store's EventPruner, in the same
// pass over the keys, so that every claim is looked at once per pass and
// each call deletes in proportion to the keys it looked at. A Store that
// claims events without EventPruner keeps its claims; a Store without
// EventClaimer has them pruned in this Manager's memory.
//
// It returns the first error; keys before it were handled. Without any
// of those options it does nothing.
func (m *Manager) Sweep(ctx context.Context) error {
	sw := m.sweeper
	if sw == nil || !sw.cfg.on() {
		return nil
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for seen := 0; seen < sw.cfg.batch; {
		from := sw.cursor
		keys, next, err := m.List(ctx, ListOptions{Cursor: from, Limit: min(sw.cfg.batch-seen, MaxListLimit)})
		if err != nil && len(keys) == 0 {
			return fmt.Errorf("apikey: sweep: %w", err)
		}
		for _, k := range keys {
			if err := m.sweepKey(ctx, k); err != nil {
				return fmt.Errorf("apikey: sweep key %s: %w", k.ID, err)
			}
		}
		seen += len(keys)
		sw.cursor = next
		// After the page's own claims: those are new, and kept.
		if err := m.pruneClaims(ctx, from, next, keys, err == nil); err != nil {
			return fmt.Errorf("apikey: sweep: %w", err)
		}
		if next == "" {
			return nil // the end: the next run starts again at the beginning
		}
	}
	return nil
}

// sweepKey reports or revokes one key, as the sweeps say.
func (m *Manager) sweepKey(ctx context.Context, k *Key) error {
	now := m.now()
	if k.Status(now) != nil {
		return nil // revoked, suspended, expired or not yet valid: nothing to warn about
	}
	cfg := m.sweeper.cfg
	lastActive := k.LastActive()
	idle := now.Sub(lastActive)
	since := strconv.FormatInt(lastActive.UnixMicro(), 10)
	if cfg.revokeAfter > 0 && idle >= cfg.revokeAfter {
		ok, err := m.claim(ctx, k.ID, revokeUnusedEvent+since, now)
		if err != nil || !ok {
			return err
		}
		return m.RevokeWithReason(ctx, k.ID, "unused for "+cfg.revokeAfter.String())
	}
	if cfg.unused > 0 && idle >= cfg.unused {
		if err := m.claimAndReport(ctx, k, KeyUnused, unusedEvent+since, now); err != nil {
			return err
		}
	}
	if cfg.expiring > 0 && !k.ExpiresAt.IsZero() && k.ExpiresAt.Sub(now) <= cfg.expiring {
		until := strconv.FormatInt(k.ExpiresAt.UnixMicro(), 10)
		if err := m.claimAndReport(ctx, k, KeyExpiring, expiringEvent+until, now); err != nil {
			return err
		}
	}
	return nil
}

// claimAndReport sends an event about k if this call claims it.
func (m *Manager) claimAndReport(ctx context.Context, k *Key, typ KeyEventType, event string, now time.Time) error {
	ok, err := m.claim(ctx, k.ID, event, now)
	if err != nil || !ok {
		return err
	}
	m.emit(typ, k, now)
	return nil
}

// emit reports a KeyEvent about k, if anyone listens.
func (m *Manager) emit(typ KeyEventType, k *Key, now time.Time) {
	if m.onKeyEvent != nil {
		m.onKeyEvent(KeyEvent{Type: typ, At: now, Key: k.View(now)})
	}
}
