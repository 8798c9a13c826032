// Package vaulttest is a conformance suite for vault.Store
// implementations, like storetest for apikey.Store: a backend's own test
// calls Run, and passes only if it behaves as the Store contract says.
//
//	func TestConformance(t *testing.T) {
//		vaulttest.Run(t, func() vault.Store { return vault.NewMemStore() })
//	}
//
// Each subtest calls newStore once. The suite works whether newStore
// returns a fresh store or a shared one: every subtest uses owners of its
// own, and never asserts that a store holds only what it wrote.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey/vault"
)

// Run runs the conformance suite against the stores newStore returns.
func Run(t *testing.T, newStore func() vault.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, vault.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Names", testNames},
		{"CallerOwnsRecords", testCallerOwnsRecords},
		{"PutVersions", testPutVersions},
		{"List", testList},
		{"Delete", testDelete},
		{"SetRevealed", testSetRevealed},
		{"Rewrap", testRewrap},
		{"Stale", testStale},
		{"ConcurrentPut", testConcurrentPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore()) })
	}
}

func random(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// record returns a record of (owner, name) at version with random bytes.
func record(owner, name string, version int64, kek string) vault.Record {
	rnd := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	return vault.Record{
		Owner: owner, Name: name, Version: version, KEKVersion: kek,
		WrappedKey: rnd(72), Nonce: rnd(24), Ciphertext: rnd(67), Hint: "sk-…abcd",
		CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC),
	}
}

func equal(t *testing.T, what string, got, want vault.Record) {
	t.Helper()
	if got.Owner != want.Owner || got.Name != want.Name || got.Version != want.Version ||
		got.KEKVersion != want.KEKVersion || got.Hint != want.Hint ||
		!bytes.Equal(got.WrappedKey, want.WrappedKey) || !bytes.Equal(got.Nonce, want.Nonce) ||
		!bytes.Equal(got.Ciphertext, want.Ciphertext) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.RevealedAt.Equal(want.RevealedAt) {
		t.Fatalf("%s: got %+v\nwant %+v", what, got, want)
	}
}

func put(t *testing.T, s vault.Store, r vault.Record) {
	t.Helper()
	if err := s.Put(context.Background(), r); err != nil {
		t.Fatalf("Put %s/%s version %d: %v", r.Owner, r.Name, r.Version, err)
	}
}

func get(t *testing.T, s vault.Store, owner, name string) vault.Record {
	t.Helper()
	r, err := s.Get(context.Background(), owner, name)
	if err != nil {
		t.Fatalf("Get %s/%s: %v", owner, name, err)
	}
	return r
}

func testRoundTrip(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner := random("owner-")
	if _, err := s.Get(ctx, owner, "openai"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get of nothing: %v, want ErrNotFound", err)
	}
	r := record(owner, "openai", 1, "v1")
	put(t, s, r)
	equal(t, "Get after Put", get(t, s, owner, "openai"), r)
	if _, err := s.Get(ctx, owner, "anthropic"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get of another name: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, random("other-"), "openai"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get of another owner: %v, want ErrNotFound", err)
	}
	// An empty hint (a short secret) round-trips as empty.
	r2 := record(owner, "short", 1, "v1")
	r2.Hint = ""
	put(t, s, r2)
	equal(t, "empty hint", get(t, s, owner, "short"), r2)
}

// testNames: owners and names are data, whatever they hold.
func testNames(t *testing.T, s vault.Store) {
	owner := random("owner-")
	names := []string{"x", "with space", "quote'\"", `x'; DELETE FROM apikey_vault_secrets; --`, "é ü 日本", "%_*", "a\tb\nc"}
	for _, n := range names {
		put(t, s, record(owner, n, 1, "v1"))
	}
	for _, n := range names {
		if r := get(t, s, owner, n); r.Name != n {
			t.Fatalf("Get %q returned name %q", n, r.Name)
		}
	}
	rs, err := s.List(context.Background(), owner)
	if err != nil || len(rs) != len(names) {
		t.Fatalf("List: %d records (%v), want %d", len(rs), err, len(names))
	}
}

func testCallerOwnsRecords(t *testing.T, s vault.Store) {
	owner := random("owner-")
	r := record(owner, "n", 1, "v1")
	want := r
	want.WrappedKey, want.Nonce, want.Ciphertext = bytes.Clone(r.WrappedKey), bytes.Clone(r.Nonce), bytes.Clone(r.Ciphertext)
	put(t, s, r)
	r.Ciphertext[0] ^= 1
	r.Nonce[0] ^= 1
	r.WrappedKey[0] ^= 1
	got := get(t, s, owner, "n")
	equal(t, "after changing the Put record", got, want)
	got.Ciphertext[1] ^= 1
	got.Nonce[1] ^= 1
	got.WrappedKey[1] ^= 1
	equal(t, "after changing a Get record", get(t, s, owner, "n"), want)
	rs, _ := s.List(context.Background(), owner)
	rs[0].Ciphertext[2] ^= 1
	equal(t, "after changing a List record", get(t, s, owner, "n"), want)
}

func testPutVersions(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner := random("owner-")
	v1 := record(owner, "n", 1, "v1")
	put(t, s, v1)
	for _, tt := range []struct {
		name    string
		version int64
	}{{"version 1 again", 1}, {"a skipped version", 3}, {"version 0", 0}, {"a negative version", -1}} {
		if err := s.Put(ctx, record(owner, "n", tt.version, "v1")); !errors.Is(err, vault.ErrConflict) {
			t.Fatalf("Put of %s: %v, want ErrConflict", tt.name, err)
		}
		equal(t, "after a refused Put of "+tt.name, get(t, s, owner, "n"), v1)
	}
	if err := s.Put(ctx, record(owner, "new", 2, "v1")); !errors.Is(err, vault.ErrConflict) {
		t.Fatalf("first Put at version 2: %v, want ErrConflict", err)
	}
	v2 := record(owner, "n", 2, "v2")
	put(t, s, v2)
	equal(t, "after Put of version 2", get(t, s, owner, "n"), v2)
}

