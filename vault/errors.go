package vault

import "errors"

// Errors returned by this package, matched with errors.Is. The errors
// actually returned wrap them with the owner and name concerned, never
// with a secret.
var (
	// ErrNotFound reports that the Store holds no secret for the owner
	// and name.
	ErrNotFound = errors.New("apikey: vault: secret not found")

	// ErrConflict reports a Store write that lost a race: a Put whose
	// previous version is no longer the stored one, or a re-wrap of a row
	// that changed meanwhile.
	ErrConflict = errors.New("apikey: vault: conflicting write")

	// ErrDecrypt reports a ciphertext or wrapped data key that did not
	// authenticate: it was changed, moved to another owner or name, or
	// wrapped by another key. No plaintext is returned with it.
	ErrDecrypt = errors.New("apikey: vault: secret does not decrypt (changed, moved, or wrapped by another key)")

	// ErrUnknownKEKVersion reports a record wrapped by a KEK version the
	// KEK does not hold, for example one removed before RotateKEK had
	// re-wrapped every data key. The wrapping error names the version.
	ErrUnknownKEKVersion = errors.New("apikey: vault: unknown KEK version")

	// ErrInvalidRequest reports an argument or option that breaks a rule;
	// the wrapping error names it, never the secret.
	ErrInvalidRequest = errors.New("apikey: vault: invalid request")

	// ErrInvalidKEK reports a KEK definition (LocalKEK's text form) that
	// does not parse; the wrapping error says where, never the key.
	ErrInvalidKEK = errors.New("apikey: vault: invalid KEK")

	// ErrValidation reports a secret refused by the validation function
	// given to Put with WithValidation. Nothing was stored.
	ErrValidation = errors.New("apikey: vault: secret refused by validation")
)
