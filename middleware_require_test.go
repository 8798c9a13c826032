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

// TestRequireRefusalCostsNoQuota sends requests that RequireScopes refuses
// with 403: they are charged up front, as every request is, so that a key
// over its quota never reaches a handler, and the refusal gives the units
// back. A metered key keeps its whole quota for the requests it may make.
func TestRequireRefusalCostsNoQuota(t *testing.T) {
	f := newMWFixture(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	ctr := must(memlimit.NewCounter(memlimit.WithClock(f.clock.Now)))
	defer ctr.Close()
	for _, tc := range []struct {
		name string
		opts []apikey.MiddlewareOption
	}{
		{"the Manager's own counter", nil},
		{"memlimit", []apikey.MiddlewareOption{apikey.WithLimits(apikey.Limits{Counter: ctr})}},
		{"with a cost", []apikey.MiddlewareOption{apikey.WithLimits(apikey.Limits{Counter: ctr,
			Cost: func(*http.Request) int64 { return 2 }})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, _ := issueKey(t, f, apikey.IssueRequest{Scopes: []string{"orders:read"},
				Quota: apikey.Quota{Limit: 4, Period: time.Hour}})
			auth := f.m.Middleware(append([]apikey.MiddlewareOption{apikey.WithOnEvent(f.events.add)}, tc.opts...)...)
			mux := http.NewServeMux()
			mux.Handle("/admin", apikey.RequireScopes("admin")(ok))
			mux.Handle("/any", apikey.RequireAnyScope("admin", "root")(ok))
			mux.Handle("/query", apikey.Require(apikey.MustParseQuery("orders:read and admin"))(ok))
			mux.Handle("/orders", apikey.RequireScopes("orders:read")(ok))
			h := auth(mux)
			for range 3 {
				for _, path := range []string{"/admin", "/any", "/query"} {
					r := newRequest(withKey(key))
					r.URL.Path = path
					assert.Equal(t, 403, serve(h, r).Code)
				}
			}
			// The quota is whole: 4 units, whatever a request costs.
			allowed := 0
			for range 5 {
				r := newRequest(withKey(key))
				r.URL.Path = "/orders"
				if w := serve(h, r); w.Code == 200 {
					allowed++
				} else {
					assertRejected(t, w, 429, "")
				}
			}
			cost := 1
			if tc.name == "with a cost" {
				cost = 2
			}
			assert.Equal(t, 4/cost, allowed)
			// Over the quota, the 429 comes before any scope check.
			r := newRequest(withKey(key))
			r.URL.Path = "/admin"
			assertRejected(t, serve(h, r), 429, "")
			assert.Equal(t, apikey.ReasonQuota, f.events.last(t).Reason)
			f.clock.Advance(time.Hour)
		})
	}
}

// refundlessCounter is a Counter that is not a Refunder.
type refundlessCounter struct{ c *memlimit.Counter }

func (c refundlessCounter) Add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	return c.c.Add(ctx, key, q, n)
}

// failingRefunder refunds with an error.
type failingRefunder struct{ refundlessCounter }

func (failingRefunder) Refund(context.Context, string, apikey.Quota, int64) error { return errBackend }

// TestRequireRefusalWithoutRefunder: with a Counter that cannot refund, a
// refused request keeps its cost; a refund that fails is reported in the
// Event and changes nothing else about the 403.
func TestRequireRefusalWithoutRefunder(t *testing.T) {
	f := newMWFixture(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mem := must(memlimit.NewCounter(memlimit.WithClock(f.clock.Now)))
	defer mem.Close()
	key, k := issueKey(t, f, apikey.IssueRequest{Quota: apikey.Quota{Limit: 10, Period: time.Hour}})
	for _, tc := range []struct {
		name    string
		counter apikey.Counter
		err     error
	}{
		{"not a Refunder", refundlessCounter{mem}, nil},
		{"refund fails", failingRefunder{refundlessCounter{mem}}, errBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := f.m.Middleware(apikey.WithOnEvent(f.events.add), apikey.WithLimits(apikey.Limits{Counter: tc.counter}))(
				apikey.RequireScopes("admin")(ok))
			before := must(mem.Add(context.Background(), "quota:"+k.ID, k.Quota, 0)).Remaining
			assert.Equal(t, 403, serve(h, newRequest(withKey(key))).Code)
			after := must(mem.Add(context.Background(), "quota:"+k.ID, k.Quota, 0)).Remaining
			assert.Equal(t, before-1, after, "the unit stays spent")
			ev := f.events.last(t)
			assert.Equal(t, apikey.OutcomeForbidden, ev.Outcome)
			if tc.err == nil {
				assert.NoError(t, ev.Err)
			} else {
				assert.ErrorIs(t, ev.Err, tc.err)
			}
		})
	}
}

// TestMiddlewareOneEventPerRequest checks that every request is reported
// exactly once, so that a metric counting events counts requests: a 403
// from RequireScopes is one forbidden Event, not authenticated then
// forbidden; a request let through is reported once its handler returns,
// with the middleware's own time as Duration.
func TestMiddlewareOneEventPerRequest(t *testing.T) {
	f := newMWFixture(t)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte("ok"))
	})
	auth := f.m.Middleware(apikey.WithOnEvent(f.events.add))
	mux := http.NewServeMux()
	mux.Handle("/orders", apikey.RequireScopes("orders:read")(apikey.Require(apikey.MustParseQuery("billing:x"))(slow)))
	mux.Handle("/admin", apikey.RequireScopes("orders:read")(apikey.RequireScopes("admin")(slow)))
	mux.Handle("/plain", slow)
	h := auth(mux)
	for _, tc := range []struct {
		path    string
		key     string
		status  int
		outcome apikey.Outcome
		reason  apikey.Reason
	}{
		{"/orders", f.valid, 200, apikey.OutcomeAuthenticated, ""},
		{"/admin", f.valid, 403, apikey.OutcomeForbidden, apikey.ReasonInsufficientScope},
		{"/plain", f.valid, 200, apikey.OutcomeAuthenticated, ""},
		{"/orders", f.revoked, 401, apikey.OutcomeInvalidKey, apikey.ReasonRevoked},
		{"/orders", "", 401, apikey.OutcomeNoCredential, apikey.ReasonNoCredential},
	} {
		t.Run(tc.path+" "+string(tc.outcome), func(t *testing.T) {
			before := len(f.events.all())
			r := newRequest(nil)
			if tc.key != "" {
				withKey(tc.key)(r)
			}
			r.URL.Path = tc.path
			w := serve(h, r)
			assert.Equal(t, tc.status, w.Code)
			events := f.events.all()[before:]
			require.Len(t, events, 1)
			ev := events[0]
			assert.Equal(t, tc.outcome, ev.Outcome)
			assert.Equal(t, tc.reason, ev.Reason)
			assert.Equal(t, tc.path, ev.Path)
			if tc.status != 200 {
				assert.Equal(t, tc.status, ev.Status)
			} else {
				assert.Zero(t, ev.Status)
			}
			assert.Positive(t, ev.Duration)
			assert.Less(t, ev.Duration, 50*time.Millisecond, "Duration is the middleware's time, not the handler's")
		})
	}
	// A handler that panics still has its request reported.
	var events eventLog
	panicky := f.m.Middleware(apikey.WithOnEvent(events.add))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { serve(panicky, newRequest(withKey(f.valid))) })
	require.Len(t, events.all(), 1)
	assert.Equal(t, apikey.OutcomeAuthenticated, events.last(t).Outcome)
}
