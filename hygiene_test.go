package apikey_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/storetest"
)

const day = 24 * time.Hour

// TestMaxLifetime: with WithMaxLifetime, Issue, Update and Rotate refuse
// keys that would not expire within it, with ErrLifetime, and write
// nothing; keys within it are issued and rotated.
func TestMaxLifetime(t *testing.T) {
	ctx := context.Background()
	m, store, clock := newTestManager(t, apikey.WithMaxLifetime(90*day))
	now := clock.Now()

	for name, exp := range map[string]time.Time{"no expiry": {}, "91 days": now.Add(91 * day)} {
		_, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: exp})
		require.ErrorIs(t, err, apikey.ErrLifetime, name)
		require.ErrorIs(t, err, apikey.ErrInvalidRequest, name)
		assert.Contains(t, err.Error(), "2160h0m0s", "the error names the limit")
	}
	assert.Equal(t, 0, store.Len(), "a refused Issue wrote nothing")

	_, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: now.Add(90 * day)})
	require.NoError(t, err)
	for name, exp := range map[string]time.Time{"clear": {}, "beyond": now.Add(100 * day)} {
		_, err := m.Update(ctx, k.ID, apikey.KeyUpdate{ExpiresAt: &exp})
		require.ErrorIs(t, err, apikey.ErrLifetime, name)
	}
	shorter := now.Add(30 * day)
	_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{ExpiresAt: &shorter})
	require.NoError(t, err)
	clock.Advance(10 * day)
	_, next, err := m.Rotate(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(30*day), next.ExpiresAt, "the replacement keeps the lifetime")

	// A key from before the cap, without an expiry, cannot be rotated
	// into another without one.
	old, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithClock(clock.Now))
	require.NoError(t, err)
	defer old.Close()
	_, legacy, err := old.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	n := store.Len()
	_, _, err = m.Rotate(ctx, legacy.ID, 0)
	require.ErrorIs(t, err, apikey.ErrLifetime)
	assert.Contains(t, err.Error(), "issue a new key")
	assert.Equal(t, n, store.Len(), "a refused Rotate wrote nothing")
	got, err := m.Get(ctx, legacy.ID)
	require.NoError(t, err)
	assert.True(t, got.RevokedAt.IsZero() && got.ReplacedBy == "", "a refused Rotate changed the old key")

	_, err = apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithMaxLifetime(0))
	require.ErrorIs(t, err, apikey.ErrInvalidRequest)
}

// keyEventLog collects KeyEvents.
type keyEventLog struct {
	mu  sync.Mutex
	evs []apikey.KeyEvent
}

func (l *keyEventLog) add(ev apikey.KeyEvent) { l.mu.Lock(); l.evs = append(l.evs, ev); l.mu.Unlock() }

// of returns the IDs of the keys of events of type typ, in order.
func (l *keyEventLog) of(typ apikey.KeyEventType) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, ev := range l.evs {
		if ev.Type == typ {
			ids = append(ids, ev.Key.ID)
		}
	}
	return ids
}

// TestKeyEvents: Issue, Rotate, Revoke and Suspend report their events,
// once each, with the key's view.
func TestKeyEvents(t *testing.T) {
	ctx := context.Background()
	var log keyEventLog
	m, _, _ := newTestManager(t, apikey.WithKeyEvents(log.add))
	_, a, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, b, err := m.Rotate(ctx, a.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, m.RevokeWithReason(ctx, b.ID, "done"))
	require.NoError(t, m.Revoke(ctx, b.ID))
	require.NoError(t, m.Suspend(ctx, a.ID))
	require.NoError(t, m.Suspend(ctx, a.ID))
	assert.Equal(t, []string{a.ID}, log.of(apikey.KeyCreated))
	assert.Equal(t, []string{b.ID}, log.of(apikey.KeyRotated))
	assert.Equal(t, []string{b.ID}, log.of(apikey.KeyRevoked), "revoked once")
	assert.Equal(t, []string{a.ID}, log.of(apikey.KeySuspended), "suspended once")
	for _, ev := range log.evs {
		assert.False(t, ev.At.IsZero())
		if ev.Type == apikey.KeyRevoked {
			assert.Equal(t, "done", ev.Key.RevokedReason)
			assert.Equal(t, apikey.StatusRevoked, ev.Key.Status)
		}
		if ev.Type == apikey.KeyRotated {
			assert.Equal(t, a.ID, ev.Key.RotatedFrom)
		}
	}
}

