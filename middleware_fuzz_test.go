package apikey_test

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
)

// FuzzMiddlewareHeaders sends raw Authorization, X-API-Key and
// X-Forwarded-For values through the middleware. A value holds several
// headers separated by "\n", and "" means the header is absent. "{KEY}" is
// replaced by a valid key, "{REVOKED}" by a revoked one and "{SECRET}" by
// the valid key's secret part, so the fuzzer can mutate around real keys.
//
// Whatever the input: nothing panics, the status is one the middleware
// may send, a 200 needs the valid key as the one credential, and no
// response header, body or event contains a secret.
func FuzzMiddlewareHeaders(f *testing.F) {
	fx := newMWFixture(f)
	h, _ := fx.handler(apikey.WithTrustedProxies())
	_, _, secret := parts(f, fx.valid)
	expand := func(s string) []string {
		if s == "" {
			return nil
		}
		s = strings.NewReplacer("{KEY}", fx.valid, "{REVOKED}", fx.revoked, "{SECRET}", secret).Replace(s)
		return strings.Split(s, "\n")
	}
	f.Add("Bearer {KEY}", "", "")
	f.Add("", "{KEY}", "203.0.113.1")
	f.Fuzz(func(t *testing.T, authorization, xAPIKey, xff string) {
		auth, key := expand(authorization), expand(xAPIKey)
		r := newRequest(func(r *http.Request) {
			r.Header["Authorization"] = auth
			r.Header["X-Api-Key"] = key
			r.Header["X-Forwarded-For"] = expand(xff)
		})
		w := serve(h, r)
		switch w.Code {
		case 200:
			// Values are trimmed as HTTP/1 trims them.
			a := ""
			if len(auth) == 1 {
				a = textproto.TrimString(auth[0])
			}
			viaBearer := len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && a[7:] == fx.valid
			viaHeader := len(key) == 1 && textproto.TrimString(key[0]) == fx.valid
			if viaBearer == viaHeader { // neither, or both (which must be 400)
				t.Fatalf("200 for Authorization %q, X-API-Key %q", auth, key)
			}
		case 400, 401:
		default:
			t.Fatalf("unexpected status %d", w.Code)
		}
		var out strings.Builder
		for name, vs := range w.Header() {
			out.WriteString(name + ": " + strings.Join(vs, ",") + "\n")
		}
		out.Write(w.Body.Bytes())
		ev := fx.events.last(t)
		out.WriteString(ev.KeyID + ev.Owner + string(ev.Reason) + ev.Path)
		if ev.Err != nil {
			out.WriteString(ev.Err.Error())
		}
		for _, s := range fx.secrets {
			if strings.Contains(out.String(), s) {
				t.Fatalf("secret echoed: %s", out.String())
			}
		}
		fx.events.mu.Lock()
		fx.events.events = fx.events.events[:0] // keep memory flat over long runs
		fx.events.mu.Unlock()
	})
}

// FuzzMiddlewareCookie sends raw Cookie and X-API-Key values through a
// middleware that also reads a key from the cookie "api_key" and lets
// requests without a credential through (WithAnonymous); placeholders as
// in FuzzMiddlewareHeaders. A request reaches the handler with the valid
// key only when that key is its one credential, without a key only when it
// carries none, and nothing echoes a secret.
func FuzzMiddlewareCookie(f *testing.F) {
	fx := newMWFixture(f)
	var sawKey bool
	h := fx.m.Middleware(apikey.WithCookie("api_key"), apikey.WithAnonymous(), apikey.WithOnEvent(fx.events.add))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, sawKey = apikey.FromContext(r.Context()) }))
	_, _, secret := parts(f, fx.valid)
	expand := func(s string) []string {
		if s == "" {
			return nil
		}
		s = strings.NewReplacer("{KEY}", fx.valid, "{REVOKED}", fx.revoked, "{SECRET}", secret).Replace(s)
		return strings.Split(s, "\n")
	}
	f.Add("api_key={KEY}", "")
	f.Add("a=1; api_key={KEY}; b=2", "")
	f.Add("api_key={KEY}; api_key={KEY}", "")
	f.Add(`api_key="{KEY}"`, "")
	f.Add("api_key={KEY}", "{KEY}")
	f.Add("api_key=", "")
	f.Add("api_key={REVOKED}", "")
	f.Add("session={SECRET}", "")
	f.Fuzz(func(t *testing.T, cookie, xAPIKey string) {
		cookies, key := expand(cookie), expand(xAPIKey)
		sawKey = false
		w := serve(h, newRequest(func(r *http.Request) {
			r.Header["Cookie"] = cookies
			r.Header["X-Api-Key"] = key
		}))
		ev := fx.events.last(t)
		switch w.Code {
		case 200:
			if sawKey != (ev.Outcome == apikey.OutcomeAuthenticated) {
				t.Fatalf("handler saw a key: %v, outcome %s", sawKey, ev.Outcome)
			}
			if sawKey && ev.KeyID != fx.validKey.ID {
				t.Fatalf("authenticated as %q", ev.KeyID)
			}
			if !sawKey && len(key) == 1 && textproto.TrimString(key[0]) == fx.valid {
				t.Fatalf("the valid key in X-API-Key, let through without it")
			}
		case 400, 401:
		default:
			t.Fatalf("unexpected status %d", w.Code)
		}
		var out strings.Builder
		for name, vs := range w.Header() {
			out.WriteString(name + ": " + strings.Join(vs, ",") + "\n")
		}
		out.Write(w.Body.Bytes())
		out.WriteString(ev.KeyID + ev.Owner + string(ev.Reason) + ev.Path)
		if ev.Err != nil {
			out.WriteString(ev.Err.Error())
		}
		for _, s := range fx.secrets {
			if strings.Contains(out.String(), s) {
				t.Fatalf("secret echoed: %s", out.String())
			}
		}
		fx.events.mu.Lock()
		fx.events.events = fx.events.events[:0]
		fx.events.mu.Unlock()
	})
}