func testList(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner, other := random("owner-"), random("owner-")
	names := []string{"b", "a", "B", "ab", "é", "z"}
	for _, n := range names {
		put(t, s, record(owner, n, 1, "v1"))
	}
	put(t, s, record(other, "c", 1, "v1"))
	put(t, s, record(owner+"x", "c", 1, "v1"))
	rs, err := s.List(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		if r.Owner != owner {
			t.Fatalf("List(%s) returned a record of %s", owner, r.Owner)
		}
		got = append(got, r.Name)
	}
	want := slices.Clone(names)
	slices.Sort(want) // bytewise
	if !slices.Equal(got, want) {
		t.Fatalf("List names %q, want %q (bytewise order)", got, want)
	}
	rs, err = s.List(ctx, random("nobody-"))
	if err != nil || len(rs) != 0 {
		t.Fatalf("List of an unknown owner: %d records, %v", len(rs), err)
	}
}

func testDelete(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner := random("owner-")
	put(t, s, record(owner, "a", 1, "v1"))
	put(t, s, record(owner, "b", 1, "v1"))
	if err := s.Delete(ctx, owner, "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, owner, "a"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, owner, "a"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	get(t, s, owner, "b")
	// A deleted name starts again at version 1.
	put(t, s, record(owner, "a", 1, "v1"))
}

func testSetRevealed(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner := random("owner-")
	r := record(owner, "n", 1, "v1")
	put(t, s, r)
	t1 := time.Date(2026, 12, 1, 11, 0, 0, 5000, time.UTC)
	steps := []struct {
		name    string
		version int64
		at      time.Time
		want    time.Time
	}{
		{"first", 1, t1, t1},
		{"earlier: ignored", 1, t1.Add(-time.Hour), t1},
		{"other version: ignored", 2, t1.Add(time.Hour), t1},
		{"later", 1, t1.Add(time.Minute), t1.Add(time.Minute)},
	}
	for _, st := range steps {
		if err := s.SetRevealed(ctx, owner, "n", st.version, st.at); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		r.RevealedAt = st.want
		equal(t, st.name, get(t, s, owner, "n"), r)
	}
	if err := s.SetRevealed(ctx, owner, "missing", 1, t1); err != nil {
		t.Fatalf("SetRevealed of a missing record: %v, want nil", err)
	}
	if _, err := s.Get(ctx, owner, "missing"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("SetRevealed created a record: %v", err)
	}
}

func testRewrap(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner := random("owner-")
	r := record(owner, "n", 2, "v1")
	put(t, s, record(owner, "n", 1, "v1"))
	put(t, s, r)
	wrapped := bytes.Repeat([]byte{7}, 72)
	for _, tt := range []struct {
		name    string
		version int64
		from    string
	}{{"an old version", 1, "v1"}, {"another KEK version", 2, "v0"}} {
		if err := s.Rewrap(ctx, owner, "n", tt.version, tt.from, "v2", wrapped); !errors.Is(err, vault.ErrConflict) {
			t.Fatalf("Rewrap of %s: %v, want ErrConflict", tt.name, err)
		}
		equal(t, "after a refused Rewrap", get(t, s, owner, "n"), r)
	}
	if err := s.Rewrap(ctx, owner, "missing", 1, "v1", "v2", wrapped); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Rewrap of a missing record: %v, want ErrNotFound", err)
	}
	if err := s.Rewrap(ctx, owner, "n", 2, "v1", "v2", wrapped); err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	r.KEKVersion, r.WrappedKey = "v2", wrapped
	equal(t, "after Rewrap", get(t, s, owner, "n"), r)
}

func testStale(t *testing.T, s vault.Store) {
	ctx := context.Background()
	owner := random("owner-")
	current := random("kek-")
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("n%d", i)
		kek := "old-a"
		if i%3 == 2 {
			kek = current
		} else {
			want = append(want, name)
		}
		if i == 4 {
			kek = "old-b"
		}
		put(t, s, record(owner, name, 1, kek))
	}
	// Page through the whole store two at a time; keep this owner's.
	var got []string
	var after vault.Ref
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("Stale does not end")
		}
		rs, err := s.Stale(ctx, current, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 2 {
			t.Fatalf("Stale returned %d records, limit 2", len(rs))
		}
		for _, r := range rs {
			ref := vault.Ref{Owner: r.Owner, Name: r.Name}
			if ref.Owner < after.Owner || ref.Owner == after.Owner && ref.Name <= after.Name {
				t.Fatalf("Stale after %v returned %v: not in order", after, ref)
			}
			if r.KEKVersion == current {
				t.Fatalf("Stale returned %v, wrapped by the current version", ref)
			}
			if r.Owner == owner {
				got = append(got, r.Name)
			}
			after = ref
		}
		if len(rs) < 2 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Stale: %q, want %q", got, want)
	}
}

// testConcurrentPut: of concurrent Puts at one version, exactly one wins.
func testConcurrentPut(t *testing.T, s vault.Store) {
	owner := random("owner-")
	for version := int64(1); version <= 3; version++ {
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Put(context.Background(), record(owner, "n", version, "v1"))
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, vault.ErrConflict):
				t.Fatalf("concurrent Put: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("version %d: %d concurrent Puts won, want 1", version, won)
		}
		if r := get(t, s, owner, "n"); r.Version != version {
			t.Fatalf("version %d stored, want %d", r.Version, version)
		}
	}
}
