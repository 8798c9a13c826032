package apikey_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMiddlewareCookie(t *testing.T) {
	f := newMWFixture(t)
	h, calls := f.handler(apikey.WithCookie("api_key"))
	plain, _ := f.handler()
	cookie := func(header string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Add("Cookie", header) }
	}
	tests := []struct {
		name      string
		h         http.Handler
		setup     func(*http.Request)
		status    int
		challenge string
		reason    apikey.Reason
	}{
		{"key in the cookie", h, cookie("session=x; api_key=" + f.valid), 200, "", ""},
		{"quoted", h, cookie(`api_key="` + f.valid + `"`), 200, "", ""},
		{"among other cookies, in two headers", h, func(r *http.Request) {
			r.Header.Add("Cookie", "a=1")
			r.Header.Add("Cookie", "api_key="+f.valid+"; b=2")
		}, 200, "", ""},
		{"cookie and header", h, func(r *http.Request) {
			cookie("api_key=" + f.valid)(r)
			r.Header.Set("X-API-Key", f.valid)
		}, 400, chTwo, apikey.ReasonTwoCredentials},
		{"cookie and Bearer", h, func(r *http.Request) {
			cookie("api_key=" + f.valid)(r)
			withKey(f.valid)(r)
		}, 400, chTwo, apikey.ReasonTwoCredentials},
		{"cookie twice", h, cookie("api_key=" + f.valid + "; api_key=" + f.valid), 400, chTwo, apikey.ReasonTwoCredentials},
		{"empty cookie", h, cookie("api_key="), 401, chNone, apikey.ReasonNoCredential},
		{"other cookie only", h, cookie("session=" + f.valid), 401, chNone, apikey.ReasonNoCredential},
		{"bad key", h, cookie("api_key=" + flipChecksum(f.valid)), 401, chInvalid, apikey.ReasonChecksum},
		{"revoked key", h, cookie("api_key=" + f.revoked), 401, chRevoked, apikey.ReasonRevoked},
		{"not enabled", plain, cookie("api_key=" + f.valid), 401, chNone, apikey.ReasonNoCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls.Load()
			w := serve(tt.h, newRequest(tt.setup))
			if tt.status == 200 {
				require.Equal(t, 200, w.Code, w.Body.String())
				assert.Equal(t, "hello team-42", w.Body.String())
				assert.Equal(t, before+1, calls.Load())
				return
			}
			assertRejected(t, w, tt.status, tt.challenge)
			assert.Equal(t, tt.reason, f.events.last(t).Reason)
			f.assertNoSecret(t, w)
		})
	}
	assert.PanicsWithValue(t, `apikey: Middleware: invalid request: WithCookie("api key"): not a usable cookie name`,
		func() { f.m.Middleware(apikey.WithCookie("api key")) })
	assert.Panics(t, func() { f.m.Middleware(apikey.WithCookie("")) })
}

