package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/apikeykit/apikey"
)

// legacyFlags are the flags of the commands that deal with keys imported
// from another system: import's, and verify --legacy's, under the same
// names, so that what import was given verify takes as it is.
type legacyFlags struct {
	fs                     *flag.FlagSet
	bcryptCost             int
	argon2Memory           uint
	argon2Time             uint
	hmacSecretEnv          string
	idAt, idAfter, idMatch string // verify only: import reads each key's ID from its file
}

// legacyUsage is a command's help for the flags of legacyFlags.
type legacyUsage struct {
	bcryptCost, argon2Memory, argon2Time, hmacSecretEnv string
}

var (
	importLegacyUsage = legacyUsage{
		bcryptCost:    "refuse bcrypt hashes of a higher cost (each check costs 2^cost rounds)",
		argon2Memory:  "refuse argon2id hashes that need more memory, in KiB",
		argon2Time:    "refuse argon2id hashes with more passes",
		hmacSecretEnv: "the environment variable holding the old system's HMAC secret; required for hmac-sha256 hashes, which verify only where services have it (LegacyConfig.HMACSecret)",
	}
	verifyLegacyUsage = legacyUsage{
		bcryptCost:    "with --legacy: bcrypt hashes of a higher cost never verify, as in services with the same LegacyConfig.Cost",
		argon2Memory:  "with --legacy: argon2id hashes that need more memory, in KiB, never verify",
		argon2Time:    "with --legacy: argon2id hashes with more passes never verify",
		hmacSecretEnv: "with --legacy: the environment variable holding the old system's HMAC secret, as services have it in LegacyConfig.HMACSecret (default: hmac-sha256 keys are not looked for)",
	}
)

// addLegacyFlags defines on fs the cost caps (--max-bcrypt-cost,
// --max-argon2-memory, --max-argon2-time, defaulting to the library's
// caps) and --hmac-secret-env, with the help of usage.
func addLegacyFlags(fs *flag.FlagSet, usage legacyUsage) *legacyFlags {
	f := &legacyFlags{fs: fs}
	fs.IntVar(&f.bcryptCost, "max-bcrypt-cost", apikey.DefaultMaxBcryptCost, usage.bcryptCost)
	fs.UintVar(&f.argon2Memory, "max-argon2-memory", apikey.DefaultMaxArgon2Memory, usage.argon2Memory)
	fs.UintVar(&f.argon2Time, "max-argon2-time", apikey.DefaultMaxArgon2Time, usage.argon2Time)
	fs.StringVar(&f.hmacSecretEnv, "hmac-secret-env", "", usage.hmacSecretEnv)
	return f
}

// addIDFlags defines the flags that give the LegacyIDRule of salted
// (bcrypt, argon2id) keys: --legacy-id-at, --legacy-id-after and
// --legacy-id-match, at most one of them (see idRule).
func (f *legacyFlags) addIDFlags() {
	f.fs.StringVar(&f.idAt, "legacy-id-at", "", "with --legacy: bcrypt and argon2id keys carry their ID in the LEN bytes from byte START (0 first): START:LEN, e.g. 4:8 (apikey.LegacyIDAt)")
	f.fs.StringVar(&f.idAfter, "legacy-id-after", "", "with --legacy: bcrypt and argon2id keys carry their ID in the LEN bytes after PREFIX: PREFIX:LEN, e.g. sk_live_:8 (apikey.LegacyIDAfter)")
	f.fs.StringVar(&f.idMatch, "legacy-id-match", "", "with --legacy: bcrypt and argon2id keys carry their ID in the one capturing group of REGEXP, e.g. '^sk_live_([0-9a-f]{8})\\.' (apikey.LegacyIDMatch)")
}

// legacyOnly are the flags of verify that apply only with --legacy.
var legacyOnly = []string{"hmac-secret-env", "legacy-id-at", "legacy-id-after", "legacy-id-match", "max-bcrypt-cost", "max-argon2-memory", "max-argon2-time"}

// given returns the first of names that was set on the command line, or
// "".
func (f *legacyFlags) given(names ...string) string {
	set := make(map[string]bool)
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, n := range names {
		if set[n] {
			return n
		}
	}
	return ""
}

