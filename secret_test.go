package apikey_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecretRedacts(t *testing.T) {
	tok, err := apikey.Generate("acme_live")
	require.NoError(t, err)
	s := tok.Secret()
	raw := s.Reveal()
	secretPart := raw[len(raw)-49:]
	want := "acme_live_" + tok.ID + "_…"

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("issued", "key", s, "token", tok)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("issued", "key", s, slog.Any("any", s))

	jsonOut, err := json.Marshal(struct {
		Key apikey.Secret
		Ptr *apikey.Secret
		Tok apikey.Token
	}{s, &s, tok})
	require.NoError(t, err)
	text, err := s.MarshalText()
	require.NoError(t, err)

	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s),
		"%x": fmt.Sprintf("%x", s), "%X": fmt.Sprintf("%X", s), "%#v": fmt.Sprintf("%#v", s),
		"%+v": fmt.Sprintf("%+v", s), "%d": fmt.Sprintf("%d", s), "ptr": fmt.Sprintf("%v", &s),
		"struct": fmt.Sprintf("%+v", struct{ K apikey.Secret }{s}), "token %v": fmt.Sprintf("%v", tok),
		"token %#v": fmt.Sprintf("%#v", tok), "token %+v": fmt.Sprintf("%+v", tok),
		"Sprint": fmt.Sprint(s), "String": s.String(), "slog": logs.String(),
		"json": string(jsonOut), "text": string(text), "error": fmt.Errorf("failed with %v", s).Error(),
	}
	for name, out := range outputs {
		assert.NotContains(t, out, secretPart, name)
		assert.NotContains(t, out, secretPart[:20], name)
	}
	assert.Equal(t, want, s.String())
	assert.Equal(t, want, fmt.Sprintf("%v", s))
	assert.Contains(t, logs.String(), want)
	assert.Contains(t, string(jsonOut), want)

	var back apikey.Secret
	assert.Error(t, json.Unmarshal(jsonOut[7:7+len(want)+4], &back), "a redacted form must not be read back as a key")
}

func TestSecretOfArbitraryString(t *testing.T) {
	s := apikey.NewSecret("  hunter2-not-an-apikey\n")
	assert.Equal(t, "hunter2-not-an-apikey", s.Reveal())
	assert.Equal(t, "[REDACTED]", s.String())
	assert.NotContains(t, fmt.Sprintf("%v %s %q %x %#v", s, s, s, s, s), "hunter2")
	assert.True(t, apikey.Secret{}.IsZero())
	assert.Equal(t, "", apikey.Secret{}.String())
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv("APIKEY_TEST_SECRET", knownTokens[0].token+"\n")
	s, err := apikey.SecretFromEnv("APIKEY_TEST_SECRET")
	require.NoError(t, err)
	assert.Equal(t, knownTokens[0].token, s.Reveal())

	t.Setenv("APIKEY_TEST_EMPTY", " ")
	_, err = apikey.SecretFromEnv("APIKEY_TEST_EMPTY")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "APIKEY_TEST_EMPTY")
	_, err = apikey.SecretFromEnv("APIKEY_TEST_UNSET_VARIABLE")
	require.Error(t, err)
}
