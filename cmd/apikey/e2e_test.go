package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", to make a schema for the test
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end test builds the apikey command and the quickstart, and
// uses them as a person would: start the service, make keys with the
// command, call the API, revoke and rotate with the command.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func buildBinaries(t *testing.T) (cli, quickstart string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries; skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "apikey-e2e-bin")
		if buildErr != nil {
			return
		}
		for pkg, name := range map[string]string{".": "apikey", "../../examples/quickstart": "quickstart"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "apikey"), filepath.Join(binDir, "quickstart")
}

func TestMain(m *testing.M) {
	if out := os.Getenv(rssFileVar); out != "" {
		os.Exit(measureRSS(out, os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// testEnv is the environment both programs run with.
func testEnv(db string) []string {
	env := []string{"APIKEY_DB=" + db, "APIKEY_PEPPER=e2e-test-pepper-0123456789abcdef"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIKEY_") {
			env = append(env, kv)
		}
	}
	return env
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, bin string, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return cliResult{stdout.String(), stderr.String(), code}
}

// startQuickstart starts the quickstart on a free port and returns its
// base URL and the demo key it printed.
func startQuickstart(t *testing.T, bin string, env []string, args ...string) (base, demoKey string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("quickstart did not stop within 10s of SIGINT")
		}
	})

	keyCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "acme_live_") {
				keyCh <- line
			}
		}
	}()
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "listening on "); ok {
				addrCh <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case base = <-addrCh:
	case <-time.After(30 * time.Second):
		t.Fatal("quickstart did not start listening within 30s")
	}
	select {
	case demoKey = <-keyCh:
	case <-time.After(time.Second):
	}
	return base, demoKey
}

func call(t *testing.T, method, url, key string, body string) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if key != "" {
		require.NotContains(t, string(raw), key[len(key)-49:], "response body contains the secret")
		for name, values := range resp.Header {
			require.NotContains(t, strings.Join(values, " "), key[len(key)-49:], "header %s contains the secret", name)
		}
	}
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp, v
}

