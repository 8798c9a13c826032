package apikeygrpc

import (
	"net/http"
	"strings"

	"github.com/apikeykit/apikey"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// descUnlisted is the message of a call to a method in neither the scopes
// map nor WithPublicMethods.
const descUnlisted = "method not open to API keys"

// ReasonUnlistedMethod is the Reason of the refusal of a call to a method
// in neither the scopes map nor WithPublicMethods (PermissionDenied),
// reported to WithOnEvent and WithOnRefusal.
const ReasonUnlistedMethod apikey.Reason = "unlisted_method"

// refusalStatus is the gRPC status of a refusal: its code (see
// NewInterceptor), the client-facing description as message, and
// RetryInfo when the client should wait.
func refusalStatus(e *apikey.AuthError) *status.Status {
	msg := e.Description
	if len(e.Scopes) > 0 {
		msg += ": " + strings.Join(e.Scopes, " ")
	}
	st := status.New(code(e.Status), msg)
	if e.RetryAfter > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}); err == nil {
			st = d
		}
	}
	return st
}

// code maps the middleware's HTTP status to a gRPC code. A request the
// middleware calls bad (two credentials, a malformed Authorization value)
// is Unauthenticated, not InvalidArgument: it is about the credential,
// not the call's arguments, and clients that refresh credentials on
// Unauthenticated should do so here too.
func code(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusUnauthorized, http.StatusBadRequest:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	// No other status is a refusal; fail closed all the same.
	return codes.Internal
}

// responseMetadata is the header metadata of a call let through: the
// RateLimit fields, when the middleware set them.
func responseMetadata(h http.Header) metadata.MD {
	md := make(metadata.MD, 2)
	copyFields(md, h, "Ratelimit", "Ratelimit-Policy")
	return md
}

// refusalMetadata is the trailer metadata of a refusal.
func refusalMetadata(h http.Header) metadata.MD {
	if len(h) == 0 {
		return nil
	}
	md := make(metadata.MD, 4)
	copyFields(md, h, "Www-Authenticate", "Retry-After", "Ratelimit", "Ratelimit-Policy")
	return md
}

func copyFields(md metadata.MD, h http.Header, names ...string) {
	for _, name := range names {
		if v := h[name]; len(v) > 0 {
			md[strings.ToLower(name)] = v
		}
	}
}
