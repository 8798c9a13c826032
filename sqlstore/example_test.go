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
