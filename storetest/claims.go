package storetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
)

// testEventPruner checks apikey.EventPruner, when the store implements it
// with apikey.EventClaimer: PruneEvents deletes exactly the claims of its
// range of IDs that apikey.ClaimObsolete says can no longer matter, by
// the keys the store holds (missing, revoked long ago, an expiry long
// past), keeps every other (a live, suspended or expired key's, a recent
// claim, an event that only looks like an expiry), and refuses bad
// input.
func testEventPruner(t *testing.T, s apikey.Store) {
	p, ok := s.(apikey.EventPruner)
	c, ok2 := s.(apikey.EventClaimer)
	if !ok || !ok2 {
		t.Skip("store does not implement apikey.EventPruner and apikey.EventClaimer")
	}
	ctx := context.Background()
	before := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	old, recent := before.Add(-time.Microsecond), before // claimed before before, and at it
	us := func(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }
	owner := newOwner(t)
	created := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(change func(*apikey.Key)) string {
		k := minimalKey(t, owner)
		k.CreatedAt = created
		change(k)
		mustCreate(t, s, k)
		return k.ID
	}
	live := key(func(*apikey.Key) {})
	revokedLong := key(func(k *apikey.Key) { k.RevokedAt = before.Add(-time.Hour) })
	revokedRecent := key(func(k *apikey.Key) { k.RevokedAt = before.Add(time.Hour) })
	expiry := before.AddDate(0, -3, 0)
	expired := key(func(k *apikey.Key) { k.ExpiresAt = expiry })
	suspended := key(func(k *apikey.Key) { k.SuspendedAt = before.AddDate(-1, 0, 0) })
	missing := newID(t)
	claims := []struct {
		id, event string
		at        time.Time
		gone      bool
	}{
		{live, "unused:" + us(created), old, false},
		{live, "revoke-unused:" + us(created), old, false},
		{live, "expiring:" + us(before.Add(-time.Hour)), old, true},
		{live, "expiring:" + us(before.Add(-2*time.Hour)), recent, false}, // claimed at before
		{live, "expiring:" + us(before), old, false},                      // not before before
		{live, "expiring:" + us(before.Add(time.Hour)), old, false},
		{live, "expiring:1", old, true},
		{live, "expiring:0001", old, true},
		{live, "expiring:", old, false},
		{live, "expiring:-1", old, false},
		{live, "expiring:12a", old, false},
		{live, "expiring:１２", old, false},
		{live, "EXPIRING:1", old, false},
		{live, "expiring:99999999999999999999", old, false},
		{live, "something else", old, false},
		{revokedLong, "unused:1", old, true},
		{revokedLong, "expiring:" + us(before.AddDate(1, 0, 0)), old, true},
		{revokedLong, "unused:2", recent, false},
		{revokedRecent, "unused:1", old, false},
		{expired, "unused:1", old, false}, // Update may extend the key
		{expired, "expiring:" + us(expiry), old, true},
		{suspended, "unused:1", old, false},
		{missing, "unused:1", old, true},
		{missing, "unused:2", recent, false},
	}
	for _, cl := range claims {
		var k *apikey.Key
		if cl.id != missing {
			k = mustGet(t, s, cl.id)
		}
		if got := apikey.ClaimObsolete(k, cl.event, cl.at, before); got != cl.gone {
			t.Fatalf("the suite's own case %s %q: ClaimObsolete = %v", cl.id, cl.event, got)
		}
		if ok, err := c.ClaimEvent(ctx, cl.id, cl.event, cl.at); err != nil || !ok {
			t.Fatalf("ClaimEvent(%s, %q) = %v, %v; want a new claim", cl.id, cl.event, ok, err)
		}
	}
	for _, bad := range []struct {
		from, to string
		before   time.Time
	}{{"b", "a", before}, {"", "", time.Time{}}} {
		if n, err := p.PruneEvents(ctx, bad.from, bad.to, bad.before); !errors.Is(err, apikey.ErrInvalidRequest) || n != 0 {
			t.Errorf("PruneEvents(%q, %q, %v) = %d, %v; want 0 and ErrInvalidRequest", bad.from, bad.to, bad.before, n, err)
		}
	}

	// First up to the lowest of the IDs, then the rest: each call keeps
	// to its range.
	ids := []string{live, revokedLong, revokedRecent, expired, suspended, missing}
	slices.Sort(ids)
	first, err := p.PruneEvents(ctx, "", ids[0], before)
	if err != nil {
		t.Fatalf("PruneEvents: %v", err)
	}
	rest, err := p.PruneEvents(ctx, ids[0], "", before)
	if err != nil {
		t.Fatalf("PruneEvents: %v", err)
	}
	want := 0
	for _, cl := range claims {
		if cl.gone {
			want++
		}
	}
	// A shared store may hold obsolete claims of other subtests too.
	if first+rest < want {
		t.Errorf("PruneEvents deleted %d claims, want at least %d", first+rest, want)
	}
	// A claim that went can be made again; one that stayed cannot.
	for _, cl := range claims {
		ok, err := c.ClaimEvent(ctx, cl.id, cl.event, recent)
		if err != nil {
			t.Fatal(err)
		}
		if ok != cl.gone {
			t.Errorf("claim %s %q made at %v: pruned %v, want %v", cl.id, cl.event, cl.at, ok, cl.gone)
		}
	}
	// The two ranges covered every ID, and the claims made again are
	// recent: nothing is left to prune.
	if n, err := p.PruneEvents(ctx, "", "", before); err != nil || n != 0 {
		t.Errorf("PruneEvents after pruning = %d, %v; want nothing more", n, err)
	}
}

