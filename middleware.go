package apikey

import (
	"context"
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

// A MiddlewareOption configures Manager.Middleware.
type MiddlewareOption func(*middleware) error

// middleware is the configuration shared by every handler one call to
// Manager.Middleware wraps. It is immutable once built.
type middleware struct {
	m        *Manager
	header   string // canonical name of the API key header; "" disables it
	query    string // query parameter carrying a key; "" disables it
	realm    string
	prefixes []string
	proxies  []netip.Prefix

	limiter       Limiter
	defaultLimit  Limit
	ownerLimit    Limit
	counter       Counter
	cost          func(*http.Request) int64
	failOpen      bool
	defaultPolicy string // RateLimit-Policy item for defaultLimit
	ownerPolicy   string // RateLimit-Policy item for ownerLimit
	// policies are the RateLimit-Policy values that do not depend on the
	// key (defaultPolicy, ownerPolicy and both), built once.
	policies []string

	// limiterHashes is set when limiter is a *MemoryLimiter, which keeps
	// only a hash of each key it is given: it may then be given the kid
	// as a slice of the token, where another Limiter, which might keep
	// the string, gets k.ID, so that the secret around it is not kept
	// alive with it.
	limiterHashes bool

	failLimiter Limiter
	failLimit   Limit
	blocked     *blockList

	onEvent func(Event)
	onError func(http.ResponseWriter, *http.Request, *AuthError)

	// Challenges for the common refusals, built once.
	chNone, chTwo, chMalformed, chInvalid, chRevoked, chExpired string
}

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
		if !validRealm(realm) {
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
// WithFailedAuthLimit apply to.
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

// WithLimiter rate-limits each key with l: under the key's own RateLimit,
// or the limit of WithDefaultLimit for keys that have none. The limiter key
// is the kid itself: a kid is base62 and never contains ':', so it cannot
// collide with the "owner:" and "authfail:" keys the middleware also uses,
// and it costs no allocation. Requests over the limit get 429 with Retry-After;
// every limited response carries the RateLimit-Policy and RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers), under the policy name "key".
func WithLimiter(l Limiter) MiddlewareOption {
	return func(mw *middleware) error {
		if l == nil {
			return fmt.Errorf("%w: WithLimiter(nil)", ErrInvalidRequest)
		}
		mw.limiter = l
		return nil
	}
}

// WithDefaultLimit sets the rate limit for keys whose record has a zero
// RateLimit. Without it such keys are not rate-limited per key. It needs
// WithLimiter.
func WithDefaultLimit(l Limit) MiddlewareOption {
	return func(mw *middleware) error {
		if err := checkLimit("WithDefaultLimit", l); err != nil {
			return err
		}
		mw.defaultLimit = l
		return nil
	}
}

// WithOwnerLimit also limits all keys of one owner together, under the
// limiter key "owner:"+owner and the policy name "owner", so that minting
// more keys does not multiply a customer's allowance. It needs WithLimiter.
// It costs one allocation per request (the limiter key).
func WithOwnerLimit(l Limit) MiddlewareOption {
	return func(mw *middleware) error {
		if err := checkLimit("WithOwnerLimit", l); err != nil {
			return err
		}
		mw.ownerLimit = l
		return nil
	}
}

// WithQuotaCounter enforces each key's Quota with c, under the counter key
// "quota:"+kid and the policy name "quota". A request costs one unit unless
// WithCost says otherwise. Keys with a zero Quota are not counted. The
// counter runs before the next handler, so the cost of a request must be
// known from the request alone.
func WithQuotaCounter(c Counter) MiddlewareOption {
	return func(mw *middleware) error {
		if c == nil {
			return fmt.Errorf("%w: WithQuotaCounter(nil)", ErrInvalidRequest)
		}
		mw.counter = c
		return nil
	}
}

// WithCost sets how many quota units a request costs (default 1), for
// example more for a bulk endpoint. It is called once per authenticated
// request, before the handler; a result of 0 or less makes the request free
// (it is not counted). It needs WithQuotaCounter. To price endpoints
// differently, wrap each route in its own Middleware or decide by r.URL.Path.
func WithCost(cost func(*http.Request) int64) MiddlewareOption {
	return func(mw *middleware) error {
		if cost == nil {
			return fmt.Errorf("%w: WithCost(nil)", ErrInvalidRequest)
		}
		mw.cost = cost
		return nil
	}
}

// WithLimiterFailOpen lets requests through, without RateLimit fields for the
// failed policy, when the Limiter or Counter returns an error. By default a
// limiter error fails closed: 503 with Retry-After. The error is reported in
// Event.Err either way.
func WithLimiterFailOpen() MiddlewareOption {
	return func(mw *middleware) error {
		mw.failOpen = true
		return nil
	}
}

// WithFailedAuthLimit counts failed authentications (401 invalid_token)
// per client address with l under limit, with the limiter key
// "authfail:"+address (an IPv6 client is counted by its /64). Once a client
// exceeds it, its requests get 429 with Retry-After before their key is even
// parsed, until the limiter would allow a failure again, so floods of
// made-up keys cannot reach the store unboundedly. The block is remembered
// in this process (at most 65536 addresses); with a shared limiter each
// instance learns of a block at that client's next failure. A limiter
// error does not turn a 401 into anything else.
func WithFailedAuthLimit(l Limiter, limit Limit) MiddlewareOption {
	return func(mw *middleware) error {
		if l == nil {
			return fmt.Errorf("%w: WithFailedAuthLimit(nil, …)", ErrInvalidRequest)
		}
		if err := checkLimit("WithFailedAuthLimit", limit); err != nil {
			return err
		}
		mw.failLimiter, mw.failLimit = l, limit
		return nil
	}
}

// WithOnEvent calls fn with an Event for every request the middleware
// decides, synchronously, before the response is written or the next
// handler called. fn must be fast and safe for concurrent use; log with
// slog or count with a metrics library there. Events never hold a key.
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

func checkLimit(opt string, l Limit) error {
	if l.IsZero() {
		return fmt.Errorf("%w: %s: zero Limit", ErrInvalidRequest, opt)
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%s: %w", opt, err)
	}
	return nil
}

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
//   - the query parameter of WithQueryParam, only if configured.
//
// Two credentials (two Authorization headers, or Bearer and X-API-Key even
// with the same key, or the header twice) are 400 invalid_request; none is
// 401 with a challenge and no error code. The key is then checked offline
// (length, shape, checksum, WithAllowedPrefixes), verified through the
// Manager, checked against its IP allowlist (403), and counted against its
// rate limit and quota if configured (429). A store or limiter failure is
// 503 with Retry-After, and the next handler is not called. Every refusal
// carries Cache-Control: no-store and an application/problem+json body
// (see WriteProblem and WithErrorHandler). Revoked and expired keys are
// named as such in error_description; every other key failure is the same
// generic "invalid_token".
//
// Middleware panics if an option is invalid or options contradict each
// other (WithDefaultLimit without WithLimiter, say): configuration errors
// show at start-up, not at request time. The handlers it returns are safe
// for concurrent use. On a cache hit, authentication allocates twice (the
// request's new context and the shallow copy of the request); rate limiting
// adds one (the RateLimit field value), and WithOwnerLimit and quotas one
// each (their limiter keys).
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

func newMiddleware(m *Manager, opts []MiddlewareOption) (*middleware, error) {
	if m == nil {
		return nil, errors.New("nil Manager")
	}
	mw := &middleware{m: m, header: textproto.CanonicalMIMEHeaderKey(DefaultHeader), realm: DefaultRealm, onError: WriteProblem}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("nil option")
		}
		if err := opt(mw); err != nil {
			return nil, err
		}
	}
	switch {
	case mw.limiter == nil && !mw.defaultLimit.IsZero():
		return nil, fmt.Errorf("%w: WithDefaultLimit needs WithLimiter", ErrInvalidRequest)
	case mw.limiter == nil && !mw.ownerLimit.IsZero():
		return nil, fmt.Errorf("%w: WithOwnerLimit needs WithLimiter", ErrInvalidRequest)
	case mw.counter == nil && mw.cost != nil:
		return nil, fmt.Errorf("%w: WithCost needs WithQuotaCounter", ErrInvalidRequest)
	case mw.limiter == nil && mw.failOpen && mw.counter == nil:
		return nil, fmt.Errorf("%w: WithLimiterFailOpen needs WithLimiter or WithQuotaCounter", ErrInvalidRequest)
	}
	if !mw.defaultLimit.IsZero() {
		mw.defaultPolicy = string(appendLimitPolicy(nil, policyKey, mw.defaultLimit))
		mw.policies = append(mw.policies, mw.defaultPolicy)
	}
	if !mw.ownerLimit.IsZero() {
		mw.ownerPolicy = string(appendLimitPolicy(nil, policyOwner, mw.ownerLimit))
		mw.policies = append(mw.policies, mw.ownerPolicy)
		if mw.defaultPolicy != "" {
			mw.policies = append(mw.policies, mw.defaultPolicy+", "+mw.ownerPolicy)
		}
	}
	_, mw.limiterHashes = mw.limiter.(*MemoryLimiter)
	if mw.failLimiter != nil {
		mw.blocked = newBlockList(maxBlocked)
	}
	mw.buildChallenges()
	return mw, nil
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
	descIP           = "client address not allowed for this API key"
	descScope        = "the API key lacks a required scope"
	descRate         = "rate limit exceeded"
	descQuota        = "quota exhausted"
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
}

