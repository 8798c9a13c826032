// Package vault stores the secrets a service's customers bring to it,
// such as their OpenAI or Anthropic keys (BYOK), so that the service can
// call the provider for them without keeping the keys in plaintext or
// under one key that can never change.
//
// # Envelope encryption
//
// Each secret is encrypted with XChaCha20-Poly1305
// (golang.org/x/crypto/chacha20poly1305) under a data key of its own: 32
// random bytes, drawn again for every Put, with a random 24-byte nonce.
// The data key is then wrapped by a key-encryption key (KEK) behind the
// KEK interface, and only the wrapped form is stored. A stored Record
// holds the ciphertext, the nonce, the wrapped data key and the version of
// the KEK that wrapped it; never the secret or the data key. It also
// holds, unencrypted, the masked hint List shows (Mask: at most 3 leading
// and 4 trailing characters).
//
// A data key is per secret (per version of a secret), not per owner:
// one leaked data key exposes one secret; Put never reads or writes
// another secret's row, so concurrent Puts for one owner do not contend;
// deleting a row destroys the only wrapped copy of its data key; and the
// cost a per-owner key would save, one KEK call per secret, is paid once
// per cache lifetime (WithDataKeyCache) on the Reveal path.
//
// Additional authenticated data binds the ciphertext and the wrapped data
// key to the owner, the name, the secret's version and its masked hint,
// each under a purpose of its own. A row copied to another owner or name,
// parts of two rows mixed, or any byte changed, fails to decrypt with
// ErrDecrypt; it never yields another plaintext. (Someone who can write
// the database can still put back an older row of the same owner and name
// whole, or delete rows: the vault protects the secrets' confidentiality
// and integrity, not the database's history.)
//
// # Rotating the KEK
//
// RotateKEK re-wraps every data key not wrapped by the KEK's current
// version: it unwraps the 32-byte data key with the old version and wraps
// it with the new one. No customer secret is decrypted and no ciphertext
// changes. Once RotateKEK has returned without an error, the old version
// is no longer needed and can be removed from the KEK. LocalKEK holds
// several versions at once for that purpose.
//
// # A KEK in a cloud KMS
//
// The KEK interface has three methods, so a KMS needs no SDK support
// from this package; write an adapter in your service:
//
//   - Version returns the KMS key's current version, for example its key
//     version ID or ARN (AWS KMS: the key ARN, or an alias you repoint;
//     Google Cloud KMS: the CryptoKeyVersion name; Azure Key Vault: the
//     key version; HashiCorp Vault transit: the key's latest_version).
//   - Wrap calls the KMS's encrypt operation on the 32-byte data key with
//     aad as its additional authenticated data (AWS: EncryptionContext,
//     with aad base64-encoded as the value of one fixed key; Google:
//     additionalAuthenticatedData; Vault transit: context, with derived
//     keys), and returns the version that was used and the ciphertext.
//   - Unwrap calls decrypt with the same aad and the version recorded in
//     the row, and returns the data key. A version the KMS does not know
//     must be reported with an error wrapping ErrUnknownKEKVersion, and an
//     authentication failure with one wrapping ErrDecrypt.
//
// A KMS whose wrap operation cannot authenticate additional data (RSA key
// wrapping, for instance) must not simply drop aad: have it wrap a key of
// your own once, and wrap data keys locally under that key, as LocalKEK
// does, with aad.
//
// Put costs one Wrap, RotateKEK one Unwrap and one Wrap per record, and a
// Reveal that misses the data-key cache one Unwrap, so a KMS adapter's
// latency is paid once per secret per cache lifetime on the Reveal path.
// Never pass the data key or aad to a log.
//
// # Audit and redaction
//
// Reveal returns an apikey.Secret, which redacts itself in fmt, slog and
// JSON; List returns Entries whose Masked field shows at most a few
// leading characters and the last four (Mask). Put, Reveal and Delete
// report an AuditEvent to the function given with WithAudit: owner, name,
// version, the actor from the context (WithActor) and the error, never the
// secret. Errors name owners and names, never values; the text of an
// error returned by a Put validation function is scrubbed of the secret.
package vault
