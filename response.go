package apikey

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RFC 6750 error codes, as they appear in AuthError.Code and in the
// WWW-Authenticate challenge.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// AuthError describes a request the middleware refused. It is what an
// error handler set with WithErrorHandler receives; everything in it except
// Err and Reason is safe to show the client. It never holds the key.
type AuthError struct {
	// Status is the HTTP status: 400, 401, 403, 429 or 503.
	Status int
	// Code is the RFC 6750 error code (CodeInvalidRequest,
	// CodeInvalidToken, CodeInsufficientScope), or "" when the request
	// carried no credential or the refusal is not about the token (an IP
	// allowlist, a rate limit, an outage).
	Code string
	// Description is a short English sentence for the client. It is
	// generic on purpose: it names a revoked or expired key as such (the
	// caller held the real key) and nothing else about why a key failed.
	Description string
	// Scopes lists the scopes the caller lacks, for insufficient_scope.
	Scopes []string
	// RetryAfter is how long the client should wait before retrying (429
	// and 503), zero otherwise.
	RetryAfter time.Duration
	// Policy names the policy that refused a 429, as its item in the
	// RateLimit-Policy field: "key" or "owner" (a rate limit), "quota" or
	// "owner-quota", "credits" or "owner-credits"; "" for other refusals
	// (Limits.FailedAuth's 429 included, which advertises no policy).
	// WriteProblem lists it in the problem's violated-policies.
	Policy string
	// KeyID is the kid of the key presented, when it parsed; "" otherwise.
	// It is public: logs may show it, and so may responses.
	KeyID string
	// Reason is the precise, machine-readable cause, as in Event.Reason,
	// for logs; a client must not learn it.
	Reason Reason
	// Err is the underlying error, if any (a Verify, store or limiter
	// error), for logs; a client must not see it.
	Err error
}

// Error returns a message with the status, code and reason, for logs.
func (e *AuthError) Error() string {
	s := "apikey: " + strconv.Itoa(e.Status) + " " + string(e.Reason)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *AuthError) Unwrap() error { return e.Err }

// ProblemQuotaExceeded is the problem type of a 429 for a policy in the
// RateLimit-Policy field (a rate limit, a quota or a credit balance): the
// "Quota Exceeded" problem type of draft-ietf-httpapi-ratelimit-headers,
// whose extension member "violated-policies" lists the policies the
// request exceeded.
const ProblemQuotaExceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"

// WriteProblem is the default error handler: it writes e as an RFC 9457
// problem document (Content-Type application/problem+json) with the members
// type, title (the status text), status and detail (the Description, with
// the missing scopes for insufficient_scope). The type is
// ProblemQuotaExceeded for a 429 that names its Policy, with the member
// "violated-policies" holding it:
//
//	{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded",
//	 "title":"Too Many Requests","status":429,"detail":"credits exhausted",
//	 "violated-policies":["credits"]}
//
// and "about:blank" for every other refusal. The middleware has already
// set WWW-Authenticate, Retry-After, the RateLimit fields and
// Cache-Control: no-store on w.Header(); WriteProblem adds the content
// headers, the status and the body. Custom error handlers may call it for
// the cases they do not handle themselves.
func WriteProblem(w http.ResponseWriter, r *http.Request, e *AuthError) {
	var buf [320]byte
	b := append(buf[:0], `{"type":`...)
	quota := e.Status == http.StatusTooManyRequests && e.Policy != ""
	if quota {
		b = appendJSONString(b, ProblemQuotaExceeded)
	} else {
		b = append(b, `"about:blank"`...)
	}
	b = append(b, `,"title":`...)
	b = appendJSONString(b, http.StatusText(e.Status))
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"detail":`...)
	if len(e.Scopes) > 0 {
		b = appendJSONString(b, e.Description+": "+strings.Join(e.Scopes, " "))
	} else {
		b = appendJSONString(b, e.Description)
	}
	if quota {
		b = append(b, `,"violated-policies":[`...)
		b = appendJSONString(b, e.Policy)
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// appendJSONString appends s as a JSON string. Descriptions are this
// package's own ASCII sentences and scope names; escaping is for safety,
// not for common use.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// challenge returns an RFC 6750 WWW-Authenticate value:
//
//	Bearer realm="api", error="invalid_token", error_description="API key revoked"
//
// code, description and scopes are omitted when empty. Every value it quotes
// is either validated at construction (realm) or this package's own text
// (descriptions, validated scopes), so none contains '"' or '\'.
func challenge(realm, code, description string, scopes []string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(realm)
	b.WriteByte('"')
	if code != "" {
		b.WriteString(`, error="`)
		b.WriteString(code)
		b.WriteByte('"')
	}
	if description != "" {
		b.WriteString(`, error_description="`)
		b.WriteString(description)
		b.WriteByte('"')
	}
	if len(scopes) > 0 {
		b.WriteString(`, scope="`)
		for i, s := range scopes {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
		}
		b.WriteByte('"')
	}
	return b.String()
}

// isQuotable reports whether s can be written inside a quoted-string
// without escaping: printable ASCII other than '"' and '\'.
func isQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// retryAfterSeconds rounds d up to whole seconds, at least 1: Retry-After
// has one-second resolution, and rounding down would invite a retry that is
// refused again.
func retryAfterSeconds(d time.Duration) int64 { return max(ceilSeconds(d), 1) }

// ceilSeconds rounds d up to whole seconds, with 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