func TestEndToEnd(t *testing.T) {
	cli, quickstart := buildBinaries(t)
	dir := t.TempDir()
	env := testEnv("sqlite:" + filepath.Join(dir, "e2e.db"))

	// Using the database before migrating says what to do.
	r := runCLI(t, cli, env, "", "list")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "apikey migrate")
	r = runCLI(t, cli, env, "", "migrate")
	require.Equal(t, exitOK, r.code, r.stderr)

	base, demo := startQuickstart(t, quickstart, env, "-cache-ttl", "10m")
	require.NotEmpty(t, demo, "quickstart printed no demo key")

	resp, _ := call(t, "GET", base+"/healthz", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	resp, body := call(t, "GET", base+"/v1/whoami", demo, "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "quickstart-demo", body["owner"])
	assert.Equal(t, []any{"orders:read"}, body["scopes"])
	resp, _ = call(t, "GET", base+"/v1/orders", demo, "")
	assert.Equal(t, 200, resp.StatusCode)
	resp, body = call(t, "POST", base+"/v1/orders", demo, `{"item":"tea"}`)
	assert.Equal(t, 403, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `scope="orders:write"`)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Equal(t, float64(403), body["status"])
	resp, _ = call(t, "GET", base+"/v1/whoami", "", "")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, `Bearer realm="api"`, resp.Header.Get("WWW-Authenticate"))

	// The demo key's limit is 5/s with a burst of 5: a quick burst of 12
	// requests sees 429s with Retry-After and the RateLimit fields.
	limited := 0
	for i := 0; i < 12; i++ {
		resp, _ := call(t, "GET", base+"/v1/orders", demo, "")
		switch resp.StatusCode {
		case 200:
			assert.NotEmpty(t, resp.Header.Get("RateLimit"))
		case 429:
			limited++
			assert.NotEmpty(t, resp.Header.Get("Retry-After"))
			assert.NotEmpty(t, resp.Header.Get("RateLimit-Policy"))
		default:
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
	}
	assert.Greater(t, limited, 0, "no request was rate limited")

	// A key made with the command works in the quickstart.
	r = runCLI(t, cli, env, "", "create", "--owner", "alice", "--name", "e2e", "--scopes", "orders:read,orders:write", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct {
		Key    string         `json:"key"`
		ID     string         `json:"id"`
		Record map[string]any `json:"record"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	require.True(t, strings.HasPrefix(created.Key, "acme_live_"+created.ID+"_"))
	assert.Equal(t, "active", created.Record["status"])
	resp, body = call(t, "POST", base+"/v1/orders", created.Key, `{"item":"tea"}`)
	require.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, "alice", body["owner"])

	// verify reads the key from standard input.
	r = runCLI(t, cli, env, created.Key+"\n", "verify")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "valid: "+created.ID)
	assert.NotContains(t, r.stdout+r.stderr, created.Key[len(created.Key)-49:])

	// list and show, as tables and JSON.
	r = runCLI(t, cli, env, "", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, created.ID)
	assert.Contains(t, r.stdout, "quickstart-demo")
	r = runCLI(t, cli, env, "", "list", "--owner", "alice", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed))
	require.Len(t, listed, 1)
	r = runCLI(t, cli, env, "", "show", created.ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "orders:read orders:write")

	// Rotate: both keys work during the grace period.
	r = runCLI(t, cli, env, "", "rotate", created.ID, "--grace", "1h", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var rotated struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rotated))
	resp, _ = call(t, "GET", base+"/v1/orders", rotated.Key, "")
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = call(t, "GET", base+"/v1/orders", created.Key, "")
	assert.Equal(t, 200, resp.StatusCode)

	// Revoke with the command: the quickstart (caching for 10 minutes)
	// refuses the key within a few seconds, and verify exits 1.
	r = runCLI(t, cli, env, "", "revoke", created.ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Eventually(t, func() bool {
		resp, _ := call(t, "GET", base+"/v1/orders", created.Key, "")
		return resp.StatusCode == 401
	}, 5*time.Second, 50*time.Millisecond, "revoked key still accepted by the quickstart")
	r = runCLI(t, cli, env, created.Key+"\n", "verify")
	assert.Equal(t, exitNegative, r.code)
	assert.Contains(t, r.stderr, "revoked")

	// Errors say what to do.
	r = runCLI(t, cli, env, "", "show", "nope")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "apikey list")
	r = runCLI(t, cli, env, "", "create")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "--owner is required")
	r = runCLI(t, cli, env, "", "create", "--owner", "bob", "--rate", "lots")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "--rate")
	r = runCLI(t, cli, testEnv("oracle://nope"), "", "list")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "sqlite:")
	r = runCLI(t, cli, testEnv("mysql://nope"), "", "list")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "database name")
}

func TestScanCommand(t *testing.T) {
	cli, _ := buildBinaries(t)
	dir := t.TempDir()
	write := func(name, content string) {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	key := "acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf"
	nearMiss := key[:len(key)-1] + "g" // bad checksum
	write("config/app.env", "DEBUG=1\nAPI_KEY="+key+"\n")
	write("src/main.go", "package main\n\n// "+nearMiss+"\nconst k = \"x\"\n")
	write("notes.txt", "two: "+key+" and "+key+"\n")
	write("image.bin", "\x00\x01\x02"+key)
	write(".git/objects/aa", key)
	write("big.log", strings.Repeat("nothing to see here_\n", 100_000)+key)

	r := runCLI(t, cli, os.Environ(), "", "scan", dir)
	assert.Equal(t, exitNegative, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	assert.ElementsMatch(t, []string{
		filepath.Join(dir, "big.log") + ":100001:1: acme_live key AbCdEf123456",
		filepath.Join(dir, "config/app.env") + ":2:9: acme_live key AbCdEf123456",
		filepath.Join(dir, "notes.txt") + ":1:6: acme_live key AbCdEf123456",
		filepath.Join(dir, "notes.txt") + ":1:83: acme_live key AbCdEf123456",
	}, lines)
	assert.NotContains(t, r.stdout+r.stderr, "xxxxxxxxxxxxxxxxxxxx")
	assert.Contains(t, r.stderr, "4 API key(s) found")

	r = runCLI(t, cli, os.Environ(), "", "scan", "--json", filepath.Join(dir, "src"))
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "[]", strings.TrimSpace(r.stdout))

	r = runCLI(t, cli, os.Environ(), "", "scan", filepath.Join(dir, "missing"))
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "missing")
}

// TestScanCarriesOn: a path that cannot be read is reported and skipped,
// and the keys in the paths after it are still found; the exit status
// says both (3).
func TestScanCarriesOn(t *testing.T) {
	cli, _ := buildBinaries(t)
	dir := t.TempDir()
	key := "acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "later.txt"), []byte("k="+key+"\n"), 0o644))

	t.Run("missing path first", func(t *testing.T) {
		r := runCLI(t, cli, os.Environ(), "", "scan", filepath.Join(dir, "missing"), dir)
		assert.Equal(t, exitBoth, r.code, r.stderr)
		assert.Equal(t, filepath.Join(dir, "later.txt")+":1:3: acme_live key AbCdEf123456\n", r.stdout)
		assert.Contains(t, r.stderr, filepath.Join(dir, "missing"))
		assert.Contains(t, r.stderr, "1 API key(s) found")
		assert.Contains(t, r.stderr, "1 path(s) could not be scanned")
		assert.NotContains(t, r.stdout+r.stderr, key[23:])
	})
	t.Run("unreadable file first", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root, which reads any file: chmod cannot make one unreadable")
		}
		sub := filepath.Join(dir, "sub")
		require.NoError(t, os.MkdirAll(sub, 0o755))
		locked := filepath.Join(sub, "a-locked.txt")
		require.NoError(t, os.WriteFile(locked, []byte(key), 0o000))
		require.NoError(t, os.WriteFile(filepath.Join(sub, "b.txt"), []byte(key), 0o644))
		r := runCLI(t, cli, os.Environ(), "", "scan", sub)
		assert.Equal(t, exitBoth, r.code, r.stderr)
		assert.Equal(t, filepath.Join(sub, "b.txt")+":1:1: acme_live key AbCdEf123456\n", r.stdout)
		assert.Contains(t, r.stderr, locked)
	})
	t.Run("only errors", func(t *testing.T) {
		r := runCLI(t, cli, os.Environ(), "", "scan", "--json", filepath.Join(dir, "missing"))
		assert.Equal(t, exitError, r.code, r.stderr)
		assert.Equal(t, "[]", strings.TrimSpace(r.stdout))
	})
}

// TestScanEncodingsAndStdin: keys are found in UTF-16 files (which hold
// NUL bytes but are not binaries), inside base64, hex and percent-encoded
// text, and on standard input with "-"; scan -h offers no --db.
func TestScanEncodingsAndStdin(t *testing.T) {
	cli, _ := buildBinaries(t)
	dir := t.TempDir()
	key := "acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf"
	var u16 []byte
	u16 = append(u16, 0xFF, 0xFE)
	for _, c := range []byte("$env:KEY = '" + key + "'\r\n") {
		u16 = append(u16, c, 0)
	}
	files := map[string]string{
		"profile.ps1": string(u16),
		"secret.yaml": "data:\n  key: " + base64.StdEncoding.EncodeToString([]byte(key)) + "\n",
		"dump.hex":    hex.EncodeToString([]byte(key)) + "\n",
		"access.log":  "GET /v1?api_key=" + strings.ReplaceAll(key, "_", "%5F") + " 200\n",
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	r := runCLI(t, cli, os.Environ(), "", "scan", dir)
	assert.Equal(t, exitNegative, r.code, r.stderr)
	assert.ElementsMatch(t, []string{
		filepath.Join(dir, "access.log") + ":1:17: acme_live key AbCdEf123456 (percent)",
		filepath.Join(dir, "dump.hex") + ":1:1: acme_live key AbCdEf123456 (hex)",
		filepath.Join(dir, "profile.ps1") + ":1:13: acme_live key AbCdEf123456 (utf-16le)",
		filepath.Join(dir, "secret.yaml") + ":2:8: acme_live key AbCdEf123456 (base64)",
	}, strings.Split(strings.TrimSpace(r.stdout), "\n"))
	assert.NotContains(t, r.stdout+r.stderr, key[23:])

	r = runCLI(t, cli, os.Environ(), "x\ntoken: "+key+"\n", "scan", "-")
	assert.Equal(t, exitNegative, r.code, r.stderr)
	assert.Equal(t, "(standard input):2:8: acme_live key AbCdEf123456\n", r.stdout)
	r = runCLI(t, cli, os.Environ(), "nothing here\n", "scan", "--json", "-")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "[]", strings.TrimSpace(r.stdout))

	r = runCLI(t, cli, os.Environ(), "", "scan", "-h")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "-json")
	assert.NotContains(t, r.stderr, "-db")
}

// scaleOutSetup skips t unless a PostgreSQL and a Redis are given, and
// returns the command, the quickstart, an environment whose database is a
// fresh schema (named after prefix) migrated on that PostgreSQL, and the
// Redis URL.
func scaleOutSetup(t *testing.T, prefix string) (cli, quickstart string, env []string, rd string) {
	t.Helper()
	pg, rd := os.Getenv("APIKEY_TEST_POSTGRES"), os.Getenv("APIKEY_TEST_REDIS_E2E")
	if pg == "" || rd == "" {
		t.Skip("set APIKEY_TEST_POSTGRES and APIKEY_TEST_REDIS_E2E (.ci/run does) to run two quickstarts on one PostgreSQL and one Redis")
	}
	cli, quickstart = buildBinaries(t)
	return cli, quickstart, postgresEnv(t, cli, pg, prefix), rd
}

// postgresEnv returns an environment whose database is a fresh schema
// (named after prefix, dropped when t ends) on the PostgreSQL at pg,
// migrated with cli.
func postgresEnv(t *testing.T, cli, pg, prefix string) []string {
	t.Helper()
	db, err := sql.Open("pgx", pg)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	schema := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	_, err = db.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(pg, "?") {
		sep = "&"
	}
	env := testEnv(pg + sep + "search_path=" + schema)
	r := runCLI(t, cli, env, "", "migrate")
	require.Equal(t, exitOK, r.code, r.stderr)
	return env
}

// TestQuickstartScalesOut runs two quickstarts on one PostgreSQL and one
// Redis, as two instances of one service: a key's rate limit is shared,
// and a revocation made with the command reaches both within a second
// although each caches keys for 10 minutes.
func TestQuickstartScalesOut(t *testing.T) {
	cli, quickstart, env, rd := scaleOutSetup(t, "e2e")

	baseA, _ := startQuickstart(t, quickstart, env, "-redis", rd, "-cache-ttl", "10m")
	baseB, _ := startQuickstart(t, quickstart, env, "-redis", rd, "-cache-ttl", "10m")

	// 4 requests a minute, alternating between the instances: 4 in all
	// are allowed, not 4 each.
	r := runCLI(t, cli, env, "", "create", "--owner", "carol", "--scopes", "orders:read", "--rate", "4/m", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var limited struct{ Key string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &limited))
	allowed := 0
	for i := 0; i < 8; i++ {
		base := baseA
		if i%2 == 1 {
			base = baseB
		}
		resp, _ := call(t, "GET", base+"/v1/orders", limited.Key, "")
		switch resp.StatusCode {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
	}
	assert.Equal(t, 4, allowed, "the two instances share one bucket in Redis")

	// Both instances cache the key; a revocation reaches both.
	r = runCLI(t, cli, env, "", "create", "--owner", "dave", "--scopes", "orders:read", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var k struct{ Key, ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &k))
	for _, base := range []string{baseA, baseB} {
		resp, _ := call(t, "GET", base+"/v1/orders", k.Key, "")
		require.Equal(t, 200, resp.StatusCode)
	}
	r = runCLI(t, cli, env, "", "revoke", k.ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	revokedAt := time.Now()
	for _, base := range []string{baseA, baseB} {
		assert.Eventually(t, func() bool {
			resp, _ := call(t, "GET", base+"/v1/orders", k.Key, "")
			return resp.StatusCode == 401
		}, time.Second, 20*time.Millisecond, "instance %s still accepts the revoked key", base)
	}
	t.Logf("both instances refused the revoked key %v after the command returned", time.Since(revokedAt).Round(time.Millisecond))
}

// TestRotateNoteNamesTheRealEnd: rotating a key that expires before the
// grace period would end says when the old key really stops working.
func TestRotateNoteNamesTheRealEnd(t *testing.T) {
	cli, _ := buildBinaries(t)
	env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	r := runCLI(t, cli, env, "", "migrate")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, cli, env, "", "create", "--owner", "o", "--expires", "1h", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct {
		ID     string `json:"id"`
		Record struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"record"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	require.False(t, created.Record.ExpiresAt.IsZero(), r.stdout)

	r = runCLI(t, cli, env, "", "rotate", created.ID, "--grace", "24h")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "keeps working until "+created.Record.ExpiresAt.UTC().Format(time.RFC3339)+".",
		"the old key's own expiry (1h) comes before the grace period's end (24h)")
}

// TestSettingsFromEnvironment: the command reads its settings through
// package envconfig and says which variable is missing or wrong, never
// what a pepper holds.
func TestSettingsFromEnvironment(t *testing.T) {
	cli, _ := buildBinaries(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	// withEnv is the test's environment without any APIKEY_ variable, plus kvs.
	withEnv := func(kvs ...string) []string {
		env := kvs
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "APIKEY_") {
				env = append(env, kv)
			}
		}
		return env
	}
	const pepper = "e2e-previous-pepper-0123456789abcdef"

	t.Run("no database", func(t *testing.T) {
		r := runCLI(t, cli, withEnv(), "", "list")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "APIKEY_DB")
		assert.Contains(t, r.stderr, "--db")
	})
	t.Run("development pepper", func(t *testing.T) {
		env := withEnv("APIKEY_DB=" + db)
		r := runCLI(t, cli, env, "", "migrate")
		require.Equal(t, exitOK, r.code, r.stderr)
		r = runCLI(t, cli, env, "", "create", "--owner", "o", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stderr, "APIKEY_PEPPER is not set", "the fallback is announced")
		var created struct {
			Key string `json:"key"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
		r = runCLI(t, cli, env, created.Key+"\n", "verify")
		assert.Equal(t, exitOK, r.code, r.stderr)
		// Under a real pepper the development keys no longer verify.
		r = runCLI(t, cli, withEnv("APIKEY_DB="+db, "APIKEY_PEPPER="+pepper), created.Key+"\n", "verify")
		assert.Equal(t, exitNegative, r.code, r.stderr)
	})
	t.Run("empty pepper", func(t *testing.T) {
		r := runCLI(t, cli, withEnv("APIKEY_DB="+db, "APIKEY_PEPPER="), "", "list")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "APIKEY_PEPPER is set but empty")
		assert.NotContains(t, r.stderr, "development pepper", "an empty secret must not pass for an absent one")
	})
	t.Run("previous pepper without its version", func(t *testing.T) {
		r := runCLI(t, cli, withEnv("APIKEY_DB="+db, "APIKEY_PEPPER=e2e-test-pepper-0123456789abcdef", "APIKEY_PREVIOUS_PEPPER="+pepper), "", "list")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "APIKEY_PREVIOUS_PEPPER_VERSION")
		assert.NotContains(t, r.stderr, pepper)
	})
}