// testSweepsPrune runs a Manager's sweeps over the store every 5 days for
// 300 days, with keys whose expiry moves, that expire and are extended
// again, are revoked, suspended and resumed, or stay unused, while the
// sweeps prune the claims (EventPruner, or the Manager's memory for a
// store without EventClaimer): every hygiene event is sent exactly once,
// although most claims are older than EventClaimRetention many times
// over, and the claims that can no longer matter are gone at the end.
func testSweepsPrune(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	t0 := time.Date(2031, 1, 6, 0, 0, 0, 0, time.UTC)
	clock := testclock.New(t0)
	day := func(n int) time.Time { return t0.AddDate(0, 0, n) }
	var mu sync.Mutex
	var events []apikey.KeyEvent
	m, err := apikey.NewManager(s, apikey.WithPrefix("storetest"),
		apikey.WithPepper("v1", []byte("storetest-pepper-0123456789abcdef")), apikey.WithClock(clock.Now),
		apikey.WithBackgroundErrors(func(error) {}), apikey.WithoutUsage(),
		apikey.WithExpiringSweep(14*24*time.Hour), apikey.WithUnusedSweep(60*24*time.Hour),
		apikey.WithSweepInterval(time.Hour, 1<<30), // each Sweep is a whole pass
		apikey.WithKeyEvents(func(ev apikey.KeyEvent) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	owner := newOwner(t)
	issue := func(expires time.Time) *apikey.Key {
		_, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: owner, ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a := issue(day(10)) // moved to day 100, expires, extended on day 140 to day 250
	f := issue(day(20)) // expires
	c := issue(time.Time{})
	d := issue(time.Time{})
	g := issue(time.Time{}) // unused throughout
	mine := map[string]string{a.ID: "a", f.ID: "f", c.ID: "c", d.ID: "d", g.ID: "g"}
	update := func(id string, expires time.Time) {
		if _, err := m.Update(ctx, id, apikey.KeyUpdate{ExpiresAt: &expires}); err != nil {
			t.Fatal(err)
		}
	}
	for n := 0; n <= 300; n += 5 {
		clock.Set(day(n))
		switch n {
		case 5:
			update(a.ID, day(100))
		case 65:
			if err := m.Suspend(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		case 70:
			if err := m.Revoke(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
		case 130:
			if err := m.Resume(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		case 140:
			update(a.ID, day(250))
		}
		if err := m.Sweep(ctx); err != nil {
			t.Fatalf("Sweep on day %d: %v", n, err)
		}
	}
	// Each event as its type, the key's name here and, for an expiring
	// key, the expiry; other keys' events (a shared store's) are not ours.
	var got []string
	mu.Lock()
	for _, ev := range events {
		name, ok := mine[ev.Key.ID]
		if !ok || ev.Type == apikey.KeyCreated {
			continue
		}
		exp := ""
		if ev.Type == apikey.KeyExpiring {
			exp = ev.Key.ExpiresAt.UTC().Format(time.DateOnly)
		}
		got = append(got, string(ev.Type)+" "+name+" "+exp)
	}
	mu.Unlock()
	date := func(n int) string { return day(n).Format(time.DateOnly) }
	want := []string{
		// Day 0, day 10: within 14 days of expiring.
		"key.expiring a " + date(10), "key.expiring f " + date(20),
		// Day 60: 60 days unused, every key but f, which has expired.
		"key.unused a ", "key.unused c ", "key.unused d ", "key.unused g ",
		"key.suspended d ", "key.revoked c ",
		// Day 90 and day 240: a's expiry moved, then extended.
		"key.expiring a " + date(100), "key.expiring a " + date(250),
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}

	// At day 300 claims made or ended before day 270 that no sweep can
	// claim again are gone, and the others are there.
	cl, ok := s.(apikey.EventClaimer)
	if _, prunes := s.(apikey.EventPruner); !ok || !prunes {
		return
	}
	since := strconv.FormatInt(t0.UnixMicro(), 10)
	expiring := func(n int) string { return "expiring:" + strconv.FormatInt(day(n).UnixMicro(), 10) }
	for _, tt := range []struct {
		id, event string
		gone      bool
	}{
		{a.ID, expiring(10), true}, {a.ID, expiring(100), true}, {a.ID, expiring(250), true},
		{f.ID, expiring(20), true},
		{c.ID, "unused:" + since, true}, // revoked on day 70
		{a.ID, "unused:" + since, false}, {d.ID, "unused:" + since, false}, {g.ID, "unused:" + since, false},
	} {
		ok, err := cl.ClaimEvent(ctx, tt.id, tt.event, day(300))
		if err != nil {
			t.Fatal(err)
		}
		if ok != tt.gone {
			t.Errorf("claim %q of key %s: pruned %v, want %v", tt.event, mine[tt.id], ok, tt.gone)
		}
	}
}
