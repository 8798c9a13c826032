package portal

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/apikeykit/apikey"
)

// Problem is the body of every error the JSON API answers, an RFC 9457
// problem document (Content-Type application/problem+json). Field names
// the request member that was refused, when one was: "name", "scopes",
// "expires_in", "expires_at", "allowed_ips", "prefix", "grace", "cursor",
// "limit", or the member a body may not carry.
type Problem struct {
	Type   string `json:"type"` // always "about:blank"
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
}

// problemError is a refusal on its way to the client.
type problemError struct {
	status int
	field  string
	detail string
}

func (e *problemError) Error() string { return e.detail }

// badRequest refuses the request member field with detail.
func badRequest(field, detail string) error {
	return &problemError{status: http.StatusBadRequest, field: field, detail: detail}
}

// errNotFound is the answer for a missing key and for another owner's key
// alike, so that IDs cannot be probed.
var errNotFound = &problemError{status: http.StatusNotFound, detail: "no such key"}

// writeError answers err as a problem document. Errors from the Manager
// are mapped by kind; a backend failure is 503 and is logged, since the
// client is told nothing about it.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *problemError
	switch {
	case errors.As(err, &p):
	case errors.Is(err, apikey.ErrNotFound):
		p = errNotFound
	case errors.Is(err, apikey.ErrRevoked):
		p = &problemError{status: http.StatusBadRequest, detail: "the key is revoked"}
	case errors.Is(err, apikey.ErrExpired):
		p = &problemError{status: http.StatusBadRequest, detail: "the key has expired"}
	case errors.Is(err, apikey.ErrSuspended):
		p = &problemError{status: http.StatusBadRequest, detail: "the key is suspended"}
	case errors.Is(err, apikey.ErrNotYetValid):
		p = &problemError{status: http.StatusBadRequest, detail: "the key is not valid yet"}
	case errors.Is(err, apikey.ErrConflict):
		p = &problemError{status: http.StatusBadRequest, detail: "the key was already rotated"}
	case errors.Is(err, apikey.ErrInvalidRequest), errors.Is(err, apikey.ErrInvalidScope), errors.Is(err, apikey.ErrInvalidPrefix):
		p = &problemError{status: http.StatusBadRequest, detail: err.Error()}
	default:
		slog.ErrorContext(r.Context(), "portal: request failed", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		w.Header().Set("Retry-After", "5")
		p = &problemError{status: http.StatusServiceUnavailable, detail: "the key store is unavailable; try again shortly"}
	}
	writeProblem(w, p.status, p.field, p.detail)
}

func writeProblem(w http.ResponseWriter, status int, field, detail string) {
	body, _ := json.Marshal(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Field: field})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only values of this package are written; cannot happen
		writeProblem(w, http.StatusInternalServerError, "", "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
