// Package storetest is a conformance suite for apikey.Store
// implementations, in the spirit of testing/fstest: a backend's own test
// calls Run, and passes only if it behaves as the Store contract says.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func() apikey.Store { return memstore.New() })
//	}
//
// Each subtest calls newStore once. The suite works whether newStore
// returns a fresh store or the same shared one (a database that outlives
// the test): every subtest uses its own random owners and IDs, and never
// asserts that a store holds only what it wrote.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
)

// Run runs the conformance suite against the stores newStore returns.
// Optional interfaces (apikey.Rotator, apikey.Revoker,
// apikey.ReasonRevoker, apikey.LastUsedRecorder, apikey.EventClaimer,
// apikey.EventPruner, apikey.UsageRecorder, apikey.Watcher) are tested
// when the store implements them; the sweeps' claims and their pruning
// are tested through a Manager on every store.
func Run(t *testing.T, newStore func() apikey.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, apikey.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"CreditsAndQuotaDay", testCreditsAndQuotaDay},
		{"EmptyAndNil", testEmptyAndNil},
		{"CallerOwnsRecords", testCallerOwnsRecords},
		{"CreateConflict", testCreateConflict},
		{"GetNotFound", testGetNotFound},
		{"UpdateRevision", testUpdateRevision},
		{"List", testList},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"Rotator", testRotator},
		{"LastUsedRecorder", testLastUsedRecorder},
		{"Watcher", testWatcher},
		{"ManagerRevokeIsFinal", testManagerRevokeIsFinal},
		{"RevocationIsAState", testRevocationIsAState},
		{"Revoker", testRevoker},
		{"ReasonRevoker", testReasonRevoker},
		{"RevokeWithReason", testRevokeWithReason},
		{"EventClaimer", testEventClaimer},
		{"EventPruner", testEventPruner},
		{"SweepsPrune", testSweepsPrune},
		{"UsageRecorder", testUsageRecorder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore()) })
	}
}

// newID returns a fresh random key ID.
func newID(t *testing.T) string {
	t.Helper()
	tok, err := apikey.Generate("storetest")
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

// newOwner returns an owner name no other subtest or run uses.
func newOwner(t *testing.T) string { return "owner-" + newID(t) }

// minimalKey returns a key with only the fields every key has.
func minimalKey(t *testing.T, owner string) *apikey.Key {
	return &apikey.Key{
		ID:            newID(t),
		Prefix:        "acme_test",
		Owner:         owner,
		Digest:        []byte("0123456789abcdef0123456789abcdef"),
		DigestVersion: "hmac-sha256/v1",
		CreatedAt:     time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	}
}

// fullKey returns a key with every field set, to values that trip up
// careless encodings: zones other than UTC, IPv4 and IPv6 prefixes,
// quotes, NUL bytes, emoji and long metadata values.
func fullKey(t *testing.T, owner string) *apikey.Key {
	tokyo := time.FixedZone("JST", 9*3600)
	newYork := time.FixedZone("EST", -5*3600)
	return &apikey.Key{
		ID:            newID(t),
		Prefix:        "acme_live_eu",
		Owner:         owner,
		Name:          `Robert'); DROP TABLE keys;-- "quoted" 🔑`,
		Scopes:        []string{"orders:read", "billing:*", "*"},
		Digest:        []byte{0, 1, 2, 0xfe, 0xff, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 0},
		DigestVersion: "hmac-sha256/2026-01",
		CreatedAt:     time.Date(2026, 1, 2, 3, 4, 5, 123456000, tokyo),
		ExpiresAt:     time.Date(2027, 1, 2, 3, 4, 5, 999999000, newYork),
		NotBefore:     time.Date(2026, 1, 3, 0, 0, 0, 1000, time.UTC),
		RevokedAt:     time.Date(2026, 6, 30, 23, 59, 59, 0, tokyo),
		RevokedReason: "leaked: https://github.com/o/r/blob/0123/x.go?a='b'&c=\"d\" 🔑",
		LastUsedAt:    time.Date(2026, 5, 1, 12, 0, 0, 500000000, time.UTC),
		RateLimit:     apikey.Limit{Rate: 100, Period: time.Minute, Burst: 20},
		Quota:         apikey.Quota{Limit: 10_000_000_000, Period: 30 * 24 * time.Hour},
		Credits:       apikey.Credits{Grant: apikey.MaxCredits, Period: apikey.MonthPeriod, Day: 31},
		AllowedIPs: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("192.0.2.7/32"),
			netip.MustParsePrefix("2001:db8::/32"),
			netip.MustParsePrefix("::ffff:198.51.100.0/120"),
		},
		Metadata: map[string]string{
			"plan":          "enterprise",
			"quote\"d'key":  "it's \"quoted\"",
			"nul":           "a\x00b",
			"emoji 🚀":       "🔑✨",
			"empty":         "",
			"big":           string(slices.Repeat([]byte("x"), 10<<10)),
			"percent %s %d": "$1 \\ ?",
		},
		RotatedFrom: newID(t),
		ReplacedBy:  newID(t),
		Lineage:     newID(t),
	}
}