// assertNoSecret fails if out holds 8 or more consecutive characters of
// key's secret part (its 43 secret characters and 6 of checksum).
func assertNoSecret(t *testing.T, out, key string) {
	t.Helper()
	secret := key[len(key)-49:]
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+8]) {
			t.Errorf("output holds part of the secret (%q…):\n%s", secret[i:i+4], strings.ReplaceAll(out, secret[i:i+8], "<SECRET>"))
			return
		}
	}
}

// TestCommandsNeverEchoAKey: show, revoke and rotate take a whole key as
// well as a key ID, and act on its kid; a key with a bad checksum is
// refused; and no other command prints a key pasted where it does not
// belong, not even in an error.
func TestCommandsNeverEchoAKey(t *testing.T) {
	cli, _ := buildBinaries(t)
	env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	r := runCLI(t, cli, env, "", "migrate")
	require.Equal(t, exitOK, r.code, r.stderr)
	create := func() (key, id string) {
		r := runCLI(t, cli, env, "", "create", "--owner", "o", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var created struct{ Key, ID string }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
		return created.Key, created.ID
	}
	key, id := create()

	t.Run("whole key", func(t *testing.T) {
		r := runCLI(t, cli, env, "", "show", key)
		assert.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, id)
		assertNoSecret(t, r.stdout+r.stderr, key)

		r = runCLI(t, cli, env, "", "rotate", key, "--grace", "1h")
		assert.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "The old key "+id+" keeps working until")
		assertNoSecret(t, r.stdout+r.stderr, key)

		r = runCLI(t, cli, env, "", "revoke", key)
		assert.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "revoked "+id)
		assertNoSecret(t, r.stdout+r.stderr, key)
	})

	key, id = create()
	last := key[len(key)-1]
	badChecksum := key[:len(key)-1] + map[bool]string{true: "a", false: "b"}[last != 'a']
	t.Run("bad checksum", func(t *testing.T) {
		for _, cmd := range []string{"show", "revoke", "rotate"} {
			r := runCLI(t, cli, env, "", cmd, badChecksum)
			assert.Equal(t, exitError, r.code, r.stderr)
			assert.Contains(t, r.stderr, "checksum", cmd)
			assertNoSecret(t, r.stdout+r.stderr, badChecksum)
		}
		r := runCLI(t, cli, env, "", "show", id)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "active", "the bad key revoked nothing")
	})

	t.Run("misplaced", func(t *testing.T) {
		for _, args := range [][]string{
			{key},
			{"list", key},
			{"verify", key},
			{"show", id, key},
			{"show", key + "x"},
			{"revoke", "x" + key[1:]},
			{"create", "--owner", key},
			{"create", "--owner", "o", "--name", "CI " + key},
			{"create", "--owner", "o", "--scopes", "orders:read," + key},
			{"create", "--owner", "o", "--scopes", "x " + key},
			{"create", "--owner", "o", "--meta", "k=" + key},
			{"create", "--owner", "o", "--meta", key},
			{"create", "--owner", "o", "--allow-ip", key},
			{"create", "--owner", "o", "--rate", key},
			{"create", "--owner", "o", "--quota", key},
			{"create", "--owner", "o", "--expires", key},
			{"create", "--owner", "o", "--prefix", key},
			{"create", "--owner", "o", "--" + key},
			{"rotate", id, "--grace", key},
			{"list", "--db", "sqlite:" + filepath.Join(t.TempDir(), key, "keys.db")},
			{"scan", filepath.Join(t.TempDir(), key)},
		} {
			r := runCLI(t, cli, env, "", args...)
			assert.NotEqual(t, exitOK, r.code, "%v", args[:1])
			assertNoSecret(t, r.stdout+r.stderr, key)
		}
		// A hash is not a key: it may be stored.
		r := runCLI(t, cli, env, "", "create", "--owner", "o", "--meta", "sha256="+strings.Repeat("0123456789abcdef", 4))
		assert.Equal(t, exitOK, r.code, r.stderr)
		r = runCLI(t, cli, env, "", "list", "--owner", key)
		assert.Equal(t, exitOK, r.code, r.stderr)
		assertNoSecret(t, r.stdout+r.stderr, key)
		r = runCLI(t, cli, env, "", "list", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		assertNoSecret(t, r.stdout, key)
	})
}

