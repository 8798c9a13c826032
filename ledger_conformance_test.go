package apikey_test

import (
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/ledgertest"
	"github.com/apikeykit/apikey/memstore"
)

// TestManagerLedgerConformance runs the Manager's own Ledger (the
// middleware's default, Manager.Ledger) through ledgertest, on the
// Manager's clock.
func TestManagerLedgerConformance(t *testing.T) {
	ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
		m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"),
			apikey.WithPepper("v1", testPepper), apikey.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m.Ledger()
	})
}
