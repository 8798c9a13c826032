package apikey_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Challenges as ARCHITECTURE.md's table and RFC 6750 spell them, with the
// default realm.
const (
	chNone      = `Bearer realm="api"`
	chTwo       = `Bearer realm="api", error="invalid_request", error_description="more than one API key in the request"`
	chMalformed = `Bearer realm="api", error="invalid_request", error_description="malformed Authorization header"`
	chInvalid   = `Bearer realm="api", error="invalid_token", error_description="invalid API key"`
	chRevoked   = `Bearer realm="api", error="invalid_token", error_description="API key revoked"`
	chExpired   = `Bearer realm="api", error="invalid_token", error_description="API key expired"`
)

// mwFixture is a Manager on a counting memstore with a fake clock, and
// keys in every state the middleware must tell apart.
type mwFixture struct {
	m      *apikey.Manager
	store  *countingStore
	clock  *testclock.Clock
	events *eventLog

	valid, live, revoked, expired, notYet, ipOnly string
	validKey                                      *apikey.Key
	secrets                                       []string // secret parts of every key issued
}

func newMWFixture(t testing.TB, opts ...apikey.Option) *mwFixture {
	t.Helper()
	f := &mwFixture{store: &countingStore{Store: memstore.New(), failErr: errBackend}, clock: newFakeClock(), events: &eventLog{}}
	m, err := apikey.NewManager(f.store, append([]apikey.Option{
		apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", testPepper),
		apikey.WithClock(f.clock.Now),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	f.m = m
	ctx := context.Background()
	issue := func(req apikey.IssueRequest) (string, *apikey.Key) {
		if req.Owner == "" {
			req.Owner = "team-42"
		}
		s, k, err := m.Issue(ctx, req)
		require.NoError(t, err)
		_, _, secret := parts(t, s.Reveal())
		f.secrets = append(f.secrets, secret)
		return s.Reveal(), k
	}
	f.valid, f.validKey = issue(apikey.IssueRequest{Scopes: []string{"orders:read", "billing:*"}})
	f.live, _ = issue(apikey.IssueRequest{Prefix: "acme_live"})
	var k *apikey.Key
	f.revoked, k = issue(apikey.IssueRequest{})
	require.NoError(t, m.Revoke(ctx, k.ID))
	f.expired, _ = issue(apikey.IssueRequest{ExpiresAt: f.clock.Now().Add(time.Hour)})
	f.notYet, _ = issue(apikey.IssueRequest{NotBefore: f.clock.Now().Add(48 * time.Hour)})
	f.ipOnly, _ = issue(apikey.IssueRequest{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	f.clock.Advance(2 * time.Hour) // f.expired is now past its expiry
	return f
}

// handler wraps a recording next handler in the middleware.
func (f *mwFixture) handler(opts ...apikey.MiddlewareOption) (http.Handler, *atomic.Int64) {
	var calls atomic.Int64
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		k, ok := apikey.FromContext(r.Context())
		if !ok {
			http.Error(w, "no key in context", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("hello " + k.Owner))
	})
	opts = append([]apikey.MiddlewareOption{apikey.WithOnEvent(f.events.add)}, opts...)
	return f.m.Middleware(opts...)(next), &calls
}

// eventLog collects events, safe for concurrent use.
type eventLog struct {
	mu     sync.Mutex
	events []apikey.Event
}

func (l *eventLog) add(e apikey.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) last(t testing.TB) apikey.Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NotEmpty(t, l.events)
	return l.events[len(l.events)-1]
}

func (l *eventLog) all() []apikey.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]apikey.Event(nil), l.events...)
}

