// Package config reads the settings that the apikey command and the
// examples share — the database and the pepper — in one way, so that a key
// made by one verifies in the other.
package config

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// Environment variables, read when the matching flag is not given.
const (
	EnvDB                    = "APIKEY_DB"                      // a DSN: sqlite:PATH or a postgres:// URL
	EnvPrefix                = "APIKEY_PREFIX"                  // prefix of new keys; default DefaultPrefix
	EnvPepper                = "APIKEY_PEPPER"                  // at least 16 random bytes (e.g. openssl rand -base64 32)
	EnvPepperVersion         = "APIKEY_PEPPER_VERSION"          // the pepper's name, recorded with each key; default "v1"
	EnvPreviousPepper        = "APIKEY_PREVIOUS_PEPPER"         // the pepper being rotated out, still accepted
	EnvPreviousPepperVersion = "APIKEY_PREVIOUS_PEPPER_VERSION" // its name
)

// DefaultPrefix is the prefix of new keys when neither a flag nor
// APIKEY_PREFIX gives one. Replace it with your own vendor name.
const DefaultPrefix = "acme_live"

// Prefix returns flagValue if set, else $APIKEY_PREFIX, else DefaultPrefix.
func Prefix(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv(EnvPrefix); v != "" {
		return v
	}
	return DefaultPrefix
}

// DevPepperVersion names the built-in pepper used when APIKEY_PEPPER is
// unset. Keys digested under it stop verifying once a real pepper is set,
// which is the point: they were only ever for trying things out.
const DevPepperVersion = "dev-insecure"

// devPepper is public (it is in this source file), so it protects nothing.
var devPepper = []byte("apikey development pepper: NOT A SECRET, set APIKEY_PEPPER")

// PepperWarning is printed when APIKEY_PEPPER is unset.
const PepperWarning = "warning: APIKEY_PEPPER is not set, so keys are digested with a built-in development pepper that anyone can read.\n" +
	"         For real keys, set it to at least 32 random bytes and keep it out of the database, e.g.\n" +
	"         export APIKEY_PEPPER=\"$(openssl rand -base64 32)\""

// ErrNoDB reports that neither a flag nor APIKEY_DB names a database.
var ErrNoDB = errors.New("no database: give --db or set APIKEY_DB (for example sqlite:quickstart.db or postgres://user@host/db)")

// DB returns flagValue if set, else $APIKEY_DB, else ErrNoDB.
func DB(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := os.Getenv(EnvDB); v != "" {
		return v, nil
	}
	return "", ErrNoDB
}

// PepperOptions returns the Manager options for the peppers in the
// environment, and whether the development pepper stands in for a missing
// APIKEY_PEPPER (callers then print PepperWarning).
func PepperOptions() (opts []apikey.Option, usingDevPepper bool, err error) {
	pepper := os.Getenv(EnvPepper)
	if pepper == "" {
		return []apikey.Option{apikey.WithPepper(DevPepperVersion, devPepper)}, true, nil
	}
	version := os.Getenv(EnvPepperVersion)
	if version == "" {
		version = "v1"
	}
	opts = append(opts, apikey.WithPepper(version, []byte(pepper)))
	if prev := os.Getenv(EnvPreviousPepper); prev != "" {
		prevVersion := os.Getenv(EnvPreviousPepperVersion)
		if prevVersion == "" {
			return nil, false, fmt.Errorf("%s is set but %s is not: name the previous pepper's version", EnvPreviousPepper, EnvPreviousPepperVersion)
		}
		opts = append(opts, apikey.WithPreviousPepper(prevVersion, []byte(prev)))
	}
	return opts, false, nil
}

// OpenStore opens the database at dsn. With migrate it brings the schema
// up to date first (the quickstart does, on first run); without, an
// unmigrated database is an error that says to run `apikey migrate`.
func OpenStore(ctx context.Context, dsn string, migrate bool) (*sqlstore.Store, error) {
	st, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// Explain adds what to do to errors a user can fix.
func Explain(err error) error {
	switch {
	case errors.Is(err, sqlstore.ErrNotMigrated):
		return fmt.Errorf("%w\n  run: apikey migrate", err)
	case errors.Is(err, sqlstore.ErrSchemaTooNew):
		return fmt.Errorf("%w\n  upgrade this program to the version that migrated the database", err)
	}
	return err
}
