package apikeyotel

import (
	"context"
	"net/http"

	"github.com/apikeykit/apikey"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span event names.
const (
	EventAuthenticated = "apikey.authenticated"
	EventRefused       = "apikey.refused"
)

// ErrorHandler returns an error handler for apikey.WithErrorHandler that
// annotates the request's span (trace.SpanFromContext) with the refusal,
// as AnnotateRefusal does, then calls next (apikey.WriteProblem if nil).
// Refusals by apikey.Require and friends go through it too.
func ErrorHandler(next func(http.ResponseWriter, *http.Request, *apikey.AuthError)) func(http.ResponseWriter, *http.Request, *apikey.AuthError) {
	if next == nil {
		next = apikey.WriteProblem
	}
	return func(w http.ResponseWriter, r *http.Request, e *apikey.AuthError) {
		AnnotateRefusal(r.Context(), e)
		next(w, r, e)
	}
}

// Handler returns next behind a handler that annotates the request's span
// with the key in its context, as AnnotateKey does. Put it behind the
// middleware: m.Middleware(opts...)(apikeyotel.Handler(mux)).
func Handler(next http.Handler) http.Handler { return &spanHandler{next: next} }

type spanHandler struct{ next http.Handler }

func (h *spanHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	AnnotateKey(r.Context())
	h.next.ServeHTTP(w, r)
}

// AnnotateKey sets the attributes apikey.key_id, apikey.owner and
// apikey.outcome ("authenticated", or "anonymous" with no key in ctx) on
// ctx's span and adds the event apikey.authenticated, for a request or
// call the middleware let through. It does nothing when the span is not
// recording. It never records a secret: the key ID is the key's public
// part.
func AnnotateKey(ctx context.Context) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	k, ok := apikey.FromContext(ctx)
	if !ok {
		span.SetAttributes(KeyOutcome.String(string(apikey.OutcomeAnonymous)))
		return
	}
	attrs := []attribute.KeyValue{
		KeyKeyID.String(k.ID), KeyOwner.String(k.Owner), KeyOutcome.String(string(apikey.OutcomeAuthenticated)),
	}
	span.SetAttributes(attrs...)
	span.AddEvent(EventAuthenticated, trace.WithAttributes(attrs...))
}

// AnnotateRefusal sets apikey.outcome, apikey.reason, apikey.status and,
// when the key parsed, apikey.key_id on ctx's span, and adds the event
// apikey.refused with them, for a refused request or call. The span's
// status is left alone: a refusal is the service working. Nothing from
// e.Err is recorded, nor anything else a client sent.
func AnnotateRefusal(ctx context.Context, e *apikey.AuthError) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() || e == nil {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, KeyOutcome.String(outcomeOf(e)), KeyReason.String(string(e.Reason)), KeyStatus.Int(e.Status))
	if e.KeyID != "" {
		attrs = append(attrs, KeyKeyID.String(e.KeyID))
	}
	span.SetAttributes(attrs...)
	span.AddEvent(EventRefused, trace.WithAttributes(attrs...))
}

// outcomeOf is the Event outcome of a refusal, from its status and code.
func outcomeOf(e *apikey.AuthError) string {
	switch e.Status {
	case http.StatusBadRequest:
		return string(apikey.OutcomeBadRequest)
	case http.StatusUnauthorized:
		if e.Code == "" {
			return string(apikey.OutcomeNoCredential)
		}
		return string(apikey.OutcomeInvalidKey)
	case http.StatusForbidden:
		return string(apikey.OutcomeForbidden)
	case http.StatusTooManyRequests:
		return string(apikey.OutcomeLimited)
	case http.StatusServiceUnavailable:
		return string(apikey.OutcomeUnavailable)
	}
	return "refused"
}