func newRequest(setup func(r *http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.RemoteAddr = "198.51.100.7:40000"
	if setup != nil {
		setup(r)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// ViolatedPolicies is the Quota Exceeded problem type's member.
	ViolatedPolicies []string `json:"violated-policies"`
}

// assertRejected checks what every refusal carries: the status, the exact
// challenge (or none), no-store, and an RFC 9457 body that agrees.
func assertRejected(t *testing.T, w *httptest.ResponseRecorder, status int, challenge string) problem {
	t.Helper()
	assert.Equal(t, status, w.Code)
	if challenge == "" {
		assert.Empty(t, w.Header().Values("WWW-Authenticate"))
	} else {
		assert.Equal(t, []string{challenge}, w.Header().Values("WWW-Authenticate"))
	}
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	var p problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p), w.Body.String())
	if p.Type == apikey.ProblemQuotaExceeded {
		// A 429 for a policy of RateLimit-Policy names it.
		assert.Equal(t, http.StatusTooManyRequests, status)
		assert.Len(t, p.ViolatedPolicies, 1)
	} else {
		assert.Equal(t, "about:blank", p.Type)
		assert.Empty(t, p.ViolatedPolicies)
	}
	assert.Equal(t, http.StatusText(status), p.Title)
	assert.Equal(t, status, p.Status)
	assert.NotEmpty(t, p.Detail)
	return p
}

// assertNoSecret checks that no secret part of any fixture key appears in
// the response or in any event.
func (f *mwFixture) assertNoSecret(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	var all strings.Builder
	for name, vs := range w.Header() {
		all.WriteString(name + ": " + strings.Join(vs, ",") + "\n")
	}
	all.Write(w.Body.Bytes())
	for _, e := range f.events.all() {
		all.WriteString(e.KeyID + e.Owner + string(e.Reason) + e.Path + string(e.Outcome))
		if e.Err != nil {
			all.WriteString(e.Err.Error())
		}
	}
	for _, s := range f.secrets {
		assert.NotContains(t, all.String(), s)
	}
}

func flipChecksum(token string) string {
	b := []byte(token)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

func TestMiddlewareCredentials(t *testing.T) {
	f := newMWFixture(t)
	h, calls := f.handler()
	_, validID, _ := parts(t, f.valid)
	long := strings.Repeat("a", 10<<10)
	unknown := forge("acme_test", "AAAAAAAAAAAA", strings.Repeat("x", 43))
	wrongSecret := forge("acme_test", validID, strings.Repeat("y", 43))

	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	apiKey := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-API-Key", v) }
	}
	tests := []struct {
		name      string
		setup     func(*http.Request)
		status    int
		challenge string
		reason    apikey.Reason
		noStore   bool // the store must not be asked
	}{
		{"no credential", nil, 401, chNone, "no_credential", true},
		{"empty Authorization", bearer(""), 401, chNone, "no_credential", true},
		{"empty X-API-Key", apiKey(""), 401, chNone, "no_credential", true},
		{"Bearer without token", bearer("Bearer"), 400, chMalformed, "malformed_authorization", true},
		{"Bearer and a space", bearer("Bearer "), 400, chMalformed, "malformed_authorization", true},
		{"two spaces", bearer("Bearer  " + f.valid), 400, chMalformed, "malformed_authorization", true},
		{"tab", bearer("Bearer\t" + f.valid), 400, chMalformed, "malformed_authorization", true},
		{"two tokens", bearer("Bearer " + f.valid + " " + f.valid), 400, chMalformed, "malformed_authorization", true},
		{"non-ASCII in Bearer", bearer("Bearer " + f.valid + "\xff"), 400, chMalformed, "malformed_authorization", true},
		{"non-ASCII in X-API-Key", apiKey(f.valid[:70] + "é"), 401, chInvalid, "malformed", true},
		{"10 KB Bearer token", bearer("Bearer " + long), 401, chInvalid, "too_long", true},
		{"10 KB X-API-Key", apiKey(long), 401, chInvalid, "too_long", true},
		{"both headers, same key", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+f.valid)
			r.Header.Set("X-API-Key", f.valid)
		}, 400, chTwo, "two_credentials", true},
		{"both headers, different keys", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+f.valid)
			r.Header.Set("X-API-Key", f.live)
		}, 400, chTwo, "two_credentials", true},
		{"two X-API-Key headers", func(r *http.Request) {
			r.Header.Add("X-API-Key", f.valid)
			r.Header.Add("X-API-Key", f.valid)
		}, 400, chTwo, "two_credentials", true},
		{"two Authorization headers", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+f.valid)
			r.Header.Add("Authorization", "Basic dXNlcjpwYXNz")
		}, 400, chTwo, "two_credentials", true},
		{"lowercase bearer", bearer("bearer " + f.valid), 200, "", "", false},
		{"uppercase BEARER", bearer("BEARER " + f.valid), 200, "", "", false},
		{"Bearer", bearer("Bearer " + f.valid), 200, "", "", false},
		{"X-API-Key", apiKey(f.valid), 200, "", "", false},
		{"Basic scheme", bearer("Basic dXNlcjpwYXNz"), 401, chNone, "no_credential", true},
		{"Basic scheme and X-API-Key", func(r *http.Request) {
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
			r.Header.Set("X-API-Key", f.valid)
		}, 200, "", "", false},
		{"flipped checksum", bearer("Bearer " + flipChecksum(f.valid)), 401, chInvalid, "checksum", true},
		{"malformed key", bearer("Bearer not-a-key"), 401, chInvalid, "malformed", true},
		{"unknown key", bearer("Bearer " + unknown), 401, chInvalid, "invalid", false},
		{"wrong secret", bearer("Bearer " + wrongSecret), 401, chInvalid, "invalid", false},
		{"revoked key", bearer("Bearer " + f.revoked), 401, chRevoked, "revoked", false},
		{"expired key", apiKey(f.expired), 401, chExpired, "expired", false},
		{"not yet valid key", apiKey(f.notYet), 401, chInvalid, "not_yet_valid", false},
		{"key in query, not enabled", func(r *http.Request) { r.URL.RawQuery = "api_key=" + f.valid }, 401, chNone, "no_credential", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gets, before := f.store.gets.Load(), calls.Load()
			w := serve(h, newRequest(tt.setup))
			if tt.status == 200 {
				assert.Equal(t, 200, w.Code, w.Body.String())
				assert.Equal(t, "hello team-42", w.Body.String())
				assert.Equal(t, before+1, calls.Load())
				assert.Empty(t, w.Header().Get("Cache-Control"))
				ev := f.events.last(t)
				assert.Equal(t, apikey.OutcomeAuthenticated, ev.Outcome)
				assert.Equal(t, f.validKey.ID, ev.KeyID)
				assert.Equal(t, "team-42", ev.Owner)
			} else {
				assertRejected(t, w, tt.status, tt.challenge)
				assert.Equal(t, before, calls.Load(), "next handler called")
				ev := f.events.last(t)
				assert.Equal(t, tt.reason, ev.Reason)
				assert.Equal(t, tt.status, ev.Status)
			}
			if tt.noStore {
				assert.Equal(t, gets, f.store.gets.Load(), "store called")
			}
			f.assertNoSecret(t, w)
		})
	}
}