// cost returns the caps the flags give, or an error if one is out of
// range.
func (f *legacyFlags) cost() (apikey.LegacyCost, error) {
	if f.argon2Memory == 0 || f.argon2Memory > 1<<32-1 || f.argon2Time == 0 || f.argon2Time > 1<<32-1 || f.bcryptCost < 4 || f.bcryptCost > 31 {
		return apikey.LegacyCost{}, errors.New("--max-bcrypt-cost must be from 4 to 31, --max-argon2-memory and --max-argon2-time positive")
	}
	return apikey.LegacyCost{MaxBcryptCost: f.bcryptCost, MaxArgon2Memory: uint32(f.argon2Memory), MaxArgon2Time: uint32(f.argon2Time)}, nil
}

// idRule returns the rule of the one --legacy-id-* flag given, or the
// zero rule (unsalted keys only) if none is; two or more, or a value that
// does not parse, are an error. Errors quote what was typed (standard
// error redacts anything shaped like a key).
func (f *legacyFlags) idRule() (apikey.LegacyIDRule, error) {
	var given []string
	for _, g := range []struct{ name, value string }{{"legacy-id-at", f.idAt}, {"legacy-id-after", f.idAfter}, {"legacy-id-match", f.idMatch}} {
		if g.value != "" {
			given = append(given, "--"+g.name)
		}
	}
	switch {
	case len(given) > 1:
		return apikey.LegacyIDRule{}, fmt.Errorf("%s given: give at most one of --legacy-id-at, --legacy-id-after and --legacy-id-match (a LegacyConfig has one ID rule)", strings.Join(given, ", "))
	case f.idAt != "":
		start, n, ok := splitLen(f.idAt)
		s, err := strconv.Atoi(start)
		if !ok || err != nil || s < 0 || s > apikey.MaxTokenLen {
			return apikey.LegacyIDRule{}, fmt.Errorf("--legacy-id-at %q: want START:LEN, such as 4:8: the ID is the LEN bytes from byte START (0 first), START from 0 to %d, LEN from 1 to %d", f.idAt, apikey.MaxTokenLen, apikey.MaxLegacyIDLen)
		}
		return apikey.LegacyIDAt(s, n)
	case f.idAfter != "":
		prefix, n, ok := splitLen(f.idAfter)
		if !ok || prefix == "" || len(prefix) > apikey.MaxTokenLen {
			return apikey.LegacyIDRule{}, fmt.Errorf("--legacy-id-after %q: want PREFIX:LEN, such as sk_live_:8: the ID is the LEN bytes after PREFIX, which is not empty, LEN from 1 to %d", f.idAfter, apikey.MaxLegacyIDLen)
		}
		return apikey.LegacyIDAfter(prefix, n)
	case f.idMatch != "":
		re, err := regexp.Compile(f.idMatch)
		if err != nil {
			return apikey.LegacyIDRule{}, fmt.Errorf("--legacy-id-match: %v (RE2 syntax)", err)
		}
		if n := re.NumSubexp(); n != 1 {
			return apikey.LegacyIDRule{}, fmt.Errorf("--legacy-id-match %q: want exactly one capturing group, around the ID; found %d (group the rest with (?:…))", f.idMatch, n)
		}
		return apikey.LegacyIDMatch(f.idMatch)
	}
	return apikey.LegacyIDRule{}, nil
}

// splitLen splits "X:LEN" at its last colon (a prefix may hold colons),
// and reports whether LEN is a length a LegacyIDRule takes.
func splitLen(v string) (string, int, bool) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(v[i+1:])
	return v[:i], n, err == nil && n >= 1 && n <= apikey.MaxLegacyIDLen
}

// envName is the shape of a conventional environment variable's name.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// hmacSecret returns the value of the variable --hmac-secret-env names;
// nil without the flag, an error if the variable is unset or empty. The
// value is never in an error, nor is the flag's own value unless it is
// shaped like a variable's name: given the secret itself by mistake, the
// error does not echo it.
func (f *legacyFlags) hmacSecret() ([]byte, error) {
	if f.hmacSecretEnv == "" {
		return nil, nil
	}
	v, ok := os.LookupEnv(f.hmacSecretEnv)
	switch {
	case ok && v != "":
		return []byte(v), nil
	case !envName.MatchString(f.hmacSecretEnv):
		return nil, errors.New("--hmac-secret-env: no variable of that name is set; the flag takes the name of the environment variable that holds the old system's HMAC secret, such as OLD_HMAC_SECRET, never the secret itself (not repeated here, in case it was)")
	}
	return nil, fmt.Errorf("--hmac-secret-env %s: the variable is not set", f.hmacSecretEnv)
}

