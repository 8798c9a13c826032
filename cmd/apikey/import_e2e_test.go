package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// oldSystemKey is a key as a hand-rolled system made them: "old_", an
// 8-character ID, ".", a random secret.
func oldSystemKey(t *testing.T) (key, id string) {
	t.Helper()
	b := make([]byte, 22)
	rand.Read(b)
	id = hex.EncodeToString(b[:4])
	return "old_" + id + "." + base64.RawURLEncoding.EncodeToString(b[4:]), id
}

// TestImportCommand is what a team moving to apikey does: migrate, import
// its keys from CSV and JSON lines (one of each hash format), and serve
// them with WithLegacy. A bad file of any kind is refused with its line
// number, and writes nothing.
func TestImportCommand(t *testing.T) {
	cli, _ := buildBinaries(t)
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "keys.db")
	env := testEnv(dsn)
	require.Equal(t, 0, runCLI(t, cli, env, "", "migrate").code)

	hmacSecret := []byte("the old system's hmac secret")
	shaKey, _ := oldSystemKey(t)
	hmacKey, _ := oldSystemKey(t)
	bcKey, bcID := oldSystemKey(t)
	argKey, argID := oldSystemKey(t)
	shaSum := sha256.Sum256([]byte(shaKey))
	mac := hmacSum(hmacSecret, hmacKey)
	bc, err := bcrypt.GenerateFromPassword([]byte(bcKey), bcrypt.MinCost)
	require.NoError(t, err)
	salt := []byte("0123456789abcdef")
	arg := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(argKey), salt, 1, 64, 1, 32)))

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	csvFile := write("keys.csv", "owner,name,scopes,expires,rate,quota,allow_ips,metadata,hash,id\n"+
		"team-1,CI,orders:read orders:write,90d,100/m,10000/24h,,plan=pro region=eu,sha256:"+hex.EncodeToString(shaSum[:])+",\n"+
		"team-2,,orders:read,,,,10.0.0.0/8 127.0.0.1,,hmac-sha256:"+mac+",\n"+
		"team-3,,,,,,,,"+string(bc)+","+bcID+"\n")
	jsonFile := write("keys.jsonl", fmt.Sprintf(`{"owner": "team-4", "scopes": ["orders:read"], "hash": %q, "id": %q}`+"\n", arg, argID))

	// Bad files first: each is refused and writes nothing.
	costly, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"malformed.csv", "owner,hash\nteam-1,\"sha256:" + hex.EncodeToString(shaSum[:]) + "\n", "line 2: malformed CSV"},
		{"duplicate.csv", "owner,hash,id\nteam-1,\"" + string(bc) + "\"," + bcID + "\nteam-2,sha256:" + hex.EncodeToString(shaSum[:]) + ",\nteam-3,\"" + arg + "\"," + bcID + "\n", "line 4: the same key as line 2"},
		{"unknown.csv", "owner,hash\nteam-1,sha256:" + hex.EncodeToString(shaSum[:]) + "\nteam-1,md5:0cc175b9c0f1b6a831c399e269772661\n", "line 3: apikey: invalid legacy hash: unknown format"},
		{"cost.csv", "owner,hash,id\nteam-1,sha256:" + hex.EncodeToString(shaSum[:]) + ",\nteam-1," + strings.Replace(string(costly), "$04$", "$13$", 1) + ",abc\n", "line 3: apikey: legacy hash costlier than allowed: bcrypt cost 13 is above the cap of 12"},
		{"column.csv", "owner,hash,secret\nteam-1,x,y\n", `line 1: unknown column "secret"`},
		{"nohash.csv", "owner,name\nteam-1,x\n", `line 1: no "hash" column`},
		{"bad.jsonl", `{"owner": "team-1", "hash": "sha256:` + hex.EncodeToString(shaSum[:]) + `"}` + "\n{\"owner\": 7}\n", "line 2: malformed JSON"},
		{"noid.jsonl", `{"owner": "team-1", "hash": "` + string(bc) + `"}` + "\n", "line 1: apikey: invalid request: a bcrypt hash needs the ID"},
	} {
		r := runCLI(t, cli, env, "", "import", write(tc.name, tc.content))
		assert.Equal(t, 2, r.code, tc.name)
		assert.Contains(t, r.stderr, tc.want, tc.name)
		assert.Contains(t, r.stderr, "nothing imported", tc.name)
		assert.NotContains(t, r.stderr, shaKey, tc.name)
		list := runCLI(t, cli, env, "", "list", "--json")
		assert.NotContains(t, list.stdout, `"id"`, "%s: a refused file wrote keys: %s", tc.name, list.stdout)
	}
	r := runCLI(t, cli, env, "", "import", "--max-bcrypt-cost", "13", write("cost13.csv", "owner,hash,id\nteam-1,"+strings.Replace(string(costly), "$04$", "$13$", 1)+",abc\n"), "--json")
	require.Equal(t, 0, r.code, "a raised cap lets it in: %s", r.stderr)
	runCLI(t, cli, env, "", "revoke", strings.Split(strings.Split(r.stdout, `"id": "`)[1], `"`)[0])

	// Then the good ones; the HMAC one only with the old secret at hand.
	r = runCLI(t, cli, env, "", "import", csvFile)
	require.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "line 3: an hmac-sha256 hash verifies only with the old system's secret: give --hmac-secret-env")
	r = runCLI(t, cli, append(env, "OLD_HMAC_SECRET="+string(hmacSecret)), "", "import", "--hmac-secret-env", "OLD_HMAC_SECRET", csvFile)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "imported 3 keys")
	r = runCLI(t, cli, env, "", "import", "--json", jsonFile)
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		Imported int `json:"imported"`
		Keys     []struct {
			Line  int    `json:"line"`
			ID    string `json:"id"`
			Owner string `json:"owner"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	assert.Equal(t, 1, out.Imported)
	assert.Equal(t, "team-4", out.Keys[0].Owner)
	r = runCLI(t, cli, append(env, "OLD_HMAC_SECRET=x"), "", "import", "--hmac-secret-env", "OLD_HMAC_SECRET", csvFile)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "line 2: apikey: conflicting write: imported before")

	// A service on the same database, with the pepper and WithLegacy.
	ctx := context.Background()
	st, err := sqlopen.Open(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	rule, err := apikey.LegacyIDAfter("old_", 8)
	require.NoError(t, err)
	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", []byte("e2e-test-pepper-0123456789abcdef")),
		apikey.WithLegacy(apikey.LegacyConfig{ID: rule, HMACSecret: hmacSecret}))
	require.NoError(t, err)
	defer m.Close()
	h := m.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "%s %s %v %v", k.Owner, k.Name, k.Scopes, k.Metadata)
	}))
	for key, want := range map[string]string{
		shaKey:  "team-1 CI [orders:read orders:write] map[plan:pro region:eu]",
		hmacKey: "team-2  [orders:read] map[]",
		bcKey:   "team-3  [] map[]",
		argKey:  "team-4  [orders:read] map[]",
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.RemoteAddr = "10.1.2.3:40000" // in team-2's allow_ips
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, http.StatusOK, w.Code, want)
		assert.Equal(t, want, w.Body.String())
	}
	k, err := m.Verify(ctx, shaKey)
	require.NoError(t, err)
	assert.Equal(t, apikey.Limit{Rate: 100, Period: 60e9}, k.RateLimit)
	assert.Equal(t, int64(10000), k.Quota.Limit)

	// Revoked with the command, refused by the service.
	r = runCLI(t, cli, env, "", "revoke", k.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Eventually(t, func() bool {
		_, err := m.Verify(ctx, shaKey)
		return err != nil && strings.Contains(err.Error(), "revoked")
	}, 2e9, 10e6)
}

func hmacSum(secret []byte, key string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
