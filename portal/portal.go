// Package portal is the self-service page and JSON API through which a
// service's own customers manage their API keys: create a key and copy it
// once, list, rename, rotate and revoke their keys.
//
// The host application authenticates its users (its session cookie, OIDC,
// …) and tells the portal, with a function of the request, which owner's
// keys the request may manage; the portal never sees a password. What a
// customer may do is a policy set with options: the scopes they may grant,
// how many keys they may hold, how long keys live, whether an IP allowlist
// is required, which prefixes they may choose, and how long a rotated key
// keeps working.
//
// Mount the handler under any prefix with http.StripPrefix:
//
//	h, err := portal.New(m, owner, portal.WithGrantableScopes("orders:*"))
//	mux.Handle("/portal/", http.StripPrefix("/portal", h))
//
// It serves, relative to that prefix:
//
//	GET   /                       the page (html/template, embedded CSS and JS, no CDN)
//	GET   /api/keys               {"keys":[view…],"next_cursor":"…"}, newest first
//	POST  /api/keys               {name, scopes, expires_in | expires_at, allowed_ips, prefix} → 201 {"key":view,"token":"…"}
//	GET   /api/keys/{id}          {"key":view}
//	PATCH /api/keys/{id}          {name, scopes, allowed_ips} → {"key":view}
//	POST  /api/keys/{id}/rotate   {grace} → 201 {"key":view,"token":"…","old_key":view}
//	POST  /api/keys/{id}/revoke   → {"key":view}; revoking twice is 200 as well
//	GET   /api/usage[?month=YYYY-MM]  {"month":"…","requests":n,"units":n,"keys":[{"key_id","requests","units"}…]}
//
// Usage is read with Manager.Usage, per calendar month in UTC: the page
// shows the current month's total for the owner and each key's figures,
// and GET api/usage gives any month's, the total and every key of the
// owner (zero for a key not used). It costs one query for the total and
// one per key that can have been used in the month (not revoked or expired
// before it began). When the Store records no usage, the page shows none
// and the API answers 501; when it fails, the page says usage is
// unavailable and the API answers 503.
//
// A view is an apikey.KeyView. Only the create and rotate responses carry a
// full key. Another owner's key is a 404, exactly like a missing one.
// Errors are RFC 9457 problem documents (see Problem) naming the refused
// member; bad input changes nothing. Requests that change state must be
// JSON (Content-Type: application/json, at most 64 KiB, no unknown
// members) and are refused with 403 when they come from another origin
// (http.CrossOriginProtection). Every response carries Cache-Control:
// no-store, Referrer-Policy: no-referrer, X-Content-Type-Options: nosniff
// and a Content-Security-Policy that allows only the portal's own script
// and style and no framing.
//
// Every change is reported to an audit hook (WithAudit; slog by default).
// The handler is safe for concurrent use.
package portal

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/apikeykit/apikey"
)

// ErrNoOwner may be returned by the owner function of New for a request
// that carries no signed-in user; any error of that function gives 401.
var ErrNoOwner = errors.New("portal: not signed in")

// contentSecurityPolicy allows the portal's own script, style and images,
// fetches to its own origin, and nothing else: no inline script or style,
// no framing, no plugin, no form posted elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// handler is the portal: its routes, its policy and its Manager.
type handler struct {
	m      *apikey.Manager
	owner  func(*http.Request) (string, error)
	cfg    config
	routes http.Handler

	// createMu serializes count-then-create per owner, so that WithMaxKeys
	// holds within this process; owners share a lock by hash, so that
	// one owner's creates never wait on more than a few others'.
	createMu [64]sync.Mutex
}

// createLock returns the lock serializing owner's creates.
func (h *handler) createLock(owner string) *sync.Mutex {
	f := fnv.New32a()
	f.Write([]byte(owner))
	return &h.createMu[f.Sum32()%uint32(len(h.createMu))]
}

