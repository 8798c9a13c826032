package apikey_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// TestImportLegacyAllOrNothing: one bad item names its index, matches its
// sentinel, and nothing is written, whatever is wrong with it.
func TestImportLegacyAllOrNothing(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	store := memstore.New()
	m := newLegacyManager(t, store, clock, apikey.LegacyConfig{})
	good := func() apikey.LegacyImport {
		key, _ := newLegacyKey(t)
		return apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "o"}, Hash: legacyFormats[0].hash(t, key)}
	}
	saltedKey, saltedID := newLegacyKey(t)
	salted := apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "o"}, Hash: legacyFormats[3].hash(t, saltedKey), ID: saltedID}
	// Costly hashes, made cheaply: only their parameters are read.
	cheap, err := bcrypt.GenerateFromPassword([]byte("k"), bcrypt.MinCost)
	require.NoError(t, err)
	costly := strings.Replace(string(cheap), "$04$", "$13$", 1)
	costlyArgon := strings.Replace(argon2idHash("k", 64, 1, 1), "m=64,", "m=131072,", 1)

	dup := good()
	for _, tc := range []struct {
		name string
		bad  apikey.LegacyImport
		want error
	}{
		{"unknown hash", apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "o"}, Hash: "md5:0cc175b9c0f1b6a831c399e269772661"}, apikey.ErrInvalidLegacyHash},
		{"bcrypt over the cap", apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "o"}, Hash: costly, ID: "abc"}, apikey.ErrLegacyHashCost},
		{"argon2id over the cap", apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "o"}, Hash: costlyArgon, ID: "abc"}, apikey.ErrLegacyHashCost},
		{"salted without ID", apikey.LegacyImport{IssueRequest: apikey.IssueRequest{Owner: "o"}, Hash: salted.Hash}, apikey.ErrInvalidRequest},
		{"unsalted with ID", func() apikey.LegacyImport { g := good(); g.ID = "x"; return g }(), apikey.ErrInvalidRequest},
		{"no owner", func() apikey.LegacyImport { g := good(); g.Owner = ""; return g }(), apikey.ErrInvalidRequest},
		{"bad scope", func() apikey.LegacyImport { g := good(); g.Scopes = []string{"a b"}; return g }(), apikey.ErrInvalidScope},
		{"expired", func() apikey.LegacyImport { g := good(); g.ExpiresAt = clock.Now().Add(-time.Hour); return g }(), apikey.ErrInvalidRequest},
		{"duplicate hash", dup, apikey.ErrConflict},
		{"duplicate ID", func() apikey.LegacyImport { s := salted; s.Hash = legacyFormats[4].hash(t, saltedKey); return s }(), apikey.ErrConflict},
		{"control character in ID", func() apikey.LegacyImport { s := salted; s.ID = "a\nb"; return s }(), apikey.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := []apikey.LegacyImport{good(), dup, salted, good(), tc.bad, good()}
			_, err := m.ImportLegacy(ctx, batch)
			require.ErrorIs(t, err, tc.want)
			var ie *apikey.ImportError
			require.True(t, errors.As(err, &ie), err)
			assert.Equal(t, 4, ie.Index)
			assert.Zero(t, store.Len(), "nothing written")
			assert.NotContains(t, err.Error(), tc.bad.Hash[min(len(tc.bad.Hash), 10):])
		})
	}

	// Then the good ones go in, and a second import of one of them is
	// refused, naming it, and writes nothing.
	keys, err := m.ImportLegacy(ctx, []apikey.LegacyImport{dup, salted})
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, 2, store.Len())
	_, err = m.ImportLegacy(ctx, []apikey.LegacyImport{good(), salted})
	require.ErrorIs(t, err, apikey.ErrConflict)
	assert.Contains(t, err.Error(), keys[1].ID)
	assert.Contains(t, err.Error(), "key 1")
	assert.Equal(t, 2, store.Len())
}

// TestImportLegacyStoresNoHash: an unsalted hash is stored only as a
// digest under the pepper, so neither the old hash nor anything a key
// can be tested against without the pepper is in the store.
func TestImportLegacyStoresNoHash(t *testing.T) {
	store := memstore.New()
	m := newLegacyManager(t, store, newFakeClock(), apikey.LegacyConfig{})
	key, _ := newLegacyKey(t)
	hash := legacyFormats[0].hash(t, key)
	k := importOne(t, m, hash, "", apikey.IssueRequest{})
	hexDigest := strings.TrimPrefix(hash, "sha256:")
	recs, err := store.GetLegacy(context.Background(), []string{hash, hexDigest})
	require.NoError(t, err)
	assert.Empty(t, recs)
	all := legacyRecords(t, store, m, key)
	require.Len(t, all, 1)
	assert.Equal(t, k.ID, all[0].KeyID)
	assert.NotContains(t, all[0].Lookup, hexDigest)
	assert.Equal(t, apikey.LegacySHA256, all[0].Hash)

	// Another pepper finds nothing.
	other, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", []byte("another-pepper-0123456789abcdef0")),
		apikey.WithLegacy(apikey.LegacyConfig{}))
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Verify(context.Background(), key)
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
}

// legacyRecords returns the records store holds for key, as m finds them.
func legacyRecords(t *testing.T, store apikey.LegacyStore, m *apikey.Manager, key string) []apikey.LegacyRecord {
	t.Helper()
	recs, err := store.GetLegacy(context.Background(), apikey.LegacyLookups(m, key))
	require.NoError(t, err)
	return recs
}
