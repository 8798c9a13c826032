// Command apikey manages API keys in a database shared with services that
// use the apikey library, and finds leaked keys in files.
//
//	apikey migrate
//	apikey create --owner team-42 --name "CI deploy" --scopes orders:read --expires 30d
//	apikey list [--owner team-42] [--status active]
//	apikey show ID|KEY
//	apikey rotate ID|KEY --grace 24h
//	apikey revoke ID|KEY
//	apikey update ID|KEY --scopes orders:read --expires 90d
//	apikey suspend ID|KEY
//	apikey resume ID|KEY
//	apikey verify [--legacy] < keyfile
//	apikey usage --owner team-42 [--per-key] --by month [--from 2026-01-01] [--to 2026-12-01]
//	apikey credits --key ID [--top-up 5000] | --owner team-42 --policy 100000/month@15 [--top-up N] [--redis URL]
//	apikey scan PATH... | -
//	apikey import keys.csv
//
// Settings come from the environment, read by package envconfig as the
// services that share the database read them:
//
//	APIKEY_DB                       the database, unless --db: sqlite:PATH, or a postgres:// or mysql:// URL
//	APIKEY_PEPPER                   the pepper (at least 16 bytes, 32 random bytes recommended; never stored)
//	APIKEY_PEPPER_VERSION           its name, recorded with each key (default v1)
//	APIKEY_PREVIOUS_PEPPER          a pepper being rotated out, still accepted
//	APIKEY_PREVIOUS_PEPPER_VERSION  its name
//	APIKEY_PREFIX                   the prefix of new keys, unless --prefix (default acme_live)
//
// Without APIKEY_PEPPER the commands that compute digests (create, rotate,
// verify) use a public development pepper and say so on standard error;
// the others need no pepper.
// Only migrate creates a SQLite database. Every command takes -h and
// --json. Exit status: 0 success; 1 a "no" (verify: the key is not valid;
// scan: keys were found); 2 bad usage or an error; 3 scan found keys and
// could not read some paths.
//
// Install: go install github.com/apikeykit/apikey/cmd/apikey@latest
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/apikeykit/apikey/envconfig"
)

// Exit statuses.
const (
	exitOK       = 0
	exitNegative = 1 // verify: the key is not valid; scan: keys were found
	exitError    = 2 // bad usage, or the command could not run; scan: some paths could not be read
	exitBoth     = 3 // scan: keys were found, and some paths could not be read
)

// errUsage reports bad usage; its message has already been printed.
var errUsage = errors.New("usage")

// exitStatus is returned by commands whose answer is not a plain success or
// failure: its message goes to standard error, and the command exits
// with its code.
type exitStatus struct {
	code int
	msg  string
}

func (s exitStatus) Error() string { return s.msg }

// negative is the status of a command whose answer is "no" (exit status 1).
func negative(msg string) exitStatus { return exitStatus{exitNegative, msg} }

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, env *env, args []string) error
}

var commands = []command{
	{"create", "--owner O [flags]", "issue a key and print it once", runCreate},
	{"list", "[--owner O] [--status S]", "list keys; --expiring 14d, --unused 90d", runList},
	{"show", "ID|KEY", "show one key's record", runShow},
	{"revoke", "ID|KEY", "revoke a key at once", runRevoke},
	{"rotate", "ID|KEY [--grace 24h]", "issue a replacement; the old key works until the grace period ends", runRotate},
	{"update", "ID|KEY [flags]", "change a key's name, scopes, lifetime, limits, addresses or metadata", runUpdate},
	{"suspend", "ID|KEY", "stop a key at once, until resume", runSuspend},
	{"resume", "ID|KEY", "let a suspended key work again", runResume},
	{"verify", "[--legacy] < KEYFILE", "check a key read from standard input (exit 0 if valid, 1 if not); --legacy: imported keys too", runVerify},
	{"usage", "--owner O [--per-key] | --key ID", "show requests and units per hour, day or month", runUsage},
	{"credits", "--key ID | --owner O", "show a credit balance (an owner's needs --policy); --top-up N adds to it", runCredits},
	{"scan", "PATH... | -", "find keys in files or standard input (exit 1 if any are found)", runScan},
	{"migrate", "", "create or upgrade the database schema", runMigrate},
	{"import", "FILE.csv|FILE.jsonl|-", "import keys of another system (SHA-256, HMAC, bcrypt, argon2id hashes)", runImport},
	{"patterns", "[--prefix P] [--format F]", "print the key regex, partner program registration, gitleaks and trufflehog rules", runPatterns},
}

// env is what commands read and write; tests substitute it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	// Errors may quote what the user typed, which may be a key or a DSN
	// with a password (redact.go).
	e = &env{stdin: e.stdin, stdout: e.stdout, stderr: redactingWriter{e.stderr}}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var st exitStatus
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitError
		case errors.As(err, &st):
			if st.msg != "" {
				fmt.Fprintln(e.stderr, st.msg)
			}
			return st.code
		}
		fmt.Fprintf(e.stderr, "apikey %s: %v\n", c.name, err)
		return exitError
	}
	fmt.Fprintf(e.stderr, "apikey: unknown command %q\n\n", args[0]) // redacted if it is a key
	if looksLikeKey(args[0]) {
		fmt.Fprintf(e.stderr, "That looks like an API key: to check one, pipe it in: apikey verify < keyfile\n\n")
	}
	usage(e.stderr)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: apikey COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %-25s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The database is --db or APIKEY_DB: sqlite:PATH, or a postgres:// or mysql:// URL.")
	fmt.Fprintln(w, "The pepper is APIKEY_PEPPER (at least 16 bytes; use 32 random bytes; never")
	fmt.Fprintln(w, "stored), named by APIKEY_PEPPER_VERSION (default v1); APIKEY_PREVIOUS_PEPPER and")
	fmt.Fprintln(w, "APIKEY_PREVIOUS_PEPPER_VERSION name one being rotated out.")
	fmt.Fprintf(w, "New keys get the prefix --prefix, else APIKEY_PREFIX, else %s: set your own\n", envconfig.DefaultPrefix)
	fmt.Fprintln(w, "vendor and environment, such as acme_live or acme_test.")
	fmt.Fprintln(w, "Exit status: 0 success; 1 verify: invalid key, scan: keys found; 2 bad usage or")
	fmt.Fprintln(w, "an error; 3 scan: keys found and some paths unreadable.")
	fmt.Fprintln(w, "Run 'apikey COMMAND -h' for a command's flags.")
}
