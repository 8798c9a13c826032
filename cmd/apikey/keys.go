package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
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
	fs, asJSON = plainFlagSet(e, name, args)
	db = fs.String("db", "", "database DSN: sqlite:PATH, or a postgres:// or mysql:// URL (default $APIKEY_DB)")
	return fs, db, asJSON
}

// plainFlagSet returns a FlagSet for a command with only --json, for
// commands that need no database.
func plainFlagSet(e *env, name, args string) (fs *flag.FlagSet, asJSON *bool) {
	fs = flag.NewFlagSet("apikey "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: apikey %s %s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	asJSON = fs.Bool("json", false, "print JSON instead of a table")
	return fs, asJSON
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
		name := strings.TrimPrefix(fs.Name(), "apikey ")
		given := "none"
		if len(pos) > 0 {
			given = fmt.Sprintf("%d: %s", len(pos), quoteArgs(pos))
		}
		switch positional {
		case 0:
			fmt.Fprintf(fs.Output(), "apikey %s takes no arguments, only flags; given %s\n\n", name, given)
		default:
			fmt.Fprintf(fs.Output(), "apikey %s takes one argument, a key ID or a whole key; given %s\n\n", name, given)
		}
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// quoteArgs quotes each argument (standard error redacts any that is a
// key).
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// Whether a command computes digests, and so needs the pepper.
const (
	noDigests   = false // list, show, revoke: records only
	withDigests = true  // create, rotate, verify
)

// openManager opens the database and a Manager on it. The caller closes
// both with the returned function. It never creates a SQLite file: only
// migrate does. Without APIKEY_PEPPER it uses the development pepper,
// and says so if the command computes digests (digests); the others read
// and write records only, and the pepper makes no difference to them.
func openManager(ctx context.Context, e *env, dsnFlag string, digests bool, extra ...apikey.Option) (*apikey.Manager, func(), error) {
	m, _, done, err := openManagerStore(ctx, e, dsnFlag, digests, extra...)
	return m, done, err
}

// openManagerStore is openManager, for a command that also reads the
// Store itself.
func openManagerStore(ctx context.Context, e *env, dsnFlag string, digests bool, extra ...apikey.Option) (*apikey.Manager, *sqlstore.Store, func(), error) {
	dsn, err := envconfig.DSN(dsnFlag)
	if err != nil {
		return nil, nil, nil, explain(err)
	}
	if err := sqliteExists(dsn); err != nil {
		return nil, nil, nil, err
	}
	opts, err := envconfig.Peppers()
	if errors.Is(err, envconfig.ErrNoPepper) {
		// Trying things out: keys made so verify in the quickstart, which
		// falls back the same way.
		if digests {
			fmt.Fprintln(e.stderr, envconfig.DevPepperWarning)
		}
		opts, err = []apikey.Option{envconfig.DevPepper()}, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return nil, nil, nil, err
	}
	// The command is a short-lived process: it needs no cache, and must
	// not report a key as valid from a stale one.
	opts = append(opts, apikey.WithPrefix(envconfig.Prefix("")), apikey.WithCache(0, 0),
		// Into the command's standard error, which redacts, rather than
		// the log package's.
		apikey.WithBackgroundErrors(func(err error) { fmt.Fprintln(e.stderr, err) }))
	m, err := apikey.NewManager(st, append(opts, extra...)...)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return m, st, func() { m.Close(); st.Close() }, nil
}

// sqliteExists fails if dsn names a SQLite file that does not exist, as
// opening it would create it.
func sqliteExists(dsn string) error {
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3", "file":
	default:
		return nil
	}
	path, query, _ := strings.Cut(rest, "?")
	if after, ok := strings.CutPrefix(path, "//"); ok { // file://host/path
		_, path, _ = strings.Cut(after, "/")
		path = "/" + path
	}
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no SQLite database at %s\n  run: apikey migrate, which creates it (no other command does); or check --db and %s", path, envconfig.VarDB)
	}
	return nil
}

