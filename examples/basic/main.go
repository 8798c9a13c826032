// Command basic shows the library end to end without HTTP: it issues a
// key, verifies it, rotates it with a grace period, revokes it, and prints
// what happens at each step. Keys are printed redacted, as a Secret
// prints itself; run it with -reveal to see the first key in full.
//
//	go run ./examples/basic
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

func main() {
	reveal := flag.Bool("reveal", false, "print the first key in full, as you would once to its owner")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*reveal); err != nil {
		log.Fatal(err)
	}
}

func run(reveal bool) error {
	ctx := context.Background()

	// In production the pepper comes from a secret manager or an
	// environment variable, never from the store. A random one is fine
	// for a demo whose keys live in memory.
	pepper := make([]byte, 32)
	rand.Read(pepper)
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("demo", pepper),
	)
	if err != nil {
		return err
	}
	defer m.Close()

	secret, key, err := m.Issue(ctx, apikey.IssueRequest{
		Owner:     "team-42",
		Name:      "demo key",
		Scopes:    []string{"orders:read", "orders:write"},
		ExpiresAt: time.Now().Add(90 * 24 * time.Hour),
	})
	if err != nil {
		return err
	}
	fmt.Printf("issued    %v (id %s, owner %s, scopes %v)\n", secret, key.ID, key.Owner, key.Scopes)
	if reveal {
		fmt.Fprintf(os.Stderr, "          full key, shown once: %s\n", secret.Reveal())
	}

	check := func(label string, s apikey.Secret) {
		k, err := m.Verify(ctx, s.Reveal())
		if err != nil {
			fmt.Printf("%-9s %v -> refused: %v\n", label, s, err)
			return
		}
		fmt.Printf("%-9s %v -> ok, owner %s\n", label, s, k.Owner)
	}
	check("verify", secret)

	typo := []byte(secret.Reveal())
	// One mistyped character: the checksum catches it offline.
	if typo[len(typo)-10] == 'A' {
		typo[len(typo)-10] = 'B'
	} else {
		typo[len(typo)-10] = 'A'
	}
	check("typo", apikey.NewSecret(string(typo)))

	newSecret, newKey, err := m.Rotate(ctx, key.ID, time.Hour)
	if err != nil {
		return err
	}
	fmt.Printf("rotated   %s -> %s, old key valid for one more hour\n", key.ID, newKey.ID)
	check("old key", secret)
	check("new key", newSecret)

	if err := m.Revoke(ctx, key.ID); err != nil {
		return err
	}
	fmt.Printf("revoked   %s\n", key.ID)
	check("old key", secret)
	check("new key", newSecret)
	return nil
}
