package apikey

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
)

// A MiddlewareOption configures Manager.Middleware.
type MiddlewareOption func(*middleware) error

// WithHeader sets the header that carries a key as its whole value
// (default DefaultHeader, "X-API-Key"); "" accepts keys only in
// "Authorization: Bearer". The name must be an HTTP token and not
// Authorization.
func WithHeader(name string) MiddlewareOption {
	return func(mw *middleware) error {
		if name == "" {
			mw.header = ""
			return nil
		}
		if !isToken(name) || strings.EqualFold(name, "Authorization") {
			return fmt.Errorf("%w: WithHeader(%q): not a usable header name", ErrInvalidRequest, name)
		}
		mw.header = textproto.CanonicalMIMEHeaderKey(name)
		return nil
	}
}

// WithCookie also accepts a key as the value of the cookie name, for
// browser clients. The cookie counts as a credential like the header: with
// a header too, or twice, the request is 400 invalid_request; an empty
// value is ignored. Off by default. The name must be an HTTP token.
//
// Browsers send cookies with cross-site requests too, so a route that
// changes state and accepts a key in a cookie needs protection against
// cross-site request forgery: a SameSite=Strict or Lax cookie, or
// http.CrossOriginProtection in front of the middleware.
func WithCookie(name string) MiddlewareOption {
	return func(mw *middleware) error {
		if !isToken(name) {
			return fmt.Errorf("%w: WithCookie(%q): not a usable cookie name", ErrInvalidRequest, name)
		}
		mw.cookie = name
		return nil
	}
}

// WithAnonymous lets a request that carries no credential through to the
// next handler without a key, for routes that serve everyone and serve
// callers with a key more: FromContext reports false for it, and
// RequireScopes, RequireAnyScope and Require refuse it with 401. A
// credential that does not authenticate (a bad, revoked or expired key,
// two credentials, a malformed Authorization header) is refused as
// without this option. An anonymous request is not rate-limited by the
// middleware, and is reported with OutcomeAnonymous and
// ReasonNoCredential. Off by default.
func WithAnonymous() MiddlewareOption {
	return func(mw *middleware) error {
		mw.anonymous = true
		return nil
	}
}

// WithCORSPreflight lets a CORS preflight request (OPTIONS with the
// Origin and Access-Control-Request-Method headers) through to the next
// handler without a key, which must answer it: browsers send preflights
// without credentials, so the middleware would refuse them with 401 and
// the browser would never send the request itself. Any credential a
// preflight carries is not read. It is reported with OutcomeAnonymous and
// ReasonPreflight; RequireScopes and friends refuse it with 401, so answer
// preflights before them. Off by default.
//
// A CORS handler in front of the middleware answers preflights itself and
// needs no option; it also adds the CORS headers to refusals, without
// which a browser hides a 401 or a 429 from the page's code.
func WithCORSPreflight() MiddlewareOption {
	return func(mw *middleware) error {
		mw.preflight = true
		return nil
	}
}

// WithQueryParam also accepts a key in the query parameter name. It is off
// by default, and should stay off where it can: URLs end up in access logs,
// browser history and Referer headers. Reading the query allocates.
func WithQueryParam(name string) MiddlewareOption {
	return func(mw *middleware) error {
		if name == "" {
			return fmt.Errorf("%w: WithQueryParam(\"\")", ErrInvalidRequest)
		}
		mw.query = name
		return nil
	}
}

// WithRealm sets the realm of the WWW-Authenticate challenge (default
// DefaultRealm). It must be printable ASCII without '"' or '\'.
func WithRealm(realm string) MiddlewareOption {
	return func(mw *middleware) error {
		if realm == "" || !isQuotable(realm) {
			return fmt.Errorf("%w: WithRealm(%q): want printable ASCII without '\"' or '\\'", ErrInvalidRequest, realm)
		}
		mw.realm = realm
		return nil
	}
}

