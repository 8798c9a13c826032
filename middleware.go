package apikey

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults for the middleware.
const (
	// DefaultHeader is the header that carries a key besides
	// "Authorization: Bearer"; change it with WithHeader.
	DefaultHeader = "X-API-Key"
	// DefaultRealm is the realm of the WWW-Authenticate challenge.
	DefaultRealm = "api"
	// UnavailableRetryAfter is the Retry-After of a 503: long enough that
	// clients do not hammer a store that is down, short enough to recover
	// quickly.
	UnavailableRetryAfter = 5 * time.Second
)

// Middleware returns HTTP middleware that authenticates every request with
// an API key and calls the next handler with the key in the request's
// context (see FromContext). It accepts exactly one credential, from
//
//   - "Authorization: Bearer <key>": the scheme matched case-insensitively,
//     then exactly one space and one token68 (RFC 7235). Other schemes
//     (Basic, Digest) are not credentials for this middleware and are
//     ignored; a Bearer header of any other shape is 400 invalid_request;
//   - the header of WithHeader ("X-API-Key" by default), holding the key
//     as its whole value; an empty value is ignored;
//   - the cookie of WithCookie, only if configured;
//   - the query parameter of WithQueryParam, only if configured.
//
// Header values lose leading and trailing spaces and tabs first, on
// HTTP/2 as HTTP/1 does. Two credentials (two Authorization headers, or
// Bearer and X-API-Key even with the same key, or the header twice) are
// 400 invalid_request; none is 401 with a challenge and no error code,
// unless WithAnonymous lets the request through. The key is then parsed once,
// offline (length, shape, checksum, WithAllowedPrefixes), verified through
// the Manager, checked against its IP allowlist (403), and counted against
// its rate limits, quota and credits (429).
//
// A key's own RateLimit, Quota and Credits are always enforced: by
// default with a limiter, a counter and a ledger in this process's memory
// that the Manager owns and shares between its middlewares, or with the
// Limiter, Counter and Ledger of WithLimits, which also sets a default
// limit, per-owner limits, quotas and credits, and a limit on failed
// authentications.
//
// When the Manager meters usage (see Manager.Usage), each request let
// through is counted once the next handler returns, with its cost
// (Limits.Cost, or what Cost and SetCost set after routing), in the hour
// its key was verified; refusals are not counted.
//
// A store or limiter failure is 503 with Retry-After, and the next handler
// is not called. Every refusal carries Cache-Control: no-store and an
// application/problem+json body (see WriteProblem and WithErrorHandler).
// Revoked and expired keys are named as such in error_description; every
// other key failure is the same generic "invalid_token".
//
// Applied twice in one chain (chi's r.Use(auth) and a group's
// g.Use(auth)), the inner one passes a request the outer one
// authenticated straight to its next handler: the key is verified,
// limited, charged and reported once. Only the same Middleware does so:
// another Middleware, even of the same Manager, applies its own options
// (a stricter WithAllowedPrefixes on a group, say) and so authenticates
// the request again, on its own; to count a request once, use one
// Middleware in both places. Middlewares of different Managers are
// independent too, and the context then holds the inner Manager's key.
//
// Middleware panics if an option is invalid: configuration errors show at
// start-up, not at request time. The handlers it returns are safe for
// concurrent use. What a request allocates is in BENCHMARKS.md.
func (m *Manager) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	mw, err := newMiddleware(m, opts)
	if err != nil {
		panic("apikey: Middleware: " + strings.TrimPrefix(err.Error(), "apikey: "))
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("apikey: Middleware: nil next handler")
		}
		return &authHandler{mw: mw, next: next}
	}
}

// middleware is the configuration shared by every handler one call to
// Manager.Middleware wraps. It is immutable once built.
type middleware struct {
	m        *Manager
	header   string // canonical name of the API key header; "" disables it
	cookie   string // cookie carrying a key; "" disables it
	query    string // query parameter carrying a key; "" disables it
	realm    string
	prefixes []string
	proxies  []netip.Prefix
	// unixProxy treats a peer on a Unix socket as a trusted proxy.
	unixProxy bool
	anonymous bool       // let requests without a credential through
	preflight bool       // let CORS preflight requests through
	limits    Limits     // Limiter, Counter and Ledger are never nil
	blocked   *blockList // clients over Limits.FailedAuth; nil without it
	// thresholds are WithQuotaThresholds' fractions, sorted, at most
	// maxThresholds.
	thresholds []float64

	onEvent func(Event)
	onError func(http.ResponseWriter, *http.Request, *AuthError)

	// Challenges for the common refusals, built once.
	chNone, chTwo, chMalformed, chInvalid, chRevoked, chExpired, chSuspended string
}

