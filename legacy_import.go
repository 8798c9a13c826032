package apikey

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// LegacyImport describes one key of another system for ImportLegacy: the
// record it becomes, as for Issue, and how the key is verified and found.
type LegacyImport struct {
	IssueRequest
	// Hash is the old system's verifier, in one of the forms LegacyHash
	// lists.
	Hash string
	// ID is, for a salted hash (bcrypt, argon2id), the ID the key
	// carries, which WithLegacy's LegacyIDRule extracts; it must be
	// empty for an unsalted hash, which is found by the hash itself.
	ID string
}

// ImportError reports which item of an ImportLegacy call is wrong.
type ImportError struct {
	Index int // of the item in the slice
	// Earlier is, for an item that repeats an earlier one (ErrConflict),
	// the earlier one's index; -1 otherwise.
	Earlier int
	Err     error
}

func (e *ImportError) Error() string { return fmt.Sprintf("key %d: %v", e.Index, e.Err) }
func (e *ImportError) Unwrap() error { return e.Err }

// MaxImportBatch bounds how many keys one ImportLegacy call takes.
const MaxImportBatch = 1 << 20

// ImportLegacy imports keys of another system, so that they verify, with
// WithLegacy, as the Key records returned (in the order given). It checks
// every item first, and writes nothing if one is wrong: the error is an
// *ImportError naming it, wrapping ErrInvalidRequest, ErrInvalidScope,
// ErrInvalidLegacyHash, ErrLegacyHashCost (see LegacyConfig.Cost; the
// defaults apply without WithLegacy), or ErrConflict for a key imported
// twice (in keys, or already in the Store). Then it writes every key in
// one call to the Store's LegacyStore, all or nothing.
//
// Each key gets a Key record with a new key ID and the Manager's prefix
// (or the item's), DigestVersion LegacyDigestVersion and no digest, and a
// LegacyRecord. An unsalted hash is not stored as it is: its Lookup is
// its digest under the current pepper, so that the store holds nothing a
// key can be tested against without the pepper (with WithUnkeyedDigest
// alone, a plain SHA-256 of it). The keys then verify with any Manager
// that has that pepper, current or previous.
func (m *Manager) ImportLegacy(ctx context.Context, keys []LegacyImport) ([]*Key, error) {
	l := m.legacy
	if l.store == nil {
		return nil, fmt.Errorf("%w: ImportLegacy: %w", ErrInvalidRequest, errLegacyOff)
	}
	if len(keys) > MaxImportBatch {
		return nil, fmt.Errorf("%w: ImportLegacy: %d keys, at most %d at once", ErrInvalidRequest, len(keys), MaxImportBatch)
	}
	now := m.now()
	out := make([]*Key, len(keys))
	records := make([]LegacyRecord, len(keys))
	seen := make(map[string]int, len(keys))
	for i := range keys {
		k, r, err := m.legacyRecord(&keys[i], now)
		if err != nil {
			return nil, &ImportError{Index: i, Earlier: -1, Err: err}
		}
		if j, dup := seen[r.Lookup]; dup {
			return nil, &ImportError{Index: i, Earlier: j, Err: fmt.Errorf("%w: the same key as key %d (%s)", ErrConflict, j, describeLookup(r.Lookup))}
		}
		seen[r.Lookup] = i
		out[i], records[i] = k, r
	}
	// Keys imported before: found here, so that the error can name one.
	const chunk = 500
	for start := 0; start < len(records); start += chunk {
		lookups := make([]string, 0, chunk)
		for _, r := range records[start:min(start+chunk, len(records))] {
			lookups = append(lookups, r.Lookup)
		}
		found, err := l.store.GetLegacy(ctx, lookups)
		if err != nil {
			return nil, storeError("look up legacy keys", err)
		}
		if len(found) > 0 {
			// The first in the batch, whatever order the store answered in.
			first := slices.MinFunc(found, func(a, b LegacyRecord) int { return seen[a.Lookup] - seen[b.Lookup] })
			return nil, &ImportError{Index: seen[first.Lookup], Earlier: -1,
				Err: fmt.Errorf("%w: imported before, as key %s (%s)", ErrConflict, first.KeyID, describeLookup(first.Lookup))}
		}
	}
	if err := l.store.CreateLegacy(ctx, out, records); err != nil {
		return nil, storeError("import legacy keys", err)
	}
	for i, k := range out {
		m.cache.invalidate(k.ID) // drop a negative entry, if any
		out[i] = k.Clone()
	}
	return out, nil
}