// WithAllowedPrefixes accepts only keys whose prefix is one of prefixes,
// for example only "acme_live" on a production server, so a test key is
// refused (401 invalid_token) before any store lookup. By default any
// prefix the Manager's keys carry is accepted.
func WithAllowedPrefixes(prefixes ...string) MiddlewareOption {
	return func(mw *middleware) error {
		if len(prefixes) == 0 {
			return fmt.Errorf("%w: WithAllowedPrefixes with no prefix", ErrInvalidRequest)
		}
		for _, p := range prefixes {
			if err := ValidatePrefix(p); err != nil {
				return err
			}
		}
		mw.prefixes = append(mw.prefixes, prefixes...)
		return nil
	}
}

// WithTrustedProxies names the proxies (load balancers, CDNs) in front of
// the server. When a request comes from one of them, X-Forwarded-For is read
// from right to left and the first address that is not a trusted proxy is
// taken as the client's; a malformed entry stops the walk at the last
// trusted hop. By default no proxy is trusted and the client address is
// r.RemoteAddr's, whatever headers claim. No other header (X-Real-IP,
// Forwarded) is read. The client address is what key IP allowlists and
// Limits.FailedAuth apply to.
func WithTrustedProxies(prefixes ...netip.Prefix) MiddlewareOption {
	return func(mw *middleware) error {
		for _, p := range prefixes {
			if !p.IsValid() {
				return fmt.Errorf("%w: WithTrustedProxies: invalid prefix %v", ErrInvalidRequest, p)
			}
			mw.proxies = append(mw.proxies, p.Masked())
		}
		return nil
	}
}

// WithTrustedUnixSocket treats a peer on a Unix socket as a trusted proxy,
// for servers that listen on one behind a reverse proxy: X-Forwarded-For
// is then read as WithTrustedProxies says, from the right, and the first
// address that is not a trusted proxy is the client. Such a peer has no
// address of its own; without this option, or when X-Forwarded-For names
// no client, the client has no address: key IP allowlists refuse it, and
// Limits.FailedAuth does not count it. Off by default. A request is on a
// Unix socket when its context's http.LocalAddrContextKey holds a
// *net.UnixAddr, as net/http sets it.
func WithTrustedUnixSocket() MiddlewareOption {
	return func(mw *middleware) error {
		mw.unixProxy = true
		return nil
	}
}