// config returns the LegacyConfig the flags give, as a service would
// have it in WithLegacy: the ID rule, the HMAC secret and the caps. It
// never upgrades a key (Upgrade is nil): verify only looks.
func (f *legacyFlags) config() (apikey.LegacyConfig, error) {
	var cfg apikey.LegacyConfig
	var err error
	if cfg.ID, err = f.idRule(); err != nil {
		return cfg, err
	}
	if cfg.Cost, err = f.cost(); err != nil {
		return cfg, err
	}
	if cfg.HMACSecret, err = f.hmacSecret(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// legacyHint is verify's hint, without --legacy, for a key that does not
// parse as one of this package's: verify --legacy would look for it among
// the imported keys.
const legacyHint = "this is not a key of this library's format: if it is one of another system's keys imported with apikey import, " +
	"verify it with --legacy and the settings your services give apikey.WithLegacy: --hmac-secret-env for hmac-sha256 keys, " +
	"--legacy-id-at, --legacy-id-after or --legacy-id-match for bcrypt and argon2id keys"

// whyLegacyInvalid says, for the operator running verify --legacy, why
// Verify refused key (err), which does not parse as a key of this
// package, under cfg; and it returns the ID of the Key record the key
// names when that is known: a salted key's, whose legacy ID (found by
// cfg.ID) names an imported record. An unsalted key is found by its hash
// alone, so a refused one has no record ID here. Neither the hint nor the
// ID holds any part of key. It returns "" for what it cannot tell.
func whyLegacyInvalid(ctx context.Context, m *apikey.Manager, st apikey.LegacyStore, cfg apikey.LegacyConfig, key string, err error) (id, hint string) {
	legacyID, hasID := cfg.ID.Extract(key)
	var rec *apikey.LegacyRecord
	if hasID {
		// The Lookup of a salted key's record (see apikey.LegacyRecord).
		recs, gerr := st.GetLegacy(ctx, []string{"id:" + legacyID})
		if gerr == nil && len(recs) == 1 && len(recs[0].KeyID) == apikey.IDLen {
			rec = &recs[0]
			id = rec.KeyID
		}
	}
	switch {
	case errors.Is(err, apikey.ErrMalformedKey) && rec == nil:
		return "", notImportedHint(m, cfg, hasID)
	case rec == nil || !errors.Is(err, apikey.ErrInvalidKey):
		return id, "" // revoked, suspended, expired, not yet valid: err says it
	}
	h, herr := apikey.ParseLegacyHash(rec.Hash)
	if herr != nil {
		return id, fmt.Sprintf("imported key %s has the ID this key carries, but its record is broken: %v", id, herr)
	}
	if cerr := cfg.Cost.Check(h); cerr != nil {
		why := strings.TrimPrefix(cerr.Error(), apikey.ErrLegacyHashCost.Error()+": ")
		return id, fmt.Sprintf("imported key %s has the ID this key carries, but its hash costs more than this command checks (%s): give verify the caps your services have in LegacyConfig.Cost, as import was given them (--max-bcrypt-cost, --max-argon2-memory, --max-argon2-time)", id, why)
	}
	return id, fmt.Sprintf("imported key %s has the ID this key carries, but the secret does not match its %s hash: the key is mistyped, or the ID rule (%v) picks the wrong part of it", id, h.Kind(), cfg.ID)
}

// notImportedHint says where verify --legacy looked for a key it did not
// find among the imported ones, and where it did not look.
func notImportedHint(m *apikey.Manager, cfg apikey.LegacyConfig, hasID bool) string {
	kinds := "SHA-256"
	if cfg.HMACSecret != nil {
		kinds = "SHA-256 or HMAC-SHA256"
	}
	parts := []string{fmt.Sprintf("not among the imported keys: none has this key's %s under pepper version %s", kinds, strings.Join(quoteAll(m.DigestVersions()), " or "))}
	if cfg.HMACSecret == nil {
		parts = append(parts, "hmac-sha256 keys are looked for only with --hmac-secret-env")
	}
	switch {
	case cfg.ID.IsZero():
		parts = append(parts, "bcrypt and argon2id keys only with --legacy-id-at, --legacy-id-after or --legacy-id-match")
	case hasID:
		parts = append(parts, fmt.Sprintf("no key was imported with the ID that %v finds in this key", cfg.ID))
	default:
		parts = append(parts, fmt.Sprintf("%v finds no ID in this key: check it against the old keys' shape", cfg.ID))
	}
	return strings.Join(parts, "; ")
}