// TestNoPasswordPrinted: passwords in a DSN, in its user information or
// in its query, never reach the output of the command or the quickstart.
func TestNoPasswordPrinted(t *testing.T) {
	cli, quickstart := buildBinaries(t)
	dir := t.TempDir()
	env := testEnv("sqlite:" + filepath.Join(dir, "keys.db"))
	passwords := []string{"Pw1secretAA", "Pw2secretBB", "Pw3secretCC", "Pw4secretDD"}
	check := func(t *testing.T, out string) {
		t.Helper()
		for _, pw := range passwords {
			assert.NotContains(t, out, pw)
		}
	}
	pg := "postgres://bob:" + passwords[0] + "@127.0.0.1:1/db?sslmode=disable&sslpassword=" + passwords[1] + "&password=" + passwords[2]
	r := runCLI(t, cli, env, "", "list", "--db", pg)
	assert.Equal(t, exitError, r.code)
	check(t, r.stdout+r.stderr)
	r = runCLI(t, cli, env, "", "migrate", "--db", "postgres://bob:"+passwords[0]+"@127.0.0.1:bad/db")
	assert.Equal(t, exitError, r.code)
	check(t, r.stdout+r.stderr)

	// The quickstart prints its database when it starts, and its hint.
	sqlite := "sqlite:" + filepath.Join(dir, "qs.db") + "?password=" + passwords[3]
	for range 2 { // the first start issues the demo key, the second prints a hint with the DSN
		cmd := exec.Command(quickstart, "-addr", "127.0.0.1:0", "-db", sqlite)
		cmd.Env = env
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "listening on") }, 30*time.Second, 20*time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		assert.Contains(t, out.String(), "password=***")
		check(t, out.String())
	}
	cmd := exec.Command(quickstart, "-addr", "127.0.0.1:0", "-redis", "redis://:"+passwords[0]+"@127.0.0.1:badport")
	cmd.Env = testEnv("sqlite:" + filepath.Join(dir, "qs.db"))
	out, err := cmd.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "-redis")
	check(t, string(out))
}

