package vault

import (
	"context"
	"time"
)

// Record is one stored secret: everything a Store keeps, none of it the
// secret or its data key. Version counts the Puts of (Owner, Name) from 1.
// The ciphertext and the wrapped data key authenticate Owner, Name,
// Version and Hint, so that none of them can be changed or moved.
type Record struct {
	Owner, Name string
	Version     int64

	// KEKVersion names the KEK version that wrapped WrappedKey.
	KEKVersion string
	WrappedKey []byte
	Nonce      []byte // 24 bytes
	Ciphertext []byte // the secret and a 16-byte Poly1305 tag

	// Hint is Mask of the secret, kept so that List need not decrypt.
	Hint string

	CreatedAt  time.Time // when this version was put
	RevealedAt time.Time // the last Reveal recorded; zero if none
}

// Ref names a secret: its owner and name.
type Ref struct{ Owner, Name string }

// Store keeps Records. Implementations must be safe for concurrent use and
// pass the conformance suite in package vaulttest. They receive only
// owners and names the Vault has checked (1 to MaxNameLen bytes of UTF-8
// without NUL), and must return Records that share no memory with their
// own. Backend failures should wrap apikey.ErrUnavailable.
type Store interface {
	// Get returns the record of (owner, name), or ErrNotFound.
	Get(ctx context.Context, owner, name string) (Record, error)

	// Put stores r if r.Version is 1 and no record of (r.Owner, r.Name)
	// exists, or if r.Version is one more than the stored record's, which
	// it replaces. Otherwise it changes nothing and returns ErrConflict.
	Put(ctx context.Context, r Record) error

	// List returns owner's records ordered by name (bytewise), none if
	// the owner has none.
	List(ctx context.Context, owner string) ([]Record, error)

	// Delete removes the record of (owner, name), or returns ErrNotFound.
	Delete(ctx context.Context, owner, name string) error

	// SetRevealed sets the record's RevealedAt to at if it is still at
	// version and its RevealedAt is earlier; otherwise it does nothing
	// and returns nil.
	SetRevealed(ctx context.Context, owner, name string, version int64, at time.Time) error

	// Rewrap replaces the record's KEKVersion and WrappedKey if it is
	// still at version and wrapped by fromKEK; otherwise it changes
	// nothing and returns ErrConflict (or ErrNotFound if it is gone).
	Rewrap(ctx context.Context, owner, name string, version int64, fromKEK, toKEK string, wrapped []byte) error

	// Stale returns up to limit records whose KEKVersion is not kek and
	// whose (Owner, Name) sorts after after's (bytewise, Owner first),
	// ordered by (Owner, Name). RotateKEK pages through it.
	Stale(ctx context.Context, kek string, after Ref, limit int) ([]Record, error)
}
