package apikey_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

// ownerQuotaCounters returns the Counters an owner quota is tested on: the
// Manager's own (nil) and memlimit's. redislimit's tests run the same
// through the middleware on Redis (TestOwnerQuotaThroughMiddleware).
func ownerQuotaCounters() map[string]func(t *testing.T, now func() time.Time) apikey.Counter {
	return map[string]func(t *testing.T, now func() time.Time) apikey.Counter{
		"manager": func(*testing.T, func() time.Time) apikey.Counter { return nil },
		"memlimit": func(t *testing.T, now func() time.Time) apikey.Counter {
			c := must(memlimit.NewCounter(memlimit.WithClock(now)))
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

// TestOwnerQuotaAcrossThreeKeys: an owner's three keys share one quota, a
// refusal by it is 429 with the quota problem and RateLimit fields and
// charges neither quota, a 403 from RequireScopes gives the owner's units
// back, and another owner is not affected.
func TestOwnerQuotaAcrossThreeKeys(t *testing.T) {
	for name, newCounter := range ownerQuotaCounters() {
		t.Run(name, func(t *testing.T) {
			m, _, clock := usageManager(t, utc(2026, 3, 31, 23))
			counter := newCounter(t, clock.Now)
			var mu sync.Mutex
			var events []apikey.Event
			ownerQuota := apikey.Quota{Limit: 5, Period: apikey.MonthPeriod}
			auth := m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter, PerOwnerQuota: ownerQuota}),
				apikey.WithOnEvent(func(e apikey.Event) {
					mu.Lock()
					defer mu.Unlock()
					events = append(events, e)
				}))
			last := func() apikey.Event {
				mu.Lock()
				defer mu.Unlock()
				return events[len(events)-1]
			}
			ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
			mux := http.NewServeMux()
			mux.Handle("/admin", apikey.RequireScopes("admin")(ok))
			mux.Handle("/", ok)
			h := auth(mux)

			owner := "team-" + randomSuffix()
			keyQuota := apikey.Quota{Limit: 3, Period: apikey.MonthPeriod}
			a, ka := issue(t, m, apikey.IssueRequest{Owner: owner, Quota: keyQuota})
			b, _ := issue(t, m, apikey.IssueRequest{Owner: owner})
			c, _ := issue(t, m, apikey.IssueRequest{Owner: owner})
			other, _ := issue(t, m, apikey.IssueRequest{Owner: owner + "-other"})

			admin := func(key string) func(*http.Request) {
				return func(r *http.Request) {
					withKey(key)(r)
					r.URL.Path = "/admin"
				}
			}
			for range 3 {
				require.Equal(t, 403, serve(h, newRequest(admin(b))).Code)
			}
			for i, key := range []string{a, b, c, a, b} {
				w := serve(h, newRequest(withKey(key)))
				require.Equal(t, 200, w.Code, "request %d: the 403s gave their units back", i)
			}
			w := serve(h, newRequest(withKey(b)))
			assert.Equal(t, 200, serve(h, newRequest(withKey(other))).Code, "another owner has its own quota")

			p := assertRejected(t, w, 429, "")
			assert.Equal(t, "quota exhausted", p.Detail)
			assert.Equal(t, `"owner-quota";q=5;w=2678400`, w.Header().Get("RateLimit-Policy"))
			assert.Equal(t, `"owner-quota";r=0;t=3600`, w.Header().Get("RateLimit"))
			assert.Equal(t, "3600", w.Header().Get("Retry-After"), "an hour to the 1st of April")

			w = serve(h, newRequest(withKey(a)))
			assertRejected(t, w, 429, "")
			assert.Equal(t, apikey.ReasonOwnerQuota, last().Reason)
			assert.Equal(t, `"quota";q=3;w=2678400, "owner-quota";q=5;w=2678400`, w.Header().Get("RateLimit-Policy"))
			if counter != nil {
				d, err := counter.Add(context.Background(), "quota:"+ka.ID, keyQuota, 0)
				require.NoError(t, err)
				assert.Equal(t, int64(1), d.Remaining, "the owner's refusal gave the key's unit back")
				d, err = counter.Add(context.Background(), "owner-quota:"+owner, ownerQuota, 0)
				require.NoError(t, err)
				assert.Equal(t, int64(0), d.Remaining)
			}
			if name == "manager" {
				// Only the Manager's own counter follows the injected clock.
				clock.Advance(time.Hour)
				assert.Equal(t, 200, serve(h, newRequest(withKey(c))).Code, "a new month, a new quota")
			}
		})
	}
}

// TestOwnerQuotaCost: Cost and SetCost charge the owner's quota too, and a
// cost the owner's quota cannot hold charges neither quota.
func TestOwnerQuotaCost(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	counter := must(memlimit.NewCounter())
	t.Cleanup(func() { counter.Close() })
	ownerQuota := apikey.Quota{Limit: 10, Period: 24 * time.Hour}
	keyQuota := apikey.Quota{Limit: 100, Period: 24 * time.Hour}
	auth := m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter, PerOwnerQuota: ownerQuota}))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	tok, k := issue(t, m, apikey.IssueRequest{Owner: "team-cost", Quota: keyQuota})
	used := func(key string, q apikey.Quota) int64 {
		d, err := counter.Add(context.Background(), key, q, 0)
		require.NoError(t, err)
		return d.Limit - d.Remaining
	}
	require.Equal(t, 200, call(auth(apikey.Cost(4)(ok)), tok))
	assert.Equal(t, int64(4), used("quota:"+k.ID, keyQuota))
	assert.Equal(t, int64(4), used("owner-quota:team-cost", ownerQuota))

	assert.Equal(t, 429, call(auth(apikey.Cost(7)(ok)), tok), "4+7 > 10")
	assert.Equal(t, int64(4), used("quota:"+k.ID, keyQuota), "the key's charge came back")
	assert.Equal(t, int64(4), used("owner-quota:team-cost", ownerQuota))

	var err error
	require.Equal(t, 200, call(auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err = apikey.SetCost(r.Context(), 0)
	})), tok))
	require.NoError(t, err)
	assert.Equal(t, int64(4), used("quota:"+k.ID, keyQuota), "a free request gave its unit back")
	assert.Equal(t, int64(4), used("owner-quota:team-cost", ownerQuota))
}

func TestOwnerQuotaValidated(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	assert.PanicsWithValue(t, "apikey: Middleware: WithLimits: Limits.PerOwnerQuota: apikey: invalid request: quota -1 per 1h0m0s: limit and period must be positive",
		func() {
			m.Middleware(apikey.WithLimits(apikey.Limits{PerOwnerQuota: apikey.Quota{Limit: -1, Period: time.Hour}}))
		})
}