func newMiddleware(m *Manager, opts []MiddlewareOption) (*middleware, error) {
	if m == nil {
		return nil, errors.New("nil Manager")
	}
	mw := &middleware{m: m, header: textproto.CanonicalMIMEHeaderKey(DefaultHeader), realm: DefaultRealm, onError: WriteProblem}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidRequest)
		}
		if err := opt(mw); err != nil {
			return nil, err
		}
	}
	if mw.limits.Limiter == nil {
		mw.limits.Limiter = m.localLimiter()
	}
	if mw.limits.Counter == nil {
		mw.limits.Counter = m.localCounter()
	}
	if mw.limits.Ledger == nil {
		mw.limits.Ledger = m.localLedger()
	}
	if !mw.limits.FailedAuth.IsZero() {
		mw.blocked = newBlockList(maxBlocked)
	}
	if len(mw.thresholds) > 0 && mw.onEvent == nil {
		return nil, errThresholdsNeedEvents
	}
	mw.buildChallenges()
	return mw, nil
}

type authHandler struct {
	mw   *middleware
	next http.Handler
}

// request is the per-request state of authHandler, kept on the stack.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	start time.Time
	// prior is time spent deciding before start, by the middleware in
	// front of RequireScopes: an Event's Duration is prior+since(start).
	prior time.Duration
	ip    netip.Addr
	ipSet bool
	token Token // the key presented, once it parsed
	// key is the verified key, once there is one. Its ID and Owner are
	// read from it only when a refusal or an event needs them: its fields
	// are memory the request touches for little else.
	key    *Key
	err    error  // a limiter error passed over by Limits.FailOpen
	reason Reason // why a request let through has no key
}

func (q *request) clientIP(mw *middleware) netip.Addr {
	if !q.ipSet {
		q.ip, q.ipSet = clientIP(q.r, mw.proxies, mw.unixProxy), true
	}
	return q.ip
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mw := h.mw
	if c, ok := r.Context().Value(contextKey{}).(*keyContext); ok && c.mw != nil && c.mw.m == mw.m {
		if c.key != nil && c.mw == mw {
			// This very Middleware, further out, authenticated the
			// request: it was verified, limited, charged and reported
			// there.
			h.next.ServeHTTP(w, r)
			return
		}
		// One further out let it through without a key: this one
		// decides, and reports in its place.
		c.settled.Store(true)
	}
	q := request{w: w, r: r}
	if mw.onEvent != nil {
		q.start = time.Now()
	}

	if wait := mw.blockedFor(&q); wait > 0 {
		mw.reject(&q, OutcomeLimited, ReasonFailedAuthLimit, "", &AuthError{
			Status: http.StatusTooManyRequests, Description: descFailures, RetryAfter: wait})
		return
	}

	if mw.preflight && isPreflight(r) {
		q.reason = ReasonPreflight
		h.serveNext(&q, &keyContext{Context: r.Context(), mw: mw})
		return
	}

	raw, cred := mw.credential(r)
	switch cred {
	case credNone:
		if mw.anonymous {
			q.reason = ReasonNoCredential
			h.serveNext(&q, &keyContext{Context: r.Context(), mw: mw})
			return
		}
		mw.reject(&q, OutcomeNoCredential, ReasonNoCredential, mw.chNone, &AuthError{
			Status: http.StatusUnauthorized, Description: descNoCredential})
		return
	case credTwo:
		mw.reject(&q, OutcomeBadRequest, ReasonTwoCredentials, mw.chTwo, &AuthError{
			Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: descTwo})
		return
	case credMalformed:
		mw.reject(&q, OutcomeBadRequest, ReasonMalformedAuthorization, mw.chMalformed, &AuthError{
			Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: descMalformed})
		return
	}

	if len(raw) > MaxTokenLen {
		mw.invalidKey(&q, ReasonTooLong, nil)
		return
	}
	var k *Key
	var e *cacheEntry // k's, if the Manager caches; nil for a legacy key
	var at time.Time  // when k was verified
	t, err := Parse(raw)
	if err != nil {
		if k = mw.legacyKey(&q, raw, err); k == nil { // legacy_middleware.go
			return
		}
		at = mw.m.now()
	}
	if k == nil {
		q.token = t
		if len(mw.prefixes) > 0 && !slices.Contains(mw.prefixes, t.Prefix) {
			mw.invalidKey(&q, ReasonWrongPrefix, nil)
			return
		}
		at = q.start // read already for the Event: one clock reading, not two
		if at.IsZero() || !mw.m.realClock {
			at = mw.m.now()
		}
		entry, err := mw.m.verify(r.Context(), t, at)
		if err != nil {
			mw.verifyFailed(&q, err)
			return
		}
		k = entry.key
		if mw.m.cache.perShard > 0 { // else an entry lasts one request
			e = entry
		}
	}
	q.key = k

	if len(k.AllowedIPs) > 0 && !k.AllowsIP(q.clientIP(mw)) {
		// The caller proved it holds the key, so it may learn why.
		mw.reject(&q, OutcomeForbidden, ReasonIPNotAllowed, "", &AuthError{
			Status: http.StatusForbidden, Description: descIP})
		return
	}

	var cost, hour int64
	var use *usageSlots // where k's usage counts; nil: in the meter's own
	if mw.m.usage != nil {
		hour = hourOf(at)
		if e != nil {
			use = &e.use
		}
	}
	if mw.m.usage != nil || !k.Quota.IsZero() || !mw.limits.PerOwnerQuota.IsZero() ||
		!k.Credits.IsZero() || !mw.limits.PerOwnerCredits.IsZero() {
		cost = mw.cost(r)
	}
	var kc *keyContext
	var buf [maxChecks]limitCheck
	if checks := mw.checks(k, e, cost, &buf); len(checks) > 0 {
		// The RateLimit fields live in the same allocation as the
		// context, made before the limiter answers: a refusal wastes it,
		// but a request let through saves two.
		lc := &limitedContext{keyContext: keyContext{Context: r.Context(), key: k, mw: mw, cost: cost, use: use, hour: hour}}
		lc.lim = lc
		if !mw.limit(&q, checks, lc) {
			return
		}
		kc = &lc.keyContext
	} else {
		kc = &keyContext{Context: r.Context(), key: k, mw: mw, cost: cost, use: use, hour: hour}
	}
	h.serveNext(&q, kc)
}

