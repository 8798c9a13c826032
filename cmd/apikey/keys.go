package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// flagSet returns a FlagSet for a command with the flags every database
// command has.
func flagSet(e *env, name, args string) (fs *flag.FlagSet, db *string, asJSON *bool) {
	fs = flag.NewFlagSet("apikey "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: apikey %s %s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	db = fs.String("db", "", "database DSN: sqlite:PATH or a postgres:// URL (default $APIKEY_DB)")
	asJSON = fs.Bool("json", false, "print JSON instead of a table")
	return fs, db, asJSON
}

// parse parses args, allowing flags after positional arguments too
// ("apikey show ID --json"), and checks the number of positional ones.
func parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if positional >= 0 && len(pos) != positional {
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// openManager opens the database and a Manager on it. The caller closes
// both with the returned function.
func openManager(ctx context.Context, e *env, dsnFlag string) (*apikey.Manager, func(), error) {
	dsn, err := envconfig.DSN(dsnFlag)
	if err != nil {
		return nil, nil, explain(err)
	}
	opts, err := envconfig.Peppers()
	if errors.Is(err, envconfig.ErrNoPepper) {
		// Trying things out: keys made so verify in the quickstart, which
		// falls back the same way.
		fmt.Fprintln(e.stderr, envconfig.DevPepperWarning)
		opts, err = []apikey.Option{envconfig.DevPepper()}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	// The command is a short-lived process: it needs no cache, and must
	// not report a key as valid from a stale one.
	opts = append(opts, apikey.WithPrefix(envconfig.Prefix("")), apikey.WithCache(0, 0))
	m, err := apikey.NewManager(st, opts...)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return m, func() { m.Close(); st.Close() }, nil
}

// openForKey parses the arguments of a command that acts on one key ID
// and opens a Manager for it.
func openForKey(ctx context.Context, e *env, fs *flag.FlagSet, db *string, args []string) (m *apikey.Manager, id string, done func(), err error) {
	pos, err := parse(fs, args, 1)
	if err != nil {
		return nil, "", nil, err
	}
	m, done, err = openManager(ctx, e, *db)
	if err != nil {
		return nil, "", nil, err
	}
	return m, pos[0], done, nil
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runCreate(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "create", "--owner O [flags]")
	owner := fs.String("owner", "", "the user, team or service the key acts for (required)")
	name := fs.String("name", "", "a label for people, e.g. \"CI deploy\"")
	prefix := fs.String("prefix", "", "key prefix: vendor and environment, e.g. acme_live or acme_test (default $APIKEY_PREFIX, else "+envconfig.DefaultPrefix+")")
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (default: never expires)")
	rate := fs.String("rate", "", "rate limit, e.g. 100/m or 10/s")
	quota := fs.String("quota", "", "usage cap, e.g. 10000/24h")
	var scopes, allowIPs, meta listFlag
	fs.Var(&scopes, "scopes", "granted scopes, comma-separated, e.g. orders:read,billing:*")
	fs.Var(&allowIPs, "allow-ip", "client addresses allowed, CIDR, comma-separated or repeated (default: any)")
	fs.Var(&meta, "meta", "metadata key=value, comma-separated or repeated")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if *owner == "" {
		fmt.Fprintln(e.stderr, "apikey create: --owner is required")
		fs.Usage()
		return errUsage
	}
	req := apikey.IssueRequest{Owner: *owner, Name: *name, Scopes: scopes, Prefix: envconfig.Prefix(*prefix)}
	if *expires < 0 {
		return fmt.Errorf("--expires %v: want a positive duration such as 720h", *expires)
	}
	if *expires > 0 {
		req.ExpiresAt = time.Now().Add(*expires)
	}
	var err error
	if *rate != "" {
		if req.RateLimit, err = apikey.ParseLimit(*rate); err != nil {
			return fmt.Errorf("--rate: %w", err)
		}
	}
	if *quota != "" {
		if req.Quota, err = apikey.ParseQuota(*quota); err != nil {
			return fmt.Errorf("--quota: %w", err)
		}
	}
	for _, s := range allowIPs {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("--allow-ip %q: want an address or CIDR such as 10.0.0.0/8", s)
		}
		req.AllowedIPs = append(req.AllowedIPs, p)
	}
	for _, kv := range meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--meta %q: want key=value", kv)
		}
		if req.Metadata == nil {
			req.Metadata = make(map[string]string)
		}
		req.Metadata[k] = v
	}

	m, done, err := openManager(ctx, e, *db)
	if err != nil {
		return err
	}
	defer done()
	secret, k, err := m.Issue(ctx, req)
	if err != nil {
		return explain(err)
	}
	return printIssued(e, secret, k, *asJSON, "")
}

