package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoggingNeverShowsTheSecret drives the demo through every kind of
// decision and checks that the slog output names keys by ID only.
func TestLoggingNeverShowsTheSecret(t *testing.T) {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("test", []byte("test-pepper-0123456789abcdef0123")))
	require.NoError(t, err)
	defer m.Close()
	reader, readerKey, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42", Scopes: []string{"orders:read"}})
	require.NoError(t, err)
	revoked, revokedKey, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-7"})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, revokedKey.ID))

	var logs bytes.Buffer
	srv := httptest.NewServer(newHandler(m, slog.New(slog.NewJSONHandler(&logs, nil))))
	defer srv.Close()

	key := reader.Reveal()
	typo := key[:len(key)-1] + "x"
	if strings.HasSuffix(key, "x") {
		typo = key[:len(key)-1] + "y"
	}
	tests := []struct {
		method, auth, xKey string
		status             int
	}{
		{"GET", "Bearer " + key, "", 200},
		{"POST", "Bearer " + key, "", 403},
		{"GET", "", "", 401},
		{"GET", "Bearer " + typo, "", 401},
		{"GET", "Bearer " + revoked.Reveal(), "", 401},
		{"GET", "Bearer " + key, key, 400},
		{"GET", "Basic " + key, "", 401},
	}
	var bodies strings.Builder
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+"/orders", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		if tt.xKey != "" {
			req.Header.Set("X-API-Key", tt.xKey)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tt.status, resp.StatusCode, tt)
		bodies.Write(b)
		for _, vs := range resp.Header {
			bodies.WriteString(strings.Join(vs, " "))
		}
	}

	out := logs.String()
	// One line per request, the 403 from RequireScopes included.
	assert.Equal(t, len(tests), strings.Count(out, "\n"), out)
	assert.Contains(t, out, `"client_ip":"127.0.0.1"`)
	assert.Contains(t, out, `"kid":"`+readerKey.ID+`"`)
	assert.Contains(t, out, `"kid":"`+revokedKey.ID+`"`)
	assert.Contains(t, out, `"reason":"insufficient_scope"`)
	assert.Contains(t, out, `"reason":"checksum"`)
	assert.Contains(t, out, `"reason":"two_credentials"`)
	for _, s := range []string{key[len(key)-49 : len(key)-6], revoked.Reveal()[len(key)-49 : len(key)-6]} {
		assert.NotContains(t, out, s, "a secret was logged")
		assert.NotContains(t, bodies.String(), s, "a secret was echoed")
	}
}

// TestAddrFlag: the demo listens where -addr says, as the quickstart does,
// and only on a loopback address, since it serves keys without TLS.
func TestAddrFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "http")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	first, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	assert.Regexp(t, `^Serving on http://127\.0\.0\.1:\d+\.`, first)

	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:8080", "nonsense"} {
		out, err := exec.Command(bin, "-addr", addr).CombinedOutput()
		assert.Error(t, err, addr)
		assert.Contains(t, string(out), "-addr", addr)
	}
}
