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

// TestMiddlewareNested applies the middleware twice in one chain, as chi's
// r.Use(auth) plus a group's g.Use(auth) do: the request is verified,
// rate-limited, charged and reported once, by the outermost Middleware of
// the Manager, whether the inner one is the same Middleware or another of
// the same Manager.
func TestMiddlewareNested(t *testing.T) {
	f := newMWFixture(t, apikey.WithCache(0, 0)) // every verification reads the store
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, found := apikey.FromContext(r.Context())
		require.True(t, found)
		w.Write([]byte("hello " + k.Owner))
	})
	limited, k := issueKey(t, f, apikey.IssueRequest{
		Scopes:    []string{"orders:read"},
		RateLimit: apikey.Limit{Rate: 1, Period: time.Hour},
		Quota:     apikey.Quota{Limit: 1, Period: time.Hour},
	})
	for _, tc := range []struct {
		name  string
		build func(limits apikey.MiddlewareOption) http.Handler
	}{
		{"same Middleware twice", func(limits apikey.MiddlewareOption) http.Handler {
			auth := f.m.Middleware(apikey.WithOnEvent(f.events.add), limits)
			return auth(auth(ok))
		}},
		{"a router and a group", func(limits apikey.MiddlewareOption) http.Handler {
			auth := f.m.Middleware(apikey.WithOnEvent(f.events.add), limits)
			group := http.NewServeMux()
			group.Handle("/orders", apikey.RequireScopes("orders:read")(ok))
			root := http.NewServeMux()
			root.Handle("/", auth(group))
			return auth(root)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := newRecordingLimiter(f.clock.Now)
			ctr := must(memlimit.NewCounter(memlimit.WithClock(f.clock.Now)))
			defer ctr.Close()
			h := tc.build(apikey.WithLimits(apikey.Limits{Limiter: lim, Counter: ctr}))
			before := len(f.events.all())
			gets := f.store.gets.Load()

			w := serve(h, newRequest(withKey(limited)))
			require.Equal(t, 200, w.Code, "a key allowed one request an hour is charged twice")
			assert.Equal(t, `"key";q=1;w=3600, "quota";q=1;w=3600`, w.Header().Get("RateLimit-Policy"))
			assert.Equal(t, int64(1), f.store.gets.Load()-gets, "verified once")
			assert.Equal(t, 1, lim.callCount(k.ID), "rate-limited once")
			d := must(ctr.Add(context.Background(), "quota:"+k.ID, k.Quota, 0))
			assert.Equal(t, int64(0), d.Remaining, "charged once")
			events := f.events.all()[before:]
			require.Len(t, events, 1, "reported once")
			assert.Equal(t, apikey.OutcomeAuthenticated, events[0].Outcome)

			// Refusals happen once too.
			assertRejected(t, serve(h, newRequest(withKey(limited))), 429, "")
			assert.Len(t, f.events.all()[before:], 2)
			assertRejected(t, serve(h, newRequest(withKey(flipChecksum(f.valid)))), 401, chInvalid)
			assert.Len(t, f.events.all()[before:], 3)
			f.clock.Advance(time.Hour)
		})
	}
}

// TestMiddlewareNestedManagers nests Middlewares of two Managers: they are
// independent, so each verifies the request with its own store, limits and
// TestMiddlewareNestedStricter: a second Middleware of the same Manager
// with options of its own applies them; it is not passed over because an
// outer one already let the request in.
func TestMiddlewareNestedStricter(t *testing.T) {
	f := newMWFixture(t)
	outer := f.m.Middleware(apikey.WithOnEvent(f.events.add))
	strict := f.m.Middleware(apikey.WithOnEvent(f.events.add), apikey.WithAllowedPrefixes("acme_live"))
	h := outer(strict(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	assertRejected(t, serve(h, newRequest(withKey(f.valid))), 401, chInvalid) // an acme_test key
	assert.Equal(t, apikey.ReasonWrongPrefix, f.events.last(t).Reason)
	assert.Equal(t, 200, serve(h, newRequest(withKey(f.live))).Code)
}

// reports it. A key the inner Manager does not know is refused there.
func TestMiddlewareNestedManagers(t *testing.T) {
	f := newMWFixture(t)
	other := newMWFixture(t)
	var outerEvents, innerEvents eventLog
	var seen *apikey.Key
	h := f.m.Middleware(apikey.WithOnEvent(outerEvents.add))(
		other.m.Middleware(apikey.WithOnEvent(innerEvents.add))(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = apikey.FromContext(r.Context()) })))

	assertRejected(t, serve(h, newRequest(withKey(f.valid))), 401, chInvalid)
	assert.Equal(t, apikey.OutcomeAuthenticated, outerEvents.last(t).Outcome, "the outer Manager let it through")
	assert.Equal(t, apikey.OutcomeInvalidKey, innerEvents.last(t).Outcome, "the inner one does not know the key")

	// A store both Managers share: both verify; the handler sees the
	// inner Manager's key.
	s, k, err := other.m.Issue(context.Background(), apikey.IssueRequest{Owner: "shared"})
	require.NoError(t, err)
	require.NoError(t, f.store.Create(context.Background(), k))
	assert.Equal(t, 200, serve(h, newRequest(withKey(s.Reveal()))).Code)
	assert.Equal(t, k.ID, outerEvents.last(t).KeyID)
	assert.Equal(t, k.ID, innerEvents.last(t).KeyID)
	require.NotNil(t, seen)
	assert.Equal(t, "shared", seen.Owner)
}
