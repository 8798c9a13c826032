package apikey_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWhatRequestsCost pins what each outcome costs in usage and in quota:
// refusals by the middleware, by Require* and by Cost cost nothing; a
// request the handler refuses costs what it was charged, unless the
// handler sets its cost to 0.
func TestWhatRequestsCost(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	refuses := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusConflict) })
	refusesFree := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := apikey.SetCost(r.Context(), 0); err != nil {
			panic(err)
		}
		http.Error(w, "no", http.StatusConflict)
	})
	sets7 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := apikey.SetCost(r.Context(), 7); err != nil {
			panic(err)
		}
	})
	quota := apikey.Quota{Limit: 100, Period: 24 * time.Hour}
	for _, tt := range []struct {
		name     string
		route    func(auth func(http.Handler) http.Handler) http.Handler
		req      apikey.IssueRequest
		key      string // "" for the key issued, "bad" for a wrong one
		status   int
		requests int64 // counted by Usage
		units    int64 // counted by Usage and charged to the quota
	}{
		{"200", func(a func(http.Handler) http.Handler) http.Handler { return a(ok) }, apikey.IssueRequest{}, "", 200, 1, 1},
		{"401", func(a func(http.Handler) http.Handler) http.Handler { return a(ok) }, apikey.IssueRequest{}, "bad", 401, 0, 0},
		{"429 rate limit", func(a func(http.Handler) http.Handler) http.Handler { return a(ok) },
			apikey.IssueRequest{RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}}, "limited", 429, 0, 0},
		{"429 quota", func(a func(http.Handler) http.Handler) http.Handler { return a(ok) },
			apikey.IssueRequest{Quota: apikey.Quota{Limit: 1, Period: time.Hour}}, "limited", 429, 0, 0},
		{"403 RequireScopes", func(a func(http.Handler) http.Handler) http.Handler {
			return a(apikey.RequireScopes("admin")(ok))
		}, apikey.IssueRequest{}, "", 403, 0, 0},
		{"403 RequireScopes behind Cost", func(a func(http.Handler) http.Handler) http.Handler {
			return a(apikey.Cost(5)(apikey.RequireScopes("admin")(ok)))
		}, apikey.IssueRequest{}, "", 403, 0, 0},
		{"handler refuses", func(a func(http.Handler) http.Handler) http.Handler { return a(refuses) }, apikey.IssueRequest{}, "", 409, 1, 1},
		{"handler refuses, free", func(a func(http.Handler) http.Handler) http.Handler { return a(refusesFree) }, apikey.IssueRequest{}, "", 409, 1, 0},
		{"handler sets 7", func(a func(http.Handler) http.Handler) http.Handler { return a(sets7) }, apikey.IssueRequest{}, "", 200, 1, 7},
		{"Cost(5)", func(a func(http.Handler) http.Handler) http.Handler { return a(apikey.Cost(5)(ok)) }, apikey.IssueRequest{}, "", 200, 1, 5},
		{"Cost(5) then handler sets 7", func(a func(http.Handler) http.Handler) http.Handler { return a(apikey.Cost(5)(sets7)) }, apikey.IssueRequest{}, "", 200, 1, 7},
		{"Cost(0)", func(a func(http.Handler) http.Handler) http.Handler { return a(apikey.Cost(0)(ok)) }, apikey.IssueRequest{}, "", 200, 1, 0},
		{"Cost(101) over the quota", func(a func(http.Handler) http.Handler) http.Handler { return a(apikey.Cost(101)(ok)) },
			apikey.IssueRequest{}, "", 429, 0, 0},
		{"applied twice", func(a func(http.Handler) http.Handler) http.Handler { return a(a(apikey.Cost(3)(ok))) },
			apikey.IssueRequest{}, "", 200, 1, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
			counter := must(memlimit.NewCounter())
			t.Cleanup(func() { counter.Close() })
			auth := m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter}))
			h := tt.route(auth)
			if tt.req.Quota.IsZero() {
				tt.req.Quota = quota
			}
			tok, k := issue(t, m, tt.req)
			switch tt.key {
			case "bad":
				tok = forge("acme_test", k.ID, "x")
			case "limited":
				require.Equal(t, 200, call(h, tok), "the first request fits")
			}
			before := usage(t, m, apikey.UsageQuery{KeyID: k.ID})
			used := func() int64 {
				d, err := counter.Add(context.Background(), "quota:"+k.ID, tt.req.Quota, 0)
				require.NoError(t, err)
				return d.Limit - d.Remaining
			}
			charged := used()
			assert.Equal(t, tt.status, call(h, tok))
			var requests, units int64
			for _, r := range usage(t, m, apikey.UsageQuery{KeyID: k.ID}) {
				requests, units = requests+r.Requests, units+r.Units
			}
			for _, r := range before {
				requests, units = requests-r.Requests, units-r.Units
			}
			assert.Equal(t, tt.requests, requests, "requests counted")
			assert.Equal(t, tt.units, units, "units counted")
			assert.Equal(t, tt.units, used()-charged, "units charged to the quota")
		})
	}
}

// TestSetCostRejects: bad costs, and calls outside a Middleware, change
// nothing.
func TestSetCostRejects(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	tok, k := issue(t, m, apikey.IssueRequest{Quota: apikey.Quota{Limit: 10, Period: time.Hour}})
	var errs []error
	h := m.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs = append(errs, apikey.SetCost(r.Context(), -1))
		errs = append(errs, apikey.SetCost(r.Context(), 11))
	}))
	require.Equal(t, 200, call(h, tok))
	assert.ErrorIs(t, errs[0], apikey.ErrInvalidRequest, "a negative cost")
	assert.ErrorIs(t, errs[1], apikey.ErrQuotaExceeded, "more than the quota holds")
	rows := usage(t, m, apikey.UsageQuery{KeyID: k.ID})
	require.Len(t, rows, 1)
	assert.Equal(t, int64(1), rows[0].Units, "the refused costs changed nothing")

	assert.ErrorIs(t, apikey.SetCost(context.Background(), 1), apikey.ErrInvalidRequest, "no key")
	assert.ErrorIs(t, apikey.SetCost(apikey.NewContext(context.Background(), k), 1), apikey.ErrInvalidRequest,
		"a key not put there by a Middleware")
	assert.Panics(t, func() { apikey.Cost(-1) })
}