// lockedBuffer is a bytes.Buffer that a process's output can be copied
// into while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestListStreams: list prints every key, as a table or as one valid JSON
// array, and holds only a page of them in memory, not the whole table.
func TestListStreams(t *testing.T) {
	cli, _ := buildBinaries(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	env := testEnv(db)
	// As much metadata as a key may hold ("blob" and its value).
	const keys, metaBytes = 4000, apikey.MaxMetadataSize - len("blob")
	issueMany(t, env, db, keys, metaBytes)

	r, rss := runCLIWithRSS(t, cli, env, "list", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var listed []struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed), "one valid JSON array")
	require.Len(t, listed, keys)
	seen := make(map[string]bool)
	for _, k := range listed {
		seen[k.ID] = true
		require.Len(t, k.Metadata["blob"], metaBytes)
	}
	assert.Len(t, seen, keys, "every key once")
	t.Logf("list --json of %d keys with %d KiB of metadata each (%d MiB): peak RSS %d MiB", keys, metaBytes>>10, len(r.stdout)>>20, rss>>20)
	assert.Less(t, rss, int64(64<<20), "list --json holds more than a page of keys in memory")

	r, rss = runCLIWithRSS(t, cli, env, "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 1+keys)
	assert.True(t, strings.HasPrefix(lines[0], "ID "), lines[0])
	ids := make(map[string]bool)
	for _, l := range lines[1:] {
		ids[strings.Fields(l)[0]] = true
	}
	assert.Equal(t, seen, ids)
	t.Logf("list of the same keys: peak RSS %d MiB", rss>>20)
	assert.Less(t, rss, int64(64<<20), "list holds more than a page of keys in memory")
}

// issueMany issues n keys in db, each with metaBytes of metadata, under
// the pepper of testEnv.
func issueMany(t *testing.T, env []string, db string, n, metaBytes int) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlopen.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Migrate(ctx))
	var pepper string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "APIKEY_PEPPER="); ok {
			pepper = v
		}
	}
	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", []byte(pepper)))
	require.NoError(t, err)
	defer m.Close()
	blob := strings.Repeat("m", metaBytes)
	for i := range n {
		_, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: fmt.Sprintf("owner-%d", i%7), Metadata: map[string]string{"blob": blob}})
		require.NoError(t, err)
	}
}

// rssFileVar, when set, makes the test binary run the command in its
// arguments, write the command's peak resident memory to the file the
// variable names, and exit with the command's status (measureRSS).
const rssFileVar = "APIKEY_E2E_RSS_FILE"

// measureRSS runs args and writes its peak resident memory in bytes to
// out. It runs in a fresh copy of the test binary because Linux counts
// the memory of the process that starts a program in the program's own
// peak (Go starts programs with vfork), and the test process has grown
// by then.
func measureRSS(out string, args []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if err := os.WriteFile(out, []byte(fmt.Sprint(ru.Maxrss<<10)), 0o644); err != nil { // kilobytes on Linux
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	return cmd.ProcessState.ExitCode()
}

// runCLIWithRSS is runCLI, also returning the command's peak resident
// memory in bytes.
func runCLIWithRSS(t *testing.T, bin string, env []string, args ...string) (cliResult, int64) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("measures memory with Linux's getrusage")
	}
	file := filepath.Join(t.TempDir(), "rss")
	self, err := os.Executable()
	require.NoError(t, err)
	r := runCLI(t, self, append(env, rssFileVar+"="+file), "", append([]string{bin}, args...)...)
	raw, err := os.ReadFile(file)
	require.NoError(t, err, r.stderr)
	rss, err := strconv.ParseInt(string(raw), 10, 64)
	require.NoError(t, err)
	return r, rss
}

