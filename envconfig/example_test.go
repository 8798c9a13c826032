package envconfig_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/memstore"
)

// A service reads its settings at start-up and refuses to start without a
// pepper.
func Example() {
	// Set here for the example; in production by the deployment.
	os.Setenv(envconfig.VarDB, "sqlite:/var/lib/acme/keys.db")
	os.Setenv(envconfig.VarPrefix, "acme_live")
	os.Setenv(envconfig.VarPepper, "example pepper: use 32 random bytes")
	defer os.Unsetenv(envconfig.VarDB)
	defer os.Unsetenv(envconfig.VarPrefix)
	defer os.Unsetenv(envconfig.VarPepper)

	dbFlag := "" // a -db flag, which wins over APIKEY_DB when given
	dsn, err := envconfig.DSN(dbFlag)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("database:", dsn) // then sqlopen.Open(ctx, dsn)

	peppers, err := envconfig.Peppers()
	if err != nil {
		log.Fatal(err) // ErrNoPepper names APIKEY_PEPPER, never a value
	}
	prefix := envconfig.Prefix("") // or a -prefix flag's value
	m, err := apikey.NewManager(memstore.New(), append(peppers, apikey.WithPrefix(prefix))...)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println("prefix:", prefix)
	// Output:
	// database: sqlite:/var/lib/acme/keys.db
	// prefix: acme_live
}

// A demo falls back to the development pepper, on purpose and out loud.
func ExampleDevPepper() {
	os.Unsetenv(envconfig.VarPepper)

	peppers, err := envconfig.Peppers()
	if errors.Is(err, envconfig.ErrNoPepper) {
		fmt.Fprintln(os.Stderr, envconfig.DevPepperWarning)
		peppers, err = []apikey.Option{envconfig.DevPepper()}, nil
	}
	if err != nil {
		log.Fatal(err)
	}
	m, err := apikey.NewManager(memstore.New(), append(peppers, apikey.WithPrefix("acme_test"))...)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(len(peppers), "pepper option")
	// Output: 1 pepper option
}
