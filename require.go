package apikey

import (
	"net/http"
	"slices"
	"time"
)

// RequireScopes returns middleware that lets a request through only if the
// key in its context (see Manager.Middleware) holds every one of scopes, as
// HasScope decides. Otherwise it answers 403 with
// error="insufficient_scope" and the missing scopes in the challenge's
// scope attribute. A request with no key in its context gets 401, so
// middleware applied in the wrong order fails closed. Refusals go to the
// authenticating middleware's error handler and event hook, and settle the
// request for it: the refusal's Event is the request's only one (its
// Duration adds the middleware's time), and the quota units the
// middleware charged come back when its Counter is a Refunder, and its
// credits to the Ledger, so that a refused request costs no quota and no
// credits. Its rate limits keep counting it.
//
// RequireScopes panics, like regexp.MustCompile, if scopes is empty or one
// of them is not a valid literal scope (see ValidateScope; wildcards are
// for granted scopes only): that is a programming error, found at start-up.
func RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	scopes = mustScopes("RequireScopes", scopes)
	return requireFunc(func(granted []string) []string {
		for i, s := range scopes {
			if !hasValid(granted, s) {
				// Allocate only on refusal: collect this and the rest.
				missing := []string{s}
				for _, s := range scopes[i+1:] {
					if !hasValid(granted, s) {
						missing = append(missing, s)
					}
				}
				return missing
			}
		}
		return nil
	})
}

// RequireAnyScope is like RequireScopes but lets the request through if
// the key holds at least one of scopes; a refusal lists all of them. It
// panics on the same programming errors.
func RequireAnyScope(scopes ...string) func(http.Handler) http.Handler {
	scopes = mustScopes("RequireAnyScope", scopes)
	return requireFunc(func(granted []string) []string {
		for _, s := range scopes {
			if hasValid(granted, s) {
				return nil
			}
		}
		return slices.Clone(scopes)
	})
}

// Require is like RequireScopes for a scope query such as
// MustParseQuery("orders:read and (billing:read or admin)"); a refusal
// lists the scopes Query.Missing returns. It panics if q is nil or the
// zero Query, which would refuse everything.
func Require(q *Query) func(http.Handler) http.Handler {
	if q == nil || q.root == nil {
		panic("apikey: Require: nil or empty query")
	}
	return requireFunc(func(granted []string) []string {
		if q.Allows(granted) {
			return nil
		}
		return q.Missing(granted)
	})
}

func mustScopes(fn string, scopes []string) []string {
	if len(scopes) == 0 {
		panic("apikey: " + fn + ": no scopes")
	}
	for _, s := range scopes {
		if reason, at := checkScope(s, true); reason != "" {
			panic("apikey: " + fn + ": " + scopeError(s, reason, at).Error())
		}
	}
	return slices.Clone(scopes)
}

// requireFunc builds scope middleware around missing, which returns nil
// when the granted scopes suffice and the scopes to ask for otherwise.
func requireFunc(missing func(granted []string) []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("apikey: Require: nil next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, mw, q := behind(w, r)
			if c == nil || c.key == nil {
				mw.refuseNoKey(&q, c)
				return
			}
			if m := missing(c.key.Scopes); m != nil {
				// The refusal settles the request: the middleware's quota
				// charge comes back, and this is the request's one Event.
				q.key = c.key
				q.prior, _, q.err = c.settle(r.Context())
				mw.reject(&q, OutcomeForbidden, ReasonInsufficientScope,
					challenge(mw.realm, CodeInsufficientScope, "", m), &AuthError{
						Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: descScope, Scopes: m, Err: q.err})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// behind returns, for per-route middleware behind Manager.Middleware
// (RequireScopes and friends, Cost), the request's key context (nil if
// it has none), the middleware that answers for it (defaultMiddleware
// for a key put there by NewContext), and the request's state for a
// refusal.
func behind(w http.ResponseWriter, r *http.Request) (*keyContext, *middleware, request) {
	c, _ := r.Context().Value(contextKey{}).(*keyContext)
	mw := defaultMiddleware
	if c != nil && c.mw != nil {
		mw = c.mw
	}
	q := request{w: w, r: r}
	if mw.onEvent != nil {
		q.start = time.Now()
	}
	return c, mw, q
}

// refuseNoKey answers 401 for per-route middleware that found no key it
// can act on in c, settling the request first if a Middleware let it
// through (WithAnonymous).
func (mw *middleware) refuseNoKey(q *request, c *keyContext) {
	if c != nil {
		q.prior, _, q.err = c.settle(q.r.Context())
	}
	mw.reject(q, OutcomeNoCredential, ReasonNoCredential, mw.chNone, &AuthError{
		Status: http.StatusUnauthorized, Description: descNoCredential, Err: q.err})
}
