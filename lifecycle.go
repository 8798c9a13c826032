package apikey

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on what a key record may hold, checked when a key is issued.
const (
	MaxOwnerLen         = 255
	MaxNameLen          = 255
	MaxScopes           = 64
	MaxAllowedIPs       = 256
	MaxMetadataEntries  = 64
	MaxMetadataKeyLen   = 128
	MaxMetadataValueLen = 64 << 10
)

// IssueRequest describes a key to issue. Owner is required; every other
// field is optional, with the zero value meaning "not set".
type IssueRequest struct {
	Owner      string // the user, team or service the key acts for
	Name       string // human label
	Scopes     []string
	ExpiresAt  time.Time
	NotBefore  time.Time
	RateLimit  Limit
	Quota      Quota
	AllowedIPs []netip.Prefix
	Metadata   map[string]string
	// Prefix overrides the Manager's prefix for this key, for example to
	// issue "acme_test" keys from a Manager whose default is "acme_live".
	Prefix string
}

// Issue creates a key and returns it, once, as a Secret, with its stored
// record. Hand the Secret to the caller and forget it: only a digest is
// stored. An invalid request fails with an error wrapping
// ErrInvalidRequest, ErrInvalidScope or ErrInvalidPrefix and writes
// nothing.
func (m *Manager) Issue(ctx context.Context, req IssueRequest) (Secret, *Key, error) {
	now := m.now()
	if err := m.checkIssue(&req, now); err != nil {
		return Secret{}, nil, err
	}
	k := &Key{
		Prefix:     m.prefix,
		Owner:      req.Owner,
		Name:       req.Name,
		Scopes:     slices.Clone(req.Scopes),
		CreatedAt:  storedTime(now),
		ExpiresAt:  storedTime(req.ExpiresAt),
		NotBefore:  storedTime(req.NotBefore),
		RateLimit:  req.RateLimit,
		Quota:      req.Quota,
		AllowedIPs: maskedPrefixes(req.AllowedIPs),
		Metadata:   maps.Clone(req.Metadata),
	}
	if req.Prefix != "" {
		k.Prefix = req.Prefix
	}
	secret, err := m.create(ctx, k, func(k *Key) error { return m.store.Create(ctx, k) })
	if err != nil {
		return Secret{}, nil, err
	}
	return secret, k.Clone(), nil
}

// create gives k a fresh token and digest and writes it with write,
// retrying with a new ID in the (astronomically unlikely) case that the ID
// is taken.
func (m *Manager) create(ctx context.Context, k *Key, write func(*Key) error) (Secret, error) {
	for attempt := 0; ; attempt++ {
		t, err := Generate(k.Prefix)
		if err != nil {
			return Secret{}, err
		}
		k.ID = t.ID
		k.DigestVersion = m.digests.current.version
		var sum [digestSize]byte
		m.digests.current.sum(&sum, t.ID, t.secretPart())
		k.Digest = sum[:]
		err = write(k)
		if err == nil {
			m.cache.invalidate(k.ID) // drop a negative entry for this ID, if any
			return t.Secret(), nil
		}
		if !errors.Is(err, ErrConflict) || attempt == 2 {
			return Secret{}, storeError("create key", err)
		}
	}
}

func (m *Manager) checkIssue(req *IssueRequest, now time.Time) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	if req.Prefix != "" {
		if err := ValidatePrefix(req.Prefix); err != nil {
			return err
		}
	}
	if err := checkText("owner", req.Owner, MaxOwnerLen); err != nil {
		return err
	}
	if req.Owner == "" {
		return bad("owner is required")
	}
	if err := checkText("name", req.Name, MaxNameLen); err != nil {
		return err
	}
	if len(req.Scopes) > MaxScopes {
		return bad("%d scopes, at most %d allowed", len(req.Scopes), MaxScopes)
	}
	if err := ValidateScopes(req.Scopes); err != nil {
		return err
	}
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return bad("expiry %s is not in the future", req.ExpiresAt.Format(time.RFC3339))
	}
	if !req.NotBefore.IsZero() && !req.ExpiresAt.IsZero() && !req.NotBefore.Before(req.ExpiresAt) {
		return bad("not-before %s is not before expiry %s", req.NotBefore.Format(time.RFC3339), req.ExpiresAt.Format(time.RFC3339))
	}
	if !req.RateLimit.IsZero() {
		if err := req.RateLimit.Validate(); err != nil {
			return err
		}
	}
	if !req.Quota.IsZero() {
		if err := req.Quota.Validate(); err != nil {
			return err
		}
	}
	if len(req.AllowedIPs) > MaxAllowedIPs {
		return bad("%d allowed IP prefixes, at most %d", len(req.AllowedIPs), MaxAllowedIPs)
	}
	for _, p := range req.AllowedIPs {
		if !p.IsValid() {
			return bad("allowed IP prefix %v is not valid", p)
		}
	}
	if len(req.Metadata) > MaxMetadataEntries {
		return bad("%d metadata entries, at most %d", len(req.Metadata), MaxMetadataEntries)
	}
	for name, v := range req.Metadata {
		if name == "" || len(name) > MaxMetadataKeyLen || !utf8.ValidString(name) {
			return bad("metadata key %.40q must be 1 to %d bytes of UTF-8", name, MaxMetadataKeyLen)
		}
		if len(v) > MaxMetadataValueLen || !utf8.ValidString(v) {
			return bad("metadata %.40q: value must be at most %d bytes of UTF-8", name, MaxMetadataValueLen)
		}
	}
	return nil
}

// checkText accepts at most max bytes of UTF-8 without control characters.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalidRequest, field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRequest, field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %.40q contains a control character", ErrInvalidRequest, field, s)
		}
	}
	return nil
}