// Limits says how Manager.Middleware applies rate limits, quotas and
// credits. The zero Limits enforces each key's own RateLimit, Quota and
// Credits in this process's memory, and nothing more.
//
// Every rate-limited response carries the RateLimit-Policy and RateLimit
// fields (draft-ietf-httpapi-ratelimit-headers) with one item per policy
// that applied: "key", "owner", "quota", "owner-quota", "credits" and
// "owner-credits". A refusal is 429 with Retry-After (none for credits
// that no refill will restore) and a problem body of the draft's "Quota
// Exceeded" type naming the policy (see WriteProblem). A policy's q and w promise only what the limiter always
// allows: at most q requests in any w seconds, w whole seconds. A rate
// limit is advertised as its burst per the time its bucket takes to refill
// (rounded up to a second, or down when that describes a faster rate), so
// "1000/m,burst=50" is q=50;w=3 and "20/s,burst=5" q=5;w=1; below a
// second this is slower than the sustained rate ("10/100ms" is q=10;w=1).
// A quota is its Limit per its Period rounded up to a second. A credit
// balance is its capacity (the period's grant plus top-ups) per its refill
// period; a NoRefill balance has no window (no w, and no t in RateLimit).
// Calendar months are advertised as 31 days.
type Limits struct {
	// Limiter applies the rate limits: each key's RateLimit (or Default)
	// under the limiter key k.LineageID() (the key's ID, or for a rotated
	// key its chain's first), PerOwner under "owner:"+owner, and
	// FailedAuth under "authfail:"+address. A key ID never contains ':',
	// so these cannot collide. If nil, the middleware uses a limiter in
	// this process's memory (package memlimit's), shared by every
	// Middleware of the Manager and stopped by Manager.Close; with many
	// processes each then limits on its own (see package redislimit).
	Limiter Limiter

	// Counter counts each key's Quota under the counter key
	// "quota:"+k.LineageID(), and PerOwnerQuota under
	// "owner-quota:"+owner.
	// If nil, the middleware uses a counter in this process's memory, as
	// for Limiter.
	Counter Counter

	// Default is the rate limit of keys whose record has a zero RateLimit.
	// If zero, such keys are not rate-limited.
	Default Limit

	// PerOwner limits all keys of one owner together, so that minting more
	// keys does not multiply a customer's allowance. It is checked after
	// the key's own limit. If zero, owners are not limited. It costs one
	// allocation per request (the limiter key).
	PerOwner Limit

	// PerOwnerQuota caps the sum of all an owner's keys' usage, in units
	// of Cost, so that minting more keys does not multiply a customer's
	// quota: the counterpart of PerOwner for quotas. It is counted on
	// Counter under "owner-quota:"+owner, after the key's own Quota, and
	// reported in the RateLimit fields as the policy "owner-quota". A
	// request it refuses is 429 with Reason ReasonOwnerQuota and is not
	// charged to the key's Quota either (the units come back when Counter
	// is a Refunder). A 403 from RequireScopes and friends refunds it as
	// it refunds the key's Quota, and Cost and SetCost adjust both. Keys
	// with an empty Owner share one owner quota. If zero, owners have no
	// quota. It costs one allocation per request (the counter key).
	PerOwnerQuota Quota

	// Ledger keeps the credit balances that requests draw their cost
	// from: each key's Credits (Key.Credits) under CreditsKey(k), and
	// PerOwnerCredits under OwnerCreditsKey(owner). A request is charged
	// after its quotas, so a request refused by a rate limit or a quota
	// costs no credits, and one refused after its charge (by the owner's
	// balance, by RequireScopes and friends, by Cost) gets them back, as
	// quota units come back. A request whose balance cannot hold its cost
	// is 429 with Reason ReasonCredits or ReasonOwnerCredits and takes
	// nothing; Retry-After is the time until the next refill when the
	// refill will hold the cost, and absent when none will (NoRefill
	// credits, or a cost above the grant): then only a top-up
	// (Ledger.TopUp) helps. If nil, the middleware uses a ledger in this
	// process's memory (package memlimit's), shared by every Middleware of
	// the Manager and stopped by Manager.Close; its balances, top-ups
	// included, are lost when the process exits, so a service that sells
	// credits sets a Ledger on a shared database or Redis.
	Ledger Ledger

	// PerOwnerCredits is a credit balance shared by all an owner's keys:
	// every request with a key of the owner draws its cost from it, after
	// the key's own Credits if it has any, under OwnerCreditsKey(owner).
	// It shows in the RateLimit fields as the policy "owner-credits". Keys
	// with an empty Owner share one balance. If zero, owners have no
	// balance. It costs one allocation per request (the ledger key).
	PerOwnerCredits Credits

	// FailedAuth limits failed authentications (401 invalid_token) per
	// client address (an IPv6 client is counted by its /64). Once a client
	// exceeds it, its requests get 429 with Retry-After before their key
	// is even parsed, until the limiter would allow a failure again, so
	// floods of made-up keys cannot reach the store unboundedly. Blocks are
	// remembered in this process, for at most 65536 addresses, the oldest
	// forgotten first; with a shared Limiter each process learns of a
	// block at that client's next failure there. A Limiter error does not
	// turn a 401 into anything else. If zero, failures are not limited.
	//
	// A request whose client has no address of its own is not counted and
	// never blocked, since one bucket for all such requests would let any
	// one client lock out every other: a request on a Unix socket (unless
	// WithTrustedUnixSocket and X-Forwarded-For name the client), with an
	// empty RemoteAddr, or from a trusted proxy that named no client (the
	// address found is then the proxy's). Limit such failures at the proxy.
	FailedAuth Limit

	// Cost returns how many quota units a request costs, for example more
	// for a bulk endpoint: what quotas count and credits are charged. It
	// is called once per authenticated request whose key has a Quota or
	// Credits, under PerOwnerQuota or PerOwnerCredits, or whose Manager
	// meters usage, before the
	// key's limits are checked and before routing, so the cost must be
	// known from the request alone; Cost and SetCost change it after
	// routing. A result of 0 or less makes the request free: it is not
	// charged, and Manager.Usage counts it with 0 units. If nil, every
	// request costs 1.
	//
	// Only a request that reaches the handlers behind the middleware
	// costs quota. The quota is checked last, after the rate limits, so a
	// 429 charges none (a rate limit checked before the one that refused
	// keeps its token); 400, 401 and a 403 for the IP allowlist come
	// before any limit and cost nothing but, for a bad key, one failure
	// under FailedAuth. A 403 from RequireScopes, RequireAnyScope or
	// Require behind the middleware is charged up front like any request,
	// so that a key over its quota never reaches a handler, and the units
	// come back when Counter is a Refunder (every Counter in this module
	// is); its rate-limit tokens stay spent.
	Cost func(*http.Request) int64

	// FailOpen lets requests through when the Limiter, the Counter or
	// the Ledger returns an error, without RateLimit fields for the failed
	// policy (and without charging the balance that failed).
	// If false, such a request gets 503 with Retry-After. The error is
	// reported in Event.Err either way.
	FailOpen bool
}

