package apikey

import (
	"maps"
	"net/netip"
	"slices"
	"time"
)

// Key is the stored record of an API key. It never holds the key itself,
// only its digest. The zero value of every optional field means "not set":
// a zero ExpiresAt never expires, a nil AllowedIPs allows every address, a
// zero RateLimit falls back to the middleware's Limits.Default (none if
// it is not given).
type Key struct {
	ID     string // kid, the public key ID
	Prefix string // the token's prefix, e.g. "acme_live"

	Owner  string   // the user, team or service the key acts for
	Name   string   // human label, e.g. "CI deploy key"
	Scopes []string // granted scopes; see ValidateScope

	// Digest is the keyed digest of the secret and DigestVersion names how
	// it was computed ("hmac-sha256/<pepper version>" or "sha256").
	Digest        []byte
	DigestVersion string

	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires
	NotBefore time.Time // zero: valid from creation
	// RevokedAt and SuspendedAt are states: a key with either set does not
	// verify, whatever any clock says; the times record when it happened.
	RevokedAt   time.Time // zero: not revoked
	SuspendedAt time.Time // zero: not suspended (see Manager.Suspend)
	LastUsedAt  time.Time // updated in batches, not on every request

	// RevokedReason says why the key was revoked, as given to
	// Manager.RevokeWithReason (for example "leaked: <url>"); "" when no
	// reason was given. It is set with RevokedAt and never changes after.
	RevokedReason string

	RateLimit  Limit          // zero: the middleware's Limits.Default, if any
	Quota      Quota          // zero: no usage cap
	Credits    Credits        // zero: no credit balance (see Limits.Ledger)
	AllowedIPs []netip.Prefix // nil: any client address
	Metadata   map[string]string

	RotatedFrom string // ID of the key this one replaced
	ReplacedBy  string // ID of the key that replaced this one

	// Lineage is the ID of the first key of this key's rotation chain:
	// Rotate gives a replacement its predecessor's lineage (LineageID).
	// It is "" for a key that replaced none. Rate limits, quotas and
	// credits are counted per lineage, so that rotating a key neither
	// refills its quota or its balance nor gives the old and the new key a
	// bucket each during the grace period.
	Lineage string

	// Revision is maintained by the Store for optimistic concurrency:
	// Create sets it to 1 and each successful Update increments it. An
	// Update carrying a stale Revision fails with ErrConflict.
	Revision int64
}

// LineageID returns the ID of the first key of k's rotation chain:
// Lineage, or k's own ID for a key that replaced none.
func (k *Key) LineageID() string {
	if k.Lineage != "" {
		return k.Lineage
	}
	return k.ID
}

// Clone returns a deep copy of k, preserving nil versus empty slices and
// maps. Stores use it so callers never share memory with stored records.
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	c.Digest = slices.Clone(k.Digest)
	c.AllowedIPs = slices.Clone(k.AllowedIPs)
	c.Metadata = maps.Clone(k.Metadata)
	return &c
}

// Status reports why k cannot be used at time now, or nil if it is
// usable: ErrRevoked if RevokedAt is set and ErrSuspended if SuspendedAt
// is, whatever now is; ErrExpired from ExpiresAt on; ErrNotYetValid
// before NotBefore. It does not check the secret.
func (k *Key) Status(now time.Time) error {
	switch {
	case !k.RevokedAt.IsZero():
		return ErrRevoked
	case !k.SuspendedAt.IsZero():
		return ErrSuspended
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return ErrExpired
	case !k.NotBefore.IsZero() && now.Before(k.NotBefore):
		return ErrNotYetValid
	}
	return nil
}

// LastActive returns when k was last used, or when it was created if it
// was never used (or its use was recorded before its creation, as a
// clock step can make it): what "unused for N days" counts from.
func (k *Key) LastActive() time.Time {
	if k.LastUsedAt.IsZero() || k.LastUsedAt.Before(k.CreatedAt) {
		return k.CreatedAt
	}
	return k.LastUsedAt
}

// AllowsIP reports whether addr may use k: true when AllowedIPs is empty
// or one of its prefixes contains addr. IPv4-mapped IPv6 addresses are
// compared as IPv4, and an IPv6 zone is ignored.
func (k *Key) AllowsIP(addr netip.Addr) bool {
	return len(k.AllowedIPs) == 0 || containsAddr(k.AllowedIPs, normalAddr(addr))
}
