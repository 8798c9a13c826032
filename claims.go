package apikey

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// EventClaimRetention is how long a claim of a hygiene event (see
// EventClaimer) is kept at least, and how long ago a key must have been
// revoked, or an expiry have passed, before its claims can go: the margin
// for clocks that disagree between instances and for a sweep that acts on
// a page of keys it read a while ago. Manager.Sweep prunes with it.
const EventClaimRetention = 30 * 24 * time.Hour

// The events the sweeps claim, each followed by a time in decimal Unix
// microseconds: the key's expiry, or its last activity (Key.LastActive).
const (
	expiringEvent     = "expiring:"
	unusedEvent       = "unused:"
	revokeUnusedEvent = "revoke-unused:"
)

// ClaimObsolete reports whether a claim of event about key k, made at
// claimedAt, can no longer matter at before, so that a Store may delete
// it (EventPruner) without any sweep ever claiming, and sending, that
// event again. k is the key the Store holds with the claim's ID, nil if
// it holds none. A claim made at or after before always matters. One made
// before it can no longer matter if:
//
//   - there is no such key (deleted, or never one: ClaimEvent does not
//     check);
//   - the key was revoked before before: revocation is final, and the
//     sweeps skip revoked keys;
//   - event is "expiring:<t>", t decimal digits that are fewer than those
//     of before's Unix microseconds, or as many and less as a string
//     (which, without leading zeros, is t < before): the sweeps claim it
//     only while the key is valid and expires at t.
//
// Every other claim is kept, however old: an unused key's claim matters
// while it stays unused, and the claims of a suspended or expired key
// matter again if it is resumed or its expiry moved (Manager.Update can
// extend an expired key). storetest checks that every EventPruner follows
// this rule.
func ClaimObsolete(k *Key, event string, claimedAt, before time.Time) bool {
	if !claimedAt.Before(before) {
		return false
	}
	if k == nil || !k.RevokedAt.IsZero() && k.RevokedAt.Before(before) {
		return true
	}
	t, ok := strings.CutPrefix(event, expiringEvent)
	if !ok || t == "" || strings.Trim(t, "0123456789") != "" {
		return false
	}
	limit := before.UnixMicro()
	if limit <= 0 {
		return false // no expiry written as digits is before it
	}
	l := strconv.FormatInt(limit, 10)
	return len(t) < len(l) || len(t) == len(l) && t < l
}

// claim claims event for key id in the Store, or, if it cannot hold
// claims, in this Manager's memory.
func (m *Manager) claim(ctx context.Context, id, event string, now time.Time) (bool, error) {
	if c, ok := m.store.(EventClaimer); ok {
		ok, err := c.ClaimEvent(ctx, id, event, storedTime(now))
		return ok, storeError("claim event", err)
	}
	sw := m.sweeper
	key := [2]string{id, event}
	if _, ok := sw.claimed[key]; ok {
		return false, nil
	}
	sw.claimed[key] = now
	return true, nil
}

// pruneClaims deletes the claims of the key IDs after from and up to to
// (all after from if to is "") that can no longer matter now (see
// ClaimObsolete), through the Store's EventPruner, or in this Manager's
// memory if the Store cannot hold claims. keys are the keys List returned
// for that range; complete says that it returned all of them, with no
// record it could not decode, so that an ID missing from keys has no key.
// A Store that holds claims but cannot prune them keeps them.
func (m *Manager) pruneClaims(ctx context.Context, from, to string, keys []*Key, complete bool) error {
	before := storedTime(m.now().Add(-EventClaimRetention))
	if p, ok := m.store.(EventPruner); ok {
		_, err := p.PruneEvents(ctx, from, to, before)
		return storeError("prune event claims", err)
	}
	if _, ok := m.store.(EventClaimer); ok {
		return nil
	}
	byID := make(map[string]*Key, len(keys))
	for _, k := range keys {
		byID[k.ID] = k
	}
	for c, at := range m.sweeper.claimed {
		id := c[0]
		if id <= from || to != "" && id > to {
			continue
		}
		k, ok := byID[id]
		if !ok && !complete {
			continue // perhaps a record that did not decode
		}
		if ClaimObsolete(k, c[1], at, before) {
			delete(m.sweeper.claimed, c)
		}
	}
	return nil
}