// equalKeys reports the first difference between want and got, or "".
// Times compare as instants (time.Equal): a store may return them in
// another zone, but must keep microsecond precision.
func equalKeys(want, got *apikey.Key) string {
	type field struct {
		name      string
		want, got any
		equal     bool
	}
	times := func(name string, w, g time.Time) field {
		return field{name, w, g, w.Equal(g) && w.IsZero() == g.IsZero()}
	}
	fields := []field{
		{"ID", want.ID, got.ID, want.ID == got.ID},
		{"Prefix", want.Prefix, got.Prefix, want.Prefix == got.Prefix},
		{"Owner", want.Owner, got.Owner, want.Owner == got.Owner},
		{"Name", want.Name, got.Name, want.Name == got.Name},
		{"Scopes", want.Scopes, got.Scopes, slices.Equal(want.Scopes, got.Scopes) && (want.Scopes == nil) == (got.Scopes == nil)},
		{"Digest", want.Digest, got.Digest, slices.Equal(want.Digest, got.Digest)},
		{"DigestVersion", want.DigestVersion, got.DigestVersion, want.DigestVersion == got.DigestVersion},
		times("CreatedAt", want.CreatedAt, got.CreatedAt),
		times("ExpiresAt", want.ExpiresAt, got.ExpiresAt),
		times("NotBefore", want.NotBefore, got.NotBefore),
		times("RevokedAt", want.RevokedAt, got.RevokedAt),
		times("LastUsedAt", want.LastUsedAt, got.LastUsedAt),
		{"RevokedReason", want.RevokedReason, got.RevokedReason, want.RevokedReason == got.RevokedReason},
		{"RateLimit", want.RateLimit, got.RateLimit, want.RateLimit == got.RateLimit},
		{"Quota", want.Quota, got.Quota, want.Quota == got.Quota},
		{"Credits", want.Credits, got.Credits, want.Credits == got.Credits},
		{"AllowedIPs", want.AllowedIPs, got.AllowedIPs, slices.Equal(want.AllowedIPs, got.AllowedIPs) && (want.AllowedIPs == nil) == (got.AllowedIPs == nil)},
		{"Metadata", want.Metadata, got.Metadata, equalMaps(want.Metadata, got.Metadata)},
		{"RotatedFrom", want.RotatedFrom, got.RotatedFrom, want.RotatedFrom == got.RotatedFrom},
		{"ReplacedBy", want.ReplacedBy, got.ReplacedBy, want.ReplacedBy == got.ReplacedBy},
		{"Lineage", want.Lineage, got.Lineage, want.Lineage == got.Lineage},
		{"Revision", want.Revision, got.Revision, want.Revision == got.Revision},
	}
	for _, f := range fields {
		if !f.equal {
			return fmt.Sprintf("%s: got %s, want %s", f.name, show(f.got), show(f.want))
		}
	}
	return ""
}

func show(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func equalMaps(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func mustEqual(t *testing.T, want, got *apikey.Key) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil key, want %s", want.ID)
	}
	if diff := equalKeys(want, got); diff != "" {
		t.Fatalf("key %s: %s", want.ID, diff)
	}
}

func mustCreate(t *testing.T, s apikey.Store, k *apikey.Key) {
	t.Helper()
	if err := s.Create(context.Background(), k); err != nil {
		t.Fatalf("Create(%s): %v", k.ID, err)
	}
	if k.Revision != 1 {
		t.Fatalf("Create set Revision to %d, want 1", k.Revision)
	}
}

func mustGet(t *testing.T, s apikey.Store, id string) *apikey.Key {
	t.Helper()
	k, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return k
}

func testRoundTrip(t *testing.T, s apikey.Store) {
	for _, k := range []*apikey.Key{minimalKey(t, newOwner(t)), fullKey(t, newOwner(t))} {
		want := k.Clone()
		mustCreate(t, s, k)
		want.Revision = 1
		mustEqual(t, want, mustGet(t, s, k.ID))

		// Every field survives an Update too.
		k.Name = "renamed"
		k.Scopes = append(k.Scopes, "extra:scope")
		k.RevokedAt = time.Date(2026, 7, 1, 0, 0, 0, 1000, time.UTC)
		k.SuspendedAt = time.Date(2026, 6, 1, 0, 0, 0, 2000, time.UTC)
		want = k.Clone()
		if err := s.Update(context.Background(), k); err != nil {
			t.Fatalf("Update: %v", err)
		}
		want.Revision = 2
		mustEqual(t, want, k)
		mustEqual(t, want, mustGet(t, s, k.ID))
	}
}

func testEmptyAndNil(t *testing.T, s apikey.Store) {
	k := minimalKey(t, newOwner(t))
	k.Scopes = []string{}
	k.AllowedIPs = []netip.Prefix{}
	k.Metadata = map[string]string{}
	want := k.Clone()
	mustCreate(t, s, k)
	want.Revision = 1
	mustEqual(t, want, mustGet(t, s, k.ID))
}

