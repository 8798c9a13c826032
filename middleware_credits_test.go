package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

// failingLedger is a real Ledger that fails every call while err is set,
// for the middleware's answers to a Ledger that is down.
type failingLedger struct {
	apikey.Ledger
	mu  sync.Mutex
	err error
}

func (l *failingLedger) fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *failingLedger) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *failingLedger) Spend(ctx context.Context, key string, c apikey.Credits, n int64) (apikey.Decision, error) {
	if err := l.failure(); err != nil {
		return apikey.Decision{}, fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	return l.Ledger.Spend(ctx, key, c, n)
}

func (l *failingLedger) Refund(ctx context.Context, key string, c apikey.Credits, n int64) error {
	if err := l.failure(); err != nil {
		return fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	return l.Ledger.Refund(ctx, key, c, n)
}

// balance reads key's balance under c (a Spend of 0).
func balance(t *testing.T, l apikey.Ledger, key string, c apikey.Credits) int64 {
	t.Helper()
	d, err := l.Spend(context.Background(), key, c, 0)
	require.NoError(t, err)
	return d.Remaining
}

// TestCreditsWhatRequestsCost pins what each outcome costs a key's
// credits and its owner's, as TestWhatRequestsCost does for quotas: every
// refusal costs nothing, a request let through costs its final cost.
func TestCreditsWhatRequestsCost(t *testing.T) {
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
	setsNegative := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := apikey.SetCost(r.Context(), -1); !errors.Is(err, apikey.ErrInvalidRequest) {
			panic(fmt.Sprintf("SetCost(-1): %v", err))
		}
	})
	sets200 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := apikey.SetCost(r.Context(), 200)
		if !errors.Is(err, apikey.ErrCreditsExhausted) || !errors.Is(err, apikey.ErrQuotaExceeded) {
			panic(fmt.Sprintf("SetCost(200): %v", err))
		}
	})
	credits := apikey.Credits{Grant: 100, Period: 24 * time.Hour}
	owner := apikey.Credits{Grant: 1000, Period: apikey.MonthPeriod}
	route := func(mw ...func(http.Handler) http.Handler) func(func(http.Handler) http.Handler, http.Handler) http.Handler {
		return func(auth func(http.Handler) http.Handler, h http.Handler) http.Handler {
			for i := len(mw) - 1; i >= 0; i-- {
				h = mw[i](h)
			}
			return auth(h)
		}
	}
	for _, tt := range []struct {
		name    string
		route   func(auth func(http.Handler) http.Handler, h http.Handler) http.Handler
		handler http.Handler
		req     apikey.IssueRequest
		key     string // "" for the key issued, "bad" for a wrong one, "limited" to spend its limit first
		status  int
		units   int64 // charged to the key's and the owner's credits
	}{
		{"200", route(), ok, apikey.IssueRequest{}, "", 200, 1},
		{"401", route(), ok, apikey.IssueRequest{}, "bad", 401, 0},
		{"429 rate limit", route(), ok, apikey.IssueRequest{RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}}, "limited", 429, 0},
		{"429 quota", route(), ok, apikey.IssueRequest{Quota: apikey.Quota{Limit: 1, Period: time.Hour}}, "limited", 429, 0},
		{"429 credits", route(), ok, apikey.IssueRequest{Credits: apikey.Credits{Grant: 1, Period: time.Hour}}, "limited", 429, 0},
		{"403 RequireScopes", route(apikey.RequireScopes("admin")), ok, apikey.IssueRequest{}, "", 403, 0},
		{"403 RequireAnyScope", route(apikey.RequireAnyScope("admin", "root")), ok, apikey.IssueRequest{}, "", 403, 0},
		{"403 Require", route(apikey.Require(apikey.MustParseQuery("admin and root"))), ok, apikey.IssueRequest{}, "", 403, 0},
		{"403 RequireScopes behind Cost", route(apikey.Cost(5), apikey.RequireScopes("admin")), ok, apikey.IssueRequest{}, "", 403, 0},
		{"handler refuses", route(), refuses, apikey.IssueRequest{}, "", 409, 1},
		{"handler refuses, free", route(), refusesFree, apikey.IssueRequest{}, "", 409, 0},
		{"handler sets 7", route(), sets7, apikey.IssueRequest{}, "", 200, 7},
		{"handler sets -1", route(), setsNegative, apikey.IssueRequest{}, "", 200, 1},
		{"handler sets more than the balance", route(), sets200, apikey.IssueRequest{}, "", 200, 1},
		{"Cost(5)", route(apikey.Cost(5)), ok, apikey.IssueRequest{}, "", 200, 5},
		{"Cost(5) then handler sets 7", route(apikey.Cost(5)), sets7, apikey.IssueRequest{}, "", 200, 7},
		{"Cost(0)", route(apikey.Cost(0)), ok, apikey.IssueRequest{}, "", 200, 0},
		{"Cost(101) over the balance", route(apikey.Cost(101)), ok, apikey.IssueRequest{}, "", 429, 0},
		{"applied twice", nil, apikey.Cost(3)(ok), apikey.IssueRequest{}, "", 200, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _, clock := usageManager(t, utc(2026, 3, 1, 12))
			ledger := must(memlimit.NewLedger(memlimit.WithClock(clock.Now)))
			t.Cleanup(func() { ledger.Close() })
			auth := m.Middleware(apikey.WithLimits(apikey.Limits{Ledger: ledger, PerOwnerCredits: owner}))
			var h http.Handler
			if tt.route == nil {
				h = auth(auth(tt.handler))
			} else {
				h = tt.route(auth, tt.handler)
			}
			if tt.req.Credits.IsZero() {
				tt.req.Credits = credits
			}
			tt.req.Owner = "team-" + randomSuffix()
			tok, k := issue(t, m, tt.req)
			switch tt.key {
			case "bad":
				tok = forge("acme_test", k.ID, "x")
			case "limited":
				require.Equal(t, 200, call(h, tok), "the first request fits")
			}
			key := balance(t, ledger, apikey.CreditsKey(k), tt.req.Credits)
			own := balance(t, ledger, apikey.OwnerCreditsKey(k.Owner), owner)
			assert.Equal(t, tt.status, call(h, tok))
			assert.Equal(t, tt.units, key-balance(t, ledger, apikey.CreditsKey(k), tt.req.Credits), "units charged to the key's credits")
			assert.Equal(t, tt.units, own-balance(t, ledger, apikey.OwnerCreditsKey(k.Owner), owner), "units charged to the owner's credits")
		})
	}
}

