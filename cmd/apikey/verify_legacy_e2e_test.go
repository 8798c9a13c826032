package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// TestVerifyLegacy is what a team does right after apikey import: check
// one of the imported keys with apikey verify. Without --legacy each is
// refused as not of this library's format (exit 1), with a hint to give
// --legacy; with it and the services' settings (the old HMAC secret, the
// ID rule of salted keys, the cost caps) each verifies as its record, and
// a wrong secret, missing settings or a revoked key are refused (exit 1)
// with the reason and a hint. The JSON's id is the record's, never a part
// of the key. Bad flags are usage errors (exit 2) that verify nothing. On
// a SQLite file, and on PostgreSQL with APIKEY_TEST_POSTGRES.
func TestVerifyLegacy(t *testing.T) {
	cli, _ := buildBinaries(t)
	t.Run("sqlite", func(t *testing.T) {
		env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
		require.Equal(t, exitOK, runCLI(t, cli, env, "", "migrate").code)
		testVerifyLegacy(t, cli, env)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := os.Getenv("APIKEY_TEST_POSTGRES")
		if pg == "" {
			t.Skip("set APIKEY_TEST_POSTGRES (.ci/run does) to run on PostgreSQL too")
		}
		testVerifyLegacy(t, cli, postgresEnv(t, cli, pg, "e2e_verify_legacy"))
	})
}