// openForKey parses the arguments of a command that acts on one key,
// named by its ID or by the whole key, and opens a Manager for it. It
// returns the key ID.
func openForKey(ctx context.Context, e *env, fs *flag.FlagSet, db *string, args []string, digests bool) (m *apikey.Manager, id string, done func(), err error) {
	pos, err := parse(fs, args, 1)
	if err != nil {
		return nil, "", nil, err
	}
	if id, err = keyID(pos[0]); err != nil {
		return nil, "", nil, err
	}
	m, done, err = openManager(ctx, e, *db, digests)
	if err != nil {
		return nil, "", nil, err
	}
	return m, id, done, nil
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
	expires := fs.String("expires", "", "when the key stops working: "+timeSyntax+" (default: never)")
	notBefore := fs.String("not-before", "", "when the key starts working, in the same forms as --expires (default: at once)")
	rate := fs.String("rate", "", "rate limit, e.g. 100/m or 10/s")
	quota := fs.String("quota", "", "usage cap, e.g. 10000/24h")
	credits := fs.String("credits", "", "credit balance: GRANT/PERIOD refilled each period, e.g. 1000/d or 1000/month@15, or GRANT once")
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
	for _, f := range []struct {
		name   string
		values []string
	}{{"owner", []string{*owner}}, {"name", []string{*name}}, {"scopes", scopes}, {"meta", meta}} {
		if err := refuseKeys(f.name, f.values...); err != nil {
			return err
		}
	}
	req := apikey.IssueRequest{Owner: *owner, Name: *name, Scopes: scopes, Prefix: envconfig.Prefix(*prefix)}
	now := time.Now()
	var err error
	if *expires != "" {
		if req.ExpiresAt, err = parseTime(*expires, now); err != nil || !req.ExpiresAt.After(now) {
			return fmt.Errorf("--expires %q: want a time in the future: %s", *expires, timeSyntax)
		}
	}
	if *notBefore != "" {
		if req.NotBefore, err = parseTime(*notBefore, now); err != nil {
			return fmt.Errorf("--not-before %q: %w", *notBefore, err)
		}
	}
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
	if *credits != "" {
		if req.Credits, err = apikey.ParseCredits(*credits); err != nil {
			return fmt.Errorf("--credits: %w", err)
		}
	}
	if req.AllowedIPs, err = parseAllowIPs(allowIPs); err != nil {
		return err
	}
	if req.Metadata, err = parseMeta(meta); err != nil {
		return err
	}

	m, done, err := openManager(ctx, e, *db, withDigests)
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

// parseAllowIPs reads the values of --allow-ip; none gives nil.
func parseAllowIPs(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range values {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--allow-ip %q: want an address or CIDR such as 10.0.0.0/8", s)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseMeta reads the key=value values of --meta; none gives nil.
func parseMeta(values []string) (map[string]string, error) {
	var out map[string]string
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--meta %q: want key=value", kv)
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out, nil
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
	fs, db, asJSON := flagSet(e, "list", "[--owner O] [--status S] [--expiring 14d] [--unused 90d]")
	owner := fs.String("owner", "", "only this owner's keys")
	state := fs.String("status", "", "only keys in this state: "+strings.Join(listStatuses, ", ")+"; active includes rotating, expired includes rotated")
	expiringFlag := fs.String("expiring", "", "only usable keys that expire within this long: "+lifetimeSyntax)
	unusedFlag := fs.String("unused", "", "only usable keys not used for at least this long (never used: since created): "+lifetimeSyntax)
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if *state != "" && !slices.Contains(listStatuses, *state) {
		fmt.Fprintf(e.stderr, "apikey list: --status %q: want one of %s\n", *state, strings.Join(listStatuses, ", "))
		return errUsage
	}
	var expiring, unused time.Duration
	for _, f := range []struct {
		name, value string
		dst         *time.Duration
	}{{"expiring", *expiringFlag, &expiring}, {"unused", *unusedFlag, &unused}} {
		if f.value == "" {
			continue
		}
		d, err := parseLifetime(f.value)
		if err != nil || d == 0 {
			fmt.Fprintf(e.stderr, "apikey list: --%s %q: want %s, more than 0\n", f.name, f.value, lifetimeSyntax)
			return errUsage
		}
		*f.dst = d
	}
	m, done, err := openManager(ctx, e, *db, noDigests)
	if err != nil {
		return err
	}
	defer done()
	// Page by page: only one page of records is in memory at a time.
	now := time.Now()
	out := &listPrinter{e: e, asJSON: *asJSON, now: now}
	for cursor := ""; ; {
		keys, next, err := m.List(ctx, apikey.ListOptions{Owner: *owner, Cursor: cursor, Limit: listPageSize})
		if err != nil {
			return explain(err)
		}
		if *state != "" {
			keys = slices.DeleteFunc(keys, func(k *apikey.Key) bool { return !hasStatus(k, now, *state) })
		}
		if expiring > 0 {
			keys = slices.DeleteFunc(keys, func(k *apikey.Key) bool {
				return k.Status(now) != nil || k.ExpiresAt.IsZero() || k.ExpiresAt.Sub(now) > expiring
			})
		}
		if unused > 0 {
			keys = slices.DeleteFunc(keys, func(k *apikey.Key) bool { return k.Status(now) != nil || now.Sub(k.LastActive()) < unused })
		}
		if err := out.page(keys); err != nil {
			return err
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return out.end()
}

// listPageSize is how many records list reads, and holds, at a time.
const listPageSize = apikey.DefaultListLimit

func runShow(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "show", "ID|KEY")
	m, id, done, err := openForKey(ctx, e, fs, db, args, noDigests)
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
	fs, db, asJSON := flagSet(e, "revoke", "ID|KEY")
	reason := fs.String("reason", "", "why, shown to the key's owner (e.g. \"leaked in a CI log\"); the first revocation's reason stays")
	m, id, done, err := openForKey(ctx, e, fs, db, args, noDigests)
	if err != nil {
		return err
	}
	defer done()
	if err := m.RevokeWithReason(ctx, id, *reason); err != nil {
		if *reason != "" && errors.Is(err, apikey.ErrInvalidRequest) && !errors.Is(err, apikey.ErrNotFound) {
			return fmt.Errorf("--reason: %w", err) // the ID was checked already; the reason is what is wrong
		}
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
	if k.RevokedReason != "" {
		fmt.Fprintf(e.stdout, "reason: %s\n", k.RevokedReason)
	}
	return nil
}

func runRotate(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "rotate", "ID|KEY [--grace 24h]")
	graceFlag := fs.String("grace", "24h", "how long the old key keeps working: "+lifetimeSyntax+"; 0 revokes it at once")
	m, id, done, err := openForKey(ctx, e, fs, db, args, withDigests)
	if err != nil {
		return err
	}
	defer done()
	grace, err := parseLifetime(*graceFlag)
	if err != nil {
		return fmt.Errorf("--grace %q: %w", *graceFlag, err)
	}
	secret, k, err := m.Rotate(ctx, id, grace)
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
	fs, db, asJSON := flagSet(e, "verify", "[--legacy [flags]] < KEYFILE")
	legacy := fs.Bool("legacy", false, "also look for the key among those imported with apikey import, as services with apikey.WithLegacy do (default: keys of this library's format only)")
	lf := addLegacyFlags(fs, verifyLegacyUsage)
	lf.addIDFlags()
	pos, err := parse(fs, args, -1)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		// Not quoted: it is most likely a key.
		msg := "apikey verify takes no arguments: it reads the key from standard input, so that the key stays out of shell history and the process list (apikey verify < keyfile)"
		if looksLikeKey(strings.Join(pos, " ")) {
			msg += "\nThe key you gave is now in your shell history: if it is a real key, remove it from there, or rotate the key."
		}
		fmt.Fprintln(e.stderr, msg)
		return errUsage
	}
	var cfg apikey.LegacyConfig
	var extra []apikey.Option
	switch name := lf.given(legacyOnly...); {
	case *legacy:
		if cfg, err = lf.config(); err != nil {
			return err
		}
		extra = append(extra, apikey.WithLegacy(cfg))
	case name != "":
		return fmt.Errorf("--%s is for keys imported from another system: give --legacy too", name)
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return fmt.Errorf("no key on standard input: pipe it in, e.g. apikey verify < keyfile")
	}
	m, st, done, err := openManagerStore(ctx, e, *db, withDigests, extra...)
	if err != nil {
		return err
	}
	defer done()
	k, err := m.Verify(ctx, line)
	if errors.Is(err, apikey.ErrUnavailable) {
		return explain(err) // no answer, not a "no"
	}
	res := verifyResult{Valid: err == nil}
	t, perr := apikey.Parse(line)
	switch {
	case perr == nil:
		res.ID = t.ID // public; the key itself is never printed
	case k != nil:
		res.ID = k.ID // an imported key's record: never a part of the key, which has no kid
	}
	if err != nil {
		res.Reason, res.Error = invalidReason(err), err.Error()
		switch {
		case perr == nil && res.Reason == "invalid":
			res.Hint = whyInvalid(ctx, m, t)
		case perr != nil && *legacy && !errors.Is(err, apikey.ErrChecksum):
			res.ID, res.Hint = whyLegacyInvalid(ctx, m, st, cfg, line, err)
		case errors.Is(perr, apikey.ErrMalformedKey) && !*legacy && len(line) <= apikey.MaxTokenLen:
			res.Hint = legacyHint
		}
		if *asJSON {
			if err := writeJSON(e.stdout, res); err != nil {
				return err
			}
			return negative("")
		}
		msg := fmt.Sprintf("invalid: %v", err)
		if res.Hint != "" {
			msg += "\n  " + res.Hint
		}
		return negative(msg)
	}
	if *asJSON {
		v := view(k, time.Now())
		res.Record = &v
		return writeJSON(e.stdout, res)
	}
	imported := ""
	if k.DigestVersion == apikey.LegacyDigestVersion {
		imported = "; imported from another system"
	}
	fmt.Fprintf(e.stdout, "valid: %s (owner %s, scopes %s%s)\n", k.ID, k.Owner, strings.Join(k.Scopes, ","), imported)
	return nil
}

// verifyResult is what verify --json prints, for a valid key and for an
// invalid one.
type verifyResult struct {
	Valid  bool            `json:"valid"`
	ID     string          `json:"id,omitempty"`     // the kid, if the key parses; for an imported key, its record's ID, if known (see whyLegacyInvalid)
	Reason string          `json:"reason,omitempty"` // why it is invalid: see invalidReason
	Error  string          `json:"error,omitempty"`
	Hint   string          `json:"hint,omitempty"` // for the operator: see whyInvalid, whyLegacyInvalid, legacyHint
	Record *apikey.KeyView `json:"record,omitempty"`
}

// whyInvalid says, for the operator running verify, why Verify answered
// ErrInvalidKey for t, which a service deliberately never tells a client:
// no such key ID in this database, a record digested under a pepper
// version this command is not configured with (and the settings that
// would verify it), another prefix, or a secret that does not match. It
// returns "" if the record cannot be read.
func whyInvalid(ctx context.Context, m *apikey.Manager, t apikey.Token) string {
	k, err := m.Get(ctx, t.ID)
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return fmt.Sprintf("no key with ID %s in this database (a key of another database, or deleted?)", t.ID)
	case err != nil:
		return ""
	}
	versions := m.DigestVersions()
	if !slices.Contains(versions, k.DigestVersion) {
		have := strings.Join(quoteAll(versions), ", ")
		pepper, ok := strings.CutPrefix(k.DigestVersion, "hmac-sha256/")
		if !ok {
			return fmt.Sprintf("key %s has a digest of kind %q, which this command does not verify (it verifies %s)", t.ID, k.DigestVersion, have)
		}
		return fmt.Sprintf("key %s was digested under pepper version %q, which this command is not configured with (it has %s): "+
			"set %s to that pepper with %s=%s, or keep it as %s with %s=%s while keys move to the new one",
			t.ID, pepper, have, envconfig.VarPepper, envconfig.VarPepperVersion, pepper,
			envconfig.VarPreviousPepper, envconfig.VarPreviousPepperVersion, pepper)
	}
	if k.Prefix != t.Prefix {
		return fmt.Sprintf("key %s was issued with prefix %q, not %q", t.ID, k.Prefix, t.Prefix)
	}
	return fmt.Sprintf("key %s exists, but the secret does not match: the key is mistyped, or the pepper of version %q is not the one it was made with",
		t.ID, strings.TrimPrefix(k.DigestVersion, "hmac-sha256/"))
}

// quoteAll quotes the pepper versions of digest versions, for whyInvalid.
func quoteAll(versions []string) []string {
	out := make([]string, len(versions))
	for i, v := range versions {
		out[i] = strconv.Quote(strings.TrimPrefix(v, "hmac-sha256/"))
	}
	return out
}

// invalidReason names why Verify refused a key, in a word: malformed,
// checksum, invalid (unknown key ID, wrong secret, another prefix, or a
// pepper that is not configured: Verify is deliberately not more precise,
// verify's hint is), revoked, suspended, expired or not_yet_valid.
func invalidReason(err error) string {
	switch {
	case errors.Is(err, apikey.ErrMalformedKey):
		return "malformed"
	case errors.Is(err, apikey.ErrChecksum):
		return "checksum"
	case errors.Is(err, apikey.ErrRevoked):
		return "revoked"
	case errors.Is(err, apikey.ErrSuspended):
		return "suspended"
	case errors.Is(err, apikey.ErrExpired):
		return "expired"
	case errors.Is(err, apikey.ErrNotYetValid):
		return "not_yet_valid"
	}
	return "invalid"
}

func runMigrate(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "migrate", "")
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
	// Whether there is anything to do: every call but Migrate fails with
	// ErrNotMigrated until the schema is current. (Another migrator may
	// do the work between this call and ours; then Migrate finds nothing
	// to do, and this one says it migrated.)
	_, err = st.Get(ctx, "000000000000")
	migrating := errors.Is(err, sqlstore.ErrNotMigrated)
	if err := st.Migrate(ctx); err != nil {
		return explain(err)
	}
	if *asJSON {
		return writeJSON(e.stdout, struct {
			Migrated      bool `json:"migrated"`
			SchemaVersion int  `json:"schema_version"`
		}{migrating, sqlstore.SchemaVersion})
	}
	if migrating {
		fmt.Fprintf(e.stdout, "migrated the database schema to version %d\n", sqlstore.SchemaVersion)
	} else {
		fmt.Fprintf(e.stdout, "database schema is up to date (version %d)\n", sqlstore.SchemaVersion)
	}
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

// notFoundHint explains ErrNotFound for id, a key ID (never a key:
// keyID made it).
func notFoundHint(err error, id string) error {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return fmt.Errorf("no key with ID %q (see apikey list)", id)
	case errors.Is(err, apikey.ErrInvalidRequest):
		// Not echoed: what was given may be a whole key.
		return fmt.Errorf("%w (IDs are the 12 characters after the prefix; see apikey list)", err)
	}
	return err
}