func TestMiddlewareQueryParam(t *testing.T) {
	f := newMWFixture(t)
	h, _ := f.handler(apikey.WithQueryParam("api_key"))
	w := serve(h, newRequest(func(r *http.Request) { r.URL.RawQuery = "api_key=" + f.valid }))
	assert.Equal(t, 200, w.Code)
	w = serve(h, newRequest(func(r *http.Request) { r.URL.RawQuery = "api_key=" + f.valid + "&api_key=" + f.valid }))
	assertRejected(t, w, 400, chTwo)
	w = serve(h, newRequest(func(r *http.Request) {
		r.URL.RawQuery = "api_key=" + f.valid
		r.Header.Set("X-API-Key", f.valid)
	}))
	assertRejected(t, w, 400, chTwo)
	f.assertNoSecret(t, w)
}

func TestMiddlewareCustomHeaderAndRealm(t *testing.T) {
	f := newMWFixture(t)
	h, _ := f.handler(apikey.WithHeader("x-acme-key"), apikey.WithRealm("acme"))
	assert.Equal(t, 200, serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-Acme-Key", f.valid) })).Code)
	w := serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.valid) }))
	assertRejected(t, w, 401, `Bearer realm="acme"`)

	h, _ = f.handler(apikey.WithHeader(""))
	w = serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.valid) }))
	assertRejected(t, w, 401, chNone)
}