func testVerifyLegacy(t *testing.T, cli string, env []string) {
	hmacSecret := "the old system's hmac secret"
	shaKey, _ := oldSystemKey(t)
	hmacKey, _ := oldSystemKey(t)
	bcKey, bcID := oldSystemKey(t)
	argKey, argID := oldSystemKey(t)
	shaSum := sha256.Sum256([]byte(shaKey))
	bc, err := bcrypt.GenerateFromPassword([]byte(bcKey), 5)
	require.NoError(t, err)
	salt := []byte("0123456789abcdef")
	arg := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(argKey), salt, 1, 64, 1, 32)))
	csvFile := filepath.Join(t.TempDir(), "keys.csv")
	require.NoError(t, os.WriteFile(csvFile, []byte("owner,scopes,hash,id\n"+
		"team-1,orders:read,sha256:"+hex.EncodeToString(shaSum[:])+",\n"+
		"team-2,orders:read,hmac-sha256:"+hmacSum([]byte(hmacSecret), hmacKey)+",\n"+
		"team-3,orders:read,"+string(bc)+","+bcID+"\n"+
		"team-4,orders:read,\""+arg+"\","+argID+"\n"), 0o600))
	withSecret := append(env[:len(env):len(env)], "OLD_HMAC_SECRET="+hmacSecret)
	r := runCLI(t, cli, withSecret, "", "import", "--hmac-secret-env", "OLD_HMAC_SECRET", "--json", csvFile)
	require.Equal(t, exitOK, r.code, r.stderr)
	var imported struct{ Keys []struct{ ID, Owner string } }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &imported), r.stdout)
	require.Len(t, imported.Keys, 4)
	shaRec, hmacRec, bcRec, argRec := imported.Keys[0].ID, imported.Keys[1].ID, imported.Keys[2].ID, imported.Keys[3].ID
	r = runCLI(t, cli, env, "", "create", "--owner", "team-5", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var native struct{ Key, ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &native))

	// wrong is key with its last character changed.
	wrong := func(key string) string {
		if strings.HasSuffix(key, "A") {
			return key[:len(key)-1] + "B"
		}
		return key[:len(key)-1] + "A"
	}
	// noSecret checks that out holds no 8 characters of the part of key
	// after the ID (all of it, for the native key).
	noSecret := func(t *testing.T, out, key string) {
		t.Helper()
		if key == native.Key {
			assertNoSecret(t, out, key)
			return
		}
		_, secret, _ := strings.Cut(key, ".")
		for i := 0; i+8 <= len(secret); i++ {
			if strings.Contains(out, secret[i:i+8]) {
				t.Errorf("output holds part of the secret:\n%s", strings.ReplaceAll(out, secret[i:i+8], "<SECRET>"))
				return
			}
		}
	}
	verify := func(t *testing.T, env []string, key string, args ...string) cliResult {
		t.Helper()
		r := runCLI(t, cli, env, key+"\n", append([]string{"verify"}, args...)...)
		noSecret(t, r.stdout+r.stderr, key)
		return r
	}
	lastUsed := func(id string) string {
		r := runCLI(t, cli, env, "", "show", id, "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var v struct {
			LastUsedAt string `json:"last_used_at"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		return v.LastUsedAt
	}

	t.Run("bad flags", func(t *testing.T) {
		after := []string{"--legacy", "--legacy-id-after", "old_:8"}
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"two ID rules", []string{"--legacy", "--legacy-id-at", "4:8", "--legacy-id-after", "old_:8"}, "--legacy-id-at, --legacy-id-after given: give at most one of --legacy-id-at, --legacy-id-after and --legacy-id-match"},
			{"three ID rules", []string{"--legacy", "--legacy-id-at", "4:8", "--legacy-id-after", "old_:8", "--legacy-id-match", "^old_(.{8})"}, "give at most one of"},
			{"at without a length", []string{"--legacy", "--legacy-id-at", "4"}, `--legacy-id-at "4": want START:LEN, such as 4:8`},
			{"at, start not a number", []string{"--legacy", "--legacy-id-at", "a:8"}, `--legacy-id-at "a:8": want START:LEN`},
			{"at, negative start", []string{"--legacy", "--legacy-id-at", "-1:8"}, `--legacy-id-at "-1:8": want START:LEN`},
			{"at, start past the longest key", []string{"--legacy", "--legacy-id-at", "256:8"}, `--legacy-id-at "256:8": want START:LEN`},
			{"at, length 0", []string{"--legacy", "--legacy-id-at", "4:0"}, `--legacy-id-at "4:0": want START:LEN`},
			{"at, length too long", []string{"--legacy", "--legacy-id-at", "4:129"}, "LEN from 1 to 128"},
			{"after without a length", []string{"--legacy", "--legacy-id-after", "old_"}, `--legacy-id-after "old_": want PREFIX:LEN, such as sk_live_:8`},
			{"after, empty prefix", []string{"--legacy", "--legacy-id-after", ":8"}, `--legacy-id-after ":8": want PREFIX:LEN`},
			{"after, length not a number", []string{"--legacy", "--legacy-id-after", "old_:x"}, `--legacy-id-after "old_:x": want PREFIX:LEN`},
			{"match without a group", []string{"--legacy", "--legacy-id-match", "^old_[0-9a-f]{8}"}, "want exactly one capturing group, around the ID; found 0"},
			{"match with two groups", []string{"--legacy", "--legacy-id-match", `^(old)_([0-9a-f]{8})\.`}, "want exactly one capturing group, around the ID; found 2"},
			{"match, not a regexp", []string{"--legacy", "--legacy-id-match", "^old_([0-9a-f]{8}"}, "--legacy-id-match: error parsing regexp: missing closing )"},
			{"hmac secret variable unset", append(after, "--hmac-secret-env", "OLD_HMAC_SECRET"), "--hmac-secret-env OLD_HMAC_SECRET: the variable is not set"},
			{"the hmac secret itself", append(after, "--hmac-secret-env", hmacSecret), "the flag takes the name of the environment variable that holds the old system's HMAC secret, such as OLD_HMAC_SECRET, never the secret itself"},
			{"bcrypt cap too low", append(after, "--max-bcrypt-cost", "3"), "--max-bcrypt-cost must be from 4 to 31"},
			{"bcrypt cap too high", append(after, "--max-bcrypt-cost", "32"), "--max-bcrypt-cost must be from 4 to 31"},
			{"argon2id memory cap 0", append(after, "--max-argon2-memory", "0"), "--max-argon2-memory and --max-argon2-time positive"},
			{"argon2id time cap 0", append(after, "--max-argon2-time", "0"), "--max-argon2-memory and --max-argon2-time positive"},
			{"an ID rule without --legacy", []string{"--legacy-id-after", "old_:8"}, "--legacy-id-after is for keys imported from another system: give --legacy too"},
			{"the HMAC secret without --legacy", []string{"--hmac-secret-env", "OLD_HMAC_SECRET"}, "--hmac-secret-env is for keys imported from another system: give --legacy too"},
			{"a cap without --legacy", []string{"--max-bcrypt-cost", "13"}, "--max-bcrypt-cost is for keys imported from another system: give --legacy too"},
		} {
			for _, asJSON := range []bool{false, true} {
				args := tc.args
				if asJSON {
					args = append(args[:len(args):len(args)], "--json")
				}
				r := verify(t, env, bcKey, args...)
				assert.Equal(t, exitError, r.code, "%s: %s", tc.name, r.stderr)
				assert.Contains(t, r.stderr, tc.want, tc.name)
				assert.NotContains(t, r.stderr, hmacSecret, tc.name)
				assert.Empty(t, r.stdout, tc.name)
			}
		}
		// Set but empty is not set either; and the secret is never printed.
		r := verify(t, append(env[:len(env):len(env)], "OLD_HMAC_SECRET="), bcKey, append(after, "--hmac-secret-env", "OLD_HMAC_SECRET")...)
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "--hmac-secret-env OLD_HMAC_SECRET: the variable is not set")
		assert.Empty(t, lastUsed(bcRec), "a refused command line verified the key")
	})

	after := []string{"--legacy-id-after", "old_:8"}
	at := []string{"--legacy-id-at", "4:8"}
	match := []string{"--legacy-id-match", `^old_([0-9a-f]{8})\.`}
	secret := []string{"--hmac-secret-env", "OLD_HMAC_SECRET"}
	every := append(append([]string{"--legacy"}, secret...), after...)
	withOtherSecret := append(env[:len(env):len(env)], "OLD_HMAC_SECRET=another secret")
	notLegacy := "this is not a key of this library's format: if it is one of another system's keys imported with apikey import, verify it with --legacy"
	for _, tc := range []struct {
		name   string
		key    string
		env    []string // default: with the old HMAC secret
		args   []string
		code   int
		id     string // the JSON's
		reason string
		hint   string // the JSON's, and on standard error without --json; "" for none
	}{
		{name: "sha256", key: shaKey, args: []string{"--legacy"}, id: shaRec},
		{name: "hmac-sha256", key: hmacKey, args: append([]string{"--legacy"}, secret...), id: hmacRec},
		{name: "bcrypt, ID after a prefix", key: bcKey, args: append([]string{"--legacy"}, after...), id: bcRec},
		{name: "bcrypt, ID at", key: bcKey, args: append([]string{"--legacy"}, at...), id: bcRec},
		{name: "bcrypt, ID by a regexp", key: bcKey, args: append([]string{"--legacy"}, match...), id: bcRec},
		{name: "argon2id, ID after a prefix", key: argKey, args: append([]string{"--legacy"}, after...), id: argRec},
		{name: "argon2id, ID at", key: argKey, args: append([]string{"--legacy"}, at...), id: argRec},
		{name: "argon2id, ID by a regexp", key: argKey, args: append([]string{"--legacy"}, match...), id: argRec},
		{name: "sha256, every setting", key: shaKey, args: every, id: shaRec},
		{name: "hmac-sha256, every setting", key: hmacKey, args: every, id: hmacRec},
		{name: "bcrypt, every setting", key: bcKey, args: every, id: bcRec},
		{name: "argon2id, every setting", key: argKey, args: every, id: argRec},
		{name: "bcrypt at the cap", key: bcKey, args: append(append([]string{"--legacy"}, after...), "--max-bcrypt-cost", "5"), id: bcRec},
		{name: "native key, with --legacy", key: native.Key, args: every, id: native.ID},
		{name: "native key", key: native.Key, id: native.ID},

		{name: "sha256, wrong secret", key: wrong(shaKey), args: every, code: exitNegative, reason: "malformed",
			hint: `not among the imported keys: none has this key's SHA-256 or HMAC-SHA256 under pepper version "v1"`},
		{name: "hmac-sha256 without the HMAC secret", key: hmacKey, args: append([]string{"--legacy"}, after...), code: exitNegative, reason: "malformed",
			hint: `none has this key's SHA-256 under pepper version "v1"; hmac-sha256 keys are looked for only with --hmac-secret-env`},
		{name: "hmac-sha256, another HMAC secret", key: hmacKey, env: withOtherSecret, args: every, code: exitNegative, reason: "malformed", hint: "not among the imported keys"},
		{name: "bcrypt without an ID rule", key: bcKey, args: []string{"--legacy"}, code: exitNegative, reason: "malformed",
			hint: "bcrypt and argon2id keys only with --legacy-id-at, --legacy-id-after or --legacy-id-match"},
		{name: "bcrypt, a rule that finds no ID", key: bcKey, args: []string{"--legacy", "--legacy-id-after", "new_:8"}, code: exitNegative, reason: "malformed",
			hint: `LegacyIDAfter("new_", 8) finds no ID in this key: check it against the old keys' shape`},
		{name: "bcrypt, a rule that finds another ID", key: bcKey, args: []string{"--legacy", "--legacy-id-at", "5:8"}, code: exitNegative, reason: "malformed",
			hint: "no key was imported with the ID that LegacyIDAt(5, 8) finds in this key"},
		{name: "bcrypt, wrong secret", key: wrong(bcKey), args: every, code: exitNegative, id: bcRec, reason: "invalid",
			hint: "imported key " + bcRec + " has the ID this key carries, but the secret does not match its bcrypt hash"},
		{name: "argon2id, wrong secret", key: wrong(argKey), args: append([]string{"--legacy"}, match...), code: exitNegative, id: argRec, reason: "invalid",
			hint: "imported key " + argRec + " has the ID this key carries, but the secret does not match its argon2id hash"},
		{name: "bcrypt above verify's cap", key: bcKey, args: append(append([]string{"--legacy"}, after...), "--max-bcrypt-cost", "4"), code: exitNegative, id: bcRec, reason: "invalid",
			hint: "imported key " + bcRec + " has the ID this key carries, but its hash costs more than this command checks (bcrypt cost 5 is above the cap of 4): give verify the caps"},
		{name: "argon2id above verify's cap", key: argKey, args: append(append([]string{"--legacy"}, after...), "--max-argon2-memory", "32"), code: exitNegative, id: argRec, reason: "invalid",
			hint: "but its hash costs more than this command checks (argon2id memory 64 KiB is above the cap of 32 KiB)"},

		{name: "sha256 without --legacy", key: shaKey, code: exitNegative, reason: "malformed", hint: notLegacy},
		{name: "hmac-sha256 without --legacy", key: hmacKey, code: exitNegative, reason: "malformed", hint: notLegacy},
		{name: "bcrypt without --legacy", key: bcKey, code: exitNegative, reason: "malformed", hint: notLegacy},
		{name: "argon2id without --legacy", key: argKey, code: exitNegative, reason: "malformed", hint: notLegacy},
		{name: "native key, wrong checksum, with --legacy", key: wrong(native.Key), args: every, code: exitNegative, id: "", reason: "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = withSecret
			}
			r := verify(t, env, tc.key, tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			if tc.code == exitOK {
				assert.True(t, strings.HasPrefix(r.stdout, "valid: "+tc.id+" (owner "), r.stdout)
				assert.Equal(t, tc.key != native.Key, strings.Contains(r.stdout, "imported from another system"), r.stdout)
			} else {
				assert.Contains(t, r.stderr, "invalid: ")
			}
			if tc.hint != "" {
				assert.Contains(t, r.stderr, tc.hint)
			}
			if tc.hint != notLegacy {
				assert.NotContains(t, r.stderr, "--legacy and the settings", "a hint to give --legacy where it makes no difference")
			}

			r = verify(t, env, tc.key, append(tc.args[:len(tc.args):len(tc.args)], "--json")...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			var res struct {
				Valid            bool
				ID, Reason, Hint string
				Record           *struct{ ID, Owner string }
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
			assert.Equal(t, tc.code == exitOK, res.Valid)
			assert.Equal(t, tc.id, res.ID, "the JSON's id is the record's")
			assert.Equal(t, tc.reason, res.Reason)
			if tc.hint == "" {
				assert.Empty(t, res.Hint)
			} else {
				assert.Contains(t, res.Hint, tc.hint)
			}
			if tc.code == exitOK {
				require.NotNil(t, res.Record)
				assert.Equal(t, tc.id, res.Record.ID)
			}
		})
	}

	// Revoked keys are refused as revoked; a salted key's record is named
	// by its ID, an unsalted key's is not known to verify.
	for _, id := range []string{shaRec, bcRec} {
		r := runCLI(t, cli, env, "", "revoke", id)
		require.Equal(t, exitOK, r.code, r.stderr)
	}
	for key, id := range map[string]string{shaKey: "", bcKey: bcRec} {
		r := verify(t, withSecret, key, every...)
		assert.Equal(t, exitNegative, r.code, r.stderr)
		assert.Contains(t, r.stderr, "invalid: apikey: key revoked")
		r = verify(t, withSecret, key, append(every[:len(every):len(every)], "--json")...)
		assert.Equal(t, exitNegative, r.code, r.stderr)
		var res struct{ ID, Reason string }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
		assert.Equal(t, "revoked", res.Reason)
		assert.Equal(t, id, res.ID)
	}
}
