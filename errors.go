package apikey

import (
	"context"
	"errors"
	"fmt"
)

// Errors returned by this package. Match them with errors.Is: the errors
// actually returned often wrap them with detail (which scope, which field).
var (
	// ErrInvalidKey reports a key that did not verify: malformed, wrong
	// checksum, unknown ID, wrong secret, or a prefix that does not belong
	// to the key. Malformed and wrong-checksum tokens, which can be told
	// offline, also match ErrMalformedKey and ErrChecksum; an unknown ID,
	// a wrong secret and a wrong prefix are deliberately not told apart.
	ErrInvalidKey = errors.New("apikey: invalid key")

	// ErrMalformedKey reports a token that is not of the shape
	// prefix_kid_secretcrc. It also matches ErrInvalidKey.
	ErrMalformedKey error = &invalidKeyError{"apikey: malformed key"}

	// ErrChecksum reports a token of the right shape whose CRC-32 checksum
	// does not match: a typo, a truncation, or a random string. It also
	// matches ErrInvalidKey.
	ErrChecksum error = &invalidKeyError{"apikey: key checksum mismatch"}

	// ErrRevoked reports a key that was revoked.
	ErrRevoked = errors.New("apikey: key revoked")

	// ErrExpired reports a key past its expiry, including a rotated key
	// whose grace period has ended.
	ErrExpired = errors.New("apikey: key expired")

	// ErrSuspended reports a key that was suspended (Manager.Suspend) and
	// not resumed.
	ErrSuspended = errors.New("apikey: key suspended")

	// ErrNotYetValid reports a key used before its NotBefore time.
	ErrNotYetValid = errors.New("apikey: key not yet valid")

	// ErrNotFound reports that a Store holds no key with the given ID.
	ErrNotFound = errors.New("apikey: key not found")

	// ErrConflict reports a Store write that lost a race: a Create for an
	// ID that exists, or an Update whose Revision is not the stored one.
	ErrConflict = errors.New("apikey: conflicting write")

	// ErrUnavailable wraps a failure of a backend (store, limiter) that
	// prevented a decision. Callers must fail closed on it: the key may be
	// perfectly valid, so it is neither a success nor an authentication
	// failure (HTTP 503, not 401).
	ErrUnavailable = errors.New("apikey: backend unavailable")

	// ErrCorruptRecord reports a stored record that cannot be used as it
	// is: it does not decode, or its limits make no sense. It comes
	// wrapped with ErrUnavailable from Verify (the key is refused with 503
	// until the record is fixed) and from stores that cannot decode a row.
	ErrCorruptRecord = errors.New("apikey: corrupt key record")

	// ErrInvalidRequest reports an IssueRequest, option or argument that
	// breaks a rule; the wrapping error names the field.
	ErrInvalidRequest = errors.New("apikey: invalid request")

	// ErrInvalidPrefix reports a key prefix outside the grammar
	// [a-z][a-z0-9]*(_[a-z0-9]+)* or longer than MaxPrefixLen.
	ErrInvalidPrefix = errors.New("apikey: invalid prefix")

	// ErrInvalidScope reports a scope outside the scope grammar; the
	// wrapping error names the scope.
	ErrInvalidScope = errors.New("apikey: invalid scope")

	// ErrInvalidQuery reports a scope query that does not parse; the
	// returned *QueryError gives the position.
	ErrInvalidQuery = errors.New("apikey: invalid scope query")
)

// invalidKeyError is a distinct, more precise error that still matches
// ErrInvalidKey, so callers that only care whether a key verified need one
// check, while tests and logs can tell a typo from a forgery.
type invalidKeyError struct{ msg string }

func (e *invalidKeyError) Error() string        { return e.msg }
func (e *invalidKeyError) Is(target error) bool { return target == ErrInvalidKey }

// storeError passes the Store's own sentinel errors through and marks
// every other failure as ErrUnavailable, so callers fail closed.
func storeError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, errOldChanged),
		errors.Is(err, ErrInvalidRequest), isContextError(err):
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