func TestMiddlewareAllowedPrefixes(t *testing.T) {
	f := newMWFixture(t)
	h, calls := f.handler(apikey.WithAllowedPrefixes("acme_live"))
	gets := f.store.gets.Load()
	w := serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.valid) }))
	assertRejected(t, w, 401, chInvalid)
	assert.Equal(t, gets, f.store.gets.Load(), "a disallowed environment must not reach the store")
	assert.Equal(t, apikey.ReasonWrongPrefix, f.events.last(t).Reason)
	assert.Equal(t, f.validKey.ID, f.events.last(t).KeyID)
	f.assertNoSecret(t, w)

	w = serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.live) }))
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, int64(1), calls.Load())
}

func TestMiddlewareStoreFailure(t *testing.T) {
	for _, failErr := range []error{errBackend, context.DeadlineExceeded} {
		t.Run(failErr.Error(), func(t *testing.T) {
			f := newMWFixture(t, apikey.WithCache(0, 0))
			f.store.failErr = failErr
			f.store.failing.Store(true)
			h, calls := f.handler()
			for _, key := range []string{f.valid, f.revoked, forge("acme_test", "AAAAAAAAAAAA", strings.Repeat("x", 43))} {
				w := serve(h, newRequest(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }))
				p := assertRejected(t, w, 503, "")
				assert.Equal(t, "5", w.Header().Get("Retry-After"))
				assert.Equal(t, "service temporarily unavailable", p.Detail)
				assert.Zero(t, calls.Load(), "next handler called on a store failure")
				assert.NotContains(t, w.Body.String(), "10.0.0.9", "backend details leaked")
				ev := f.events.last(t)
				assert.Equal(t, apikey.OutcomeUnavailable, ev.Outcome)
				assert.Equal(t, apikey.ReasonStore, ev.Reason)
				assert.ErrorIs(t, ev.Err, failErr)
				f.assertNoSecret(t, w)
			}
		})
	}
}

func TestMiddlewareClientGone(t *testing.T) {
	f := newMWFixture(t, apikey.WithCache(0, 0))
	f.store.delay = time.Minute
	h, calls := f.handler()
	ctx, cancel := context.WithCancel(context.Background())
	r := newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.valid) }).WithContext(ctx)
	time.AfterFunc(10*time.Millisecond, cancel)
	w := serve(h, r)
	assert.NotEqual(t, 200, w.Code)
	assert.Equal(t, 503, w.Code)
	assert.Zero(t, calls.Load())
	assert.Equal(t, apikey.ReasonCanceled, f.events.last(t).Reason)
}

func TestMiddlewareIPAllowlist(t *testing.T) {
	f := newMWFixture(t)
	plain, _ := f.handler()
	proxied, _ := f.handler(apikey.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	tests := []struct {
		name   string
		h      http.Handler
		remote string
		xff    []string
		status int
	}{
		{"allowed address", plain, "203.0.113.7:1234", nil, 200},
		{"other address", plain, "198.51.100.1:1234", nil, 403},
		{"spoofed X-Forwarded-For, no trusted proxy", plain, "198.51.100.1:1234", []string{"203.0.113.7"}, 403},
		{"X-Forwarded-For from an untrusted peer", proxied, "198.51.100.1:1234", []string{"203.0.113.7"}, 403},
		{"through a trusted proxy", proxied, "10.0.0.1:1234", []string{"203.0.113.7"}, 200},
		{"spoof left of the real client", proxied, "10.0.0.1:1234", []string{"203.0.113.7, 198.51.100.1"}, 403},
		{"malformed entry behind the proxy", proxied, "10.0.0.1:1234", []string{"203.0.113.7, garbage"}, 403},
		{"no RemoteAddr", plain, "", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(tt.h, newRequest(func(r *http.Request) {
				r.RemoteAddr = tt.remote
				r.Header["X-Forwarded-For"] = tt.xff
				r.Header.Set("X-API-Key", f.ipOnly)
			}))
			if tt.status == 200 {
				assert.Equal(t, 200, w.Code)
				return
			}
			p := assertRejected(t, w, 403, "")
			assert.Equal(t, "client address not allowed for this API key", p.Detail)
			ev := f.events.last(t)
			assert.Equal(t, apikey.ReasonIPNotAllowed, ev.Reason)
			assert.Equal(t, "team-42", ev.Owner)
			f.assertNoSecret(t, w)
		})
	}
}