// TestMiddlewareAnonymous: with WithAnonymous a request without a
// credential reaches the handler without a key, and a credential that
// fails is still refused.
func TestMiddlewareAnonymous(t *testing.T) {
	f := newMWFixture(t)
	var sawKey []bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := apikey.FromContext(r.Context())
		sawKey = append(sawKey, ok)
		w.Write([]byte("hello"))
	})
	auth := f.m.Middleware(apikey.WithAnonymous(), apikey.WithOnEvent(f.events.add))
	h := auth(next)
	tests := []struct {
		name    string
		setup   func(*http.Request)
		status  int
		key     bool // the handler sees a key
		outcome apikey.Outcome
		reason  apikey.Reason
	}{
		{"no credential", nil, 200, false, apikey.OutcomeAnonymous, apikey.ReasonNoCredential},
		{"empty X-API-Key", func(r *http.Request) { r.Header.Set("X-API-Key", "") }, 200, false, apikey.OutcomeAnonymous, apikey.ReasonNoCredential},
		{"Basic scheme", func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwYXNz") }, 200, false, apikey.OutcomeAnonymous, apikey.ReasonNoCredential},
		{"valid key", withKey(f.valid), 200, true, apikey.OutcomeAuthenticated, ""},
		{"bad key", withKey(flipChecksum(f.valid)), 401, false, apikey.OutcomeInvalidKey, apikey.ReasonChecksum},
		{"unknown key", withKey(forge("acme_test", "AAAAAAAAAAAA", strings.Repeat("x", 43))), 401, false, apikey.OutcomeInvalidKey, apikey.ReasonInvalid},
		{"revoked key", withKey(f.revoked), 401, false, apikey.OutcomeInvalidKey, apikey.ReasonRevoked},
		{"two credentials", func(r *http.Request) {
			withKey(f.valid)(r)
			r.Header.Set("X-API-Key", f.valid)
		}, 400, false, apikey.OutcomeBadRequest, apikey.ReasonTwoCredentials},
		{"malformed Bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }, 400, false, apikey.OutcomeBadRequest, apikey.ReasonMalformedAuthorization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawKey = nil
			before := len(f.events.all())
			w := serve(h, newRequest(tt.setup))
			assert.Equal(t, tt.status, w.Code)
			if tt.status == 200 {
				assert.Equal(t, []bool{tt.key}, sawKey)
				assert.Empty(t, w.Header().Get("Cache-Control"))
			} else {
				assert.Empty(t, sawKey, "next handler called")
			}
			events := f.events.all()[before:]
			require.Len(t, events, 1)
			assert.Equal(t, tt.outcome, events[0].Outcome)
			assert.Equal(t, tt.reason, events[0].Reason)
		})
	}

	// RequireScopes behind it refuses an anonymous request, as the one
	// Event of the request; so does a Middleware of the same Manager
	// without WithAnonymous, for a private group of routes.
	private := http.NewServeMux()
	private.Handle("/private/orders", next)
	mux := http.NewServeMux()
	mux.Handle("/public", next)
	mux.Handle("/scoped", apikey.RequireScopes("orders:read")(next))
	mux.Handle("/private/", f.m.Middleware(apikey.WithOnEvent(f.events.add))(private))
	site := auth(mux)
	for _, tc := range []struct {
		path   string
		key    string
		status int
		reason apikey.Reason
	}{
		{"/public", "", 200, apikey.ReasonNoCredential},
		{"/scoped", "", 401, apikey.ReasonNoCredential},
		{"/scoped", f.valid, 200, ""},
		{"/private/orders", "", 401, apikey.ReasonNoCredential},
		{"/private/orders", f.valid, 200, ""},
	} {
		before := len(f.events.all())
		r := newRequest(nil)
		if tc.key != "" {
			withKey(tc.key)(r)
		}
		r.URL.Path = tc.path
		w := serve(site, r)
		assert.Equal(t, tc.status, w.Code, tc.path)
		if tc.status == 401 {
			assertRejected(t, w, 401, chNone)
		}
		events := f.events.all()[before:]
		require.Len(t, events, 1, tc.path)
		assert.Equal(t, tc.reason, events[0].Reason, tc.path)
	}
}

