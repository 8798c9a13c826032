package sqlopen_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// The embedded default: a SQLite file, migrated at start-up.
func Example() {
	dir, err := os.MkdirTemp("", "apikey-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	// In production: os.Getenv("APIKEY_DB"), e.g. "sqlite:/var/lib/acme/keys.db"
	// or "postgres://acme@db.internal/acme".
	st, err := sqlopen.Open(ctx, "sqlite:"+filepath.Join(dir, "keys.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil { // safe from every instance at once
		log.Fatal(err)
	}

	m, err := apikey.NewManager(st,
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("example pepper: use 32 random bytes")),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	secret, key, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42", Scopes: []string{"orders:read"}})
	if err != nil {
		log.Fatal(err)
	}
	got, err := m.Verify(ctx, secret.Reveal())
	fmt.Println(got.ID == key.ID, err)
	// Output: true <nil>
}