// defaultMiddleware answers for RequireScopes and friends when the key in
// the context was put there by NewContext rather than by a Middleware.
var defaultMiddleware = func() *middleware {
	mw := &middleware{realm: DefaultRealm, onError: WriteProblem}
	mw.buildChallenges()
	return mw
}()

type authHandler struct {
	mw   *middleware
	next http.Handler
}

// request is the per-request state of authHandler, kept on the stack.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	start time.Time
	ip    netip.Addr
	ipSet bool
	kid   string // of the key presented, when it parsed
	// key is the verified key, once there is one. Its ID and Owner are
	// read from it only when a refusal or an event needs them: its fields
	// are memory the request touches for little else.
	key *Key
	err error // a limiter error passed over by WithLimiterFailOpen
}

func (q *request) clientIP(mw *middleware) netip.Addr {
	if !q.ipSet {
		q.ip, q.ipSet = clientIP(q.r, mw.proxies), true
	}
	return q.ip
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mw := h.mw
	q := request{w: w, r: r}
	if mw.onEvent != nil {
		q.start = time.Now()
	}

	// Nobody blocked, the usual case: no address to parse, no clock to read.
	if mw.blocked != nil && !mw.blocked.empty() {
		if wait := mw.blocked.wait(limiterAddr(q.clientIP(mw)), mw.m.now()); wait > 0 {
			mw.reject(&q, OutcomeLimited, "failed_auth_limit", "", &AuthError{
				Status: http.StatusTooManyRequests, Description: descFailures, RetryAfter: wait})
			return
		}
	}

	token, cred := mw.credential(r)
	switch cred {
	case credNone:
		mw.reject(&q, OutcomeNoCredential, "no_credential", mw.chNone, &AuthError{
			Status: http.StatusUnauthorized, Description: descNoCredential})
		return
	case credTwo:
		mw.reject(&q, OutcomeBadRequest, "two_credentials", mw.chTwo, &AuthError{
			Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: descTwo})
		return
	case credMalformed:
		mw.reject(&q, OutcomeBadRequest, "malformed_authorization", mw.chMalformed, &AuthError{
			Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: descMalformed})
		return
	}

	if len(token) > MaxTokenLen {
		mw.invalidKey(&q, "too_long", nil)
		return
	}
	if len(mw.prefixes) > 0 {
		t, err := Parse(token)
		if err != nil {
			mw.invalidKey(&q, reasonFor(err), err)
			return
		}
		if !slices.Contains(mw.prefixes, t.Prefix) {
			q.kid = strings.Clone(t.ID) // not a slice of the token: it holds the secret
			mw.invalidKey(&q, "wrong_prefix", nil)
			return
		}
	}

	k, err := mw.m.Verify(r.Context(), token)
	if err != nil {
		if q.kid == "" {
			if t, perr := Parse(token); perr == nil {
				// A copy: a slice of the token would keep the secret
				// alive in whatever keeps the event or error.
				q.kid = strings.Clone(t.ID)
			}
		}
		mw.verifyFailed(&q, err)
		return
	}
	q.key = k

	if len(k.AllowedIPs) > 0 && !k.AllowsIP(q.clientIP(mw)) {
		// The caller proved it holds the key, so it may learn why.
		mw.reject(&q, OutcomeForbidden, "ip_not_allowed", "", &AuthError{
			Status: http.StatusForbidden, Description: descIP})
		return
	}

	var kc *keyContext
	if mw.limiter != nil || mw.counter != nil {
		// The RateLimit fields live in the same allocation as the
		// context, made before the limiter answers: a refusal wastes it,
		// but a request let through saves two.
		lc := &limitedContext{keyContext: keyContext{Context: r.Context(), key: k, mw: mw}}
		if !mw.limit(&q, k, tokenID(token), lc) {
			return
		}
		kc = &lc.keyContext
	} else {
		kc = &keyContext{Context: r.Context(), key: k, mw: mw}
	}

	if mw.onEvent != nil {
		mw.emit(&q, Event{Outcome: OutcomeAuthenticated, KeyID: k.ID, Owner: k.Owner, Err: q.err})
	}
	h.next.ServeHTTP(w, r.WithContext(kc))
}

