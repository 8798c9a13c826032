package apikey

import (
	"net/netip"
	"time"
)

// Outcome classifies what the middleware did with a request.
type Outcome string

// Outcomes reported in Event.Outcome.
const (
	OutcomeAuthenticated Outcome = "authenticated" // the next handler is called
	OutcomeNoCredential  Outcome = "no_credential" // 401 without error code
	OutcomeBadRequest    Outcome = "bad_request"   // 400 invalid_request
	OutcomeInvalidKey    Outcome = "invalid_key"   // 401 invalid_token
	OutcomeForbidden     Outcome = "forbidden"     // 403: IP allowlist or missing scope
	OutcomeLimited       Outcome = "limited"       // 429: rate limit, quota or failed authentications
	OutcomeUnavailable   Outcome = "unavailable"   // 503: store or limiter failure, or the client gave up
)

// Event reports one decision of the middleware (or of RequireScopes,
// RequireAnyScope and Require behind it), for logging and metrics. It never
// holds the key or any part of its secret.
//
// Reason is the precise cause, for operators: "" on success, or one of
// "no_credential", "two_credentials", "malformed_authorization",
// "too_long", "malformed", "checksum", "wrong_prefix", "invalid"
// (unknown kid or wrong secret), "revoked", "expired", "not_yet_valid",
// "ip_not_allowed", "insufficient_scope", "rate_limit", "owner_rate_limit",
// "quota", "failed_auth_limit", "store", "limiter", "canceled". Clients are
// told far less; see AuthError.
type Event struct {
	Outcome Outcome
	Reason  string
	Status  int    // HTTP status written, or 0 when the next handler is called
	KeyID   string // kid of the key presented, when it parsed
	Owner   string // owner of the key, once it verified
	// ClientIP is the client address as the middleware determines it (see
	// WithTrustedProxies); the zero Addr if RemoteAddr holds none.
	ClientIP netip.Addr
	Method   string
	Path     string // r.URL.Path: never the query, where a key may travel
	// Duration is the time the middleware spent deciding, not including
	// the next handler.
	Duration time.Duration
	// Err is the underlying error, if any: Verify's error for a refused
	// key (ErrChecksum, ErrRevoked, ...), the store or limiter error for
	// "store", "limiter" and "canceled", or, on success, the limiter error
	// that WithLimiterFailOpen let pass. It never holds a key.
	Err error
}
