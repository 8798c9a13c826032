package vault_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/apikeykit/apikey/vault"
)

// kekText returns a LocalKEK text form with one random key per version.
func kekText(versions ...string) string {
	var parts []string
	for _, v := range versions {
		k := make([]byte, vault.KEKSize)
		rand.Read(k)
		parts = append(parts, v+":"+base64.StdEncoding.EncodeToString(k))
	}
	return strings.Join(parts, ",")
}

func newKEK(t testing.TB, text string) *vault.LocalKEK {
	t.Helper()
	k, err := vault.ParseLocalKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newVault(t testing.TB, st vault.Store, kek string, opts ...vault.Option) *vault.Vault {
	t.Helper()
	v, err := vault.New(st, newKEK(t, kek), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// providerKey returns a random key shaped like a provider's.
func providerKey() string {
	b := make([]byte, 36)
	rand.Read(b)
	return "sk-proj-" + base64.RawURLEncoding.EncodeToString(b)
}

// tamperStore hands Reveal a changed copy of each record it reads.
type tamperStore struct {
	vault.Store
	tamper func(*vault.Record)
}

func (s tamperStore) Get(ctx context.Context, owner, name string) (vault.Record, error) {
	r, err := s.Store.Get(ctx, owner, name)
	if err == nil && s.tamper != nil {
		s.tamper(&r)
	}
	return r, err
}
