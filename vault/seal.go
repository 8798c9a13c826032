package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Purposes of the additional data, so that a ciphertext can never pass
// for a wrapped key or the other way round.
const (
	purposeSecret  = "secret"
	purposeDataKey = "data-key"
)

// additionalData binds a ciphertext or a wrapped data key to the row it
// belongs in: every field is length-prefixed, so no two rows share it.
// The KEK version is not part of it, so that RotateKEK changes only the
// wrapped key.
func additionalData(purpose string, owner, name string, version int64, hint string) []byte {
	b := make([]byte, 0, 32+len(purpose)+len(owner)+len(name)+len(hint))
	b = append(b, "apikey/vault/1\x00"...)
	for _, s := range []string{purpose, owner, name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	b = binary.AppendUvarint(b, uint64(len(hint)))
	return append(b, hint...)
}

// newDataKey returns a fresh random data key and its cipher.
func newDataKey() ([]byte, cipher.AEAD, error) {
	dk := make([]byte, KEKSize)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, fmt.Errorf("apikey: vault: random data key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, nil, fmt.Errorf("apikey: vault: data key: %w", err)
	}
	return dk, aead, nil
}

// seal encrypts plaintext under aead with a fresh random nonce.
func seal(aead cipher.AEAD, plaintext, ad []byte) (nonce, ciphertext []byte, err error) {
	nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("apikey: vault: random nonce: %w", err)
	}
	return nonce, aead.Seal(nil, nonce, plaintext, ad), nil
}