func testCallerOwnsRecords(t *testing.T, s apikey.Store) {
	k := fullKey(t, newOwner(t))
	want := k.Clone()
	want.Revision = 1
	mustCreate(t, s, k)
	// Changing what was passed to Create, or what Get returned, must not
	// change the stored record.
	k.Scopes[0] = "changed"
	k.Metadata["plan"] = "changed"
	k.AllowedIPs[0] = netip.MustParsePrefix("0.0.0.0/0")
	k.Digest[0] = 99
	got := mustGet(t, s, k.ID)
	got.Scopes[0] = "changed"
	got.Metadata["plan"] = "changed"
	got.AllowedIPs[0] = netip.MustParsePrefix("0.0.0.0/0")
	got.Digest[0] = 99
	mustEqual(t, want, mustGet(t, s, k.ID))
}

func testCreateConflict(t *testing.T, s apikey.Store) {
	k := minimalKey(t, newOwner(t))
	mustCreate(t, s, k)
	dup := minimalKey(t, newOwner(t))
	dup.ID = k.ID
	dup.Name = "impostor"
	if err := s.Create(context.Background(), dup); !errors.Is(err, apikey.ErrConflict) {
		t.Fatalf("Create with a taken ID: got %v, want ErrConflict", err)
	}
	mustEqual(t, k, mustGet(t, s, k.ID))
}

func testGetNotFound(t *testing.T, s apikey.Store) {
	for _, id := range []string{newID(t), "", "'; SELECT 1; --", "\x00"} {
		k, err := s.Get(context.Background(), id)
		if !errors.Is(err, apikey.ErrNotFound) || k != nil {
			t.Fatalf("Get(%q) = %v, %v; want nil, ErrNotFound", id, k, err)
		}
	}
}

func testUpdateRevision(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	k := minimalKey(t, newOwner(t))
	mustCreate(t, s, k)

	stale := k.Clone()
	k.Name = "first"
	if err := s.Update(ctx, k); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if k.Revision != 2 {
		t.Fatalf("Update set Revision to %d, want 2", k.Revision)
	}
	stale.Name = "lost update"
	if err := s.Update(ctx, stale); !errors.Is(err, apikey.ErrConflict) {
		t.Fatalf("Update with a stale revision: got %v, want ErrConflict", err)
	}
	if stale.Revision != 1 {
		t.Fatalf("a failed Update changed Revision to %d", stale.Revision)
	}
	mustEqual(t, k, mustGet(t, s, k.ID))

	missing := minimalKey(t, newOwner(t))
	if err := s.Update(ctx, missing); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Update of an unknown key: got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, missing.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Update of an unknown key created it: %v", err)
	}

	// Moving a key to another owner moves it between owner listings.
	newOwner := newOwner(t)
	oldOwner := k.Owner
	k.Owner = newOwner
	if err := s.Update(ctx, k); err != nil {
		t.Fatalf("Update owner: %v", err)
	}
	if ids := listIDs(t, s, oldOwner, 10); len(ids) != 0 {
		t.Fatalf("old owner still lists %v", ids)
	}
	if ids := listIDs(t, s, newOwner, 10); !slices.Equal(ids, []string{k.ID}) {
		t.Fatalf("new owner lists %v, want [%s]", ids, k.ID)
	}
}

// listIDs pages through an owner's keys with the given page size and
// checks the paging contract on the way.
func listIDs(t *testing.T, s apikey.Store, owner string, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			t.Fatal("List never returned an empty next cursor")
		}
		keys, next, err := s.List(context.Background(), apikey.ListOptions{Owner: owner, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("List(owner %q, cursor %q): %v", owner, cursor, err)
		}
		if len(keys) > limit {
			t.Fatalf("List returned %d keys, limit %d", len(keys), limit)
		}
		for _, k := range keys {
			if owner != "" && k.Owner != owner {
				t.Fatalf("List(owner %q) returned a key of owner %q", owner, k.Owner)
			}
			ids = append(ids, k.ID)
		}
		if next == "" {
			break
		}
		if len(keys) == 0 {
			t.Fatal("List returned no keys but a next cursor")
		}
		cursor = next
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("List is not in ascending ID order: %v", ids)
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("List returned an ID twice: %v", ids)
	}
	return ids
}