// legacyRecord checks one item and builds its records.
func (m *Manager) legacyRecord(in *LegacyImport, now time.Time) (*Key, LegacyRecord, error) {
	req := in.IssueRequest
	if err := checkIssue(&req); err != nil {
		return nil, LegacyRecord{}, err
	}
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return nil, LegacyRecord{}, fmt.Errorf("%w: expiry %s is not in the future", ErrInvalidRequest, req.ExpiresAt.UTC().Format(time.RFC3339))
	}
	ips, err := normalPrefixes(req.AllowedIPs)
	if err != nil {
		return nil, LegacyRecord{}, err
	}
	h, err := ParseLegacyHash(in.Hash)
	if err != nil {
		return nil, LegacyRecord{}, err
	}
	if err := m.legacy.cost.Check(h); err != nil {
		return nil, LegacyRecord{}, err
	}
	var r LegacyRecord
	switch {
	case h.Salted() && in.ID == "":
		return nil, LegacyRecord{}, fmt.Errorf("%w: a %s hash needs the ID the key carries (its record cannot be found by a salted hash)", ErrInvalidRequest, h.Kind())
	case h.Salted():
		if err := checkLegacyID(in.ID); err != nil {
			return nil, LegacyRecord{}, err
		}
		r = LegacyRecord{Lookup: legacyIDLookup(in.ID), Hash: h.Encoded()}
	case in.ID != "":
		return nil, LegacyRecord{}, fmt.Errorf("%w: a %s key is found by its hash: leave its ID empty", ErrInvalidRequest, h.Kind())
	default:
		r = LegacyRecord{Lookup: legacyLookup(m.digests.current, h.Kind(), h.digest), Hash: h.Kind()}
	}
	prefix := m.prefix
	if req.Prefix != "" {
		prefix = req.Prefix
	}
	t, err := Generate(prefix)
	if err != nil {
		return nil, LegacyRecord{}, err
	}
	k := &Key{
		ID:            t.ID,
		Prefix:        prefix,
		Owner:         req.Owner,
		Name:          req.Name,
		Scopes:        slices.Clone(req.Scopes),
		DigestVersion: LegacyDigestVersion,
		CreatedAt:     storedTime(now),
		ExpiresAt:     storedTime(req.ExpiresAt),
		NotBefore:     storedTime(req.NotBefore),
		RateLimit:     req.RateLimit,
		Quota:         req.Quota,
		AllowedIPs:    ips,
		Metadata:      maps.Clone(req.Metadata),
	}
	r.KeyID = k.ID
	return k, r, nil
}

// checkLegacyID accepts 1 to MaxLegacyIDLen bytes of UTF-8 without
// control characters.
func checkLegacyID(id string) error {
	if len(id) > MaxLegacyIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("%w: legacy ID must be 1 to %d bytes of UTF-8", ErrInvalidRequest, MaxLegacyIDLen)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: legacy ID has a control character", ErrInvalidRequest)
		}
	}
	return nil
}

// describeLookup names a Lookup for an error: the ID of a salted key (it
// is public), only the kind of an unsalted one.
func describeLookup(lookup string) string {
	if id, ok := strings.CutPrefix(lookup, "id:"); ok {
		return fmt.Sprintf("legacy ID %q", id)
	}
	kind, _, _ := strings.Cut(lookup, "@")
	return "the same " + kind + " hash"
}
