package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
)

// runInProcess runs the command in this process, for commands that need
// no database.
func runInProcess(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}, args)
	return out.String(), errOut.String(), code
}

// TestPatterns: the printed expressions match keys of the prefix and
// nothing of another shape; every section is there; bad flags are
// refused.
func TestPatterns(t *testing.T) {
	out, stderr, code := runInProcess(t, "patterns", "--prefix", "acme_live,acme_test", "--endpoint", "https://api.acme.test/leaks/")
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{"# Token format", "secret-scanning@github.com", "https://api.acme.test/leaks/github",
		"https://api.acme.test/leaks/gitlab", "[[rules]]", `id = "acme-test-api-key"`, "detectors:", "CRC-32"} {
		assert.Contains(t, out, want)
	}

	key, err := apikey.Generate("acme_live")
	require.NoError(t, err)
	other, err := apikey.Generate("acme_live_eu")
	require.NoError(t, err)
	k := key.Secret().Reveal()
	for _, format := range []string{"regex", "gitleaks", "trufflehog"} {
		out, stderr, code := runInProcess(t, "patterns", "--prefix", "acme_live", "--format", format)
		require.Equal(t, exitOK, code, stderr)
		var exprs []string
		for _, m := range regexp.MustCompile(`(?m)(?:pattern \(acme_live\):  |regex = '''|key: ')(.+?)(?:'''|')?$`).FindAllStringSubmatch(out, -1) {
			exprs = append(exprs, m[1])
		}
		require.Len(t, exprs, 1, "%s: %s", format, out)
		re, err := regexp.Compile(exprs[0])
		require.NoError(t, err, format)
		assert.True(t, re.MatchString("API_KEY="+k+"\n"), "%s: %s does not match a key", format, exprs[0])
		for _, not := range []string{k[:len(k)-1], "acme_test" + k[len("acme_live"):], other.Secret().Reveal(), strings.Replace(k, "_", "-", 1)} {
			assert.False(t, re.MatchString("x "+not+" x"), "%s: %s matches %q", format, exprs[0], not)
		}
	}

	_, stderr, code = runInProcess(t, "patterns", "--format", "yaml")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "--format")
	_, stderr, code = runInProcess(t, "patterns", "--prefix", "Acme")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "prefix")
}

// TestPatternsWithGitleaks runs the real gitleaks with the printed rule on
// a tree holding one planted key and look-alikes that are not keys of the
// prefix: it must find the planted key and nothing else.
func TestPatternsWithGitleaks(t *testing.T) {
	bin := os.Getenv("APIKEY_TEST_GITLEAKS")
	if bin == "" {
		t.Skip("APIKEY_TEST_GITLEAKS is not set: no gitleaks binary to test with (source .ci/services.sh; start_gitleaks)")
	}
	out, stderr, code := runInProcess(t, "patterns", "--prefix", "acme_live", "--format", "gitleaks")
	require.Equal(t, exitOK, code, stderr)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.toml")
	require.NoError(t, os.WriteFile(rules, []byte(out), 0o600))

	tree := filepath.Join(dir, "tree")
	planted, err := apikey.Generate("acme_live")
	require.NoError(t, err)
	test, err := apikey.Generate("acme_test")
	require.NoError(t, err)
	key := planted.Secret().Reveal()
	files := map[string]string{
		"config/prod.env": "DATABASE_URL=postgres://db/app\nACME_API_KEY=" + key + "\n",
		"docs/README.md": "Keys look like acme_live_<12 characters>_<49 characters>, for example\n" +
			"acme_live_AbCdEf123456_" + strings.Repeat("x", 40) + " (too short to be one).\n" +
			"Test keys are another prefix: " + test.Secret().Reveal() + "\n",
	}
	for name, content := range files {
		path := filepath.Join(tree, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(bin, "dir", "--no-banner", "--config", rules, "--report-format", "json", "--report-path", report, "--exit-code", "0", tree)
	combined, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", combined)
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	var findings []struct {
		RuleID string
		File   string
		Secret string
		Line   string
	}
	require.NoError(t, json.Unmarshal(b, &findings), "%s", b)
	require.Len(t, findings, 1, "gitleaks found: %s", b)
	assert.Equal(t, "acme-live-api-key", findings[0].RuleID)
	assert.Equal(t, key, findings[0].Secret)
	assert.True(t, strings.HasSuffix(findings[0].File, filepath.Join("config", "prod.env")), findings[0].File)
	t.Logf("gitleaks found the planted key in %s and nothing else", filepath.Base(findings[0].File))
}
