// Package envconfig reads apikey's settings from environment variables,
// the same way the apikey command and the examples do, so that a key made
// by one verifies in another:
//
//	APIKEY_DB                       the database, as sqlopen.Open reads it: sqlite:PATH, or a postgres:// or mysql:// URL
//	APIKEY_PREFIX                   the prefix of new keys (default DefaultPrefix)
//	APIKEY_PEPPER                   the pepper: at least apikey.MinPepperLen random bytes, never stored
//	APIKEY_PEPPER_VERSION           its name, recorded with each key (default DefaultPepperVersion)
//	APIKEY_PREVIOUS_PEPPER          a pepper being rotated out, still accepted
//	APIKEY_PREVIOUS_PEPPER_VERSION  its name (required with it)
//
// Each function reads the environment when called; none caches or changes
// it, and all are safe for concurrent use. A missing setting is an error
// the caller can test for (ErrNoDB, ErrNoPepper) and answer as it sees
// fit: with a default database, or, while trying things out, with the
// insecure DevPepper. Errors name variables, never their values.
//
// The package imports only the standard library and package apikey, so
// reading a pepper links no database driver.
package envconfig

import (
	"errors"
	"fmt"
	"os"

	"github.com/apikeykit/apikey"
)

// Names of the environment variables the package reads.
const (
	VarDB                    = "APIKEY_DB"
	VarPrefix                = "APIKEY_PREFIX"
	VarPepper                = "APIKEY_PEPPER"
	VarPepperVersion         = "APIKEY_PEPPER_VERSION"
	VarPreviousPepper        = "APIKEY_PREVIOUS_PEPPER"
	VarPreviousPepperVersion = "APIKEY_PREVIOUS_PEPPER_VERSION"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNoDB reports that neither the caller nor APIKEY_DB names a
	// database.
	ErrNoDB = errors.New("apikey: envconfig: " + VarDB + " is not set (for example sqlite:keys.db or postgres://user@host/db)")

	// ErrNoPepper reports that APIKEY_PEPPER is not set. The caller
	// decides what that means: a service should refuse to start; a demo
	// may fall back to DevPepper after printing DevPepperWarning.
	ErrNoPepper = errors.New("apikey: envconfig: " + VarPepper + " is not set")
)

// DSN returns the database's DSN: override if it is not empty (a flag's
// value, say), else $APIKEY_DB, else ErrNoDB. It does not check the DSN;
// sqlopen.Open does.
func DSN(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	if v := os.Getenv(VarDB); v != "" {
		return v, nil
	}
	return "", ErrNoDB
}

// DefaultPrefix is the prefix of new keys when neither the caller nor
// APIKEY_PREFIX gives one. Replace it with your own vendor name.
const DefaultPrefix = "acme_live"

// Prefix returns the prefix of new keys: override if it is not empty,
// else $APIKEY_PREFIX, else DefaultPrefix. It does not check the prefix;
// apikey.WithPrefix does.
func Prefix(override string) string {
	if override != "" {
		return override
	}
	if v := os.Getenv(VarPrefix); v != "" {
		return v
	}
	return DefaultPrefix
}

// DefaultPepperVersion names the pepper when APIKEY_PEPPER_VERSION is
// unset.
const DefaultPepperVersion = "v1"

// Peppers returns the Manager options for the peppers in the environment:
// apikey.WithPepper with APIKEY_PEPPER under the name
// $APIKEY_PEPPER_VERSION (default DefaultPepperVersion) and, if
// APIKEY_PREVIOUS_PEPPER is set, apikey.WithPreviousPepper with it under
// the name $APIKEY_PREVIOUS_PEPPER_VERSION. Peppers are used byte for
// byte as the variables hold them; apikey.NewManager checks their length
// and names.
//
// Peppers returns ErrNoPepper if APIKEY_PEPPER is unset, and an error
// wrapping apikey.ErrInvalidRequest if it is set but empty (a secret that
// failed to arrive, which must not pass for an absent one) or if
// APIKEY_PREVIOUS_PEPPER is set without APIKEY_PREVIOUS_PEPPER_VERSION.
func Peppers() ([]apikey.Option, error) {
	pepper, ok := os.LookupEnv(VarPepper)
	switch {
	case !ok:
		return nil, ErrNoPepper
	case pepper == "":
		return nil, fmt.Errorf("%w: envconfig: %s is set but empty", apikey.ErrInvalidRequest, VarPepper)
	}
	version := os.Getenv(VarPepperVersion)
	if version == "" {
		version = DefaultPepperVersion
	}
	opts := []apikey.Option{apikey.WithPepper(version, []byte(pepper))}
	if prev := os.Getenv(VarPreviousPepper); prev != "" {
		prevVersion := os.Getenv(VarPreviousPepperVersion)
		if prevVersion == "" {
			return nil, fmt.Errorf("%w: envconfig: %s is set but %s is not: name the previous pepper's version",
				apikey.ErrInvalidRequest, VarPreviousPepper, VarPreviousPepperVersion)
		}
		opts = append(opts, apikey.WithPreviousPepper(prevVersion, []byte(prev)))
	}
	return opts, nil
}

// DevPepperVersion names the pepper DevPepper sets. Keys digested under
// it stop verifying once a real pepper is set, which is the point: they
// were only ever for trying things out.
const DevPepperVersion = "dev-insecure"

// devPepper is public (it is in this source file), so it protects nothing.
var devPepper = []byte("apikey development pepper: NOT A SECRET, set APIKEY_PEPPER")

// DevPepper returns a Manager option with a built-in pepper that anyone
// can read, under the name DevPepperVersion, for demos and local
// experiments without APIKEY_PEPPER. Anyone who reads the store can then
// test candidate keys offline: never use it for real keys. Print
// DevPepperWarning when you fall back to it.
func DevPepper() apikey.Option {
	return apikey.WithPepper(DevPepperVersion, devPepper)
}

// DevPepperWarning is the message to print when a program falls back to
// DevPepper because APIKEY_PEPPER is not set.
const DevPepperWarning = "warning: " + VarPepper + " is not set, so keys are digested with a built-in development pepper that anyone can read.\n" +
	"         For real keys, set it to at least 32 random bytes and keep it out of the database, e.g.\n" +
	"         export " + VarPepper + "=\"$(openssl rand -base64 32)\""
