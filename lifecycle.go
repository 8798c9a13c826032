package apikey

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
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
	Credits    Credits
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
	if err := checkIssue(&req); err != nil {
		return Secret{}, nil, err
	}
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return Secret{}, nil, fmt.Errorf("%w: expiry %s is not in the future", ErrInvalidRequest, req.ExpiresAt.Format(time.RFC3339))
	}
	if err := m.checkLifetime(now, req.ExpiresAt); err != nil {
		return Secret{}, nil, err
	}
	ips, err := normalPrefixes(req.AllowedIPs)
	if err != nil {
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
		Credits:    req.Credits,
		AllowedIPs: ips,
		Metadata:   maps.Clone(req.Metadata),
	}
	if req.Prefix != "" {
		k.Prefix = req.Prefix
	}
	secret, err := m.create(ctx, k, func(k *Key) error { return m.store.Create(ctx, k) })
	if err != nil {
		return Secret{}, nil, err
	}
	m.emit(KeyCreated, k, now)
	return secret, k.Clone(), nil
}

// checkLifetime refuses, under WithMaxLifetime, an expiry that is not
// within the maximum lifetime of now.
func (m *Manager) checkLifetime(now, expiresAt time.Time) error {
	switch {
	case m.maxLife == 0:
		return nil
	case expiresAt.IsZero():
		return fmt.Errorf("%w: keys must expire within %v (WithMaxLifetime): give an expiry", ErrLifetime, m.maxLife)
	case expiresAt.Sub(now) > m.maxLife:
		return fmt.Errorf("%w: expiry %s is %v away, beyond the maximum lifetime %v (WithMaxLifetime)", ErrLifetime,
			expiresAt.Format(time.RFC3339), expiresAt.Sub(now).Round(time.Second), m.maxLife)
	}
	return nil
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

// errNoChange tells update that its change is already in place.
var errNoChange = errors.New("no change")

// update applies change to a copy of the stored key id and writes it
// back, retrying when another writer got there first, then drops the
// cached entry, and returns the record as written. change returning
// errNoChange ends it without a write, returning the stored record.
func (m *Manager) update(ctx context.Context, id string, change func(*Key) error) (*Key, error) {
	defer m.cache.invalidate(id)
	for attempt := 0; ; attempt++ {
		stored, err := m.store.Get(ctx, id)
		if err != nil {
			return nil, storeError("get key", err)
		}
		k := stored.Clone() // change may fail half way
		if err := change(k); err != nil {
			if err == errNoChange {
				return stored, nil
			}
			return nil, err
		}
		err = m.store.Update(ctx, k)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == 9 {
			return nil, storeError("update key", err)
		}
	}
}

// Revoke revokes key id. Revocation is a state, not a time: once Revoke
// returns, Verify refuses the key with ErrRevoked in this Manager, and in
// every Manager whose Store implements Watcher, whatever any clock says;
// RevokedAt records when it happened, by this Manager's clock. Revoking a
// revoked key does nothing and returns nil. An unknown id returns
// ErrNotFound, and an id that is not a key ID an error wrapping
// ErrInvalidRequest; neither changes anything. If the Store implements
// ReasonRevoker or Revoker, the record is revoked without being read, so a
// record that no longer decodes can still be revoked.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	return m.RevokeWithReason(ctx, id, "")
}

// RevokeWithReason is Revoke, recording reason in the key's RevokedReason
// (for example "leaked: https://github.com/…"), where its owner sees it.
// reason is at most MaxRevokedReasonLen bytes of UTF-8 without control or
// bidi formatting characters, or the call fails with an error wrapping
// ErrInvalidRequest and changes nothing. The first revocation wins:
// revoking a revoked key changes neither its time nor its reason.
//
// A Store that implements ReasonRevoker records the reason without
// reading the record. One that implements only Revoker has the record
// read and updated; if that record no longer decodes, the key is revoked
// through Revoker all the same, without its reason.
func (m *Manager) RevokeWithReason(ctx context.Context, id, reason string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkText("revocation reason", reason, MaxRevokedReasonLen); err != nil {
		return err
	}
	now := storedTime(m.now())
	revoked, err := m.revoke(ctx, id, reason, now)
	if err != nil {
		return err
	}
	if revoked && m.onKeyEvent != nil {
		if k, err := m.store.Get(ctx, id); err == nil {
			m.emit(KeyRevoked, k, now)
		}
	}
	return nil
}