func testList(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	ownerA, ownerB := newOwner(t), newOwner(t)
	var wantA, wantB []string
	for i := 0; i < 25; i++ {
		k := minimalKey(t, ownerA)
		mustCreate(t, s, k)
		wantA = append(wantA, k.ID)
	}
	for i := 0; i < 5; i++ {
		k := minimalKey(t, ownerB)
		mustCreate(t, s, k)
		wantB = append(wantB, k.ID)
	}
	slices.Sort(wantA)
	slices.Sort(wantB)

	for _, limit := range []int{1, 7, 10, 25, 1000} {
		if got := listIDs(t, s, ownerA, limit); !slices.Equal(got, wantA) {
			t.Fatalf("List(owner A, limit %d) = %v, want %v", limit, got, wantA)
		}
	}
	if got := listIDs(t, s, ownerB, 2); !slices.Equal(got, wantB) {
		t.Fatalf("List(owner B) = %v, want %v", got, wantB)
	}
	if got := listIDs(t, s, newOwner(t), 10); len(got) != 0 {
		t.Fatalf("List(unknown owner) = %v, want none", got)
	}

	// A full page says there may be more; the page after the last is
	// empty with no next cursor.
	keys, next, err := s.List(ctx, apikey.ListOptions{Owner: ownerB, Limit: 5})
	if err != nil || len(keys) != 5 {
		t.Fatalf("List(owner B, limit 5) = %d keys, %v", len(keys), err)
	}
	if next != "" {
		keys, next, err = s.List(ctx, apikey.ListOptions{Owner: ownerB, Cursor: next, Limit: 5})
		if err != nil || len(keys) != 0 || next != "" {
			t.Fatalf("page after the last = %d keys, next %q, %v", len(keys), next, err)
		}
	}

	// Limit 0 means the default page size.
	keys, _, err = s.List(ctx, apikey.ListOptions{Owner: ownerA})
	if err != nil || len(keys) != len(wantA) {
		t.Fatalf("List(owner A, limit 0) = %d keys, %v; want %d", len(keys), err, len(wantA))
	}
	mustEqual(t, mustGet(t, s, wantA[0]), keys[0])

	// Without an owner, every owner's keys are listed, in ID order.
	all := listIDs(t, s, "", 1000)
	for _, id := range append(wantA, wantB...) {
		if _, found := slices.BinarySearch(all, id); !found {
			t.Fatalf("List(all owners) misses %s", id)
		}
	}
}

