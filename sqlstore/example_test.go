package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
)

// A Store on a *sql.DB the caller opened, with its tables under a prefix
// of their own.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "keys.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the caller's: Close leaves it open without WithCloseDB

	st, err := sqlstore.New(db, sqlstore.SQLite, sqlstore.WithTablePrefix("acme_"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(context.Background()); err != nil {
		log.Fatal(err)
	}
	var tables int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'acme_keys'`).Scan(&tables); err != nil {
		log.Fatal(err)
	}
	fmt.Println("acme_keys tables:", tables)

	// An option that cannot apply its argument fails New.
	_, err = sqlstore.New(db, sqlstore.SQLite, sqlstore.WithPollInterval(0))
	fmt.Println(errors.Is(err, apikey.ErrInvalidRequest))
	// Output:
	// acme_keys tables: 1
	// true
}

// A credit balance in the database: a customer's monthly grant, refilled
// on the 15th, and a top-up bought on top of it.
func ExampleStore_Ledger() {
	dir, err := os.MkdirTemp("", "sqlstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "keys.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	ledger := st.Ledger()
	policy, _ := apikey.ParseCredits("1000/month@15")
	key := apikey.OwnerCreditsKey("team-42")
	balance, err := ledger.TopUp(ctx, key, policy, 500) // paid for: never expires
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after the top-up:", balance)
	d, err := ledger.Spend(ctx, key, policy, 1200) // the grant first, then 200 of the top-up
	if err != nil {
		log.Fatal(err) // errors.Is(err, apikey.ErrUnavailable): answer 503
	}
	fmt.Println(d.Allowed, d.Remaining, "of", d.Limit)
	d, _ = ledger.Spend(ctx, key, policy, 301)
	fmt.Println(d.Allowed, d.Remaining, "of", d.Limit)
	// Output:
	// after the top-up: 1500
	// true 300 of 1500
	// false 300 of 1500
}