// serveNext calls the next handler with kc in the request's context. Once
// the next handler returns (or panics), it counts the request's usage and
// reports its Event, unless a refusal behind it (RequireScopes and
// friends, Cost) settled the request first.
func (h *authHandler) serveNext(q *request, kc *keyContext) {
	if h.mw.onEvent != nil {
		kc.decided = time.Since(q.start)
		defer h.mw.settlePassed(q, kc)
	} else if kc.key != nil && h.mw.m.usage != nil {
		defer h.mw.settlePassed(q, kc)
	}
	h.next.ServeHTTP(q.w, q.r.WithContext(kc))
}

// settlePassed settles a request that the middleware let through, unless
// it was settled already: it counts the request's usage under its key, at
// its final cost, and reports its Event, with the time the middleware took
// to decide.
func (mw *middleware) settlePassed(q *request, kc *keyContext) {
	if !kc.settled.CompareAndSwap(false, true) {
		return
	}
	if kc.key != nil && mw.m.usage != nil {
		mw.m.usage.count(kc.use, kc.key, kc.hour, kc.cost)
	}
	if mw.onEvent == nil {
		return
	}
	q.start, q.prior = time.Time{}, kc.decided
	if kc.key == nil {
		mw.emit(q, Event{Outcome: OutcomeAnonymous, Reason: q.reason})
		return
	}
	mw.emit(q, Event{Outcome: OutcomeAuthenticated, KeyID: kc.key.ID, Owner: kc.key.Owner, Err: q.err})
	if kc.crossed != [4]uint8{} {
		mw.emitCrossings(q, kc)
	}
}

// verifyFailed answers a request whose key Verify refused.
func (mw *middleware) verifyFailed(q *request, err error) {
	switch {
	case errors.Is(err, ErrRevoked):
		mw.reject(q, OutcomeInvalidKey, ReasonRevoked, mw.chRevoked, &AuthError{
			Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descRevoked, Err: err})
	case errors.Is(err, ErrExpired):
		mw.reject(q, OutcomeInvalidKey, ReasonExpired, mw.chExpired, &AuthError{
			Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descExpired, Err: err})
	case errors.Is(err, ErrSuspended):
		mw.reject(q, OutcomeInvalidKey, ReasonSuspended, mw.chSuspended, &AuthError{
			Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descSuspended, Err: err})
	case errors.Is(err, ErrInvalidKey), errors.Is(err, ErrNotYetValid):
		mw.invalidKey(q, reasonFor(err), err)
	case isContextError(err) && q.r.Context().Err() != nil:
		// The client is gone; what we write is for the record. It must
		// not be a 200, which is what writing nothing would produce.
		mw.unavailable(q, ReasonCanceled, err)
	default: // ErrUnavailable, or a failure nobody classified
		mw.unavailable(q, ReasonStore, err)
	}
}