func testConcurrentCreate(t *testing.T, s apikey.Store) {
	owner := newOwner(t)
	const workers, each = 8, 25
	// Built here, not in the goroutines: minimalKey may call t.Fatal,
	// which only the test's goroutine may do.
	keys := make([]*apikey.Key, workers*each)
	for i := range keys {
		keys[i] = minimalKey(t, owner)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range keys[w*each : (w+1)*each] {
				if err := s.Create(context.Background(), k); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Create: %v", err)
	}
	if got := listIDs(t, s, owner, 1000); len(got) != workers*each {
		t.Fatalf("after %d concurrent creates, owner has %d keys", workers*each, len(got))
	}
}

// testConcurrentUpdate runs read-modify-write loops on one key from many
// goroutines; with revisions, no increment may be lost.
func testConcurrentUpdate(t *testing.T, s apikey.Store) {
	k := minimalKey(t, newOwner(t))
	k.Metadata = map[string]string{}
	mustCreate(t, s, k)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				cur, err := s.Get(context.Background(), k.ID)
				if err != nil {
					errs <- err
					return
				}
				cur.Metadata[fmt.Sprintf("w%d-%d", w, i)] = "x"
				err = s.Update(context.Background(), cur)
				switch {
				case err == nil:
					i++
				case !errors.Is(err, apikey.ErrConflict):
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Update: %v", err)
	}
	got := mustGet(t, s, k.ID)
	if len(got.Metadata) != workers*each || got.Revision != 1+workers*each {
		t.Fatalf("after %d updates: %d metadata entries, revision %d (lost updates)", workers*each, len(got.Metadata), got.Revision)
	}
}

func testRotator(t *testing.T, s apikey.Store) {
	r, ok := s.(apikey.Rotator)
	if !ok {
		t.Skip("store does not implement apikey.Rotator")
	}
	ctx := context.Background()
	owner := newOwner(t)
	old := minimalKey(t, owner)
	mustCreate(t, s, old)

	// Stale revision on the old key: neither write happens.
	stale := old.Clone()
	stale.Revision = 7
	stale.ExpiresAt = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	repl := minimalKey(t, owner)
	stale.ReplacedBy = repl.ID
	if err := r.Rotate(ctx, stale, repl); !errors.Is(err, apikey.ErrConflict) {
		t.Fatalf("Rotate with a stale revision: got %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, repl.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("failed Rotate created the replacement: %v", err)
	}
	mustEqual(t, old, mustGet(t, s, old.ID))

	// Taken replacement ID: neither write happens.
	taken := minimalKey(t, owner)
	mustCreate(t, s, taken)
	next := old.Clone()
	next.ExpiresAt = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	dup := minimalKey(t, owner)
	dup.ID = taken.ID
	next.ReplacedBy = dup.ID
	if err := r.Rotate(ctx, next, dup); !errors.Is(err, apikey.ErrConflict) {
		t.Fatalf("Rotate onto a taken ID: got %v, want ErrConflict", err)
	}
	mustEqual(t, old, mustGet(t, s, old.ID))
	mustEqual(t, taken, mustGet(t, s, taken.ID))

	// Success: both written.
	next = old.Clone()
	next.ExpiresAt = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	repl = minimalKey(t, owner)
	repl.RotatedFrom = old.ID
	repl.Lineage = old.ID
	next.ReplacedBy = repl.ID
	if err := r.Rotate(ctx, next, repl); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if next.Revision != 2 || repl.Revision != 1 {
		t.Fatalf("Rotate set revisions old %d, new %d; want 2, 1", next.Revision, repl.Revision)
	}
	mustEqual(t, next, mustGet(t, s, old.ID))
	mustEqual(t, repl, mustGet(t, s, repl.ID))
}

func testLastUsedRecorder(t *testing.T, s apikey.Store) {
	r, ok := s.(apikey.LastUsedRecorder)
	if !ok {
		t.Skip("store does not implement apikey.LastUsedRecorder")
	}
	ctx := context.Background()
	a, b := minimalKey(t, newOwner(t)), minimalKey(t, newOwner(t))
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	t1 := time.Date(2026, 3, 1, 10, 0, 0, 123000, time.UTC)
	t0 := t1.Add(-time.Hour)
	if err := r.RecordLastUsed(ctx, map[string]time.Time{a.ID: t1, b.ID: t0, newID(t): t1}); err != nil {
		t.Fatalf("RecordLastUsed: %v", err)
	}
	// Never backwards.
	if err := r.RecordLastUsed(ctx, map[string]time.Time{a.ID: t0}); err != nil {
		t.Fatalf("RecordLastUsed: %v", err)
	}
	gotA, gotB := mustGet(t, s, a.ID), mustGet(t, s, b.ID)
	if !gotA.LastUsedAt.Equal(t1) || !gotB.LastUsedAt.Equal(t0) {
		t.Fatalf("LastUsedAt = %v, %v; want %v, %v", gotA.LastUsedAt, gotB.LastUsedAt, t1, t0)
	}
	if gotA.Revision != 1 {
		t.Fatalf("RecordLastUsed changed Revision to %d; it must not conflict with Update", gotA.Revision)
	}
	if err := r.RecordLastUsed(ctx, map[string]time.Time{}); err != nil {
		t.Fatalf("RecordLastUsed(empty): %v", err)
	}
}

func testWatcher(t *testing.T, s apikey.Store) {
	w, ok := s.(apikey.Watcher)
	if !ok {
		t.Skip("store does not implement apikey.Watcher")
	}
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan string, 100)
	watchErr := make(chan error, 1)
	go func() { watchErr <- w.Watch(ctx, func(id string) { seen <- id }) }()

	k := minimalKey(t, newOwner(t))
	mustCreate(t, s, k)
	// Watching may take a moment to start; keep changing the key until
	// a notification for it (or a "everything changed") arrives.
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case id := <-seen:
			done = id == k.ID || id == ""
		case <-tick.C:
			k.Name = time.Now().String()
			if err := s.Update(context.Background(), k); err != nil {
				t.Fatalf("Update: %v", err)
			}
		case <-deadline:
			t.Fatal("no change notification within 5s")
		}
	}
	cancel()
	select {
	case err := <-watchErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch returned %v after cancel, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return within 5s of cancel")
	}
}

// testManagerRevokeIsFinal drives a Manager over the store from many
// goroutines at once: issuing, verifying, rotating and revoking. Once
// Revoke has returned, the key must never verify again, however the
// writes interleaved (no lost update) and although the Manager caches.
func testManagerRevokeIsFinal(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	m, err := apikey.NewManager(s, apikey.WithPrefix("storetest"),
		apikey.WithPepper("v1", []byte("storetest-pepper-0123456789abcdef")), apikey.WithCache(1000, time.Hour),
		apikey.WithBackgroundErrors(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	owner := newOwner(t)
	const workers, each = 4, 10
	var wg sync.WaitGroup
	// Each round can report five errors at most (two verifiers, rotate,
	// revoke, the check after revoke): room for all, so that a broken
	// store fails the test instead of blocking it.
	errs := make(chan error, workers*each*5)
	rotated := make(chan string, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: owner})
				if err != nil {
					errs <- fmt.Errorf("issue: %w", err)
					return
				}
				stop := make(chan struct{})
				var verifiers sync.WaitGroup
				for r := 0; r < 2; r++ {
					verifiers.Add(1)
					go func() {
						defer verifiers.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							if _, err := m.Verify(ctx, secret.Reveal()); err != nil && !errors.Is(err, apikey.ErrRevoked) {
								errs <- fmt.Errorf("verify: %w", err)
								return
							}
						}
					}()
				}
				// Rotate and revoke the same key at once: whichever
				// writes second must not undo the other.
				var writers sync.WaitGroup
				writers.Add(2)
				start := make(chan struct{})
				go func() {
					defer writers.Done()
					<-start
					_, repl, err := m.Rotate(ctx, k.ID, time.Hour)
					switch {
					case err == nil:
						rotated <- repl.ID
					case !errors.Is(err, apikey.ErrRevoked):
						errs <- fmt.Errorf("rotate: %w", err)
					}
				}()
				go func() {
					defer writers.Done()
					<-start
					if err := m.Revoke(ctx, k.ID); err != nil {
						errs <- fmt.Errorf("revoke: %w", err)
					}
				}()
				close(start)
				writers.Wait()
				if _, err := m.Verify(ctx, secret.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
					errs <- fmt.Errorf("key %s verified after Revoke returned: %v", k.ID, err)
				}
				close(stop)
				verifiers.Wait()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every key issued is revoked; the replacements of successful
	// rotations exist and are not.
	close(rotated)
	replacements := make(map[string]bool)
	for id := range rotated {
		replacements[id] = true
	}
	// Without a Rotator, a rotation that loses the race to the revocation
	// has written its replacement already, and revokes it (see
	// Manager.Rotate): a dead record, never usable, which names the key
	// it was to replace. With a Rotator the rotation is one write, and
	// there is no such record.
	_, hasRotator := s.(apikey.Rotator)
	revoked := 0
	for _, id := range listIDs(t, s, owner, 1000) {
		k := mustGet(t, s, id)
		switch {
		case replacements[id] && k.RevokedAt.IsZero():
		case !hasRotator && !replacements[id] && !k.RevokedAt.IsZero() && k.RotatedFrom != "":
		case !k.RevokedAt.IsZero() && !replacements[id]:
			revoked++
		default:
			t.Errorf("key %s: revoked at %v, replacement %v", id, k.RevokedAt, replacements[id])
		}
	}
	if revoked != workers*each {
		t.Errorf("%d keys revoked, want %d", revoked, workers*each)
	}
}

