package apikey_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// An owner's keys share one monthly quota, and the service hears when a
// customer reaches 80% of it and when they use it up.
func ExampleWithQuotaThresholds() {
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("load-me-from-a-secret-manager!!")),
	)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	auth := m.Middleware(
		apikey.WithLimits(apikey.Limits{PerOwnerQuota: apikey.Quota{Limit: 5, Period: apikey.MonthPeriod}}),
		apikey.WithQuotaThresholds(0.8, 1),
		apikey.WithOnEvent(func(e apikey.Event) {
			if e.Outcome == apikey.OutcomeQuotaThreshold {
				fmt.Printf("%s reached %g of its %s\n", e.Owner, e.Threshold, e.Policy)
			}
		}))
	h := auth(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	var keys []string
	for range 2 {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "team-42"})
		if err != nil {
			panic(err)
		}
		keys = append(keys, s.Reveal())
	}
	for i := range 6 {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", keys[i%2])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 200
	// 200
	// 200
	// team-42 reached 0.8 of its owner-quota
	// 200
	// team-42 reached 1 of its owner-quota
	// 200
	// 429
}