// TestCreditsRefusal: the 429 of an empty balance, with the draft's
// problem type, the RateLimit fields, and a Retry-After only when a
// refill will hold the cost.
func TestCreditsRefusal(t *testing.T) {
	for _, tt := range []struct {
		name       string
		credits    apikey.Credits
		cost       int64
		policy     string // RateLimit-Policy after the refusal
		rate       string // RateLimit after the refusal
		retryAfter string // "" for none
	}{
		{"daily", apikey.Credits{Grant: 3, Period: 24 * time.Hour}, 1,
			`"credits";q=3;w=86400`, `"credits";r=0;t=43200`, "43200"},
		{"cost above the grant", apikey.Credits{Grant: 3, Period: 24 * time.Hour}, 4,
			`"credits";q=3;w=86400`, `"credits";r=3;t=43200`, ""},
		{"monthly on the 15th", apikey.Credits{Grant: 3, Period: apikey.MonthPeriod, Day: 15}, 1,
			`"credits";q=3;w=2678400`, `"credits";r=0;t=1166400`, "1166400"}, // 13.5 days,
		{"never refilled", apikey.Credits{Grant: 3, Period: apikey.NoRefill}, 1,
			`"credits";q=3`, `"credits";r=0`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
			var events eventLog
			h := m.Middleware(apikey.WithOnEvent(events.add), apikey.WithLimits(apikey.Limits{
				Cost: func(*http.Request) int64 { return tt.cost }}))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			tok, k := issue(t, m, apikey.IssueRequest{Credits: tt.credits})
			for tt.cost <= tt.credits.Grant {
				w := serve(h, newRequest(withKey(tok)))
				if w.Code != 200 {
					break
				}
			}
			w := serve(h, newRequest(withKey(tok)))
			p := assertRejected(t, w, 429, "")
			assert.Equal(t, apikey.ProblemQuotaExceeded, p.Type)
			assert.Equal(t, []string{"credits"}, p.ViolatedPolicies)
			assert.Equal(t, "credits exhausted", p.Detail)
			assert.Equal(t, tt.policy, w.Header().Get("RateLimit-Policy"))
			assert.Equal(t, tt.rate, w.Header().Get("RateLimit"))
			assert.Equal(t, tt.retryAfter, w.Header().Get("Retry-After"))
			e := events.last(t)
			assert.Equal(t, apikey.OutcomeLimited, e.Outcome)
			assert.Equal(t, apikey.ReasonCredits, e.Reason)
			assert.Equal(t, k.ID, e.KeyID)
		})
	}
}

