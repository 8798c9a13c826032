package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRevokeReason: revoke --reason records why; show and show --json
// print it; a second revocation keeps the first reason; a reason with a
// control character is refused and changes nothing.
func TestRevokeReason(t *testing.T) {
	cli, _ := buildBinaries(t)
	env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	require.Equal(t, exitOK, runCLI(t, cli, env, "", "migrate").code)
	r := runCLI(t, cli, env, "", "create", "--owner", "o", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))

	r = runCLI(t, cli, env, "", "revoke", created.ID, "--reason", "bad\x1b[31m")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "control")
	r = runCLI(t, cli, env, "", "show", created.ID, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"status": "active"`)

	r = runCLI(t, cli, env, "", "revoke", created.ID, "--reason", "leaked in a CI log")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "reason: leaked in a CI log")
	r = runCLI(t, cli, env, "", "revoke", created.ID, "--reason", "something else")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, cli, env, "", "show", created.ID)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `revoked reason\s+leaked in a CI log\n`, r.stdout)
	r = runCLI(t, cli, env, "", "show", created.ID, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v struct {
		Status        string `json:"status"`
		RevokedReason string `json:"revoked_reason"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.Equal(t, "revoked", v.Status)
	assert.Equal(t, "leaked in a CI log", v.RevokedReason)
}
