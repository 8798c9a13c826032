package vault_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/vault"
	"golang.org/x/crypto/chacha20poly1305"
)

// benchSecretLen is the size of a typical provider key.
const benchSecretLen = 56

// BenchmarkReveal reveals a secret whose data key is cached, from a
// MemStore: one Store read, one open, the Secret. Compare it with
// BenchmarkOpenBare, the open alone of a ciphertext of the same size.
func BenchmarkReveal(b *testing.B) {
	ctx := context.Background()
	v := newVault(b, vault.NewMemStore(), kekText("v1"))
	secret := providerKey()[:benchSecretLen]
	if _, err := v.Put(ctx, "owner", "openai", apikey.NewSecret(secret)); err != nil {
		b.Fatal(err)
	}
	if _, err := v.Reveal(ctx, "owner", "openai"); err != nil { // caches the data key
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := v.Reveal(ctx, "owner", "openai")
		if err != nil || len(s.Reveal()) != benchSecretLen {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenBare is one XChaCha20-Poly1305 open of a benchSecretLen
// plaintext, with additional data of the size Reveal uses, into a new
// slice as Reveal does.
func BenchmarkOpenBare(b *testing.B) {
	key := make([]byte, chacha20poly1305.KeySize)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(key)
	rand.Read(nonce)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		b.Fatal(err)
	}
	ad := make([]byte, 48)
	ct := aead.Seal(nil, nonce, make([]byte, benchSecretLen), ad)
	b.ReportAllocs()
	for b.Loop() {
		pt, err := aead.Open(nil, nonce, ct, ad)
		if err != nil || len(pt) != benchSecretLen {
			b.Fatal(err)
		}
	}
}