// tokenID returns the kid of a token that Verify accepted, sliced from the
// token. It equals the key's ID (the digest Verify checked binds the kid),
// but reading it costs nothing: the token is in cache, while the bytes of
// k.ID are a separate allocation that the request would otherwise touch
// only to hash them for the limiter.
func tokenID(token string) string {
	at := len(token) - fixedTail + 1
	return token[at : at+IDLen]
}

type credStatus uint8

const (
	credOK credStatus = iota
	credNone
	credTwo
	credMalformed
)

// credential finds the one credential in r.
func (mw *middleware) credential(r *http.Request) (string, credStatus) {
	var token string
	n := 0
	if vs := r.Header["Authorization"]; len(vs) > 0 {
		if len(vs) > 1 {
			return "", credTwo
		}
		t, status := parseBearer(vs[0])
		switch status {
		case credMalformed:
			return "", credMalformed
		case credOK:
			token = t
			n++
		}
	}
	if mw.header != "" {
		if vs := r.Header[mw.header]; len(vs) > 0 {
			if len(vs) > 1 {
				return "", credTwo
			}
			if vs[0] != "" {
				token = vs[0]
				n++
			}
		}
	}
	if mw.query != "" && r.URL.RawQuery != "" {
		if vs := r.URL.Query()[mw.query]; len(vs) > 0 {
			if len(vs) > 1 {
				return "", credTwo
			}
			if vs[0] != "" {
				token = vs[0]
				n++
			}
		}
	}
	switch n {
	case 0:
		return "", credNone
	case 1:
		return token, credOK
	}
	return "", credTwo
}

