package vault_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/vault"
)

// exampleKEK is a LocalKEK's text form. A real one comes from the
// environment (LocalKEKFromEnv) or a file (LocalKEKFromFile), made with
// `openssl rand -base64 32`; never from source code.
const exampleKEK = "2026-12:q7Kx1r6v0m8Jc2pYb4NnH9sT3wLzA5eGdUiVoRjFkQs="

func Example() {
	ctx := context.Background()
	kek, err := vault.ParseLocalKEK(exampleKEK) // in production: vault.LocalKEKFromEnv("APIKEY_VAULT_KEK")
	if err != nil {
		log.Fatal(err)
	}
	// vault.NewMemStore() keeps secrets in memory; (*sqlstore.Store).Vault()
	// keeps them in SQLite or PostgreSQL.
	v, err := vault.New(vault.NewMemStore(), kek)
	if err != nil {
		log.Fatal(err)
	}

	// A customer hands over their provider key.
	_, err = v.Put(ctx, "customer-42", "openai", apikey.NewSecret("sk-proj-0123456789abcdefghijklmnopWXYZ"))
	if err != nil {
		log.Fatal(err)
	}

	// The dashboard shows it masked.
	entries, err := v.List(ctx, "customer-42")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name, e.Masked, "version", e.Version)
	}

	// The service calls the provider with it.
	key, err := v.Reveal(vault.WithActor(ctx, "chat-handler"), "customer-42", "openai")
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "https://api.openai.com/v1/responses", nil)
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	fmt.Println("printed, the key is", key)
	// Output:
	// openai sk-…WXYZ version 1
	// printed, the key is [REDACTED]
}

// A validation function checks a key with its provider before storing it;
// an error stores nothing.
func ExampleWithValidation() {
	v, _ := vault.New(vault.NewMemStore(), mustKEK(exampleKEK))
	check := func(ctx context.Context, s apikey.Secret) error {
		// For example GET https://api.openai.com/v1/models with the key.
		return fmt.Errorf("provider answered 401 for %s", s.Reveal())
	}
	_, err := v.Put(context.Background(), "customer-42", "openai", apikey.NewSecret("sk-proj-0123456789abcdefghijklmnop"), vault.WithValidation(check))
	fmt.Println(err)
	// Output:
	// apikey: vault: secret refused by validation: put "customer-42"/"openai": provider answered 401 for [REDACTED]
}

// Rotating the KEK: the new version first, the old one after it, then
// RotateKEK, then the old version can go.
func ExampleVault_RotateKEK() {
	ctx := context.Background()
	const oldKEK = exampleKEK
	const newKEK = "2027-06:Zm9yIGV4YW1wbGVzIG9ubHksIG5ldmVyIHVzZSB0aGk="
	store := vault.NewMemStore()
	v, _ := vault.New(store, mustKEK(oldKEK))
	v.Put(ctx, "customer-42", "openai", apikey.NewSecret("sk-proj-0123456789abcdefghijklmnop"))

	both, _ := vault.New(store, mustKEK(newKEK+","+oldKEK))
	n, err := both.RotateKEK(ctx)
	fmt.Println("re-wrapped", n, err)

	onlyNew, _ := vault.New(store, mustKEK(newKEK))
	key, err := onlyNew.Reveal(ctx, "customer-42", "openai")
	fmt.Println(len(key.Reveal()), err)
	// Output:
	// re-wrapped 1 <nil>
	// 34 <nil>
}

// LocalKEKFromEnv reads VERSION:BASE64 entries, the current one first.
func ExampleLocalKEKFromEnv() {
	os.Setenv("APIKEY_VAULT_KEK", "2027-06:Zm9yIGV4YW1wbGVzIG9ubHksIG5ldmVyIHVzZSB0aGk=,"+exampleKEK)
	kek, err := vault.LocalKEKFromEnv("APIKEY_VAULT_KEK")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(kek.Version(), kek.Versions())
	fmt.Println(kek)
	// Output:
	// 2027-06 [2027-06 2026-12]
	// vault.LocalKEK(2027-06 current; 2027-06, 2026-12)
}

func ExampleMask() {
	fmt.Printf("%q\n", vault.Mask("sk-ant-api03-0123456789abcdefWXYZ"))
	fmt.Printf("%q\n", vault.Mask("short-key"))
	// Output:
	// "sk-…WXYZ"
	// ""
}

func mustKEK(text string) *vault.LocalKEK {
	k, err := vault.ParseLocalKEK(text)
	if err != nil {
		panic(err)
	}
	return k
}
