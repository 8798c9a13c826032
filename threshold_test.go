package apikey_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
)

// TestQuotaThresholdsOncePerWindow: 16 goroutines spend two keys' quotas
// and their owner's until all refuse; each threshold of each quota is
// reported exactly once, and again once in the next month.
func TestQuotaThresholdsOncePerWindow(t *testing.T) {
	for name, newCounter := range ownerQuotaCounters() {
		t.Run(name, func(t *testing.T) {
			m, _, clock := usageManager(t, utc(2026, 1, 31, 12))
			counter := newCounter(t, clock.Now)
			var mu sync.Mutex
			crossings := map[string]int{}
			auth := m.Middleware(
				apikey.WithLimits(apikey.Limits{Counter: counter,
					PerOwnerQuota: apikey.Quota{Limit: 40, Period: apikey.MonthPeriod}}),
				apikey.WithQuotaThresholds(1, 0.5, 0.8, 0.5),
				apikey.WithOnEvent(func(e apikey.Event) {
					mu.Lock()
					defer mu.Unlock()
					switch e.Outcome {
					case apikey.OutcomeQuotaThreshold:
						assert.Equal(t, apikey.ReasonQuotaThreshold, e.Reason)
						assert.NotEmpty(t, e.KeyID)
						who := e.KeyID
						if e.Policy == "owner-quota" {
							who = e.Owner
						}
						crossings[fmt.Sprintf("%s %s %g", e.Policy, who, e.Threshold)]++
					default:
						assert.Zero(t, e.Policy, "only crossings name a policy")
					}
				}))
			h := auth(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			owner := "team-" + randomSuffix()
			// The keys' quotas add up to the owner's, so that which
			// goroutine wins a race changes no quota's total.
			a, ka := issue(t, m, apikey.IssueRequest{Owner: owner, Quota: apikey.Quota{Limit: 10, Period: apikey.MonthPeriod}})
			b, kb := issue(t, m, apikey.IssueRequest{Owner: owner, Quota: apikey.Quota{Limit: 30, Period: apikey.MonthPeriod}})

			spend := func() (ok int) {
				var wg sync.WaitGroup
				var okMu sync.Mutex
				for g := range 16 {
					wg.Go(func() {
						key := a
						if g%2 == 1 {
							key = b
						}
						for call(h, key) == 200 {
							okMu.Lock()
							ok++
							okMu.Unlock()
						}
					})
				}
				wg.Wait()
				require.Equal(t, 429, call(h, a))
				require.Equal(t, 429, call(h, b))
				return ok
			}
			want := map[string]int{}
			for _, who := range []string{"quota " + ka.ID, "quota " + kb.ID, "owner-quota " + owner} {
				for _, f := range []string{"0.5", "0.8", "1"} {
					want[who+" "+f] = 1
				}
			}
			assert.Equal(t, 40, spend(), "the owner's quota caps both keys")
			mu.Lock()
			assert.Equal(t, want, crossings)
			mu.Unlock()

			clock.Advance(12 * time.Hour) // into February
			for k := range want {
				want[k] = 2
			}
			assert.Equal(t, 40, spend())
			mu.Lock()
			assert.Equal(t, want, crossings, "once more in the next window")
			mu.Unlock()
		})
	}
}

// TestQuotaThresholdsNotOnRefusal: a request whose charge is given back
// (a 403 from RequireScopes) reports no crossing; the next request to cross
// does.
func TestQuotaThresholdsNotOnRefusal(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	var mu sync.Mutex
	var got []apikey.Event
	auth := m.Middleware(apikey.WithQuotaThresholds(0.5), apikey.WithOnEvent(func(e apikey.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Outcome == apikey.OutcomeQuotaThreshold {
			got = append(got, e)
		}
	}))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	tok, k := issue(t, m, apikey.IssueRequest{Quota: apikey.Quota{Limit: 4, Period: time.Hour}})
	require.Equal(t, 200, call(auth(ok), tok))
	require.Equal(t, 403, call(auth(apikey.RequireScopes("admin")(ok)), tok), "would be the 2nd unit")
	assert.Empty(t, got)
	require.Equal(t, 200, call(auth(ok), tok))
	require.Len(t, got, 1)
	assert.Equal(t, apikey.Event{Outcome: apikey.OutcomeQuotaThreshold, Reason: apikey.ReasonQuotaThreshold,
		KeyID: k.ID, Owner: k.Owner, Policy: "quota", Threshold: 0.5,
		ClientIP: got[0].ClientIP, Method: "GET", Path: got[0].Path, Duration: got[0].Duration}, got[0])
	require.Equal(t, 200, call(auth(ok), tok))
	assert.Len(t, got, 1, "once per window")
}

func TestWithQuotaThresholdsRejects(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	onEvent := apikey.WithOnEvent(func(apikey.Event) {})
	for _, tt := range []struct {
		name string
		opts []apikey.MiddlewareOption
	}{
		{"none", []apikey.MiddlewareOption{apikey.WithQuotaThresholds(), onEvent}},
		{"zero", []apikey.MiddlewareOption{apikey.WithQuotaThresholds(0), onEvent}},
		{"over one", []apikey.MiddlewareOption{apikey.WithQuotaThresholds(0.5, 1.5), onEvent}},
		{"NaN", []apikey.MiddlewareOption{apikey.WithQuotaThresholds(nan()), onEvent}},
		{"nine", []apikey.MiddlewareOption{apikey.WithQuotaThresholds(.1, .2, .3, .4, .5, .6, .7, .8, .9), onEvent}},
		{"no hook", []apikey.MiddlewareOption{apikey.WithQuotaThresholds(0.8)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Panics(t, func() { m.Middleware(tt.opts...) })
		})
	}
	assert.NotPanics(t, func() { m.Middleware(apikey.WithQuotaThresholds(.1, .2, .3, .4, .5, .6, .7, .8, .8), onEvent) },
		"duplicates count once")
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func randomSuffix() string { return rand.Text()[:8] }