// WithLimits sets how the middleware applies rate limits, quotas and
// credits (see Limits). Without it, each key's own RateLimit, Quota and
// Credits are enforced in this process's memory.
func WithLimits(l Limits) MiddlewareOption {
	return func(mw *middleware) error {
		for _, c := range []struct {
			field string
			limit Limit
		}{{"Default", l.Default}, {"PerOwner", l.PerOwner}, {"FailedAuth", l.FailedAuth}} {
			if c.limit.IsZero() {
				continue
			}
			if err := c.limit.Validate(); err != nil {
				return fmt.Errorf("WithLimits: Limits.%s: %w", c.field, err)
			}
		}
		if !l.PerOwnerQuota.IsZero() {
			if err := l.PerOwnerQuota.Validate(); err != nil {
				return fmt.Errorf("WithLimits: Limits.PerOwnerQuota: %w", err)
			}
		}
		if !l.PerOwnerCredits.IsZero() {
			if err := l.PerOwnerCredits.Validate(); err != nil {
				return fmt.Errorf("WithLimits: Limits.PerOwnerCredits: %w", err)
			}
		}
		mw.limits = l
		return nil
	}
}

// WithOnEvent calls fn with one Event for every request the middleware
// handles, synchronously, so that a metric counting events counts
// requests; with WithQuotaThresholds, a request that crosses a threshold
// is followed by one more Event per crossing, with OutcomeQuotaThreshold. A refusal is reported before its response is written. A
// request let through is reported once the next handler returns (or
// panics), unless RequireScopes, RequireAnyScope or Require behind it
// refuses it: then that refusal is its one Event, reported before the
// response. Duration is the deciding time either way, never the
// handler's. A request that an outer Middleware of the same Manager
// authenticated is reported by that one only. fn must be fast and safe for
// concurrent use; log with slog or count with a metrics library there.
// Events never hold a key.
func WithOnEvent(fn func(Event)) MiddlewareOption {
	return func(mw *middleware) error {
		if fn == nil {
			return fmt.Errorf("%w: WithOnEvent(nil)", ErrInvalidRequest)
		}
		mw.onEvent = fn
		return nil
	}
}

// WithErrorHandler replaces WriteProblem as the writer of refusals, for
// teams with their own error format. Before calling fn the middleware has
// set WWW-Authenticate, Retry-After, the RateLimit fields and
// Cache-Control: no-store on w.Header(); fn writes the status and the body,
// and should use e.Status. RequireScopes, RequireAnyScope and Require use
// the error handler of the middleware that authenticated the request.
func WithErrorHandler(fn func(w http.ResponseWriter, r *http.Request, e *AuthError)) MiddlewareOption {
	return func(mw *middleware) error {
		if fn == nil {
			return fmt.Errorf("%w: WithErrorHandler(nil)", ErrInvalidRequest)
		}
		mw.onError = fn
		return nil
	}
}
