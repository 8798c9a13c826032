package apikey_test

import (
	"net/http"
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
			viaBearer := len(auth) == 1 && len(auth[0]) > 7 && strings.EqualFold(auth[0][:7], "bearer ") && auth[0][7:] == fx.valid
			viaHeader := len(key) == 1 && key[0] == fx.valid
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
