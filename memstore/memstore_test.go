package memstore_test

import (
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func() apikey.Store { return memstore.New() })
}

func TestConformanceSharedStore(t *testing.T) {
	// The suite must also pass when every subtest gets the same store, as
	// it does with a database that outlives each subtest.
	s := memstore.New()
	storetest.Run(t, func() apikey.Store { return s })
}

func TestLegacyConformance(t *testing.T) {
	storetest.RunLegacy(t, func() apikey.Store { return memstore.New() })
	s := memstore.New()
	storetest.RunLegacy(t, func() apikey.Store { return s })
}
