package apikey_test

import (
	"bytes"
	"encoding/gob"
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

// TestTokenRedactsLikeSecret checks that a Token prints, logs and
// serialises as the Secret it holds does, and that neither can be read
// back from its redacted form.
func TestTokenRedactsLikeSecret(t *testing.T) {
	tok, err := apikey.Generate("acme_live")
	require.NoError(t, err)
	s := tok.Secret()
	want := "acme_live_" + tok.ID + "_…"

	for _, verb := range []string{"%v", "%s", "%q", "%x", "%d", "%t", "%e", "%U"} {
		assert.Equal(t, want, fmt.Sprintf(verb, tok), verb)
		assert.Equal(t, want, fmt.Sprintf(verb, s), verb)
	}
	assert.Equal(t, "apikey.Token("+want+")", fmt.Sprintf("%#v", tok))
	assert.Equal(t, "apikey.Secret("+want+")", fmt.Sprintf("%#v", s))
	assert.Equal(t, "apikey.Token("+want+")", tok.GoString())
	// Flags, width and precision apply to the redacted form, as to %s.
	assert.Equal(t, fmt.Sprintf("%-40s|", want), fmt.Sprintf("%-40v|", tok))
	assert.Equal(t, fmt.Sprintf("%40s|", want), fmt.Sprintf("%40s|", s))
	assert.Equal(t, "acme_", fmt.Sprintf("%.5s", s))

	text, err := tok.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, want, string(text))
	js, err := json.Marshal(map[string]any{"t": tok, "p": &tok, "s": s})
	require.NoError(t, err)
	assert.JSONEq(t, `{"t":"`+want+`","p":"`+want+`","s":"`+want+`"}`, string(js))

	var back apikey.Token
	assert.Error(t, json.Unmarshal([]byte(`"`+want+`"`), &back), "a redacted form must not be read back as a token")
	assert.Error(t, back.UnmarshalText([]byte(s.Reveal())), "a Token is made by Parse, not by unmarshaling")
	assert.Equal(t, apikey.Token{}, back)

	// gob refuses a Secret, and writes only a Token's Prefix and ID.
	var b bytes.Buffer
	assert.Error(t, gob.NewEncoder(&b).Encode(struct{ S apikey.Secret }{s}))
	b.Reset()
	require.NoError(t, gob.NewEncoder(&b).Encode(struct{ T apikey.Token }{tok}))
	assert.NotContains(t, b.String(), s.Reveal()[len(s.Reveal())-49:])
	var r struct{ T apikey.Token }
	require.NoError(t, gob.NewDecoder(&b).Decode(&r))
	assert.Equal(t, apikey.Token{Prefix: tok.Prefix, ID: tok.ID}, r.T)
	assert.True(t, r.T.Secret().IsZero(), "gob must not carry the key")
}

// TestZeroSecretAndToken checks that the zero values are usable, empty and
// print as "".
func TestZeroSecretAndToken(t *testing.T) {
	var s apikey.Secret
	var tok apikey.Token
	assert.True(t, s.IsZero())
	assert.True(t, tok.Secret().IsZero())
	assert.Equal(t, "", s.Reveal())
	assert.Equal(t, "", tok.Secret().Reveal())
	assert.Equal(t, "", tok.String())
	assert.Equal(t, "|apikey.Token()|apikey.Secret()", fmt.Sprintf("%v%s|%#v|%#v", tok, s, tok, s))
	assert.True(t, apikey.NewSecret(" \n").IsZero())
	assert.Equal(t, apikey.Secret{}, apikey.NewSecret(""), "an empty key is the zero Secret")
	js, err := json.Marshal(struct{ S, T any }{s, tok})
	require.NoError(t, err)
	assert.JSONEq(t, `{"S":"","T":""}`, string(js))
}