// TestCommandLineDetails covers the command line's smaller promises: what
// list and show leave alone, JSON everywhere, lifetimes in days, start
// times, stray arguments, and list --status.
func TestCommandLineDetails(t *testing.T) {
	cli, _ := buildBinaries(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "keys.db")
	env := testEnv("sqlite:" + dbPath)
	noPepper := func(env []string) []string {
		var out []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, "APIKEY_PEPPER=") {
				out = append(out, kv)
			}
		}
		return out
	}
	createJSON := func(t *testing.T, args ...string) (key string, record map[string]any) {
		t.Helper()
		r := runCLI(t, cli, env, "", append([]string{"create", "--owner", "details", "--json"}, args...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		var created struct {
			Key    string         `json:"key"`
			Record map[string]any `json:"record"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
		return created.Key, created.Record
	}
	near := func(t *testing.T, want time.Time, got any) {
		t.Helper()
		s, _ := got.(string)
		at, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err, "%v", got)
		assert.WithinDuration(t, want, at, time.Minute)
	}

	t.Run("list and show create no database", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.db")
		for _, args := range [][]string{{"list"}, {"show", "AbCdEf123456"}, {"revoke", "AbCdEf123456"}, {"list", "--db", "file:" + missing + "?_pragma=busy_timeout(1)"}} {
			r := runCLI(t, cli, noPepper(testEnv("sqlite:"+missing)), "", args...)
			assert.Equal(t, exitError, r.code, "%v", args)
			assert.Contains(t, r.stderr, "apikey migrate", "%v", args)
			assert.NotContains(t, r.stderr, "APIKEY_PEPPER", "%v", args)
			assert.NoFileExists(t, missing, "%v", args)
		}
	})

	t.Run("migrate --json", func(t *testing.T) {
		r := runCLI(t, cli, env, "", "migrate", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.JSONEq(t, fmt.Sprintf(`{"migrated": true, "schema_version": %d}`, sqlstore.SchemaVersion), r.stdout)
		r = runCLI(t, cli, env, "", "migrate", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.JSONEq(t, fmt.Sprintf(`{"migrated": false, "schema_version": %d}`, sqlstore.SchemaVersion), r.stdout)
		r = runCLI(t, cli, env, "", "migrate")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "up to date")
	})

	t.Run("no pepper warning where no pepper is used", func(t *testing.T) {
		key, record := createJSON(t)
		id := record["id"].(string)
		for _, args := range [][]string{{"list"}, {"show", id}, {"list", "--json"}, {"revoke", id}} {
			r := runCLI(t, cli, noPepper(env), "", args...)
			assert.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
			assert.NotContains(t, r.stderr, "APIKEY_PEPPER", "%v", args)
		}
		r := runCLI(t, cli, noPepper(env), key+"\n", "verify")
		assert.Contains(t, r.stderr, "APIKEY_PEPPER is not set", "verify digests, and says which pepper it uses")
	})

	t.Run("verify --json", func(t *testing.T) {
		key, record := createJSON(t)
		r := runCLI(t, cli, env, key+"\n", "verify", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		assert.Equal(t, true, got["valid"])
		assert.Equal(t, record["id"], got["id"])
		assertNoSecret(t, r.stdout, key)

		r = runCLI(t, cli, env, "", "revoke", record["id"].(string))
		require.Equal(t, exitOK, r.code, r.stderr)
		bad := key[:len(key)-1] + map[bool]string{true: "a", false: "b"}[key[len(key)-1] != 'a']
		for _, tt := range []struct{ input, reason, id string }{
			{key, "revoked", record["id"].(string)},
			{"nope", "malformed", ""},
			{bad, "checksum", ""},
		} {
			r := runCLI(t, cli, env, tt.input+"\n", "verify", "--json")
			assert.Equal(t, exitNegative, r.code, r.stderr)
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "stdout: %q", r.stdout)
			assert.Equal(t, false, got["valid"])
			assert.Equal(t, tt.reason, got["reason"])
			assert.NotEmpty(t, got["error"])
			if tt.id != "" {
				assert.Equal(t, tt.id, got["id"])
			}
			assertNoSecret(t, r.stdout+r.stderr, key)
		}
	})

	t.Run("lifetimes in days", func(t *testing.T) {
		for _, tt := range []struct {
			expires string
			want    time.Duration
		}{{"30d", 30 * 24 * time.Hour}, {"1d12h", 36 * time.Hour}, {"365d", 365 * 24 * time.Hour}, {"720h", 720 * time.Hour}} {
			_, record := createJSON(t, "--expires", tt.expires)
			near(t, time.Now().Add(tt.want), record["expires_at"])
		}
		_, record := createJSON(t, "--expires", "2099-01-02")
		assert.Equal(t, "2099-01-02T00:00:00Z", record["expires_at"])
		_, record = createJSON(t)
		r := runCLI(t, cli, env, "", "rotate", record["id"].(string), "--grace", "2d")
		require.Equal(t, exitOK, r.code, r.stderr)
		r = runCLI(t, cli, env, "", "show", record["id"].(string), "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var old map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &old))
		near(t, time.Now().Add(48*time.Hour), old["expires_at"])
		for _, bad := range []string{"30x", "-3d", "d", "1.5d", "0d"} {
			r := runCLI(t, cli, env, "", "create", "--owner", "o", "--expires", bad)
			assert.Equal(t, exitError, r.code, bad)
			assert.Contains(t, r.stderr, "--expires", bad)
		}
	})

	t.Run("--not-before", func(t *testing.T) {
		key, record := createJSON(t, "--not-before", "2d")
		near(t, time.Now().Add(48*time.Hour), record["not_before"])
		assert.Equal(t, "not_yet_valid", record["status"])
		r := runCLI(t, cli, env, key+"\n", "verify", "--json")
		assert.Equal(t, exitNegative, r.code, r.stderr)
		assert.Contains(t, r.stdout, `"not_yet_valid"`)
		_, record = createJSON(t, "--not-before", "2099-01-02T03:04:05Z", "--expires", "2100-01-01")
		assert.Equal(t, "2099-01-02T03:04:05Z", record["not_before"])
		r = runCLI(t, cli, env, "", "create", "--owner", "o", "--not-before", "2d", "--expires", "1d")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "not-before")
	})

	t.Run("stray arguments", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"list", "team-42"}, "apikey list takes no arguments"},
			{[]string{"migrate", "now"}, "apikey migrate takes no arguments"},
			{[]string{"create", "--owner", "o", "CI"}, "apikey create takes no arguments"},
			{[]string{"show"}, "apikey show takes one argument"},
			{[]string{"show", "AbCdEf123456", "AbCdEf123457"}, "apikey show takes one argument"},
			{[]string{"revoke", "AbCdEf123456", "now"}, "apikey revoke takes one argument"},
			{[]string{"rotate", "AbCdEf123456", "24h"}, "apikey rotate takes one argument"},
			{[]string{"verify", "x"}, "standard input"},
		} {
			r := runCLI(t, cli, env, "", tt.args...)
			assert.Equal(t, exitError, r.code, "%v", tt.args)
			assert.Contains(t, r.stderr, tt.want, "%v", tt.args)
		}
		r := runCLI(t, cli, env, "", "list", "team-42")
		assert.Contains(t, r.stderr, `"team-42"`, "names the stray argument")
	})

	t.Run("list --status", func(t *testing.T) {
		owner := "status-owner"
		mk := func(args ...string) string {
			r := runCLI(t, cli, env, "", append([]string{"create", "--owner", owner, "--json"}, args...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			var created struct{ ID string }
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
			return created.ID
		}
		active, revoked, later, expiring, rotated := mk(), mk(), mk("--not-before", "1d"), mk("--expires", "1s"), mk()
		require.Equal(t, exitOK, runCLI(t, cli, env, "", "revoke", revoked).code)
		r := runCLI(t, cli, env, "", "rotate", rotated, "--grace", "1h", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var replacement struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &replacement))
		time.Sleep(1100 * time.Millisecond) // expiring expires
		ids := func(status string) []string {
			r := runCLI(t, cli, env, "", "list", "--owner", owner, "--status", status, "--json")
			require.Equal(t, exitOK, r.code, r.stderr)
			var listed []struct{ ID string }
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed))
			var out []string
			for _, k := range listed {
				out = append(out, k.ID)
			}
			return out
		}
		assert.ElementsMatch(t, []string{active, rotated, replacement.ID}, ids("active"))
		assert.ElementsMatch(t, []string{revoked}, ids("revoked"))
		assert.ElementsMatch(t, []string{expiring}, ids("expired"))
		assert.ElementsMatch(t, []string{later}, ids("not-yet-valid"))
		assert.ElementsMatch(t, []string{rotated}, ids("rotating"))
		assert.Empty(t, ids("suspended"))
		r = runCLI(t, cli, env, "", "list", "--status", "revoked")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, revoked)
		assert.NotContains(t, r.stdout, active)
		r = runCLI(t, cli, env, "", "list", "--status", "gone")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "active, revoked, expired, suspended, not-yet-valid")
	})

	t.Run("prefix documented", func(t *testing.T) {
		r := runCLI(t, cli, env, "", "-h")
		assert.Contains(t, r.stderr, "APIKEY_PREFIX")
		assert.Contains(t, r.stderr, "acme_live")
	})
}

// TestQuickstartLimitsFailedAuth: the quickstart refuses a client with 429
// once it has sent 10 invalid keys within a minute, as its -failed-auth
// default says, and -failed-auth off turns the limit off.
func TestQuickstartLimitsFailedAuth(t *testing.T) {
	_, quickstart := buildBinaries(t)
	for _, tt := range []struct {
		args    []string
		limited bool
	}{{nil, true}, {[]string{"-failed-auth", "off"}, false}} {
		env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "qs.db"))
		base, demo := startQuickstart(t, quickstart, env, tt.args...)
		codes := make([]int, 0, 12)
		for range 12 {
			forged, err := apikey.Generate("acme_live") // well formed, unknown: 401 invalid_token
			require.NoError(t, err)
			resp, _ := call(t, "GET", base+"/v1/whoami", forged.Secret().Reveal(), "")
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == 429 {
				assert.NotEmpty(t, resp.Header.Get("Retry-After"))
			}
		}
		resp, _ := call(t, "GET", base+"/v1/whoami", demo, "")
		if !tt.limited {
			assert.Equal(t, slices.Repeat([]int{401}, 12), codes, "%v", tt.args)
			assert.Equal(t, 200, resp.StatusCode)
			continue
		}
		assert.Equal(t, slices.Repeat([]int{401}, 10), codes[:10], "the first 10 failures are allowed")
		assert.Equal(t, []int{429, 429}, codes[10:], "the 11th failure within a minute is refused")
		assert.Equal(t, 429, resp.StatusCode, "a blocked client is refused before its key is looked at")
	}
}

// TestUpdateSuspendResume: update changes what its flags name and nothing
// else, an empty value clears a field, bad values change nothing; suspend
// stops a key everywhere until resume, and the quickstart sees both.
func TestUpdateSuspendResume(t *testing.T) {
	cli, quickstart := buildBinaries(t)
	env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	r := runCLI(t, cli, env, "", "migrate")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, cli, env, "", "create", "--owner", "erin", "--name", "old", "--scopes", "orders:read",
		"--rate", "5/s", "--quota", "100/d", "--allow-ip", "127.0.0.1", "--meta", "team=a", "--expires", "30d", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct {
		Key    string         `json:"key"`
		ID     string         `json:"id"`
		Record map[string]any `json:"record"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	record := func(t *testing.T) map[string]any {
		t.Helper()
		r := runCLI(t, cli, env, "", "show", created.ID, "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		return v
	}

	t.Run("update", func(t *testing.T) {
		r := runCLI(t, cli, env, "", "update", created.Key, "--name", "new", "--scopes", "orders:read,orders:write", "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		assertNoSecret(t, r.stdout+r.stderr, created.Key)
		v := record(t)
		assert.Equal(t, "new", v["name"])
		assert.Equal(t, []any{"orders:read", "orders:write"}, v["scopes"])
		for _, field := range []string{"rate_limit", "quota", "allowed_ips", "metadata", "expires_at"} {
			assert.Equal(t, created.Record[field], v[field], "%s unchanged", field)
		}

		r = runCLI(t, cli, env, "", "update", created.ID, "--rate", "10/m", "--quota", "", "--allow-ip", "", "--meta", "team=b",
			"--meta", "tier=gold", "--expires", "", "--not-before", "2099-01-01")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "10/m")
		v = record(t)
		assert.Equal(t, "10/m", v["rate_limit"])
		assert.Equal(t, map[string]any{"team": "b", "tier": "gold"}, v["metadata"])
		for _, cleared := range []string{"quota", "allowed_ips", "expires_at"} {
			assert.NotContains(t, v, cleared)
		}
		assert.Equal(t, "2099-01-01T00:00:00Z", v["not_before"])
		assert.Equal(t, "not_yet_valid", v["status"])
		r = runCLI(t, cli, env, "", "update", created.ID, "--not-before", "")
		require.Equal(t, exitOK, r.code, r.stderr)

		before := record(t)
		for _, args := range [][]string{
			{"--scopes", "orders::bad"},
			{"--rate", "0/-5ns"},
			{"--expires", "2020-01-01"},
			{"--name", "CI " + created.Key},
			{"--allow-ip", "nonsense"},
			{"--meta", "novalue"},
			{},
		} {
			r := runCLI(t, cli, env, "", append([]string{"update", created.ID}, args...)...)
			assert.Equal(t, exitError, r.code, "%v", args)
			assertNoSecret(t, r.stdout+r.stderr, created.Key)
		}
		assert.Equal(t, before, record(t), "refused updates changed nothing")
		r = runCLI(t, cli, env, "", "update", "AbCdEf123456", "--name", "x")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "no key with ID")
	})

	t.Run("suspend and resume", func(t *testing.T) {
		base, _ := startQuickstart(t, quickstart, env, "-cache-ttl", "10m")
		resp, _ := call(t, "GET", base+"/v1/whoami", created.Key, "")
		require.Equal(t, 200, resp.StatusCode)

		r := runCLI(t, cli, env, "", "suspend", created.Key)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "suspended "+created.ID)
		assertNoSecret(t, r.stdout+r.stderr, created.Key)
		assert.Equal(t, "suspended", record(t)["status"])
		assert.Eventually(t, func() bool {
			resp, _ := call(t, "GET", base+"/v1/whoami", created.Key, "")
			return resp.StatusCode == 401
		}, 5*time.Second, 50*time.Millisecond, "the quickstart still accepts a suspended key")
		r = runCLI(t, cli, env, created.Key+"\n", "verify", "--json")
		assert.Equal(t, exitNegative, r.code)
		assert.Contains(t, r.stdout, `"reason": "suspended"`)
		r = runCLI(t, cli, env, "", "list", "--owner", "erin", "--status", "suspended")
		assert.Contains(t, r.stdout, created.ID)
		r = runCLI(t, cli, env, "", "suspend", created.ID)
		assert.Equal(t, exitOK, r.code, "suspending twice is fine: %s", r.stderr)

		r = runCLI(t, cli, env, "", "resume", created.ID, "--json")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, `"status": "active"`)
		assert.Eventually(t, func() bool {
			resp, _ := call(t, "GET", base+"/v1/whoami", created.Key, "")
			return resp.StatusCode == 200
		}, 5*time.Second, 50*time.Millisecond, "the quickstart still refuses a resumed key")

		r = runCLI(t, cli, env, "", "revoke", created.ID)
		require.Equal(t, exitOK, r.code, r.stderr)
		r = runCLI(t, cli, env, "", "suspend", created.ID)
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "revoked")
		r = runCLI(t, cli, env, "", "update", created.ID, "--name", "x")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "revoked")
	})
}