// TestSweeps, with an injected clock and Sweep called by hand: keys
// expiring within the window and keys idle for the period are reported
// once each; a key whose expiry moves is reported again; used keys,
// revoked, suspended and expired keys are not; auto-revocation revokes
// keys idle for its period, with a reason, once.
func TestSweeps(t *testing.T) {
	ctx := context.Background()
	var log keyEventLog
	m, _, clock := newTestManager(t, apikey.WithKeyEvents(log.add), apikey.WithLastUsedInterval(time.Millisecond),
		apikey.WithExpiringSweep(14*day), apikey.WithUnusedSweep(90*day), apikey.WithAutoRevokeUnused(365*day),
		apikey.WithSweepInterval(time.Hour, 2))
	now := clock.Now()
	issue := func(exp time.Time) (apikey.Secret, *apikey.Key) {
		s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: exp})
		require.NoError(t, err)
		return s, k
	}
	_, soon := issue(now.Add(20 * day))
	_, later := issue(now.Add(200 * day))
	usedSecret, used := issue(time.Time{})
	_, idle := issue(time.Time{})
	_, revoked := issue(now.Add(5 * day))
	require.NoError(t, m.Revoke(ctx, revoked.ID))
	_, suspended := issue(time.Time{})
	require.NoError(t, m.Suspend(ctx, suspended.ID))

	// sweepAll runs enough bounded sweeps (batch 2) to cover every key.
	sweepAll := func() {
		for range 4 {
			require.NoError(t, m.Sweep(ctx))
		}
	}
	sweepAll()
	assert.Empty(t, log.of(apikey.KeyExpiring), "nothing expires within 14 days yet")
	assert.Empty(t, log.of(apikey.KeyUnused))

	clock.Advance(7 * day) // soon expires in 13 days
	sweepAll()
	sweepAll()
	assert.Equal(t, []string{soon.ID}, log.of(apikey.KeyExpiring), "once, however often the sweep runs")

	// Moving the expiry is a new expiry to warn about.
	moved := clock.Now().Add(10 * day)
	_, err := m.Update(ctx, soon.ID, apikey.KeyUpdate{ExpiresAt: &moved})
	require.NoError(t, err)
	sweepAll()
	assert.Equal(t, []string{soon.ID, soon.ID}, log.of(apikey.KeyExpiring))

	// 90 days idle: every key never used, except the one used on day 80.
	clock.Advance(73 * day)
	_, err = m.Verify(ctx, usedSecret.Reveal())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		k, err := m.Get(ctx, used.ID)
		return err == nil && !k.LastUsedAt.IsZero()
	}, 5*time.Second, 5*time.Millisecond, "the use is recorded")
	clock.Advance(10 * day)
	sweepAll()
	assert.ElementsMatch(t, []string{later.ID, idle.ID}, log.of(apikey.KeyUnused),
		"idle keys; not the used one, nor revoked, suspended or expired ones")
	sweepAll()
	assert.Len(t, log.of(apikey.KeyUnused), 2, "once each")

	// A year idle: revoked, with a reason, once.
	clock.Advance(300 * day)
	sweepAll()
	sweepAll()
	assert.Equal(t, []string{revoked.ID, idle.ID}, log.of(apikey.KeyRevoked), "idle 390 days; the used key only 310")
	k, err := m.Get(ctx, idle.ID)
	require.NoError(t, err)
	assert.Equal(t, "unused for 8760h0m0s", k.RevokedReason)
	assert.False(t, k.RevokedAt.IsZero())
	_, err = m.Verify(ctx, usedSecret.Reveal())
	require.NoError(t, err, "the key used on day 80 still works")
	usedAt := clock.Now()
	require.Eventually(t, func() bool {
		k, err := m.Get(ctx, used.ID)
		return err == nil && k.LastUsedAt.Equal(usedAt)
	}, 5*time.Second, 5*time.Millisecond, "the use is recorded")
	clock.Advance(60 * day)
	sweepAll()
	assert.Equal(t, []string{revoked.ID, idle.ID}, log.of(apikey.KeyRevoked), "used again on day 390")
	clock.Advance(306 * day)
	sweepAll()
	assert.Equal(t, []string{revoked.ID, idle.ID, used.ID}, log.of(apikey.KeyRevoked), "idle a year since day 390")
}