// skewedManager returns a Manager over s whose clock is now()+skew, with
// no cache, so that every Verify reads the store.
func skewedManager(t *testing.T, s apikey.Store, now func() time.Time) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(s, apikey.WithPrefix("storetest"),
		apikey.WithPepper("v1", []byte("storetest-pepper-0123456789abcdef")), apikey.WithCache(0, 0),
		apikey.WithClock(now), apikey.WithBackgroundErrors(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testRevocationIsAState checks, on this store, that revocation does not
// depend on anybody's clock: a Manager whose clock is ten minutes fast
// revokes, and a Manager with the right clock refuses the key at once;
// revoking again changes nothing; rotating with no grace ends the old key
// everywhere; stepping a clock back after a revocation does not bring the
// key back.
func testRevocationIsAState(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	fast := skewedManager(t, s, func() time.Time { return time.Now().Add(10 * time.Minute) })
	right := skewedManager(t, s, time.Now)
	owner := newOwner(t)

	secret, k, err := fast.Issue(ctx, apikey.IssueRequest{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := right.Verify(ctx, secret.Reveal()); err != nil {
		t.Fatalf("before Revoke: %v", err)
	}
	if err := fast.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := right.Verify(ctx, secret.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("revoked by a Manager whose clock is fast: Verify = %v, want ErrRevoked", err)
	}
	before := mustGet(t, s, k.ID)
	if err := right.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if after := mustGet(t, s, k.ID); !after.RevokedAt.Equal(before.RevokedAt) || after.Revision != before.Revision {
		t.Fatalf("a second Revoke changed the record: RevokedAt %v → %v, Revision %d → %d",
			before.RevokedAt, after.RevokedAt, before.Revision, after.Revision)
	}

	// Rotation with no grace, from the fast clock.
	secret, k, err = fast.Issue(ctx, apikey.IssueRequest{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	next, _, err := fast.Rotate(ctx, k.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := right.Verify(ctx, secret.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("rotated with no grace by a fast clock: old key Verify = %v, want ErrRevoked", err)
	}
	if _, err := right.Verify(ctx, next.Reveal()); err != nil {
		t.Fatalf("the replacement: %v", err)
	}

	// A clock stepped back after the revocation.
	var mu sync.Mutex
	at := time.Now()
	stepped := skewedManager(t, s, func() time.Time { mu.Lock(); defer mu.Unlock(); return at })
	secret, k, err = stepped.Issue(ctx, apikey.IssueRequest{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if err := stepped.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	at = at.Add(-2 * time.Second)
	mu.Unlock()
	if _, err := stepped.Verify(ctx, secret.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("after stepping the clock back 2s: Verify = %v, want ErrRevoked", err)
	}

	// Suspension is a state too.
	secret, k, err = fast.Issue(ctx, apikey.IssueRequest{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if err := fast.Suspend(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := right.Verify(ctx, secret.Reveal()); !errors.Is(err, apikey.ErrSuspended) {
		t.Fatalf("suspended: Verify = %v, want ErrSuspended", err)
	}
	if err := right.Resume(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := right.Verify(ctx, secret.Reveal()); err != nil {
		t.Fatalf("resumed: %v", err)
	}
}

// testRevoker checks apikey.Revoker, when the store implements it.
func testRevoker(t *testing.T, s apikey.Store) {
	r, ok := s.(apikey.Revoker)
	if !ok {
		t.Skip("store does not implement apikey.Revoker")
	}
	ctx := context.Background()
	k := minimalKey(t, newOwner(t))
	mustCreate(t, s, k)
	at := time.Date(2026, 8, 1, 0, 0, 0, 3000, time.UTC)
	if err := r.Revoke(ctx, k.ID, at); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, k.ID)
	if !got.RevokedAt.Equal(at) || got.Revision != 2 {
		t.Fatalf("after Revoke: RevokedAt %v, Revision %d; want %v, 2", got.RevokedAt, got.Revision, at)
	}
	if err := r.Revoke(ctx, k.ID, at.Add(time.Hour)); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if again := mustGet(t, s, k.ID); !again.RevokedAt.Equal(at) || again.Revision != 2 {
		t.Fatalf("a second Revoke changed the record: RevokedAt %v, Revision %d", again.RevokedAt, again.Revision)
	}
	if err := r.Revoke(ctx, newID(t), at); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Revoke of an unknown ID: %v, want ErrNotFound", err)
	}
}

// testReasonRevoker checks apikey.ReasonRevoker, when the store implements
// it: the first revocation's time and reason stay.
func testReasonRevoker(t *testing.T, s apikey.Store) {
	r, ok := s.(apikey.ReasonRevoker)
	if !ok {
		t.Skip("store does not implement apikey.ReasonRevoker")
	}
	ctx := context.Background()
	k := minimalKey(t, newOwner(t))
	mustCreate(t, s, k)
	at := time.Date(2026, 8, 1, 0, 0, 0, 3000, time.UTC)
	if err := r.RevokeWithReason(ctx, k.ID, at, "leaked: https://example.com/a"); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, k.ID)
	if !got.RevokedAt.Equal(at) || got.RevokedReason != "leaked: https://example.com/a" || got.Revision != 2 {
		t.Fatalf("after RevokeWithReason: RevokedAt %v, RevokedReason %q, Revision %d; want %v, the reason, 2",
			got.RevokedAt, got.RevokedReason, got.Revision, at)
	}
	if err := r.RevokeWithReason(ctx, k.ID, at.Add(time.Hour), "second"); err != nil {
		t.Fatalf("second RevokeWithReason: %v", err)
	}
	if again := mustGet(t, s, k.ID); !again.RevokedAt.Equal(at) || again.RevokedReason != got.RevokedReason || again.Revision != 2 {
		t.Fatalf("a second RevokeWithReason changed the record: RevokedAt %v, RevokedReason %q, Revision %d",
			again.RevokedAt, again.RevokedReason, again.Revision)
	}
	if err := r.RevokeWithReason(ctx, newID(t), at, "x"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("RevokeWithReason of an unknown ID: %v, want ErrNotFound", err)
	}
}

// testRevokeWithReason drives Manager.RevokeWithReason over the store,
// whichever optional interfaces it has: the reason is stored and shown in
// the key's view, the first revocation wins, a reason that breaks the
// rules changes nothing, and a revoked key no longer verifies.
func testRevokeWithReason(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	m := skewedManager(t, s, time.Now)
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: newOwner(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"a\nb", "bidi \u202e", strings.Repeat("x", apikey.MaxRevokedReasonLen+1), "\xff"} {
		if err := m.RevokeWithReason(ctx, k.ID, bad); !errors.Is(err, apikey.ErrInvalidRequest) {
			t.Fatalf("RevokeWithReason(%.20q) = %v, want ErrInvalidRequest", bad, err)
		}
	}
	if got := mustGet(t, s, k.ID); !got.RevokedAt.IsZero() || got.Revision != 1 {
		t.Fatalf("a refused reason changed the record: RevokedAt %v, Revision %d", got.RevokedAt, got.Revision)
	}
	const reason = "leaked: https://github.com/octo/repo/blob/0123/config.yml"
	if err := m.RevokeWithReason(ctx, k.ID, reason); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, secret.Reveal()); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("Verify after RevokeWithReason = %v, want ErrRevoked", err)
	}
	first := mustGet(t, s, k.ID)
	if first.RevokedReason != reason || first.RevokedAt.IsZero() {
		t.Fatalf("after RevokeWithReason: RevokedReason %q, RevokedAt %v", first.RevokedReason, first.RevokedAt)
	}
	if v := first.View(time.Now()); v.RevokedReason != reason || v.Status != apikey.StatusRevoked {
		t.Fatalf("view: RevokedReason %q, Status %q", v.RevokedReason, v.Status)
	}
	for _, again := range []func() error{
		func() error { return m.RevokeWithReason(ctx, k.ID, "another reason") },
		func() error { return m.Revoke(ctx, k.ID) },
	} {
		if err := again(); err != nil {
			t.Fatalf("revoking again: %v", err)
		}
		if got := mustGet(t, s, k.ID); got.RevokedReason != reason || !got.RevokedAt.Equal(first.RevokedAt) || got.Revision != first.Revision {
			t.Fatalf("revoking again changed the record: RevokedReason %q, RevokedAt %v → %v, Revision %d → %d",
				got.RevokedReason, first.RevokedAt, got.RevokedAt, first.Revision, got.Revision)
		}
	}
	// Revoke without a reason leaves it empty.
	_, k2, err := m.Issue(ctx, apikey.IssueRequest{Owner: newOwner(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, k2.ID); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, k2.ID); got.RevokedReason != "" || got.RevokedAt.IsZero() {
		t.Fatalf("Revoke: RevokedReason %q, RevokedAt %v", got.RevokedReason, got.RevokedAt)
	}
}

// testEventClaimer checks apikey.EventClaimer, when the store implements
// it: of many concurrent claims of one event exactly one succeeds, and
// another event, or the same event of another key, is a claim of its own.
func testEventClaimer(t *testing.T, s apikey.Store) {
	c, ok := s.(apikey.EventClaimer)
	if !ok {
		t.Skip("store does not implement apikey.EventClaimer")
	}
	ctx := context.Background()
	id, other := newID(t), newID(t)
	at := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	var wins sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 16 {
		wins.Go(func() {
			ok, err := c.ClaimEvent(ctx, id, "expiring:1", at)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wins.Wait()
	if won != 1 {
		t.Fatalf("16 concurrent claims of one event: %d succeeded, want 1", won)
	}
	for _, claim := range []struct{ id, event string }{{id, "expiring:2"}, {other, "expiring:1"}, {id, "unused:1"}} {
		ok, err := c.ClaimEvent(ctx, claim.id, claim.event, at)
		if err != nil || !ok {
			t.Fatalf("ClaimEvent(%s, %s) = %v, %v; want a claim of its own", claim.id, claim.event, ok, err)
		}
	}
	if ok, err := c.ClaimEvent(ctx, id, "expiring:1", at.Add(time.Hour)); err != nil || ok {
		t.Fatalf("a later claim of a claimed event = %v, %v; want false", ok, err)
	}
}

// testCreditsAndQuotaDay: Key.Credits and Quota.Day round-trip through
// Create, Get, List and Update, in every form a policy takes.
func testCreditsAndQuotaDay(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	owner := newOwner(t)
	cases := []struct {
		quota   apikey.Quota
		credits apikey.Credits
	}{
		{apikey.Quota{Limit: 1000, Period: apikey.MonthPeriod, Day: 15}, apikey.Credits{Grant: 1000, Period: apikey.MonthPeriod, Day: 15}},
		{apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: 31}, apikey.Credits{Grant: 0, Period: apikey.NoRefill}},
		{apikey.Quota{Limit: 5, Period: apikey.MonthPeriod}, apikey.Credits{Grant: 5000, Period: apikey.NoRefill}},
		{apikey.Quota{}, apikey.Credits{Grant: 7, Period: 24 * time.Hour}},
		{apikey.Quota{Limit: 9, Period: time.Hour}, apikey.Credits{}},
	}
	var ids []string
	for _, tc := range cases {
		k := minimalKey(t, owner)
		k.Quota, k.Credits = tc.quota, tc.credits
		if err := s.Create(ctx, k); err != nil {
			t.Fatalf("Create with quota %v, credits %v: %v", tc.quota, tc.credits, err)
		}
		ids = append(ids, k.ID)
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Quota != tc.quota || got.Credits != tc.credits {
			t.Errorf("Get: quota %#v, credits %#v; want %#v, %#v", got.Quota, got.Credits, tc.quota, tc.credits)
		}
	}
	listed, _, err := s.List(ctx, apikey.ListOptions{Owner: owner, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(ids) {
		t.Errorf("List: %d keys, want %d", len(listed), len(ids))
	}
	for _, k := range listed {
		i := slices.Index(ids, k.ID)
		if i < 0 {
			t.Fatalf("List returned %s, not created here", k.ID)
		}
		if k.Quota != cases[i].quota || k.Credits != cases[i].credits {
			t.Errorf("List: quota %#v, credits %#v; want %#v, %#v", k.Quota, k.Credits, cases[i].quota, cases[i].credits)
		}
	}
	// Update changes them, and back to zero.
	k, err := s.Get(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, next := range []struct {
		quota   apikey.Quota
		credits apikey.Credits
	}{
		{apikey.Quota{Limit: 1000, Period: apikey.MonthPeriod, Day: 28}, apikey.Credits{Grant: 3, Period: apikey.MonthPeriod, Day: 1}},
		{apikey.Quota{}, apikey.Credits{}},
	} {
		k.Quota, k.Credits = next.quota, next.credits
		if err := s.Update(ctx, k); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Quota != next.quota || got.Credits != next.credits {
			t.Errorf("after Update: quota %#v, credits %#v; want %#v, %#v", got.Quota, got.Credits, next.quota, next.credits)
		}
	}
}
