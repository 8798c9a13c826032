package portal

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/apikeykit/apikey"
)

// Page sizes of GET api/keys.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// keyResponse is the body of every answer about one key. Token is set
// only in the answers to create and rotate, and OldKey only in rotate's.
type keyResponse struct {
	Key    apikey.KeyView  `json:"key"`
	Token  string          `json:"token,omitempty"`
	OldKey *apikey.KeyView `json:"old_key,omitempty"`
}

type listResponse struct {
	Keys       []apikey.KeyView `json:"keys"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// list answers GET api/keys: the owner's keys, newest first, a page at a
// time. The cursor is the ID of the last key of the previous page; keys
// are never deleted, so it stays valid, and keys created meanwhile come
// before it.
func (h *handler) list(w http.ResponseWriter, r *http.Request, owner string) {
	q := r.URL.Query()
	size := defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			writeError(w, r, badRequest("limit", fmt.Sprintf("limit: want 1 to %d", maxPageSize)))
			return
		}
		size = n
	}
	keys, err := h.ownerKeys(r.Context(), owner)
	if err != nil {
		writeError(w, r, err)
		return
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		i := slices.IndexFunc(keys, func(k *apikey.Key) bool { return k.ID == c })
		if i < 0 {
			writeError(w, r, badRequest("cursor", "cursor: not a cursor of this list"))
			return
		}
		start = i + 1
	}
	page := keys[start:min(start+size, len(keys))]
	now := h.cfg.now()
	resp := listResponse{Keys: make([]apikey.KeyView, 0, len(page))}
	for _, k := range page {
		resp.Keys = append(resp.Keys, k.View(now))
	}
	if start+size < len(keys) {
		resp.NextCursor = page[len(page)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// get answers GET api/keys/{id}.
func (h *handler) get(w http.ResponseWriter, r *http.Request, owner string) {
	k, err := h.ownKey(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keyResponse{Key: k.View(h.cfg.now())})
}

// createRequest is the body of POST api/keys. ExpiresIn and ExpiresAt
// are alternatives; without either, the key gets the default lifetime.
type createRequest struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	ExpiresIn  *string  `json:"expires_in"` // "30d", "720h", or "never" when the policy has no maximum
	ExpiresAt  *string  `json:"expires_at"` // RFC 3339
	AllowedIPs []string `json:"allowed_ips"`
	Prefix     string   `json:"prefix"`
}

// create answers POST api/keys.
func (h *handler) create(w http.ResponseWriter, r *http.Request, owner string) {
	var req createRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	now := h.cfg.now()
	ir, err := h.issueRequest(owner, &req, now)
	if err != nil {
		writeError(w, r, err)
		return
	}
	mu := h.createLock(owner)
	mu.Lock()
	secret, k, err := h.issueWithin(r, ir, now)
	mu.Unlock()
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.audit(r, owner, ActionCreate, k.ID, "")
	writeJSON(w, http.StatusCreated, keyResponse{Key: k.View(now), Token: secret.Reveal()})
}

// issueWithin issues ir unless the owner already holds the most live keys
// the policy allows. The caller holds the owner's createLock.
func (h *handler) issueWithin(r *http.Request, ir apikey.IssueRequest, now time.Time) (apikey.Secret, *apikey.Key, error) {
	keys, err := h.ownerKeys(r.Context(), ir.Owner)
	if err != nil {
		return apikey.Secret{}, nil, err
	}
	n := 0
	for _, k := range keys {
		if live(k, now) {
			n++
		}
	}
	if n >= h.cfg.maxKeys {
		return apikey.Secret{}, nil, badRequest("", fmt.Sprintf("you hold %d keys, the most allowed: revoke one first", n))
	}
	return h.m.Issue(r.Context(), ir)
}

// issueRequest checks req against the policy and returns what to issue.
func (h *handler) issueRequest(owner string, req *createRequest, now time.Time) (apikey.IssueRequest, error) {
	name, err := parseName(req.Name)
	if err != nil {
		return apikey.IssueRequest{}, err
	}
	if err := checkScopes(req.Scopes, h.cfg.scopes); err != nil {
		return apikey.IssueRequest{}, err
	}
	expires, err := h.expiry(req.ExpiresIn, req.ExpiresAt, now)
	if err != nil {
		return apikey.IssueRequest{}, err
	}
	ips, err := parseAllowedIPs(req.AllowedIPs)
	if err != nil {
		return apikey.IssueRequest{}, err
	}
	if h.cfg.requireIPs && len(ips) == 0 {
		return apikey.IssueRequest{}, badRequest("allowed_ips", "allowed_ips: give at least one address or CIDR prefix the key may be used from")
	}
	prefix := h.cfg.prefixes[0]
	if req.Prefix != "" {
		if !slices.Contains(h.cfg.prefixes, req.Prefix) {
			return apikey.IssueRequest{}, badRequest("prefix", fmt.Sprintf("prefix: %.64q is not one of %v", req.Prefix, h.cfg.prefixes))
		}
		prefix = req.Prefix
	}
	ir := apikey.IssueRequest{Owner: owner, Name: name, Scopes: req.Scopes, ExpiresAt: expires, Prefix: prefix}
	if len(ips) > 0 {
		ir.AllowedIPs = ips
	}
	return ir, nil
}

// expiry returns when a new key expires, from expires_in or expires_at,
// within the policy's maximum lifetime; the zero time for never.
func (h *handler) expiry(in, at *string, now time.Time) (time.Time, error) {
	max := h.cfg.maxLifetime
	var t time.Time
	switch {
	case in != nil && at != nil:
		return time.Time{}, badRequest("expires_at", "expires_at: give expires_in or expires_at, not both")
	case in != nil && *in == "never":
		if max > 0 {
			return time.Time{}, badRequest("expires_in", fmt.Sprintf("expires_in: keys must expire, within %s", formatDuration(max)))
		}
		return time.Time{}, nil
	case in != nil:
		d, err := parseDuration(*in)
		if err != nil {
			return time.Time{}, badRequest("expires_in", "expires_in: "+err.Error())
		}
		if d < time.Minute {
			return time.Time{}, badRequest("expires_in", "expires_in: at least 1m, so that the key can be stored and used")
		}
		if max > 0 && d > max {
			return time.Time{}, badRequest("expires_in", fmt.Sprintf("expires_in: %s is past the maximum lifetime, %s", *in, formatDuration(max)))
		}
		t = now.Add(d).Truncate(time.Second)
	case at != nil:
		var err error
		if t, err = time.Parse(time.RFC3339, *at); err != nil {
			return time.Time{}, badRequest("expires_at", fmt.Sprintf("expires_at: %.40q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", *at))
		}
		if !t.After(now) {
			return time.Time{}, badRequest("expires_at", "expires_at: in the past")
		}
		if max > 0 && t.Sub(now) > max {
			return time.Time{}, badRequest("expires_at", fmt.Sprintf("expires_at: past the maximum lifetime, %s from now", formatDuration(max)))
		}
	case h.cfg.lifetime > 0:
		t = now.Add(h.cfg.lifetime).Truncate(time.Second)
	}
	return t, nil
}

// patchRequest is the body of PATCH api/keys/{id}. An absent or null
// member leaves that field as it is; an empty list clears it.
type patchRequest struct {
	Name       *string   `json:"name"`
	Scopes     *[]string `json:"scopes"`
	AllowedIPs *[]string `json:"allowed_ips"`
}

// patch answers PATCH api/keys/{id}.
func (h *handler) patch(w http.ResponseWriter, r *http.Request, owner string) {
	var req patchRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var u apikey.KeyUpdate
	if req.Name != nil {
		name, err := parseName(*req.Name)
		if err != nil {
			writeError(w, r, err)
			return
		}
		u.Name = &name
	}
	if req.Scopes != nil {
		if err := checkScopes(*req.Scopes, h.cfg.scopes); err != nil {
			writeError(w, r, err)
			return
		}
		u.Scopes = req.Scopes
	}
	if req.AllowedIPs != nil {
		ips, err := parseAllowedIPs(*req.AllowedIPs)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if h.cfg.requireIPs && len(ips) == 0 {
			writeError(w, r, badRequest("allowed_ips", "allowed_ips: keys must keep at least one address or CIDR prefix"))
			return
		}
		u.AllowedIPs = &ips
	}
	k, err := h.ownKey(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if u == (apikey.KeyUpdate{}) {
		writeJSON(w, http.StatusOK, keyResponse{Key: k.View(h.cfg.now())})
		return
	}
	if !k.RevokedAt.IsZero() {
		writeError(w, r, apikey.ErrRevoked)
		return
	}
	k, err = h.m.Update(r.Context(), k.ID, u)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.audit(r, owner, ActionUpdate, k.ID, "")
	writeJSON(w, http.StatusOK, keyResponse{Key: k.View(h.cfg.now())})
}

// rotateRequest is the body of POST api/keys/{id}/rotate; without grace,
// the policy's default applies.
type rotateRequest struct {
	Grace *string `json:"grace"` // "24h", "1d", "0" to end the old key at once
}

// rotate answers POST api/keys/{id}/rotate.
func (h *handler) rotate(w http.ResponseWriter, r *http.Request, owner string) {
	var req rotateRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	grace := h.cfg.grace
	if req.Grace != nil {
		d, err := parseDuration(*req.Grace)
		if err != nil {
			writeError(w, r, badRequest("grace", "grace: "+err.Error()))
			return
		}
		if d > h.cfg.maxGrace {
			writeError(w, r, badRequest("grace", fmt.Sprintf("grace: %s is past the longest allowed, %s", *req.Grace, formatDuration(h.cfg.maxGrace))))
			return
		}
		grace = d
	}
	old, err := h.ownKey(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	secret, k, err := h.m.Rotate(r.Context(), old.ID, grace)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.audit(r, owner, ActionRotate, old.ID, k.ID)
	now := h.cfg.now()
	resp := keyResponse{Key: k.View(now), Token: secret.Reveal()}
	if old, err := h.m.Get(r.Context(), old.ID); err == nil {
		v := old.View(now)
		resp.OldKey = &v
	}
	writeJSON(w, http.StatusCreated, resp)
}

// revoke answers POST api/keys/{id}/revoke. Revoking a revoked key
// changes nothing and answers 200 too.
func (h *handler) revoke(w http.ResponseWriter, r *http.Request, owner string) {
	var req struct{}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	k, err := h.ownKey(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if k.RevokedAt.IsZero() {
		if err := h.m.Revoke(r.Context(), k.ID); err != nil {
			writeError(w, r, err)
			return
		}
		h.audit(r, owner, ActionRevoke, k.ID, "")
		if k, err = h.m.Get(r.Context(), k.ID); err != nil {
			writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, keyResponse{Key: k.View(h.cfg.now())})
}
