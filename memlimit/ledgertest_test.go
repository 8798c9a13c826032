package memlimit_test

import (
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/ledgertest"
	"github.com/apikeykit/apikey/memlimit"
)

// TestLedgerConformance runs memlimit's Ledger through ledgertest, on
// the suite's clock.
func TestLedgerConformance(t *testing.T) {
	ledgertest.Run(t, func(now func() time.Time) apikey.Ledger {
		l, err := memlimit.NewLedger(memlimit.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}
