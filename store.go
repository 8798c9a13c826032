package apikey

import (
	"context"
	"time"
)

// Store persists Key records. Implementations live in subpackages
// (memstore, sqlstore) or in your own code; storetest.Run checks that one
// behaves as this contract says. A Store must be safe for concurrent use.
//
// A Store never sees a key, only its digest. Records passed in and out are
// owned by the caller: a Store copies what it keeps and returns fresh
// copies, so neither side can change the other's data.
type Store interface {
	// Create inserts k, setting k.Revision to 1. It fails with ErrConflict
	// if a key with k.ID exists.
	Create(ctx context.Context, k *Key) error

	// Get returns the key with the given ID, or ErrNotFound.
	Get(ctx context.Context, id string) (*Key, error)

	// Update replaces the stored key with ID k.ID by k if the stored
	// Revision equals k.Revision, and then increments k.Revision. It fails
	// with ErrNotFound if there is no such key and with ErrConflict if the
	// revision differs (someone else wrote first: Get and try again).
	Update(ctx context.Context, k *Key) error

	// List returns keys in ascending order of ID, at most opts.Limit of
	// them, starting after opts.Cursor, restricted to opts.Owner when it is
	// set. next is the cursor for the following page, "" after the last.
	// A store that cannot decode some records of the page returns the
	// others and the right next, with an error matching ErrCorruptRecord
	// that names the records it skipped.
	List(ctx context.Context, opts ListOptions) (keys []*Key, next string, err error)
}

// ListOptions selects a page of keys for Store.List and Manager.List.
type ListOptions struct {
	// Owner restricts the list to one owner; "" lists every owner.
	Owner string
	// Cursor is the next value of the previous page; "" starts at the beginning.
	Cursor string
	// Limit is the page size: 0 means DefaultListLimit, and values above
	// MaxListLimit are treated as MaxListLimit.
	Limit int
}

// Page sizes for List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// PageLimit returns opts.Limit clamped to [1, MaxListLimit], with 0
// meaning DefaultListLimit. Store implementations use it so every backend
// pages alike.
func (opts ListOptions) PageLimit() int {
	switch {
	case opts.Limit <= 0:
		return DefaultListLimit
	case opts.Limit > MaxListLimit:
		return MaxListLimit
	}
	return opts.Limit
}

// Rotator is implemented by stores that can replace a key atomically:
// update old (with the same revision check as Update) and create replacement
// in one transaction, so that a failure leaves neither change. Without it,
// Manager.Rotate creates the replacement, then updates old, and revokes the
// replacement again if that update fails.
type Rotator interface {
	Rotate(ctx context.Context, old, replacement *Key) error
}

// Revoker is implemented by stores that can revoke a key without reading
// its record, so that a record that no longer decodes can still be
// revoked. Manager.Revoke uses it when the Store has it.
type Revoker interface {
	// Revoke sets RevokedAt of key id to at if it is not set, incrementing
	// Revision, and does nothing if it is set. It fails with ErrNotFound
	// if there is no such key.
	Revoke(ctx context.Context, id string, at time.Time) error
}

// ReasonRevoker is implemented by stores that can revoke a key, and record
// why, without reading its record: a Revoker that also sets RevokedReason.
// Manager.Revoke and Manager.RevokeWithReason use it when the Store has it.
type ReasonRevoker interface {
	// RevokeWithReason sets RevokedAt of key id to at and RevokedReason to
	// reason if RevokedAt is not set, incrementing Revision, and does
	// nothing if it is set: the first revocation's time and reason stay.
	// It fails with ErrNotFound if there is no such key.
	RevokeWithReason(ctx context.Context, id string, at time.Time, reason string) error
}

// LastUsedRecorder is implemented by stores that can record when many keys
// were last used in one call. The Manager collects uses in memory and
// flushes them in batches, so verification never waits on a write. A store
// must only move LastUsedAt forward and must ignore IDs it does not hold;
// it must not change Revision, so a batch never conflicts with an Update.
type LastUsedRecorder interface {
	RecordLastUsed(ctx context.Context, used map[string]time.Time) error
}

// UsageRecorder is implemented by stores that can record and read how
// much keys were used. The Manager counts requests in memory, in hourly
// buckets per key, and flushes them in batches (see WithUsageFlush), so a
// request never waits on a write; Manager.Usage reads them back.
type UsageRecorder interface {
	// RecordUsage adds each row's Requests and Units to the hourly bucket
	// of key row.KeyID that starts at row.Start (a whole hour in UTC),
	// creating it if needed, and sets the bucket's owner to row.Owner. One
	// call may hold several rows of one key and hour, in any order: each
	// adds to the bucket (a store that upserts the batch in one statement
	// merges them first, as sqlstore does). It writes every row or none,
	// and must accept keys it does not hold: usage outlives keys.
	RecordUsage(ctx context.Context, rows []UsageRow) error

	// Usage returns the buckets q selects, summed per q.Granularity: per
	// key when q.ByKey() (q.KeyID or q.PerKey set), per owner otherwise,
	// with KeyID "". Rows come in ascending order of Start, and of KeyID
	// (bytewise) within a Start; a row per key has the owner its buckets
	// were counted for (q.Owner, when set). q has been through
	// UsageQuery.Normalize. A PerKey query is one read, whatever the
	// number of keys.
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)
}

// Watcher is implemented by stores that can report changes to keys made by
// any process, so that every Manager drops cached records at once instead of
// at the end of their TTL (revocation everywhere within a second).
type Watcher interface {
	// Watch calls changed with the ID of each key created, updated or
	// deleted, until ctx is done, and then returns ctx.Err(). A call with
	// id "" means any key may have changed: Watch makes it once it is
	// watching (changes made before then were not reported) and again
	// whenever notifications may have been missed, as after a lost
	// connection. Watch returns early with an error only if it cannot
	// watch at all.
	Watch(ctx context.Context, changed func(id string)) error
}

// EventClaimer is implemented by stores that can record that an event
// about a key was sent, so that of many Managers sweeping the same keys
// (see WithExpiringSweep) exactly one sends each event. Without it, each
// Manager remembers what it sent in memory, and several Managers may each
// send the same event once (and prunes those claims itself). A Store that
// also implements EventPruner has the claims that can no longer matter
// deleted by the sweeps; one that does not keeps every claim.
type EventClaimer interface {
	// ClaimEvent records event (such as "expiring:<expiry>") for key id,
	// at time at, and reports whether this call recorded it: true for the
	// first claim of that event for that key, by any process, and false
	// for every claim after. It does not check that the key exists.
	ClaimEvent(ctx context.Context, id, event string, at time.Time) (bool, error)
}

// EventPruner is implemented by EventClaimers that can delete the claims
// that can no longer matter, so that claims do not pile up, one per key
// and event, for as long as the Store. Manager.Sweep calls it for the
// range of key IDs of each page of keys it sweeps, so that a pass over
// the keys looks at every claim once; without it, claims are kept.
type EventPruner interface {
	// PruneEvents deletes the claims of the key IDs after from and up to
	// to, bytewise (every ID after from when to is ""), that
	// ClaimObsolete says can no longer matter at before, judged by the
	// key the Store holds with the claim's ID (nil if none), and returns
	// how many it deleted. It must never delete a claim ClaimObsolete
	// keeps: a sweep would then send its event again. A zero before, or a
	// to before from, is an error wrapping ErrInvalidRequest, and deletes
	// nothing.
	PruneEvents(ctx context.Context, from, to string, before time.Time) (int, error)
}