// TestLimitRefusalsNameTheirPolicy: rate limits and quotas refuse with the
// same problem type, naming their policy; the failed-authentication limit,
// which advertises no policy, keeps about:blank.
func TestLimitRefusalsNameTheirPolicy(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	h := m.Middleware(apikey.WithLimits(apikey.Limits{
		PerOwner:   apikey.Limit{Rate: 2, Period: time.Hour},
		FailedAuth: apikey.Limit{Rate: 1, Period: time.Hour},
	}))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rate, _ := issue(t, m, apikey.IssueRequest{Owner: "a", RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}})
	quota, _ := issue(t, m, apikey.IssueRequest{Owner: "b", Quota: apikey.Quota{Limit: 1, Period: time.Hour}})
	owner, _ := issue(t, m, apikey.IssueRequest{Owner: "c"})
	for _, tt := range []struct {
		key, policy string
		first       int
	}{{rate, "key", 1}, {quota, "quota", 1}, {owner, "owner", 2}} {
		for range tt.first {
			require.Equal(t, 200, call(h, tt.key))
		}
		p := assertRejected(t, serve(h, newRequest(withKey(tt.key))), 429, "")
		assert.Equal(t, apikey.ProblemQuotaExceeded, p.Type, tt.policy)
		assert.Equal(t, []string{tt.policy}, p.ViolatedPolicies)
	}
	bad := newRequest(withKey("acme_test_nope"))
	serve(h, bad)
	serve(h, bad)
	p := assertRejected(t, serve(h, bad), 429, "")
	assert.Equal(t, "about:blank", p.Type)
}

// TestCreditsRefillOnScheduledDay: on the Manager's own ledger and clock,
// a balance refills at 00:00 UTC on the 15th, and a daily one at
// midnight, and not an hour before.
func TestCreditsRefillOnScheduledDay(t *testing.T) {
	for _, tt := range []struct {
		name   string
		c      apikey.Credits
		start  time.Time
		refill time.Time
	}{
		{"monthly@15", apikey.Credits{Grant: 2, Period: apikey.MonthPeriod, Day: 15}, utc(2026, 3, 20, 9), utc(2026, 4, 15, 0)},
		{"monthly@31 in April", apikey.Credits{Grant: 2, Period: apikey.MonthPeriod, Day: 31}, utc(2026, 4, 2, 0), utc(2026, 4, 30, 0)},
		{"daily", apikey.Credits{Grant: 2, Period: 24 * time.Hour}, utc(2026, 3, 20, 9), utc(2026, 3, 21, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _, clock := usageManager(t, tt.start)
			h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			tok, k := issue(t, m, apikey.IssueRequest{Credits: tt.c})
			assert.Equal(t, 200, call(h, tok))
			assert.Equal(t, 200, call(h, tok))
			assert.Equal(t, 429, call(h, tok))
			clock.Advance(tt.refill.Sub(tt.start) - time.Hour)
			w := serve(h, newRequest(withKey(tok)))
			assert.Equal(t, 429, w.Code, "an hour before the refill")
			assert.Equal(t, "3600", w.Header().Get("Retry-After"))
			clock.Advance(time.Hour)
			assert.Equal(t, 200, call(h, tok), "at the refill")
			assert.Equal(t, int64(1), balance(t, m.Ledger(), apikey.CreditsKey(k), tt.c))
		})
	}
}

