package vault

import "context"

// KEK is a key-encryption key: it wraps and unwraps the 32-byte data keys
// that encrypt secrets. LocalKEK holds one in this process; the package
// documentation says how to write one over a cloud KMS. Implementations
// must be safe for concurrent use and must authenticate aad: Unwrap with
// any other aad, version or wrapped bytes than Wrap saw must fail.
type KEK interface {
	// Version names the version new data keys are wrapped with.
	// RotateKEK re-wraps every data key wrapped by any other version.
	Version() string

	// Wrap encrypts dataKey with the current version, authenticating
	// aad, and returns the version it used and the wrapped key.
	Wrap(ctx context.Context, dataKey, aad []byte) (version string, wrapped []byte, err error)

	// Unwrap returns the data key that version wrapped with aad. A
	// version it does not hold fails with an error wrapping
	// ErrUnknownKEKVersion; wrapped bytes or aad that do not
	// authenticate, with one wrapping ErrDecrypt.
	Unwrap(ctx context.Context, version string, wrapped, aad []byte) ([]byte, error)
}