func TestRequireScopes(t *testing.T) {
	f := newMWFixture(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	tests := []struct {
		name      string
		require   func(http.Handler) http.Handler
		status    int
		challenge string
	}{
		{"held", apikey.RequireScopes("orders:read"), 200, ""},
		{"held by wildcard", apikey.RequireScopes("orders:read", "billing:invoices:read"), 200, ""},
		{"missing", apikey.RequireScopes("orders:write"), 403,
			`Bearer realm="api", error="insufficient_scope", scope="orders:write"`},
		{"some missing", apikey.RequireScopes("orders:write", "orders:read", "admin"), 403,
			`Bearer realm="api", error="insufficient_scope", scope="orders:write admin"`},
		{"any, one held", apikey.RequireAnyScope("admin", "orders:read"), 200, ""},
		{"any, none held", apikey.RequireAnyScope("admin", "orders:write"), 403,
			`Bearer realm="api", error="insufficient_scope", scope="admin orders:write"`},
		{"query allows", apikey.Require(apikey.MustParseQuery("orders:read and (billing:x or admin)")), 200, ""},
		{"query refuses", apikey.Require(apikey.MustParseQuery("orders:read and (admin or (root and super))")), 403,
			`Bearer realm="api", error="insufficient_scope", scope="admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := f.m.Middleware(apikey.WithOnEvent(f.events.add))(tt.require(ok))
			w := serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.valid) }))
			if tt.status == 200 {
				assert.Equal(t, 200, w.Code)
				assert.Equal(t, "ok", w.Body.String())
				return
			}
			assertRejected(t, w, 403, tt.challenge)
			ev := f.events.last(t)
			assert.Equal(t, apikey.OutcomeForbidden, ev.Outcome)
			assert.Equal(t, apikey.ReasonInsufficientScope, ev.Reason)
			assert.Equal(t, f.validKey.ID, ev.KeyID)
			assert.Equal(t, "team-42", ev.Owner)
			f.assertNoSecret(t, w)
		})
	}

	t.Run("no key in context fails closed", func(t *testing.T) {
		for _, req := range []func(http.Handler) http.Handler{
			apikey.RequireScopes("orders:read"), apikey.RequireAnyScope("orders:read"),
			apikey.Require(apikey.MustParseQuery("orders:read")),
		} {
			w := serve(req(ok), newRequest(nil))
			assertRejected(t, w, 401, chNone)
		}
	})
	t.Run("NewContext", func(t *testing.T) {
		k := &apikey.Key{ID: "AAAAAAAAAAAA", Scopes: []string{"orders:read"}}
		r := newRequest(nil)
		r = r.WithContext(apikey.NewContext(r.Context(), k))
		assert.Equal(t, 200, serve(apikey.RequireScopes("orders:read")(ok), r).Code)
		w := serve(apikey.RequireScopes("orders:write")(ok), r)
		assertRejected(t, w, 403, `Bearer realm="api", error="insufficient_scope", scope="orders:write"`)
	})
	t.Run("custom error handler applies", func(t *testing.T) {
		var got *apikey.AuthError
		h := f.m.Middleware(apikey.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, e *apikey.AuthError) {
			got = e
			w.WriteHeader(e.Status)
		}))(apikey.RequireScopes("admin")(ok))
		w := serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.valid) }))
		assert.Equal(t, 403, w.Code)
		require.NotNil(t, got)
		assert.Equal(t, []string{"admin"}, got.Scopes)
		assert.Equal(t, apikey.CodeInsufficientScope, got.Code)
	})
}

func TestRequirePanicsOnBadArguments(t *testing.T) {
	tests := []struct {
		name string
		fn   func()
		msg  string
	}{
		{"no scopes", func() { apikey.RequireScopes() }, "apikey: RequireScopes: no scopes"},
		{"wildcard", func() { apikey.RequireScopes("orders:*") }, `apikey: RequireScopes: apikey: invalid scope "orders:*": wildcard "*" not allowed in a required scope`},
		{"bad character", func() { apikey.RequireAnyScope("orders read") }, `apikey: RequireAnyScope: apikey: invalid scope "orders read": invalid character ' ' at offset 6`},
		{"nil query", func() { apikey.Require(nil) }, "apikey: Require: nil or empty query"},
		{"zero query", func() { apikey.Require(&apikey.Query{}) }, "apikey: Require: nil or empty query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.msg, tt.fn)
		})
	}
}

func TestMiddlewareRejectsBadOptions(t *testing.T) {
	f := newMWFixture(t)
	lim := newRecordingLimiter(nil)
	good := apikey.Limit{Rate: 10, Period: time.Second, Burst: 10}
	tests := []struct {
		name string
		opts []apikey.MiddlewareOption
		msg  string
	}{
		{"header with space", []apikey.MiddlewareOption{apikey.WithHeader("X API Key")}, "not a usable header name"},
		{"Authorization as header", []apikey.MiddlewareOption{apikey.WithHeader("authorization")}, "not a usable header name"},
		{"empty query param", []apikey.MiddlewareOption{apikey.WithQueryParam("")}, "WithQueryParam"},
		{"cookie name with space", []apikey.MiddlewareOption{apikey.WithCookie("api key")}, "WithCookie"},
		{"empty cookie name", []apikey.MiddlewareOption{apikey.WithCookie("")}, "WithCookie"},
		{"realm with quote", []apikey.MiddlewareOption{apikey.WithRealm(`a"b`)}, "WithRealm"},
		{"bad prefix", []apikey.MiddlewareOption{apikey.WithAllowedPrefixes("Acme")}, "invalid prefix"},
		{"no prefixes", []apikey.MiddlewareOption{apikey.WithAllowedPrefixes()}, "no prefix"},
		{"invalid proxy", []apikey.MiddlewareOption{apikey.WithTrustedProxies(netip.Prefix{})}, "WithTrustedProxies"},
		{"negative default rate", []apikey.MiddlewareOption{apikey.WithLimits(apikey.Limits{Limiter: lim, Default: apikey.Limit{Rate: -1, Period: time.Second}})}, "Limits.Default: apikey: invalid request: rate limit -1 per 1s, burst 0: rate and period must be positive"},
		{"negative owner burst", []apikey.MiddlewareOption{apikey.WithLimits(apikey.Limits{PerOwner: apikey.Limit{Rate: 1, Period: time.Second, Burst: -1}})}, "Limits.PerOwner"},
		{"failed auth faster than 1/ns", []apikey.MiddlewareOption{apikey.WithLimits(apikey.Limits{FailedAuth: apikey.Limit{Rate: 10, Period: time.Nanosecond}})}, "Limits.FailedAuth"},
		{"default limit too long to refill", []apikey.MiddlewareOption{apikey.WithLimits(apikey.Limits{Default: apikey.Limit{Rate: 1, Period: 1000 * time.Hour, Burst: good.Burst * 1000}})}, "longer than"},
		{"nil event hook", []apikey.MiddlewareOption{apikey.WithOnEvent(nil)}, "WithOnEvent(nil)"},
		{"nil error handler", []apikey.MiddlewareOption{apikey.WithErrorHandler(nil)}, "WithErrorHandler(nil)"},
		{"nil option", []apikey.MiddlewareOption{nil}, "nil option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "Middleware did not panic")
				assert.Contains(t, r, "apikey: Middleware: ")
				assert.Contains(t, r, tt.msg)
			}()
			f.m.Middleware(tt.opts...)
		})
	}
}

