package redislimit

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// TestOwnerQuotaThroughMiddleware: an owner's three keys share one quota
// counted by a Counter on Redis (single and Cluster). A refusal by
// RequireScopes gives the owner's unit back; the owner's refusal is 429
// with the owner-quota policy, Redis's own month in its RateLimit field,
// and gives the key's unit back; another owner is not affected.
func TestOwnerQuotaThroughMiddleware(t *testing.T) {
	eachRedis(t, func(t *testing.T, r testRedis) {
		ctx := context.Background()
		counter := newTestCounter(t, r.client(t), testPrefix())
		m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"),
			apikey.WithPepper("v1", []byte("owner-quota-test-pepper-0123456789")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		ownerQuota := apikey.Quota{Limit: 5, Period: apikey.MonthPeriod}
		var last apikey.Event
		auth := m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter, PerOwnerQuota: ownerQuota}),
			apikey.WithOnEvent(func(e apikey.Event) { last = e }))
		ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
		mux := http.NewServeMux()
		mux.Handle("/admin", apikey.RequireScopes("admin")(ok))
		mux.Handle("/", ok)
		h := auth(mux)

		keyQuota := apikey.Quota{Limit: 3, Period: apikey.MonthPeriod}
		issue := func(req apikey.IssueRequest) (apikey.Secret, *apikey.Key) {
			s, k, err := m.Issue(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return s, k
		}
		owner := "team-" + testPrefix() // fresh on a shared Redis
		a, ka := issue(apikey.IssueRequest{Owner: owner, Quota: keyQuota})
		b, _ := issue(apikey.IssueRequest{Owner: owner})
		c, _ := issue(apikey.IssueRequest{Owner: owner})
		other, _ := issue(apikey.IssueRequest{Owner: owner + "-other"})
		send := func(s apikey.Secret, path string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Authorization", "Bearer "+s.Reveal())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}

		for range 3 {
			if code := send(b, "/admin").Code; code != http.StatusForbidden {
				t.Fatalf("/admin: %d, want 403", code)
			}
		}
		for i, s := range []apikey.Secret{a, b, c, a, b} {
			if code := send(s, "/").Code; code != http.StatusOK {
				t.Fatalf("request %d: %d, want 200: the 403s gave their units back", i, code)
			}
		}
		w := send(b, "/")
		if code := send(other, "/").Code; code != http.StatusOK {
			t.Errorf("another owner: %d, want 200: it has its own quota", code)
		}
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("the owner's sixth request: %d, want 429", w.Code)
		}
		if got, want := w.Header().Get("RateLimit-Policy"), `"owner-quota";q=5;w=2678400`; got != want {
			t.Errorf("RateLimit-Policy %q, want %q", got, want)
		}
		// Redis counts months by its own clock: the reset is whatever is
		// left of its month.
		if got := w.Header().Get("RateLimit"); !regexp.MustCompile(`^"owner-quota";r=0;t=[1-9][0-9]*$`).MatchString(got) {
			t.Errorf("RateLimit %q", got)
		}
		if w.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}

		w = send(a, "/")
		if w.Code != http.StatusTooManyRequests || last.Reason != apikey.ReasonOwnerQuota {
			t.Fatalf("key a: %d %q, want 429 owner_quota", w.Code, last.Reason)
		}
		if got, want := w.Header().Get("RateLimit-Policy"), `"quota";q=3;w=2678400, "owner-quota";q=5;w=2678400`; got != want {
			t.Errorf("RateLimit-Policy %q, want %q", got, want)
		}
		d, err := counter.Add(ctx, "quota:"+ka.ID, keyQuota, 0)
		if err != nil || d.Remaining != 1 {
			t.Errorf("key a's quota: %+v, %v; want 1 left: the owner's refusal gave the key's unit back", d, err)
		}
		d, err = counter.Add(ctx, "owner-quota:"+owner, ownerQuota, 0)
		if err != nil || d.Remaining != 0 {
			t.Errorf("the owner's quota: %+v, %v; want 0 left", d, err)
		}
	})
}

// TestQuotaThresholdsThroughMiddleware: 16 goroutines spend two keys'
// quotas and their owner's, counted on Redis (single and Cluster), until
// all refuse; each threshold of each quota is reported exactly once.
func TestQuotaThresholdsThroughMiddleware(t *testing.T) {
	eachRedis(t, func(t *testing.T, r testRedis) {
		ctx := context.Background()
		counter := newTestCounter(t, r.client(t), testPrefix())
		m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"),
			apikey.WithPepper("v1", []byte("threshold-test-pepper-0123456789ab")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		var mu sync.Mutex
		crossings := map[string]int{}
		auth := m.Middleware(
			apikey.WithLimits(apikey.Limits{Counter: counter,
				PerOwnerQuota: apikey.Quota{Limit: 40, Period: apikey.MonthPeriod}}),
			apikey.WithQuotaThresholds(1, 0.5, 0.8),
			apikey.WithOnEvent(func(e apikey.Event) {
				if e.Outcome != apikey.OutcomeQuotaThreshold {
					return
				}
				who := e.KeyID
				if e.Policy == "owner-quota" {
					who = e.Owner
				}
				mu.Lock()
				crossings[fmt.Sprintf("%s %s %g", e.Policy, who, e.Threshold)]++
				mu.Unlock()
			}))
		h := auth(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		owner := "team-" + testPrefix()
		// The keys' quotas add up to the owner's, so that which goroutine
		// wins a race changes no quota's total.
		issue := func(limit int64) (apikey.Secret, *apikey.Key) {
			s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: owner, Quota: apikey.Quota{Limit: limit, Period: apikey.MonthPeriod}})
			if err != nil {
				t.Fatal(err)
			}
			return s, k
		}
		a, ka := issue(10)
		b, kb := issue(30)
		send := func(s apikey.Secret) int {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer "+s.Reveal())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		var ok atomic.Int64
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				s := a
				if g%2 == 1 {
					s = b
				}
				for send(s) == http.StatusOK {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if n := ok.Load(); n != 40 {
			t.Errorf("%d requests let through, want 40: the owner's quota caps both keys", n)
		}
		want := map[string]int{}
		for _, who := range []string{"quota " + ka.ID, "quota " + kb.ID, "owner-quota " + owner} {
			for _, f := range []string{"0.5", "0.8", "1"} {
				want[who+" "+f] = 1
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !maps.Equal(crossings, want) {
			t.Errorf("crossings %v, want each once: %v", crossings, want)
		}
	})
}
