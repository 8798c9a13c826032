package apikey

import "context"

// LegacyDigestVersion is the DigestVersion of the Key record of a key
// imported from another system (Manager.ImportLegacy). Such a record has
// no digest of its own: its LegacyRecord holds the verifier, and it never
// verifies as a key of this package's format.
const LegacyDigestVersion = "legacy"

// LegacyRecord is how a key imported from another system is found and
// verified. It points at a Key record (KeyID) that holds everything else
// (owner, scopes, expiry, limits, metadata, revocation), so that the key
// is revoked, suspended, updated and watched as any other.
type LegacyRecord struct {
	// Lookup is how the record is found from a presented key: for a
	// salted hash "id:" and the ID the LegacyIDRule extracts; for an
	// unsalted one the kind, the pepper version and a keyed digest of the
	// old hash (see Manager.ImportLegacy), so that the store holds no
	// hash anyone without the pepper can test a key against.
	Lookup string
	// KeyID is the ID of the Key record.
	KeyID string
	// Hash is the verifier: LegacyHash.Encoded for salted hashes; for
	// unsalted ones only the kind, as the digest is in Lookup.
	Hash string
}

// LegacyStore is implemented by stores that can hold keys imported from
// another system. It is needed by Manager.ImportLegacy and WithLegacy.
type LegacyStore interface {
	// CreateLegacy creates every key and every record, setting each
	// key's Revision to 1, all or nothing: it fails with ErrConflict,
	// writing nothing, if a key ID or a Lookup exists already (or twice
	// in the call).
	CreateLegacy(ctx context.Context, keys []*Key, records []LegacyRecord) error

	// GetLegacy returns the records whose Lookup is one of lookups, in
	// any order; none is an empty result, not an error. The Manager asks
	// for every place a presented key may be stored under at once (one
	// round trip), at most a few dozen.
	GetLegacy(ctx context.Context, lookups []string) ([]LegacyRecord, error)
}