// TestSweepsBounded: one Sweep looks at no more than the batch of keys.
func TestSweepsBounded(t *testing.T) {
	ctx := context.Background()
	var log keyEventLog
	m, _, clock := newTestManager(t, apikey.WithKeyEvents(log.add), apikey.WithExpiringSweep(day), apikey.WithSweepInterval(time.Hour, 3))
	for range 10 {
		_, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: clock.Now().Add(time.Hour)})
		require.NoError(t, err)
	}
	for i, want := range []int{3, 6, 9, 10, 10} {
		require.NoError(t, m.Sweep(ctx))
		assert.Len(t, log.of(apikey.KeyExpiring), want, "after sweep %d", i+1)
	}
}

// TestSweepsManyManagers: Managers sharing a Store send each event once
// between them, however they interleave.
func TestSweepsManyManagers(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := newFakeClock()
	var log keyEventLog
	var ms []*apikey.Manager
	for range 4 {
		m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
			apikey.WithClock(clock.Now), apikey.WithKeyEvents(log.add), apikey.WithExpiringSweep(day))
		require.NoError(t, err)
		defer m.Close()
		ms = append(ms, m)
	}
	for range 50 {
		_, _, err := ms[0].Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: clock.Now().Add(time.Hour)})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() { require.NoError(t, m.Sweep(ctx)) })
	}
	wg.Wait()
	ids := log.of(apikey.KeyExpiring)
	assert.Len(t, ids, 50, "one event per key across four Managers")
	seen := map[string]bool{}
	for _, id := range ids {
		assert.False(t, seen[id], "key %s reported twice", id)
		seen[id] = true
	}
}

// TestSweepOptions: bad sweep options are errors.
func TestSweepOptions(t *testing.T) {
	for _, opt := range []apikey.Option{
		apikey.WithExpiringSweep(0), apikey.WithUnusedSweep(-time.Hour), apikey.WithAutoRevokeUnused(0),
		apikey.WithSweepInterval(0, 1), apikey.WithSweepInterval(time.Hour, 0), apikey.WithKeyEvents(nil),
	} {
		_, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), opt)
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
		assert.True(t, strings.HasPrefix(err.Error(), "apikey:"), err.Error())
	}
}

// TestConformanceBareStore: the storetest suite passes on a Store with
// none of the optional interfaces; among it, the sweeps send every event
// once while the Manager prunes the claims it holds in memory.
func TestConformanceBareStore(t *testing.T) {
	storetest.Run(t, func() apikey.Store { return plainStore{memstore.New()} })
}

