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
	OutcomeAnonymous     Outcome = "anonymous"     // the next handler is called without a key: WithAnonymous, WithCORSPreflight
	OutcomeNoCredential  Outcome = "no_credential" // 401 without error code
	OutcomeBadRequest    Outcome = "bad_request"   // 400 invalid_request
	OutcomeInvalidKey    Outcome = "invalid_key"   // 401 invalid_token
	OutcomeForbidden     Outcome = "forbidden"     // 403: IP allowlist or missing scope
	OutcomeLimited       Outcome = "limited"       // 429: rate limit, quota, credits or failed authentications
	OutcomeUnavailable   Outcome = "unavailable"   // 503: store or limiter failure, or the client gave up
	// OutcomeQuotaThreshold is not a request's decision but an extra Event:
	// the request crossed a fraction of a quota or a credit balance
	// (WithQuotaThresholds).
	OutcomeQuotaThreshold Outcome = "quota_threshold"
)

// Reason is the precise cause of a middleware decision, for operators:
// Event.Reason and AuthError.Reason. Clients are told far less (see
// AuthError). New reasons may be added.
type Reason string

// Reasons reported in Event.Reason and AuthError.Reason. An authenticated
// request has the Reason ""; an anonymous one no_credential or preflight.
const (
	ReasonNoCredential           Reason = "no_credential"           // 401: no key in the request
	ReasonTwoCredentials         Reason = "two_credentials"         // 400: more than one key
	ReasonMalformedAuthorization Reason = "malformed_authorization" // 400: a Bearer header of the wrong shape
	ReasonTooLong                Reason = "too_long"                // 401: longer than MaxTokenLen
	ReasonMalformed              Reason = "malformed"               // 401: not of the token's shape
	ReasonChecksum               Reason = "checksum"                // 401: wrong checksum
	ReasonWrongPrefix            Reason = "wrong_prefix"            // 401: a prefix WithAllowedPrefixes refuses
	ReasonInvalid                Reason = "invalid"                 // 401: unknown kid or wrong secret
	ReasonRevoked                Reason = "revoked"                 // 401
	ReasonExpired                Reason = "expired"                 // 401
	ReasonSuspended              Reason = "suspended"               // 401: see Manager.Suspend
	ReasonNotYetValid            Reason = "not_yet_valid"           // 401: before the key's NotBefore
	ReasonIPNotAllowed           Reason = "ip_not_allowed"          // 403: client address not in AllowedIPs
	ReasonInsufficientScope      Reason = "insufficient_scope"      // 403: from RequireScopes, RequireAnyScope, Require
	ReasonRateLimit              Reason = "rate_limit"              // 429: the key's rate limit
	ReasonOwnerRateLimit         Reason = "owner_rate_limit"        // 429: Limits.PerOwner
	ReasonQuota                  Reason = "quota"                   // 429: the key's quota
	ReasonOwnerQuota             Reason = "owner_quota"             // 429: Limits.PerOwnerQuota
	ReasonCredits                Reason = "credits"                 // 429: the key's credit balance (Key.Credits) cannot hold the cost
	ReasonOwnerCredits           Reason = "owner_credits"           // 429: Limits.PerOwnerCredits cannot hold the cost
	ReasonQuotaThreshold         Reason = "quota_threshold"         // a threshold crossed: see WithQuotaThresholds
	ReasonFailedAuthLimit        Reason = "failed_auth_limit"       // 429: Limits.FailedAuth
	ReasonStore                  Reason = "store"                   // 503: the Store failed
	ReasonLimiter                Reason = "limiter"                 // 503: the Limiter or Counter failed
	ReasonCanceled               Reason = "canceled"                // 503: the client gave up first
	ReasonLegacyBusy             Reason = "legacy_busy"             // 503: too many slow legacy hashes at once (ErrLegacyBusy)
	ReasonPreflight              Reason = "preflight"               // let through: a CORS preflight (WithCORSPreflight)
)

// Event reports the decision on one request, for logging and metrics:
// the middleware's, or that of RequireScopes, RequireAnyScope or Require
// behind it, which replaces it. Each request is reported once (see
// WithOnEvent). It never holds the key or any part of its secret.
//
// Reason is the precise cause; see the Reason constants.
type Event struct {
	Outcome Outcome
	Reason  Reason
	Status  int    // HTTP status written, or 0 when the next handler is called
	KeyID   string // kid of the key presented, when it parsed
	Owner   string // owner of the key, once it verified
	// ClientIP is the client address as the middleware determines it (see
	// WithTrustedProxies); the zero Addr if RemoteAddr holds none.
	ClientIP netip.Addr
	Method   string
	Path     string // r.URL.Path: never the query, where a key may travel
	// Duration is the time the middleware spent deciding (plus, for a
	// refusal by RequireScopes and friends, theirs), not including the
	// handlers behind it.
	Duration time.Duration
	// Err is the underlying error, if any: Verify's error for a refused
	// key (ErrChecksum, ErrRevoked, ...), the store or limiter error for
	// "store", "limiter" and "canceled", the error of a quota refund that
	// failed for a refusal by RequireScopes and friends, or the limiter
	// error that Limits.FailOpen let pass. It never holds a key.
	Err error
	// Policy and Threshold describe a crossing (OutcomeQuotaThreshold):
	// the policy name, "quota", "owner-quota", "credits" or
	// "owner-credits", and the fraction of its Limit (a balance's
	// capacity) crossed. They are zero in other Events.
	Policy    string
	Threshold float64
}