// TestMiddlewareCORSPreflight: a browser's preflight carries no key. Off
// by default it is refused like any request without one; with
// WithCORSPreflight it reaches the handler, which answers it, and nothing
// else gets through.
func TestMiddlewareCORSPreflight(t *testing.T) {
	f := newMWFixture(t)
	cors := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apikey.FromContext(r.Context()); ok {
			w.Write([]byte("hello"))
			return
		}
		if r.Method != http.MethodOptions {
			http.Error(w, "no key in context", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "https://app.example")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization")
		w.WriteHeader(http.StatusNoContent)
	})
	preflight := func(r *http.Request) {
		r.Method = http.MethodOptions
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization")
	}
	off := f.m.Middleware(apikey.WithOnEvent(f.events.add))(cors)
	on := f.m.Middleware(apikey.WithOnEvent(f.events.add), apikey.WithCORSPreflight())(cors)
	assertRejected(t, serve(off, newRequest(preflight)), 401, chNone)

	w := serve(on, newRequest(preflight))
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, "https://app.example", w.Header().Get("Access-Control-Allow-Origin"))
	ev := f.events.last(t)
	assert.Equal(t, apikey.OutcomeAnonymous, ev.Outcome)
	assert.Equal(t, apikey.ReasonPreflight, ev.Reason)
	assert.Equal(t, http.MethodOptions, ev.Method)

	// A key on a preflight is not read, so it cannot be probed there.
	gets := f.store.gets.Load()
	w = serve(on, newRequest(func(r *http.Request) {
		preflight(r)
		withKey(forge("acme_test", "AAAAAAAAAAAA", strings.Repeat("x", 43)))(r)
	}))
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, gets, f.store.gets.Load())

	// Anything that is not a preflight still needs a key.
	for name, setup := range map[string]func(*http.Request){
		"OPTIONS without Origin": func(r *http.Request) {
			preflight(r)
			r.Header.Del("Origin")
		},
		"OPTIONS without Access-Control-Request-Method": func(r *http.Request) {
			preflight(r)
			r.Header.Del("Access-Control-Request-Method")
		},
		"POST with the CORS headers": func(r *http.Request) {
			preflight(r)
			r.Method = http.MethodPost
		},
	} {
		assertRejected(t, serve(on, newRequest(setup)), 401, chNone)
		assert.Equal(t, apikey.ReasonNoCredential, f.events.last(t).Reason, name)
	}
	assert.Equal(t, 200, serve(on, newRequest(withKey(f.valid))).Code)
}

// TestMiddlewareHeaderWhitespace sends keys with spaces and tabs around
// them to real servers over HTTP/1.1 and HTTP/2: net/textproto trims them
// on HTTP/1 and HTTP/2 leaves them, and the middleware answers both alike.
func TestMiddlewareHeaderWhitespace(t *testing.T) {
	f := newMWFixture(t)
	h, _ := f.handler()
	h1 := httptest.NewServer(h)
	defer h1.Close()
	h2 := httptest.NewUnstartedServer(h)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()

	tests := []struct {
		name, header, value string
		status              int
	}{
		{"X-API-Key, trailing space", "X-API-Key", f.valid + " ", 200},
		{"X-API-Key, trailing tab", "X-API-Key", f.valid + "\t", 200},
		{"X-API-Key, leading space", "X-API-Key", " " + f.valid, 200},
		{"X-API-Key, space inside", "X-API-Key", f.valid[:10] + " " + f.valid[10:], 401},
		{"X-API-Key, only spaces", "X-API-Key", "   ", 401},
		{"Bearer, trailing space", "Authorization", "Bearer " + f.valid + " ", 200},
		{"Bearer, leading space", "Authorization", " Bearer " + f.valid, 200},
		{"Bearer, two spaces inside", "Authorization", "Bearer  " + f.valid, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// HTTP/1.1, written by hand: Go's client would trim the value.
			conn, err := net.Dial("tcp", h1.Listener.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write([]byte("GET /orders HTTP/1.1\r\nHost: api\r\n" + tt.header + ": " + tt.value + "\r\nConnection: close\r\n\r\n"))
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode, "HTTP/1.1")

			// HTTP/2 over TLS, with the value as it is.
			r, err := http.NewRequest(http.MethodGet, h2.URL+"/orders", nil)
			require.NoError(t, err)
			r.Header[http.CanonicalHeaderKey(tt.header)] = []string{tt.value}
			resp, err = h2.Client().Do(r)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, "HTTP/2.0", resp.Proto)
			assert.Equal(t, tt.status, resp.StatusCode, "HTTP/2")
		})
	}
}