// TestOwnerCreditsAcrossThreeKeys: three keys of one owner draw from one
// balance; its refusal gives back the key's own credits it was charged,
// and another owner has a balance of its own. A top-up lets them in
// again.
func TestOwnerCreditsAcrossThreeKeys(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	ownerCredits := apikey.Credits{Grant: 5, Period: apikey.MonthPeriod}
	var events eventLog
	h := m.Middleware(apikey.WithOnEvent(events.add), apikey.WithLimits(apikey.Limits{PerOwnerCredits: ownerCredits}))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	keyCredits := apikey.Credits{Grant: 10, Period: apikey.NoRefill}
	a, ka := issue(t, m, apikey.IssueRequest{Owner: "team-3", Credits: keyCredits})
	b, _ := issue(t, m, apikey.IssueRequest{Owner: "team-3"})
	c, _ := issue(t, m, apikey.IssueRequest{Owner: "team-3"})
	other, _ := issue(t, m, apikey.IssueRequest{Owner: "team-4"})
	for i, key := range []string{a, b, c, a, b} {
		require.Equal(t, 200, call(h, key), "request %d", i)
	}
	w := serve(h, newRequest(withKey(a)))
	p := assertRejected(t, w, 429, "")
	assert.Equal(t, []string{"owner-credits"}, p.ViolatedPolicies)
	assert.Equal(t, `"credits";q=10, "owner-credits";q=5;w=2678400`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"credits";r=7, "owner-credits";r=0;t=2635200`, w.Header().Get("RateLimit"))
	assert.Equal(t, apikey.ReasonOwnerCredits, events.last(t).Reason)
	assert.Equal(t, int64(8), balance(t, m.Ledger(), apikey.CreditsKey(ka), keyCredits), "the owner's refusal gave the key's unit back")
	assert.Equal(t, 429, call(h, c))
	assert.Equal(t, 200, call(h, other), "another owner has its own balance")

	n, err := m.Ledger().TopUp(context.Background(), apikey.OwnerCreditsKey("team-3"), ownerCredits, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	assert.Equal(t, 200, call(h, c))
	assert.Equal(t, 200, call(h, a))
	assert.Equal(t, 429, call(h, b))
	assert.Equal(t, int64(7), balance(t, m.Ledger(), apikey.CreditsKey(ka), keyCredits))
}

// TestCreditsLedgerFailure: a Ledger error is 503 and gives back the quota
// units charged before it; under FailOpen the request passes uncharged,
// with the error in its Event.
func TestCreditsLedgerFailure(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOpen=%v", failOpen), func(t *testing.T) {
			m, _, clock := usageManager(t, utc(2026, 3, 1, 12))
			ledger := &failingLedger{Ledger: must(memlimit.NewLedger(memlimit.WithClock(clock.Now)))}
			counter := must(memlimit.NewCounter(memlimit.WithClock(clock.Now)))
			t.Cleanup(func() { counter.Close() })
			var events eventLog
			var handled int
			h := m.Middleware(apikey.WithOnEvent(events.add), apikey.WithLimits(apikey.Limits{Ledger: ledger, Counter: counter, FailOpen: failOpen}))(
				http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handled++ }))
			q := apikey.Quota{Limit: 10, Period: time.Hour}
			cr := apikey.Credits{Grant: 10, Period: time.Hour}
			tok, k := issue(t, m, apikey.IssueRequest{Quota: q, Credits: cr})
			require.Equal(t, 200, call(h, tok))
			ledger.fail(errBackend)
			w := serve(h, newRequest(withKey(tok)))
			e := events.last(t)
			ledger.fail(nil)
			used, err := counter.Add(context.Background(), "quota:"+k.ID, q, 0)
			require.NoError(t, err)
			if failOpen {
				assert.Equal(t, 200, w.Code)
				assert.Equal(t, 2, handled)
				assert.ErrorIs(t, e.Err, errBackend)
				assert.Equal(t, `"quota";q=10;w=3600`, w.Header().Get("RateLimit-Policy"), "no item for the failed balance")
				assert.Equal(t, int64(8), used.Remaining, "the quota counts the request")
			} else {
				assertRejected(t, w, 503, "")
				assert.Equal(t, 1, handled)
				assert.Equal(t, apikey.ReasonLimiter, e.Reason)
				assert.Equal(t, int64(9), used.Remaining, "the quota unit came back")
			}
			assert.Equal(t, int64(9), balance(t, ledger, apikey.CreditsKey(k), cr), "the failed Spend took nothing")
		})
	}
}

// TestCreditThresholdsOncePerPeriod: crossings of a key's balance and its
// owner's are reported once per refill period, and again after the
// refill; a refused request crosses nothing.
func TestCreditThresholdsOncePerPeriod(t *testing.T) {
	m, _, clock := usageManager(t, utc(2026, 3, 1, 12))
	var mu sync.Mutex
	crossings := map[string]int{}
	auth := m.Middleware(
		apikey.WithLimits(apikey.Limits{PerOwnerCredits: apikey.Credits{Grant: 12, Period: 24 * time.Hour}}),
		apikey.WithQuotaThresholds(0.5, 1),
		apikey.WithOnEvent(func(e apikey.Event) {
			if e.Outcome != apikey.OutcomeQuotaThreshold {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			crossings[fmt.Sprintf("%s %g", e.Policy, e.Threshold)]++
		}))
	h := auth(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tok, _ := issue(t, m, apikey.IssueRequest{Credits: apikey.Credits{Grant: 4, Period: 24 * time.Hour}})
	spend := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { call(h, tok) })
		}
		wg.Wait()
	}
	spend()
	want := map[string]int{"credits 0.5": 1, "credits 1": 1, "owner-credits 0.5": 0}
	mu.Lock()
	assert.Equal(t, want["credits 0.5"], crossings["credits 0.5"])
	assert.Equal(t, want["credits 1"], crossings["credits 1"])
	assert.Equal(t, 0, crossings["owner-credits 0.5"], "4 of 12 is a third")
	mu.Unlock()
	clock.Advance(24 * time.Hour)
	spend()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"credits 0.5": 2, "credits 1": 2}, crossings)
}

// TestBadCreditsWriteNothing: invalid credits are clear errors at Issue,
// at Update and in WithLimits, and nothing is written.
func TestBadCreditsWriteNothing(t *testing.T) {
	m, store, _ := usageManager(t, utc(2026, 3, 1, 12))
	ctx := context.Background()
	_, k := issue(t, m, apikey.IssueRequest{Credits: apikey.Credits{Grant: 5, Period: time.Hour}})
	before := store.Len()
	for _, tt := range []struct {
		c    apikey.Credits
		want string
	}{
		{apikey.Credits{Grant: -5, Period: time.Hour}, "credits grant -5"},
		{apikey.Credits{Grant: 5, Period: apikey.MonthPeriod, Day: 32}, "day 32 of the month"},
		{apikey.Credits{Grant: 5, Period: time.Hour, Day: 3}, "only for monthly refills"},
		{apikey.Credits{Grant: apikey.MaxCredits + 1, Period: apikey.NoRefill}, "want 0 to 9007199254740992"},
		{apikey.Credits{Grant: 5, Period: -9}, "want a positive refill period"},
	} {
		_, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-bad", Credits: tt.c})
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest, "Issue %+v", tt.c)
		assert.ErrorContains(t, err, tt.want)
		_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{Credits: &tt.c})
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest, "Update %+v", tt.c)
		assert.ErrorContains(t, err, tt.want)
		assert.PanicsWithValue(t, "apikey: Middleware: WithLimits: Limits.PerOwnerCredits: "+
			tt.c.Validate().Error(), func() {
			m.Middleware(apikey.WithLimits(apikey.Limits{PerOwnerCredits: tt.c}))
		})
	}
	assert.Equal(t, before, store.Len(), "no key was written")
	got, err := m.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, apikey.Credits{Grant: 5, Period: time.Hour}, got.Credits, "the key's credits are unchanged")
}

// TestCostRefusedByCredits: Cost's 429 for a balance names the policy,
// sends Retry-After only when a refill will hold the cost, and gives back
// the unit the middleware charged.
func TestCostRefusedByCredits(t *testing.T) {
	m, _, _ := usageManager(t, utc(2026, 3, 1, 12))
	var events eventLog
	auth := m.Middleware(apikey.WithOnEvent(events.add))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/bulk", apikey.Cost(8)(ok))
	mux.Handle("/huge", apikey.Cost(50)(ok))
	h := auth(mux)
	c := apikey.Credits{Grant: 10, Period: 24 * time.Hour}
	tok, k := issue(t, m, apikey.IssueRequest{Credits: c})
	at := func(path string) func(*http.Request) {
		return func(r *http.Request) { withKey(tok)(r); r.URL.Path = path }
	}
	require.Equal(t, 200, serve(h, newRequest(at("/bulk"))).Code)
	// 2 left: the middleware charges 1, Cost 7 more (a refill will hold
	// them) or 49 (none will).
	for _, tt := range []struct{ path, retryAfter string }{{"/bulk", "43200"}, {"/huge", ""}} {
		w := serve(h, newRequest(at(tt.path)))
		p := assertRejected(t, w, 429, "")
		assert.Equal(t, []string{"credits"}, p.ViolatedPolicies, tt.path)
		assert.Equal(t, "credits exhausted", p.Detail)
		assert.Equal(t, tt.retryAfter, w.Header().Get("Retry-After"), tt.path)
		assert.Equal(t, apikey.ReasonCredits, events.last(t).Reason)
	}
	assert.Equal(t, int64(2), balance(t, m.Ledger(), apikey.CreditsKey(k), c), "the refused requests' unit came back")
}

// TestMiddlewareMonthDayQuota: the Manager's own counter honours
// Quota.Day: a month from the 15th lasts until 00:00 UTC on the 15th, and
// one from the 31st until the last day of a shorter month.
func TestMiddlewareMonthDayQuota(t *testing.T) {
	for _, tt := range []struct {
		day         int
		start, next time.Time
	}{
		{15, utc(2026, 3, 14, 23), utc(2026, 3, 15, 0)},
		{31, utc(2026, 4, 29, 23), utc(2026, 4, 30, 0)},
	} {
		m, _, clock := usageManager(t, tt.start)
		tok, _ := issue(t, m, apikey.IssueRequest{Quota: apikey.Quota{Limit: 1, Period: apikey.MonthPeriod, Day: tt.day}})
		h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		require.Equal(t, 200, call(h, tok))
		w := serve(h, newRequest(withKey(tok)))
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "3600", w.Header().Get("Retry-After"), "day %d", tt.day)
		clock.Advance(tt.next.Sub(tt.start))
		assert.Equal(t, 200, call(h, tok), "day %d: a new month at %v", tt.day, tt.next)
	}
}

// TestCreditsRefusalGivesQuotaBack: a request its balance refuses costs
// none of the key's quota or its owner's, charged before the balance.
func TestCreditsRefusalGivesQuotaBack(t *testing.T) {
	m, _, clock := usageManager(t, utc(2026, 3, 1, 12))
	counter := must(memlimit.NewCounter(memlimit.WithClock(clock.Now)))
	t.Cleanup(func() { counter.Close() })
	oq := apikey.Quota{Limit: 100, Period: time.Hour}
	h := m.Middleware(apikey.WithLimits(apikey.Limits{Counter: counter, PerOwnerQuota: oq}))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	q := apikey.Quota{Limit: 100, Period: time.Hour}
	tok, k := issue(t, m, apikey.IssueRequest{Quota: q, Credits: apikey.Credits{Grant: 1, Period: apikey.NoRefill}})
	require.Equal(t, 200, call(h, tok))
	for range 3 {
		require.Equal(t, 429, call(h, tok))
	}
	for key, quota := range map[string]apikey.Quota{"quota:" + k.ID: q, "owner-quota:" + k.Owner: oq} {
		d, err := counter.Add(context.Background(), key, quota, 0)
		require.NoError(t, err)
		assert.Equal(t, int64(99), d.Remaining, "%s: only the request let through counts", key)
	}
}