func TestMiddlewarePanicMessage(t *testing.T) {
	f := newMWFixture(t)
	assert.PanicsWithValue(t, `apikey: Middleware: invalid request: WithHeader("X API Key"): not a usable header name`,
		func() { f.m.Middleware(apikey.WithHeader("X API Key")) })
	assert.PanicsWithValue(t, "apikey: Middleware: nil next handler", func() { f.m.Middleware()(nil) })
}

func TestMiddlewareErrorHandler(t *testing.T) {
	f := newMWFixture(t)
	var got *apikey.AuthError
	h, _ := f.handler(apikey.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, e *apikey.AuthError) {
		got = e
		// The protocol headers are already set; only the body is ours.
		assert.Equal(t, chRevoked, w.Header().Get("WWW-Authenticate"))
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		json.NewEncoder(w).Encode(map[string]string{"code": e.Code, "message": e.Description, "key_id": e.KeyID})
	}))
	w := serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", f.revoked) }))
	assert.Equal(t, 401, w.Code)
	require.NotNil(t, got)
	_, kid, _ := parts(t, f.revoked)
	assert.Equal(t, kid, got.KeyID)
	assert.Equal(t, apikey.ReasonRevoked, got.Reason)
	assert.ErrorIs(t, got, apikey.ErrRevoked)
	assert.Equal(t, "apikey: 401 revoked (invalid_token): apikey: key revoked", got.Error())
	assert.JSONEq(t, `{"code":"invalid_token","message":"API key revoked","key_id":"`+kid+`"}`, w.Body.String())
	f.assertNoSecret(t, w)
}