// TestVerifyExplainsPepper: verify, on the operator's machine, says why a
// key made under a pepper it is not configured with fails, and which
// settings would verify it; a service still answers a plain 401.
func TestVerifyExplainsPepper(t *testing.T) {
	cli, _ := buildBinaries(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	withEnv := func(kvs ...string) []string {
		env := append([]string{"APIKEY_DB=" + db}, kvs...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "APIKEY_") {
				env = append(env, kv)
			}
		}
		return env
	}
	const old, current = "old-pepper-0123456789abcdef", "new-pepper-0123456789abcdef"
	oldEnv := withEnv("APIKEY_PEPPER="+old, "APIKEY_PEPPER_VERSION=2025")
	r := runCLI(t, cli, oldEnv, "", "migrate")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, cli, oldEnv, "", "create", "--owner", "o", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct{ Key, ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))

	newEnv := withEnv("APIKEY_PEPPER="+current, "APIKEY_PEPPER_VERSION=2026")
	r = runCLI(t, cli, newEnv, created.Key+"\n", "verify")
	assert.Equal(t, exitNegative, r.code, r.stderr)
	assert.Contains(t, r.stderr, `pepper version "2025"`)
	assert.Contains(t, r.stderr, "APIKEY_PREVIOUS_PEPPER_VERSION=2025")
	assert.Contains(t, r.stderr, `"2026"`, "names the versions it has")
	assert.NotContains(t, r.stderr, old)
	assert.NotContains(t, r.stderr, current)
	assertNoSecret(t, r.stdout+r.stderr, created.Key)

	r = runCLI(t, cli, newEnv, created.Key+"\n", "verify", "--json")
	assert.Equal(t, exitNegative, r.code, r.stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	assert.Equal(t, "invalid", res["reason"])
	assert.Contains(t, res["hint"], `pepper version "2025"`)

	// Another pepper under the same version name: the secret does not match.
	r = runCLI(t, cli, withEnv("APIKEY_PEPPER="+current, "APIKEY_PEPPER_VERSION=2025"), created.Key+"\n", "verify")
	assert.Equal(t, exitNegative, r.code)
	assert.Contains(t, r.stderr, "does not match")
	// With the old pepper kept as the previous one, it verifies (and is
	// digested under the new one from then on).
	r = runCLI(t, cli, withEnv("APIKEY_PEPPER="+current, "APIKEY_PEPPER_VERSION=2026",
		"APIKEY_PREVIOUS_PEPPER="+old, "APIKEY_PREVIOUS_PEPPER_VERSION=2025"), created.Key+"\n", "verify")
	assert.Equal(t, exitOK, r.code, r.stderr)
	// A key this database does not hold.
	forged, err := apikey.Generate("acme_live")
	require.NoError(t, err)
	r = runCLI(t, cli, newEnv, forged.Secret().Reveal()+"\n", "verify")
	assert.Equal(t, exitNegative, r.code)
	assert.Contains(t, r.stderr, "no key with ID "+forged.ID)
}
