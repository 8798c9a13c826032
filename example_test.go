package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

func ExampleGenerate() {
	tok, err := apikey.Generate("acme_live")
	if err != nil {
		log.Fatal(err)
	}
	key := tok.Secret().Reveal() // show it to its owner once

	parsed, err := apikey.Parse(key)
	fmt.Println(parsed.Prefix, len(parsed.ID), len(key), err)

	// A typo is caught offline by the checksum, before any lookup.
	typo := key[:30] + "x" + key[31:]
	if key[30] == 'x' {
		typo = key[:30] + "y" + key[31:]
	}
	_, err = apikey.Parse(typo)
	fmt.Println(errors.Is(err, apikey.ErrInvalidKey))

	// Printing a Secret never shows the key.
	fmt.Println(fmt.Sprint(tok.Secret()) == "acme_live_"+tok.ID+"_…")
	// Output:
	// acme_live 12 72 <nil>
	// true
	// true
}

func ExampleManager_Verify() {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("load-me-from-a-secret-manager!!")),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	secret, key, err := m.Issue(ctx, apikey.IssueRequest{
		Owner:     "team-42",
		Name:      "billing export",
		Scopes:    []string{"orders:read"},
		ExpiresAt: time.Now().Add(90 * 24 * time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}

	caller, err := m.Verify(ctx, secret.Reveal())
	fmt.Println(caller.Owner, caller.Scopes, caller.ID == key.ID, err)

	if err := m.Revoke(ctx, key.ID); err != nil {
		log.Fatal(err)
	}
	_, err = m.Verify(ctx, secret.Reveal())
	fmt.Println(err)
	// Output:
	// team-42 [orders:read] true <nil>
	// apikey: key revoked
}

func ExampleManager_Rotate() {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("load-me-from-a-secret-manager!!")),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	oldSecret, old, _ := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42"})

	// The old key keeps working for a day while clients switch over.
	newSecret, replacement, err := m.Rotate(ctx, old.ID, 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	_, errOld := m.Verify(ctx, oldSecret.Reveal())
	_, errNew := m.Verify(ctx, newSecret.Reveal())
	fmt.Println(errOld, errNew, replacement.RotatedFrom == old.ID)
	// Output:
	// <nil> <nil> true
}