// New returns the portal over m. owner maps a request to the owner whose
// keys it may manage; an error from it (ErrNoOwner, or the host's own) or
// an empty owner is answered with 401, and nothing else happens. Options
// set the policy; each states its default.
func New(m *apikey.Manager, owner func(*http.Request) (string, error), opts ...Option) (http.Handler, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil Manager", ErrInvalidOption)
	}
	if owner == nil {
		return nil, fmt.Errorf("%w: nil owner function", ErrInvalidOption)
	}
	h := &handler{m: m, owner: owner, cfg: defaultConfig(m)}
	for _, opt := range opts {
		if err := opt(&h.cfg); err != nil {
			return nil, err
		}
	}
	page, err := newPage()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", h.pageOwner(page.serve(h)))
	mux.HandleFunc("GET /static/{file}", serveStatic)
	mux.Handle("GET /api/keys", h.withOwner(h.list))
	mux.Handle("POST /api/keys", h.withOwner(h.create))
	mux.Handle("GET /api/keys/{id}", h.withOwner(h.get))
	mux.Handle("PATCH /api/keys/{id}", h.withOwner(h.patch))
	mux.Handle("POST /api/keys/{id}/rotate", h.withOwner(h.rotate))
	mux.Handle("POST /api/keys/{id}/revoke", h.withOwner(h.revoke))
	mux.Handle("GET /api/usage", h.withOwner(h.usage))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "", "no such endpoint")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusForbidden, "", "cross-origin request refused")
	}))
	h.routes = cop.Handler(mux)
	return h, nil
}

// ServeHTTP sets the security headers every response carries and routes r.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.routes.ServeHTTP(w, r)
}

// ownerFunc is a handler of a signed-in owner's request.
type ownerFunc func(w http.ResponseWriter, r *http.Request, owner string)

// withOwner answers 401 unless the host names the request's owner.
func (h *handler) withOwner(next ownerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		owner, err := h.owner(r)
		if err != nil || owner == "" {
			writeProblem(w, http.StatusUnauthorized, "", "sign in to manage your API keys")
			return
		}
		next(w, r, owner)
	})
}

// pageOwner is withOwner for the page: a browser that is not signed in
// gets a short page, not a problem document. Hosts usually send it to
// their sign-in before it gets here.
func (h *handler) pageOwner(next ownerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		owner, err := h.owner(r)
		if err != nil || owner == "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "Sign in to manage your API keys.\n")
			return
		}
		next(w, r, owner)
	})
}

// ownKey returns key id if owner holds it; a key of another owner, a
// missing key and an ID that is not one are the same 404.
func (h *handler) ownKey(ctx context.Context, owner, id string) (*apikey.Key, error) {
	k, err := h.m.Get(ctx, id)
	switch {
	case errors.Is(err, apikey.ErrInvalidRequest), errors.Is(err, apikey.ErrNotFound):
		return nil, errNotFound
	case err != nil:
		return nil, err
	case k.Owner != owner:
		return nil, errNotFound
	}
	return k, nil
}

// ownerKeys returns all of owner's keys, newest first. Records that no
// longer decode are left out and reported to the log by the Manager's
// error; the customer sees the others.
func (h *handler) ownerKeys(ctx context.Context, owner string) ([]*apikey.Key, error) {
	var all []*apikey.Key
	opts := apikey.ListOptions{Owner: owner, Limit: apikey.MaxListLimit}
	for {
		keys, next, err := h.m.List(ctx, opts)
		if err != nil && !errors.Is(err, apikey.ErrCorruptRecord) {
			return nil, err
		}
		all = append(all, keys...)
		if next == "" {
			break
		}
		opts.Cursor = next
	}
	slices.SortFunc(all, newestFirst)
	return all, nil
}

// newestFirst orders keys by creation time, newest first, then by ID.
func newestFirst(a, b *apikey.Key) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	switch {
	case a.ID > b.ID:
		return -1
	case a.ID < b.ID:
		return 1
	}
	return 0
}

// live reports whether k counts against WithMaxKeys at now: not revoked,
// not expired, not replaced by a rotation.
func live(k *apikey.Key, now time.Time) bool {
	if k.ReplacedBy != "" {
		return false
	}
	err := k.Status(now)
	return !errors.Is(err, apikey.ErrRevoked) && !errors.Is(err, apikey.ErrExpired)
}

// audit reports a stored change.
func (h *handler) audit(r *http.Request, owner, action, id, newID string) {
	e := AuditEvent{
		Time:     h.cfg.now().UTC(),
		Owner:    owner,
		Action:   action,
		KeyID:    id,
		NewKeyID: newID,
		ClientIP: apikey.ClientIP(r, h.cfg.trusted...),
	}
	if h.cfg.actor != nil {
		e.Actor = h.cfg.actor(r)
	}
	h.cfg.audit(e)
}