func TestMiddlewareHEADHasNoBody(t *testing.T) {
	f := newMWFixture(t)
	h, _ := f.handler()
	r := newRequest(nil)
	r.Method = http.MethodHead
	w := serve(h, r)
	assert.Equal(t, 401, w.Code)
	assert.Empty(t, w.Body.Bytes())
}

func TestFromContext(t *testing.T) {
	_, ok := apikey.FromContext(context.Background())
	assert.False(t, ok)
	k := &apikey.Key{ID: "AAAAAAAAAAAA"}
	type other struct{}
	ctx := context.WithValue(apikey.NewContext(context.Background(), k), other{}, 1)
	got, ok := apikey.FromContext(ctx)
	assert.True(t, ok)
	assert.Same(t, k, got)
	assert.Equal(t, 1, ctx.Value(other{}))
	_, ok = apikey.FromContext(apikey.NewContext(context.Background(), nil))
	assert.False(t, ok)

	// The context still cancels like any other.
	parent, cancel := context.WithCancel(context.Background())
	child, cancelChild := context.WithCancel(apikey.NewContext(parent, k))
	defer cancelChild()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("cancellation did not propagate through NewContext")
	}
}

func TestMiddlewareEvents(t *testing.T) {
	f := newMWFixture(t)
	h, _ := f.handler(apikey.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	r := newRequest(withKey(f.valid))
	r.Method = http.MethodPost
	r.URL.RawQuery = "api_key=" + f.valid // never reported: Path only
	r.RemoteAddr = "10.1.2.3:999"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	serve(h, r)
	ev := f.events.last(t)
	assert.Equal(t, apikey.Event{
		Outcome:  apikey.OutcomeAuthenticated,
		KeyID:    f.validKey.ID,
		Owner:    "team-42",
		ClientIP: netip.MustParseAddr("203.0.113.9"),
		Method:   http.MethodPost,
		Path:     "/orders",
		Duration: ev.Duration,
	}, ev)
	assert.Positive(t, ev.Duration)

	serve(h, newRequest(withKey(flipChecksum(f.valid))))
	ev = f.events.last(t)
	assert.Equal(t, apikey.OutcomeInvalidKey, ev.Outcome)
	assert.Equal(t, apikey.ReasonChecksum, ev.Reason)
	assert.Equal(t, 401, ev.Status)
	assert.Empty(t, ev.KeyID, "a key that fails its checksum may have a mistyped kid")
	assert.ErrorIs(t, ev.Err, apikey.ErrChecksum)
	assert.Equal(t, netip.MustParseAddr("198.51.100.7"), ev.ClientIP)

	serve(h, newRequest(withKey(forge("acme_test", f.validKey.ID, strings.Repeat("z", 43)))))
	ev = f.events.last(t)
	assert.Equal(t, apikey.ReasonInvalid, ev.Reason)
	assert.Equal(t, f.validKey.ID, ev.KeyID, "the kid of a key that parsed is reported")
	assert.Empty(t, ev.Owner, "an unverified key has no owner")
	assert.ErrorIs(t, ev.Err, apikey.ErrInvalidKey)
	f.assertNoSecret(t, httptest.NewRecorder())
}