// parseBearer reads an Authorization value. It returns credNone for a
// value that is not Bearer credentials (empty, or another scheme),
// credMalformed for the Bearer scheme followed by anything but exactly one
// space and one token68, and the token otherwise.
func parseBearer(v string) (string, credStatus) {
	i := 0
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	if !strings.EqualFold(v[:i], "Bearer") {
		return "", credNone
	}
	rest := v[i:]
	if len(rest) < 2 || rest[0] != ' ' || !isToken68(rest[1:]) {
		return "", credMalformed
	}
	return rest[1:], credOK
}

// isToken68 reports whether s matches RFC 7235's
// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		if charClass[s[i]]&classToken68 == 0 {
			return false
		}
	}
	return true
}

// isTchar reports whether c may appear in an HTTP token (RFC 9110).
func isTchar(c byte) bool { return charClass[c]&classTchar != 0 }

// charClass classifies bytes for the header grammars, as a table: a
// per-byte chain of comparisons costs several times more on a 72-byte key.
var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if alnum || strings.IndexByte("-._~+/", byte(c)) >= 0 {
			t[c] |= classToken68
		}
		if alnum || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0 {
			t[c] |= classTchar
		}
	}
	return t
}()

const (
	classToken68 = 1 << iota
	classTchar
)

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return s != ""
}

// reasonFor names why Verify or Parse refused a key, for Event.Reason.
func reasonFor(err error) string {
	switch {
	case errors.Is(err, ErrMalformedKey):
		return "malformed"
	case errors.Is(err, ErrChecksum):
		return "checksum"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrNotYetValid):
		return "not_yet_valid"
	}
	return "invalid"
}

func (mw *middleware) verifyFailed(q *request, err error) {
	switch {
	case errors.Is(err, ErrRevoked):
		mw.reject(q, OutcomeInvalidKey, "revoked", mw.chRevoked, &AuthError{
			Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descRevoked, KeyID: q.kid, Err: err})
	case errors.Is(err, ErrExpired):
		mw.reject(q, OutcomeInvalidKey, "expired", mw.chExpired, &AuthError{
			Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descExpired, KeyID: q.kid, Err: err})
	case errors.Is(err, ErrInvalidKey), errors.Is(err, ErrNotYetValid):
		mw.invalidKey(q, reasonFor(err), err)
	case isContextError(err) && q.r.Context().Err() != nil:
		// The client is gone; what we write is for the record. It must
		// not be a 200, which is what writing nothing would produce.
		mw.unavailable(q, "canceled", err)
	default: // ErrUnavailable, or a failure nobody classified
		mw.unavailable(q, "store", err)
	}
}