// parsePrefix accepts a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func runList(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "list", "[--owner O]")
	owner := fs.String("owner", "", "only this owner's keys")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	m, done, err := openManager(ctx, e, *db)
	if err != nil {
		return err
	}
	defer done()
	var all []*apikey.Key
	cursor := ""
	for {
		keys, next, err := m.List(ctx, apikey.ListOptions{Owner: *owner, Cursor: cursor, Limit: apikey.MaxListLimit})
		if err != nil {
			return explain(err)
		}
		all = append(all, keys...)
		if next == "" {
			break
		}
		cursor = next
	}
	return printKeys(e, all, *asJSON)
}

func runShow(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "show", "ID")
	m, id, done, err := openForKey(ctx, e, fs, db, args)
	if err != nil {
		return err
	}
	defer done()
	k, err := m.Get(ctx, id)
	if err != nil {
		return notFoundHint(explain(err), id)
	}
	return printKey(e, k, *asJSON)
}

func runRevoke(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "revoke", "ID")
	m, id, done, err := openForKey(ctx, e, fs, db, args)
	if err != nil {
		return err
	}
	defer done()
	if err := m.Revoke(ctx, id); err != nil {
		return notFoundHint(explain(err), id)
	}
	k, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return printKey(e, k, true)
	}
	fmt.Fprintf(e.stdout, "revoked %s (owner %s) at %s\n", k.ID, k.Owner, k.RevokedAt.Format(time.RFC3339))
	return nil
}

func runRotate(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "rotate", "ID [--grace 24h]")
	grace := fs.Duration("grace", 24*time.Hour, "how long the old key keeps working")
	m, id, done, err := openForKey(ctx, e, fs, db, args)
	if err != nil {
		return err
	}
	defer done()
	secret, k, err := m.Rotate(ctx, id, *grace)
	if err != nil {
		return notFoundHint(explain(err), id)
	}
	// The old key's own expiry, which Rotate keeps when it comes before
	// the end of the grace period.
	old, err := m.Get(ctx, id)
	if err != nil {
		return explain(err)
	}
	note := fmt.Sprintf("The old key %s keeps working until %s.", id, old.ExpiresAt.UTC().Format(time.RFC3339))
	return printIssued(e, secret, k, *asJSON, note)
}

func runVerify(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "verify", "< KEYFILE")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return fmt.Errorf("no key on standard input: pipe it in, e.g. apikey verify < keyfile")
	}
	m, done, err := openManager(ctx, e, *db)
	if err != nil {
		return err
	}
	defer done()
	k, err := m.Verify(ctx, line)
	if err != nil {
		if errors.Is(err, apikey.ErrUnavailable) {
			return explain(err)
		}
		return negative{fmt.Sprintf("invalid: %v", err)}
	}
	if *asJSON {
		return printKey(e, k, true)
	}
	fmt.Fprintf(e.stdout, "valid: %s (owner %s, scopes %s)\n", k.ID, k.Owner, strings.Join(k.Scopes, ","))
	return nil
}

func runMigrate(ctx context.Context, e *env, args []string) error {
	fs, db, _ := flagSet(e, "migrate", "")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	dsn, err := envconfig.DSN(*db)
	if err != nil {
		return explain(err)
	}
	st, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return explain(err)
	}
	fmt.Fprintln(e.stdout, "database schema is up to date")
	return nil
}

// explain adds what to do to errors a user of the command can fix.
func explain(err error) error {
	switch {
	case errors.Is(err, envconfig.ErrNoDB):
		return fmt.Errorf("%w\n  give --db, or set %s", err, envconfig.VarDB)
	case errors.Is(err, sqlstore.ErrNotMigrated):
		return fmt.Errorf("%w\n  run: apikey migrate", err)
	case errors.Is(err, sqlstore.ErrSchemaTooNew):
		return fmt.Errorf("%w\n  upgrade this program to the version that migrated the database", err)
	}
	return err
}

func notFoundHint(err error, id string) error {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return fmt.Errorf("no key with ID %q (IDs are the 12 characters after the prefix; see apikey list)", id)
	case errors.Is(err, apikey.ErrInvalidRequest):
		// Not echoed: what was given may be a whole key.
		return fmt.Errorf("%w (IDs are the 12 characters after the prefix; see apikey list)", err)
	}
	return err
}
