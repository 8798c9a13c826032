package apikey_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/stretchr/testify/assert"
)

// TestMiddlewareAllocs pins the allocation budget of the hot path (a valid
// key on a cache hit): two for authentication (the request's context and
// its shallow copy), one more for the RateLimit field value, and one for
// the limiter key of Limits.PerOwner; credits, like a quota, add the
// field value and their ledger key. The fixture's store records usage,
// so every case is metered: metering adds nothing to these budgets. CI
// runs it without -race, where
// allocation counts mean something.
func TestMiddlewareAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	f := newMWFixture(t)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	huge := apikey.Limit{Rate: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000}
	limiter := must(memlimit.NewLimiter())
	defer limiter.Close()
	limits := apikey.WithLimits(apikey.Limits{Limiter: limiter, Default: huge})
	own, _ := issueKey(t, f, apikey.IssueRequest{RateLimit: huge})
	hugeCredits := apikey.Credits{Grant: 1 << 52, Period: apikey.MonthPeriod}
	credited, _ := issueKey(t, f, apikey.IssueRequest{Credits: hugeCredits, Scopes: f.validKey.Scopes})
	ledger := must(memlimit.NewLedger())
	defer ledger.Close()
	tests := []struct {
		name string
		h    http.Handler
		max  float64
		key  string // f.valid if empty
	}{
		{"auth", f.m.Middleware()(noop), 2, ""},
		{"auth+scope", f.m.Middleware()(apikey.RequireScopes("orders:read", "billing:read")(noop)), 2, ""},
		{"auth+events", f.m.Middleware(apikey.WithOnEvent(func(apikey.Event) {}))(noop), 2, ""},
		{"auth+events+scope", f.m.Middleware(apikey.WithOnEvent(func(apikey.Event) {}))(
			apikey.RequireScopes("orders:read")(noop)), 2, ""},
		// Applied twice, the inner one passes the request on.
		{"auth nested", func() http.Handler { auth := f.m.Middleware(); return auth(auth(noop)) }(), 2, ""},
		{"auth+ratelimit", f.m.Middleware(limits)(noop), 3, ""},
		{"auth+ratelimit+scope", f.m.Middleware(limits)(
			apikey.RequireScopes("orders:read", "billing:read")(noop)), 3, ""},
		{"auth+ratelimit+owner", f.m.Middleware(apikey.WithLimits(apikey.Limits{Limiter: limiter, Default: huge,
			PerOwner: huge}))(noop), 4, ""},
		// No options: the key's own limit, on the Manager's own limiter.
		{"auth+own-limit", f.m.Middleware()(noop), 3, own},
		// Credits: the RateLimit field value and the ledger key, on the
		// Manager's own ledger or memlimit's, with a 403 that refunds
		// them, and an owner's balance.
		{"auth+credits", f.m.Middleware()(noop), 4, credited},
		{"auth+credits+memlimit", f.m.Middleware(apikey.WithLimits(apikey.Limits{Ledger: ledger}))(noop), 4, credited},
		{"auth+credits+scope", f.m.Middleware()(apikey.RequireScopes("orders:read", "billing:read")(noop)), 4, credited},
		{"auth+ownercredits", f.m.Middleware(apikey.WithLimits(apikey.Limits{Ledger: ledger, PerOwnerCredits: hugeCredits}))(noop), 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = f.valid
			}
			r := newRequest(withKey(key))
			w := newDiscardWriter()
			tt.h.ServeHTTP(w, r)
			assert.Zero(t, w.code)
			allocs := testing.AllocsPerRun(1000, func() {
				w.reset()
				tt.h.ServeHTTP(w, r)
			})
			assert.LessOrEqual(t, allocs, tt.max)
			t.Logf("%s: %v allocs", tt.name, allocs)
		})
	}
}