// invalidKey refuses a key with the generic 401 invalid_token, and counts
// the failure against the client for WithFailedAuthLimit.
func (mw *middleware) invalidKey(q *request, reason string, err error) {
	if mw.failLimiter != nil {
		addr := limiterAddr(q.clientIP(mw))
		d, lerr := mw.failLimiter.Allow(q.r.Context(), "authfail:"+addrKey(addr), mw.failLimit)
		if lerr == nil && !d.Allowed {
			wait := d.RetryAfter
			if wait <= 0 {
				wait = time.Second
			}
			now := mw.m.now()
			mw.blocked.add(addr, now, now.Add(wait))
			mw.reject(q, OutcomeLimited, "failed_auth_limit", "", &AuthError{
				Status: http.StatusTooManyRequests, Description: descFailures, RetryAfter: wait, KeyID: q.kid, Err: err})
			return
		}
	}
	mw.reject(q, OutcomeInvalidKey, reason, mw.chInvalid, &AuthError{
		Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: descInvalid, KeyID: q.kid, Err: err})
}

func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}

func (mw *middleware) unavailable(q *request, reason string, err error) {
	mw.reject(q, OutcomeUnavailable, reason, "", &AuthError{
		Status: http.StatusServiceUnavailable, Description: descUnavailable, RetryAfter: UnavailableRetryAfter, Err: err})
}

// reject sets the protocol headers, hands e to the error handler and
// reports the event.
func (mw *middleware) reject(q *request, outcome Outcome, reason, challenge string, e *AuthError) {
	e.Reason = reason
	owner := ""
	if q.key != nil {
		owner = q.key.Owner
	}
	if e.KeyID == "" {
		e.KeyID = q.kid
		if q.key != nil {
			e.KeyID = q.key.ID
		}
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
	if !q.start.IsZero() {
		ev.Duration = time.Since(q.start)
	}
	mw.onEvent(ev)
}

// contextKey is the key of the *keyContext in a request's context.
type contextKey struct{}

// keyContext carries the verified key, and the middleware that verified
// it so that RequireScopes answers in the same format and reports to the
// same hook. It is one allocation where context.WithValue of a struct
// holding both would be two.
type keyContext struct {
	context.Context
	key *Key
	mw  *middleware // nil when made by NewContext
}

func (c *keyContext) Value(k any) any {
	if _, ok := k.(contextKey); ok {
		return c
	}
	return c.Context.Value(k)
}

func (c *keyContext) String() string { return "apikey.keyContext" }

// limitedContext is a keyContext with room for the response's
// RateLimit-Policy and RateLimit field values, so that a rate-limited
// request allocates them with its context. The request carries a pointer
// to the embedded keyContext, which keeps the whole struct alive; the
// header map refers to fields, which is never written again once set.
type limitedContext struct {
	keyContext
	fields [2]string
}

// FromContext returns the key that authenticated the request whose context
// is ctx, as put there by Manager.Middleware or NewContext. The Key is
// shared and must not be modified.
func FromContext(ctx context.Context) (*Key, bool) {
	c, _ := ctx.Value(contextKey{}).(*keyContext)
	if c == nil || c.key == nil {
		return nil, false
	}
	return c.key, true
}

// NewContext returns a copy of ctx carrying k, as Manager.Middleware does:
// for tests of handlers that read FromContext, or for other transports
// (gRPC, queues) that verify keys themselves.
func NewContext(ctx context.Context, k *Key) context.Context {
	return &keyContext{Context: ctx, key: k}
}

// RequireScopes returns middleware that lets a request through only if the
// key in its context (see Manager.Middleware) holds every one of scopes, as
// HasScope decides. Otherwise it answers 403 with
// error="insufficient_scope" and the missing scopes in the challenge's
// scope attribute. A request with no key in its context gets 401, so
// middleware applied in the wrong order fails closed. Refusals go to the
// authenticating middleware's error handler and event hook.
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
		return append([]string(nil), scopes...)
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
	return append([]string(nil), scopes...)
}

// requireFunc builds scope middleware around missing, which returns nil
// when the granted scopes suffice and the scopes to ask for otherwise.
func requireFunc(missing func(granted []string) []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("apikey: Require: nil next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := r.Context().Value(contextKey{}).(*keyContext)
			mw := defaultMiddleware
			if c != nil && c.mw != nil {
				mw = c.mw
			}
			q := request{w: w, r: r}
			if mw.onEvent != nil {
				q.start = time.Now()
			}
			if c == nil || c.key == nil {
				mw.reject(&q, OutcomeNoCredential, "no_credential", mw.chNone, &AuthError{
					Status: http.StatusUnauthorized, Description: descNoCredential})
				return
			}
			if m := missing(c.key.Scopes); m != nil {
				q.key = c.key
				mw.reject(&q, OutcomeForbidden, "insufficient_scope",
					challenge(mw.realm, CodeInsufficientScope, "", m), &AuthError{
						Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: descScope, Scopes: m})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
