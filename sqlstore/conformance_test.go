package sqlstore_test

import (
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/storetest"
)

// TestConformance runs the storetest suite on both dialects, a fresh
// database (SQLite file, PostgreSQL schema) for each subtest.
func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			storetest.Run(t, func() apikey.Store {
				db, _ := b.open(t)
				return newStore(t, db, b.dialect)
			})
		})
	}
}

// TestLegacyConformance runs storetest's LegacyStore suite on both
// dialects.
func TestLegacyConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			need(t, b)
			storetest.RunLegacy(t, func() apikey.Store {
				db, _ := b.open(t)
				return newStore(t, db, b.dialect)
			})
		})
	}
}
