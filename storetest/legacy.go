package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/apikeykit/apikey"
)

// RunLegacy runs the conformance suite of apikey.LegacyStore against the
// stores newStore returns, which must implement it; it is separate from
// Run because the interface is optional. Like Run, it works on a fresh
// store or a shared one.
func RunLegacy(t *testing.T, newStore func() apikey.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, apikey.LegacyStore, apikey.Store)
	}{
		{"CreateAndGet", testLegacyCreateAndGet},
		{"AllOrNothing", testLegacyAllOrNothing},
		{"RevokeAsAnyKey", testLegacyRevoke},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore()
			ls, ok := s.(apikey.LegacyStore)
			if !ok {
				t.Fatalf("%T does not implement apikey.LegacyStore", s)
			}
			tt.fn(t, ls, s)
		})
	}
}

// legacyKey returns an imported key's record and its LegacyRecord.
func legacyKey(t *testing.T, owner string) (*apikey.Key, apikey.LegacyRecord) {
	k := minimalKey(t, owner)
	k.Digest, k.DigestVersion = nil, apikey.LegacyDigestVersion
	k.Scopes = []string{"orders:read"}
	return k, apikey.LegacyRecord{Lookup: "id:" + newID(t), KeyID: k.ID, Hash: "$2a$04$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"}
}

func testLegacyCreateAndGet(t *testing.T, ls apikey.LegacyStore, s apikey.Store) {
	ctx := context.Background()
	owner := newOwner(t)
	var keys []*apikey.Key
	var recs []apikey.LegacyRecord
	for range 3 {
		k, r := legacyKey(t, owner)
		keys, recs = append(keys, k), append(recs, r)
	}
	if err := ls.CreateLegacy(ctx, keys, recs); err != nil {
		t.Fatalf("CreateLegacy: %v", err)
	}
	for _, k := range keys {
		if k.Revision != 1 {
			t.Errorf("CreateLegacy left key %s at revision %d, want 1", k.ID, k.Revision)
		}
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatalf("Get(%s) after CreateLegacy: %v", k.ID, err)
		}
		if got.Owner != owner || got.DigestVersion != apikey.LegacyDigestVersion || len(got.Digest) != 0 || !slices.Equal(got.Scopes, k.Scopes) {
			t.Errorf("Get(%s) = %+v, want the record created", k.ID, got)
		}
	}
	got, err := ls.GetLegacy(ctx, []string{recs[0].Lookup, "id:no-such-" + newID(t), recs[2].Lookup})
	if err != nil {
		t.Fatalf("GetLegacy: %v", err)
	}
	slices.SortFunc(got, func(a, b apikey.LegacyRecord) int { return cmpString(a.Lookup, b.Lookup) })
	want := []apikey.LegacyRecord{recs[0], recs[2]}
	slices.SortFunc(want, func(a, b apikey.LegacyRecord) int { return cmpString(a.Lookup, b.Lookup) })
	if !slices.Equal(got, want) {
		t.Errorf("GetLegacy = %+v, want %+v", got, want)
	}
	none, err := ls.GetLegacy(ctx, []string{"id:no-such-" + newID(t)})
	if err != nil || len(none) != 0 {
		t.Errorf("GetLegacy(unknown) = %v, %v; want nothing, no error", none, err)
	}
	none, err = ls.GetLegacy(ctx, nil)
	if err != nil || len(none) != 0 {
		t.Errorf("GetLegacy(nil) = %v, %v; want nothing, no error", none, err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testLegacyAllOrNothing(t *testing.T, ls apikey.LegacyStore, s apikey.Store) {
	ctx := context.Background()
	owner := newOwner(t)
	k0, r0 := legacyKey(t, owner)
	if err := ls.CreateLegacy(ctx, []*apikey.Key{k0}, []apikey.LegacyRecord{r0}); err != nil {
		t.Fatal(err)
	}
	for name, batch := range map[string]func() ([]*apikey.Key, []apikey.LegacyRecord){
		"existing lookup": func() ([]*apikey.Key, []apikey.LegacyRecord) {
			k1, r1 := legacyKey(t, owner)
			k2, r2 := legacyKey(t, owner)
			r2.Lookup = r0.Lookup
			return []*apikey.Key{k1, k2}, []apikey.LegacyRecord{r1, r2}
		},
		"lookup twice": func() ([]*apikey.Key, []apikey.LegacyRecord) {
			k1, r1 := legacyKey(t, owner)
			k2, r2 := legacyKey(t, owner)
			r2.Lookup = r1.Lookup
			return []*apikey.Key{k1, k2}, []apikey.LegacyRecord{r1, r2}
		},
		"existing key ID": func() ([]*apikey.Key, []apikey.LegacyRecord) {
			k1, r1 := legacyKey(t, owner)
			k2, r2 := legacyKey(t, owner)
			k2.ID, r2.KeyID = k0.ID, k0.ID
			return []*apikey.Key{k1, k2}, []apikey.LegacyRecord{r1, r2}
		},
	} {
		keys, recs := batch()
		err := ls.CreateLegacy(ctx, keys, recs)
		if !errors.Is(err, apikey.ErrConflict) {
			t.Errorf("%s: CreateLegacy = %v, want ErrConflict", name, err)
		}
		for _, k := range keys {
			if k.ID == k0.ID {
				continue
			}
			if _, err := s.Get(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
				t.Errorf("%s: key %s of a refused batch: Get = %v, want ErrNotFound", name, k.ID, err)
			}
		}
		for _, r := range recs {
			if r.Lookup == r0.Lookup {
				continue
			}
			if got, err := ls.GetLegacy(ctx, []string{r.Lookup}); err != nil || len(got) != 0 {
				t.Errorf("%s: record %s of a refused batch is there: %v, %v", name, r.Lookup, got, err)
			}
		}
	}
	page, _, err := s.List(ctx, apikey.ListOptions{Owner: owner})
	if err != nil || len(page) != 1 {
		t.Errorf("after refused batches, owner has %d keys (%v), want 1", len(page), err)
	}
}

// testLegacyRevoke: an imported key is revoked as any key is, by a
// Manager on the store.
func testLegacyRevoke(t *testing.T, ls apikey.LegacyStore, s apikey.Store) {
	ctx := context.Background()
	k, r := legacyKey(t, newOwner(t))
	if err := ls.CreateLegacy(ctx, []*apikey.Key{k}, []apikey.LegacyRecord{r}); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(s, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", []byte("storetest-pepper-0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke of an imported key: %v", err)
	}
	got, err := s.Get(ctx, k.ID)
	if err != nil || got.RevokedAt.IsZero() {
		t.Errorf("after Revoke, Get = %+v, %v; want it revoked", got, err)
	}
	if recs, err := ls.GetLegacy(ctx, []string{r.Lookup}); err != nil || len(recs) != 1 {
		t.Errorf("after Revoke, GetLegacy = %v, %v; want the record (the key record says it is revoked)", recs, err)
	}
}
