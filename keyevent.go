package apikey

import "time"

// KeyEventType names a change in a key's life reported in a KeyEvent.
// The values are dotted, as webhook event types are. New types may be
// added.
type KeyEventType string

// Key event types.
const (
	KeyCreated   KeyEventType = "key.created"   // Issue
	KeyRotated   KeyEventType = "key.rotated"   // Rotate: Key is the replacement, RotatedFrom the old key
	KeyRevoked   KeyEventType = "key.revoked"   // Revoke, RevokeWithReason
	KeySuspended KeyEventType = "key.suspended" // Suspend
	KeyLeaked    KeyEventType = "key.leaked"    // a leak report for a real key (package leaks)
	KeyExpiring  KeyEventType = "key.expiring"  // the key expires within the sweep's window
	KeyUnused    KeyEventType = "key.unused"    // the key has not been used for the sweep's period
)

// KeyEvent reports a change in the life of a key, for audit logs,
// notifications to its owner and webhooks. It carries the key's public
// view, never the key or its digest.
type KeyEvent struct {
	Type KeyEventType
	At   time.Time // when it happened, by the reporter's clock
	Key  KeyView   // the key as it is after the change

	// Source and URL say, for KeyLeaked, who reported the leak
	// ("github", "gitlab") and where the key was found.
	Source string
	URL    string
}