// revoke stores the revocation of key id at now, with reason, and says
// whether this call revoked it. Through a Revoker it cannot know for sure:
// it says so if the key was not revoked before the call and is revoked at
// now after it (two calls racing at one instant may both say so).
func (m *Manager) revoke(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	r, canRevoke := m.store.(Revoker)
	rr, canReason := m.store.(ReasonRevoker)
	if canReason || (canRevoke && reason == "") {
		defer m.cache.invalidate(id)
		wasRevoked := false
		if m.onKeyEvent != nil {
			if k, err := m.store.Get(ctx, id); err == nil {
				wasRevoked = !k.RevokedAt.IsZero()
			}
		}
		var err error
		if canReason {
			err = rr.RevokeWithReason(ctx, id, now, reason)
		} else {
			err = r.Revoke(ctx, id, now)
		}
		if err != nil {
			return false, storeError("revoke key", err)
		}
		if wasRevoked || m.onKeyEvent == nil {
			return false, nil
		}
		k, err := m.store.Get(ctx, id)
		return err == nil && k.RevokedAt.Equal(now), nil
	}
	changed := false
	_, err := m.update(ctx, id, func(k *Key) error {
		changed = false
		if !k.RevokedAt.IsZero() {
			return errNoChange
		}
		k.RevokedAt, k.RevokedReason = now, reason
		changed = true
		return nil
	})
	if canRevoke && errors.Is(err, ErrCorruptRecord) {
		defer m.cache.invalidate(id)
		return false, storeError("revoke key", r.Revoke(ctx, id, now)) // revoked without its reason beats not revoked
	}
	return changed && err == nil, err
}

// Suspend disables key id without revoking it: Verify refuses it with
// ErrSuspended, everywhere and at once as for Revoke, until Resume.
// Suspending a suspended key does nothing and returns nil; a revoked key
// cannot be suspended (ErrRevoked). Errors are as for Revoke.
func (m *Manager) Suspend(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	now := storedTime(m.now())
	changed := false
	k, err := m.update(ctx, id, func(k *Key) error {
		changed = false
		switch {
		case !k.RevokedAt.IsZero():
			return fmt.Errorf("key %s: %w", id, ErrRevoked)
		case !k.SuspendedAt.IsZero():
			return errNoChange
		}
		k.SuspendedAt = now
		changed = true
		return nil
	})
	if err == nil && changed {
		m.emit(KeySuspended, k, now)
	}
	return err
}

// Resume ends a suspension: the key verifies again, unless it is revoked
// or expired. Resuming a key that is not suspended does nothing and
// returns nil. Errors are as for Revoke.
func (m *Manager) Resume(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	_, err := m.update(ctx, id, func(k *Key) error {
		if k.SuspendedAt.IsZero() {
			return errNoChange
		}
		k.SuspendedAt = time.Time{}
		return nil
	})
	return err
}

// KeyUpdate describes a change to a key for Manager.Update. A nil field
// leaves that field as it is; a pointer to the zero value clears it (no
// expiry, no scopes, no limit, any address, no metadata). The key's
// owner, prefix and secret never change: rotate or issue a new key for
// that.
type KeyUpdate struct {
	Name       *string
	Scopes     *[]string
	ExpiresAt  *time.Time
	NotBefore  *time.Time
	RateLimit  *Limit
	Quota      *Quota
	Credits    *Credits
	AllowedIPs *[]netip.Prefix
	Metadata   *map[string]string
}