// TestSweepsPruneInMemory: a Manager whose Store cannot hold claims keeps
// them in memory and prunes them there as ClaimObsolete says, once
// EventClaimRetention has passed: a revoked key's and a past expiry's go,
// an unused key's stays, and no event is sent twice.
func TestSweepsPruneInMemory(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	var log keyEventLog
	m, err := apikey.NewManager(plainStore{memstore.New()}, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now), apikey.WithKeyEvents(log.add),
		apikey.WithExpiringSweep(14*day), apikey.WithUnusedSweep(60*day))
	require.NoError(t, err)
	defer m.Close()
	_, expiring, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", ExpiresAt: clock.Now().Add(10 * day)})
	require.NoError(t, err)
	_, idle, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, revoked, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	require.NoError(t, m.Sweep(ctx))
	assert.Equal(t, 1, apikey.MemoryClaims(m), "the expiring key's")
	clock.Advance(61 * day)
	require.NoError(t, m.Sweep(ctx))
	assert.Equal(t, 2, apikey.MemoryClaims(m), "both unused keys'; the expiry passed over the retention ago")
	require.NoError(t, m.Revoke(ctx, revoked.ID))
	clock.Advance(apikey.EventClaimRetention)
	require.NoError(t, m.Sweep(ctx))
	assert.Equal(t, 2, apikey.MemoryClaims(m), "the revocation is not older than the retention yet")
	clock.Advance(day)
	require.NoError(t, m.Sweep(ctx))
	assert.Equal(t, 1, apikey.MemoryClaims(m), "the unused key's claim stays")
	for range 3 {
		clock.Advance(100 * day)
		require.NoError(t, m.Sweep(ctx))
	}
	assert.Equal(t, []string{expiring.ID}, log.of(apikey.KeyExpiring))
	assert.ElementsMatch(t, []string{idle.ID, revoked.ID}, log.of(apikey.KeyUnused), "once each")
}

// TestClaimObsolete: the rule every EventPruner follows.
func TestClaimObsolete(t *testing.T) {
	before := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	old := before.Add(-time.Microsecond)
	us := func(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }
	live := &apikey.Key{ID: "AAAAAAAAAAAA"}
	revoked := &apikey.Key{ID: "BBBBBBBBBBBB", RevokedAt: before.Add(-time.Hour)}
	revokedLater := &apikey.Key{ID: "CCCCCCCCCCCC", RevokedAt: before}
	expired := &apikey.Key{ID: "DDDDDDDDDDDD", ExpiresAt: before.AddDate(-1, 0, 0)}
	suspended := &apikey.Key{ID: "EEEEEEEEEEEE", SuspendedAt: before.AddDate(-1, 0, 0)}
	for _, tt := range []struct {
		name  string
		k     *apikey.Key
		event string
		at    time.Time
		want  bool
	}{
		{"no key", nil, "unused:1", old, true},
		{"no key, claimed at before", nil, "unused:1", before, false},
		{"revoked before before", revoked, "unused:1", old, true},
		{"revoked at before", revokedLater, "unused:1", old, false},
		{"revoked, claimed at before", revoked, "unused:1", before, false},
		{"live and unused", live, "unused:" + us(before.AddDate(-2, 0, 0)), old, false},
		{"live, auto-revocation claimed", live, "revoke-unused:1", old, false},
		{"expired and unused: Update can extend it", expired, "unused:1", old, false},
		{"suspended", suspended, "unused:1", old, false},
		{"an expiry before before", live, "expiring:" + us(before.Add(-time.Microsecond)), old, true},
		{"an expiry at before", live, "expiring:" + us(before), old, false},
		{"an expiry after before", live, "expiring:" + us(before.Add(time.Hour)), old, false},
		{"an expiry claimed at before", live, "expiring:" + us(before.Add(-time.Hour)), before, false},
		{"fewer digits", live, "expiring:9", old, true},
		{"leading zeros, fewer digits", live, "expiring:000", old, true},
		{"more digits", live, "expiring:" + us(before) + "0", old, false},
		{"no digits", live, "expiring:", old, false},
		{"a sign", live, "expiring:-1", old, false},
		{"not digits", live, "expiring:1x", old, false},
		{"other digits", live, "expiring:١", old, false},
		{"another event", live, "expired:1", old, false},
	} {
		assert.Equal(t, tt.want, apikey.ClaimObsolete(tt.k, tt.event, tt.at, before), tt.name)
	}
	assert.False(t, apikey.ClaimObsolete(live, "expiring:1", time.Unix(-10, 0), time.Unix(-1, 0)),
		"before 1970, no expiry in digits is before before")
}