// errNoChange tells update that its change is already in place.
var errNoChange = errors.New("no change")

// update applies change to the stored key id and writes it back,
// retrying when another writer got there first, then drops the cached
// entry. change returning errNoChange ends it without a write.
func (m *Manager) update(ctx context.Context, id string, change func(*Key) error) error {
	defer m.cache.invalidate(id)
	for attempt := 0; ; attempt++ {
		k, err := m.store.Get(ctx, id)
		if err != nil {
			return storeError("get key", err)
		}
		if err := change(k); err != nil {
			if err == errNoChange {
				return nil
			}
			return err
		}
		err = m.store.Update(ctx, k)
		if err == nil || !errors.Is(err, ErrConflict) || attempt == 9 {
			return storeError("update key", err)
		}
	}
}

// Revoke revokes key id at once; Verify refuses it from then on in this
// Manager, and in every Manager whose Store implements Watcher. Revoking a
// revoked key does nothing and returns nil. An unknown id returns
// ErrNotFound.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	now := m.now()
	return m.update(ctx, id, func(k *Key) error {
		if !k.RevokedAt.IsZero() {
			return errNoChange
		}
		k.RevokedAt = storedTime(now)
		return nil
	})
}

// Rotate issues a replacement for key id, with the same owner, name,
// prefix, scopes, limits, allowed IPs and metadata, and the same lifetime
// if the old key had an expiry. The old key keeps working for grace and
// then fails with ErrExpired (grace 0 ends it at once). It returns the new
// key once, as a Secret. A revoked, expired or already rotated key cannot
// be rotated (ErrRevoked, ErrExpired, ErrConflict). If the Store
// implements Rotator both writes are one transaction; otherwise a failed
// second write is undone by revoking the replacement.
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (Secret, *Key, error) {
	if grace < 0 {
		return Secret{}, nil, fmt.Errorf("%w: negative grace period %v", ErrInvalidRequest, grace)
	}
	for attempt := 0; ; attempt++ {
		secret, k, err := m.rotateOnce(ctx, id, grace)
		switch {
		case !errors.Is(err, errOldChanged):
			return secret, k, err
		case attempt == 9:
			return Secret{}, nil, fmt.Errorf("%w: key %s kept changing during rotation", ErrConflict, id)
		}
	}
}

// errOldChanged reports that the key being rotated changed between Get
// and the rotating write; Rotate then starts again from a fresh read.
var errOldChanged = errors.New("apikey: key changed during rotation")

func (m *Manager) rotateOnce(ctx context.Context, id string, grace time.Duration) (Secret, *Key, error) {
	now := m.now()
	old, err := m.store.Get(ctx, id)
	if err != nil {
		return Secret{}, nil, storeError("get key", err)
	}
	switch {
	case old.ReplacedBy != "":
		return Secret{}, nil, fmt.Errorf("%w: key %s was already rotated to %s", ErrConflict, id, old.ReplacedBy)
	case old.Status(now) != nil:
		return Secret{}, nil, fmt.Errorf("key %s: %w", id, old.Status(now))
	}
	k := &Key{
		Prefix:      old.Prefix,
		Owner:       old.Owner,
		Name:        old.Name,
		Scopes:      slices.Clone(old.Scopes),
		CreatedAt:   storedTime(now),
		RateLimit:   old.RateLimit,
		Quota:       old.Quota,
		AllowedIPs:  slices.Clone(old.AllowedIPs),
		Metadata:    maps.Clone(old.Metadata),
		RotatedFrom: old.ID,
	}
	if !old.ExpiresAt.IsZero() {
		k.ExpiresAt = storedTime(now.Add(old.ExpiresAt.Sub(old.CreatedAt)))
	}
	if end := storedTime(now.Add(grace)); old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
		old.ExpiresAt = end
	}
	defer m.cache.invalidate(old.ID)
	secret, err := m.create(ctx, k, func(k *Key) error {
		old.ReplacedBy = k.ID
		err := m.writeRotation(ctx, old, k)
		if errors.Is(err, ErrConflict) {
			if _, getErr := m.store.Get(ctx, k.ID); errors.Is(getErr, ErrNotFound) {
				return errOldChanged // the old key's revision moved on
			}
		}
		return err
	})
	if errors.Is(err, errOldChanged) {
		return Secret{}, nil, errOldChanged
	}
	if err != nil {
		return Secret{}, nil, err
	}
	return secret, k.Clone(), nil
}

// writeRotation writes the replacement and the old key's new expiry, in
// one transaction when the Store can.
func (m *Manager) writeRotation(ctx context.Context, old, replacement *Key) error {
	if r, ok := m.store.(Rotator); ok {
		return r.Rotate(ctx, old, replacement)
	}
	if err := m.store.Create(ctx, replacement); err != nil {
		return err
	}
	if err := m.store.Update(ctx, old); err != nil {
		// Undo: nobody has seen the replacement's secret, so revoking it
		// leaves the world as it was, less one dead record.
		replacement.RevokedAt = storedTime(m.now())
		if undoErr := m.store.Update(ctx, replacement); undoErr != nil {
			return fmt.Errorf("%w (and revoking the half-made replacement %s failed: %v)", err, replacement.ID, undoErr)
		}
		if errors.Is(err, ErrConflict) {
			return errOldChanged
		}
		return err
	}
	return nil
}

// storedTime is t as every Store can hold it: UTC, microsecond precision
// (PostgreSQL's), no monotonic reading. The zero time stays zero.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// maskedPrefixes returns ps with every prefix masked to its bits.
func maskedPrefixes(ps []netip.Prefix) []netip.Prefix {
	if ps == nil {
		return nil
	}
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Masked()
	}
	return out
}
