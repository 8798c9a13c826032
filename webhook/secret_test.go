package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey/webhook"
)

// TestSecretRedacts: a Secret never shows its key through fmt (every
// verb, flags, inside structs), slog or JSON; only Reveal does.
func TestSecretRedacts(t *testing.T) {
	s, err := webhook.NewSecret()
	require.NoError(t, err)
	text := s.Reveal()
	require.True(t, strings.HasPrefix(text, "whsec_"))
	key := strings.TrimPrefix(text, "whsec_")
	type holder struct {
		Exported   webhook.Secret
		unexported webhook.Secret
	}
	h := holder{s, s}
	var forms []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T", "%p"} {
		forms = append(forms, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	forms = append(forms, fmt.Sprint(s), fmt.Sprintln(s), s.String(), s.GoString())
	var logged bytes.Buffer
	for _, hnd := range []slog.Handler{slog.NewTextHandler(&logged, nil), slog.NewJSONHandler(&logged, nil)} {
		slog.New(hnd).Info("secret", "s", s, "h", h)
	}
	forms = append(forms, logged.String())
	j, err := json.Marshal(h)
	require.NoError(t, err)
	forms = append(forms, string(j))
	for _, f := range forms {
		assert.NotContains(t, f, key, "the key leaked in %q", f)
		assert.NotContains(t, f, key[:8])
	}
	assert.Equal(t, "whsec_[REDACTED]", fmt.Sprint(s))
	assert.Contains(t, string(j), `"Exported":"whsec_[REDACTED]"`)
	var back webhook.Secret
	assert.Error(t, json.Unmarshal([]byte(`"whsec_x"`), &back))
}

func TestParseSecret(t *testing.T) {
	s, err := webhook.NewSecret()
	require.NoError(t, err)
	again, err := webhook.ParseSecret(" " + s.Reveal() + "\n")
	require.NoError(t, err)
	assert.Equal(t, s.Reveal(), again.Reveal())
	for _, bad := range []string{"", "whsec_", "whsec_!!!!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + strings.Repeat("A", 20), "whsec_" + strings.Repeat("A", 100)} {
		_, err := webhook.ParseSecret(bad)
		assert.ErrorIs(t, err, webhook.ErrInvalidSecret, "%q", bad)
		if len(bad) > 10 {
			assert.NotContains(t, err.Error(), bad[6:], "the error repeats the secret")
		}
	}
	assert.True(t, webhook.Secret{}.IsZero())
	assert.Equal(t, "", webhook.Secret{}.Reveal())
}

// FuzzParseSecret: ParseSecret never panics; what it accepts has a key of
// an allowed size whose text form parses back to the same key, and its
// errors never repeat the input.
func FuzzParseSecret(f *testing.F) {
	for _, seed := range []string{"", "whsec_", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", " whsec_" + strings.Repeat("QUFB", 8) + "\n", "whsec_====", "WHSEC_abc"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := webhook.ParseSecret(s)
		if err != nil {
			if len(s) > 12 && strings.Contains(err.Error(), s) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		again, err := webhook.ParseSecret(sec.Reveal())
		if err != nil || again.Reveal() != sec.Reveal() {
			t.Fatalf("%q parsed, but its Reveal %q does not parse back: %v", s, sec.Reveal(), err)
		}
		if fmt.Sprint(sec) != "whsec_[REDACTED]" {
			t.Fatalf("prints as %q", fmt.Sprint(sec))
		}
	})
}