// reasonFor names why Verify or Parse refused a key.
func reasonFor(err error) Reason {
	switch {
	case errors.Is(err, ErrMalformedKey):
		return ReasonMalformed
	case errors.Is(err, ErrChecksum):
		return ReasonChecksum
	case errors.Is(err, ErrRevoked):
		return ReasonRevoked
	case errors.Is(err, ErrExpired):
		return ReasonExpired
	case errors.Is(err, ErrNotYetValid):
		return ReasonNotYetValid
	}
	return ReasonInvalid
}

// invalidKey refuses a key with the generic 401 invalid_token, unless the
// failure puts the client over Limits.FailedAuth.
func (mw *middleware) invalidKey(q *request, reason Reason, err error) {
	if wait := mw.countFailure(q); wait > 0 {
		mw.reject(q, OutcomeLimited, ReasonFailedAuthLimit, "", &AuthError{
			Status: http.StatusTooManyRequests, Description: descFailures, RetryAfter: wait, Err: err})
		return
	}
	mw.reject(q, OutcomeInvalidKey, reason, mw.chInvalid, &AuthError{
		Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descInvalid, Err: err})
}

func (mw *middleware) unavailable(q *request, reason Reason, err error) {
	mw.reject(q, OutcomeUnavailable, reason, "", &AuthError{
		Status: http.StatusServiceUnavailable, Description: descUnavailable, RetryAfter: UnavailableRetryAfter, Err: err})
}

// reject sets the protocol headers, hands e to the error handler and
// reports the event.
func (mw *middleware) reject(q *request, outcome Outcome, reason Reason, challenge string, e *AuthError) {
	e.Reason = reason
	owner := ""
	switch {
	case q.key != nil:
		e.KeyID, owner = q.key.ID, q.key.Owner
	case q.token.ID != "":
		// A copy: a slice of the token would keep the secret alive in
		// whatever keeps the event or the error.
		e.KeyID = strings.Clone(q.token.ID)
	}
	h := q.w.Header()
	h.Set("Cache-Control", "no-store")
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(e.RetryAfter), 10))
	}
	if mw.onEvent != nil {
		mw.emit(q, Event{Outcome: outcome, Reason: reason, Status: e.Status, KeyID: e.KeyID, Owner: owner, Err: e.Err})
	}
	mw.onError(q.w, q.r, e)
}

func (mw *middleware) emit(q *request, ev Event) {
	ev.ClientIP = q.clientIP(mw)
	ev.Method = q.r.Method
	ev.Path = q.r.URL.Path
	ev.Duration = q.prior
	if !q.start.IsZero() {
		ev.Duration += time.Since(q.start)
	}
	mw.onEvent(ev)
}

// Client-facing descriptions. They go into a quoted-string, so none may
// contain '"' or '\'.
const (
	descNoCredential = "an API key is required"
	descTwo          = "more than one API key in the request"
	descMalformed    = "malformed Authorization header"
	descInvalid      = "invalid API key"
	descRevoked      = "API key revoked"
	descExpired      = "API key expired"
	descSuspended    = "API key suspended"
	descIP           = "client address not allowed for this API key"
	descScope        = "the API key lacks a required scope"
	descRate         = "rate limit exceeded"
	descQuota        = "quota exhausted"
	descCredits      = "credits exhausted"
	descFailures     = "too many failed authentication attempts"
	descUnavailable  = "service temporarily unavailable"
)

func (mw *middleware) buildChallenges() {
	mw.chNone = challenge(mw.realm, "", "", nil)
	mw.chTwo = challenge(mw.realm, CodeInvalidRequest, descTwo, nil)
	mw.chMalformed = challenge(mw.realm, CodeInvalidRequest, descMalformed, nil)
	mw.chInvalid = challenge(mw.realm, CodeInvalidToken, descInvalid, nil)
	mw.chRevoked = challenge(mw.realm, CodeInvalidToken, descRevoked, nil)
	mw.chExpired = challenge(mw.realm, CodeInvalidToken, descExpired, nil)
	mw.chSuspended = challenge(mw.realm, CodeInvalidToken, descSuspended, nil)
}

// defaultMiddleware answers for RequireScopes and friends when the key in
// the context was put there by NewContext rather than by a Middleware.
var defaultMiddleware = func() *middleware {
	mw := &middleware{realm: DefaultRealm, onError: WriteProblem}
	mw.buildChallenges()
	return mw
}()
