package apikey

import (
	"errors"
	"time"
)

// Status values of a KeyView: whether the key can be used, and if not,
// why. A key is in exactly one of them at a time; revoked wins over
// suspended, which wins over expired and not yet valid.
const (
	StatusActive      = "active"
	StatusExpired     = "expired"
	StatusRevoked     = "revoked"
	StatusSuspended   = "suspended"
	StatusNotYetValid = "not_yet_valid"
)

// KeyView is the public form of a Key: what its owner may see of it, as
// the portal's JSON API, the command line's --json and webhook payloads
// show it. It never holds the digest or its version, and so never any
// part of the key beyond its prefix and ID.
//
// Times are in UTC and, encoded as JSON, RFC 3339; zero times are
// omitted. Limits are in the text form ParseLimit, ParseQuota and
// ParseCredits read ("100/m"), allowed addresses in CIDR form.
type KeyView struct {
	ID     string   `json:"id"`
	Owner  string   `json:"owner"`
	Name   string   `json:"name"`
	Masked string   `json:"masked"` // prefix and kid then "…", e.g. "acme_live_AbC123dEf456_…"
	Prefix string   `json:"prefix"`
	Scopes []string `json:"scopes"` // never null
	Status string   `json:"status"` // one of the Status constants

	CreatedAt   time.Time `json:"created_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	SuspendedAt time.Time `json:"suspended_at,omitzero"`
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`

	RevokedReason string `json:"revoked_reason,omitempty"` // why it was revoked, if a reason was given

	RateLimit  string            `json:"rate_limit,omitempty"`
	Quota      string            `json:"quota,omitempty"`
	Credits    string            `json:"credits,omitempty"`
	AllowedIPs []string          `json:"allowed_ips,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`

	RotatedFrom string `json:"rotated_from,omitempty"`
	ReplacedBy  string `json:"replaced_by,omitempty"`
	Lineage     string `json:"lineage,omitempty"`
}

// View returns k's public form, with its status at time now. The view
// shares no memory with k.
func (k *Key) View(now time.Time) KeyView {
	c := k.Clone()
	v := KeyView{
		ID: c.ID, Owner: c.Owner, Name: c.Name, Prefix: c.Prefix,
		Masked: c.Prefix + "_" + c.ID + "_…",
		Scopes: c.Scopes, Status: statusName(c.Status(now)),
		CreatedAt: utc(c.CreatedAt), ExpiresAt: utc(c.ExpiresAt), NotBefore: utc(c.NotBefore),
		RevokedAt: utc(c.RevokedAt), SuspendedAt: utc(c.SuspendedAt), LastUsedAt: utc(c.LastUsedAt),
		RevokedReason: c.RevokedReason,
		Metadata:      c.Metadata,
		RotatedFrom:   c.RotatedFrom, ReplacedBy: c.ReplacedBy, Lineage: c.Lineage,
	}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !c.RateLimit.IsZero() {
		v.RateLimit = c.RateLimit.String()
	}
	if !c.Quota.IsZero() {
		v.Quota = c.Quota.String()
	}
	if !c.Credits.IsZero() {
		v.Credits = c.Credits.String()
	}
	for _, p := range c.AllowedIPs {
		v.AllowedIPs = append(v.AllowedIPs, p.String())
	}
	return v
}

// statusName names the result of Key.Status.
func statusName(err error) string {
	switch {
	case err == nil:
		return StatusActive
	case errors.Is(err, ErrRevoked):
		return StatusRevoked
	case errors.Is(err, ErrSuspended):
		return StatusSuspended
	case errors.Is(err, ErrExpired):
		return StatusExpired
	}
	return StatusNotYetValid
}

// utc returns t in UTC, and the zero time for the zero time.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