// Update changes the fields of key id that u sets, after checking them by
// the rules Issue applies (see IssueRequest), and returns the updated
// record. The change takes effect everywhere as a revocation does. An
// invalid change fails with an error wrapping ErrInvalidRequest or
// ErrInvalidScope and writes nothing; so does a change to a revoked key
// (ErrRevoked). Concurrent writers are retried as for Revoke.
func (m *Manager) Update(ctx context.Context, id string, u KeyUpdate) (*Key, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	now := m.now()
	k, err := m.update(ctx, id, func(k *Key) error {
		if !k.RevokedAt.IsZero() {
			return fmt.Errorf("key %s: %w", id, ErrRevoked)
		}
		if u.ExpiresAt != nil {
			if err := m.checkLifetime(now, *u.ExpiresAt); err != nil {
				return err
			}
		}
		return u.apply(k)
	})
	if err != nil {
		return nil, err
	}
	return k.Clone(), nil
}

// apply checks u and writes it into k; on error k may be half changed, so
// callers apply it to a copy they throw away on error (update does).
func (u KeyUpdate) apply(k *Key) error {
	if u.Name != nil {
		if err := checkText("name", *u.Name, MaxNameLen); err != nil {
			return err
		}
		k.Name = *u.Name
	}
	if u.Scopes != nil {
		if err := checkScopes(*u.Scopes); err != nil {
			return err
		}
		k.Scopes = slices.Clone(*u.Scopes)
		if len(k.Scopes) == 0 {
			k.Scopes = nil
		}
	}
	if u.ExpiresAt != nil {
		k.ExpiresAt = storedTime(*u.ExpiresAt)
	}
	if u.NotBefore != nil {
		k.NotBefore = storedTime(*u.NotBefore)
	}
	if err := checkWindow(k.NotBefore, k.ExpiresAt); err != nil {
		return err
	}
	if u.RateLimit != nil {
		if err := checkLimits(*u.RateLimit, Quota{}); err != nil {
			return err
		}
		k.RateLimit = *u.RateLimit
	}
	if u.Quota != nil {
		if err := checkLimits(Limit{}, *u.Quota); err != nil {
			return err
		}
		k.Quota = *u.Quota
	}
	if u.Credits != nil {
		if err := checkCredits(*u.Credits); err != nil {
			return err
		}
		k.Credits = *u.Credits
	}
	if u.AllowedIPs != nil {
		ips, err := normalPrefixes(*u.AllowedIPs)
		if err != nil {
			return err
		}
		if len(ips) == 0 {
			ips = nil
		}
		k.AllowedIPs = ips
	}
	if u.Metadata != nil {
		if err := checkMetadata(*u.Metadata); err != nil {
			return err
		}
		k.Metadata = maps.Clone(*u.Metadata)
		if len(k.Metadata) == 0 {
			k.Metadata = nil
		}
	}
	return nil
}

// Rotate issues a replacement for key id, with the same owner, name,
// prefix, scopes, limits, allowed IPs and metadata, and the same lifetime
// if the old key had an expiry. The old key keeps working for grace and
// then fails with ErrExpired; with grace 0 it is revoked, so that it ends
// at once whatever any clock says. It returns the new
// key once, as a Secret. A revoked, expired or already rotated key cannot
// be rotated (ErrRevoked, ErrExpired, ErrConflict). If the Store
// implements Rotator both writes are one transaction; otherwise a failed
// second write is undone by revoking the replacement.
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (Secret, *Key, error) {
	if err := checkID(id); err != nil {
		return Secret{}, nil, err
	}
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
		Credits:     old.Credits,
		AllowedIPs:  slices.Clone(old.AllowedIPs),
		Metadata:    maps.Clone(old.Metadata),
		RotatedFrom: old.ID,
		Lineage:     old.LineageID(),
	}
	if !old.ExpiresAt.IsZero() {
		k.ExpiresAt = storedTime(now.Add(old.ExpiresAt.Sub(old.CreatedAt)))
	}
	if err := m.checkLifetime(now, k.ExpiresAt); err != nil {
		return Secret{}, nil, fmt.Errorf("key %s: its replacement would keep its lifetime: %w; issue a new key with an expiry within it instead", id, err)
	}
	if grace == 0 {
		old.RevokedAt = storedTime(now)
	} else if end := storedTime(now.Add(grace)); old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
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
	m.emit(KeyRotated, k, now)
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
