package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/vault"
)

// redactVerbs is every fmt verb, with flags, including those that make no
// sense for the type (fmt's bad-verb path prints by reflection).
var redactVerbs = []string{
	"%v", "%+v", "%#v", "%T", "%s", "%q", "%x", "%X", "%d", "%t", "%b", "%o", "%O", "%c", "%U",
	"%e", "%f", "%g", "%p", "%w", "%10s", "%-x", "%+q", "%#q", "%#x", "% x", "%08d", "%.3s", "%#p", "%!",
}

// recordingKEK is a LocalKEK that keeps every data key it wraps, so that
// the test can look for them. They are a pointer away, so that printing a
// Vault holding it shows the Vault's own leaks, not the test's.
type recordingKEK struct {
	*vault.LocalKEK
	mu   sync.Mutex
	keys *[][]byte
}

func (k *recordingKEK) Wrap(ctx context.Context, dk, aad []byte) (string, []byte, error) {
	k.mu.Lock()
	*k.keys = append(*k.keys, bytes.Clone(dk))
	k.mu.Unlock()
	return k.LocalKEK.Wrap(ctx, dk, aad)
}

// TestRedaction prints, logs and marshals every type of this package that
// holds key material or sits next to a secret (a LocalKEK, a Vault with
// cached data keys, Entries, Records, AuditEvents, errors), in every
// shape, and looks for the KEK, the data keys and the secret in every
// encoding.
func TestRedaction(t *testing.T) {
	ctx := context.Background()
	raw := []byte("0123456789abcdef0123456789abcdef")
	text := "v1:" + base64.StdEncoding.EncodeToString(raw)
	local := newKEK(t, text)
	kek := &recordingKEK{LocalKEK: local, keys: new([][]byte)}
	st := vault.NewMemStore()
	var events []vault.AuditEvent
	v, err := vault.New(st, kek, vault.WithAudit(func(_ context.Context, e vault.AuditEvent) { events = append(events, e) }))
	if err != nil {
		t.Fatal(err)
	}
	secret := providerKey()
	e, err := v.Put(ctx, "alice", "openai", apikey.NewSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Reveal(ctx, "alice", "openai") // caches the data key
	if err != nil {
		t.Fatal(err)
	}
	_, valErr := v.Put(ctx, "alice", "openai", apikey.NewSecret(secret), vault.WithValidation(func(context.Context, apikey.Secret) error {
		return fmt.Errorf("refused %s", secret)
	}))
	r, _ := st.Get(ctx, "alice", "openai")

	values := map[string]any{
		"LocalKEK": local, "LocalKEK value": *local,
		"Vault": v, "Vault value": *v, "Entry": e, "Record": r, "AuditEvents": events,
		"Secret": s, "validation error": valErr,
		"struct": struct {
			K *vault.LocalKEK
			v *vault.Vault
			s apikey.Secret
		}{local, v, s},
		"slice": []any{local, v, e},
	}
	needles := map[string][]byte{
		"secret": []byte(secret), "secret middle": []byte(secret[3 : len(secret)-4]),
		"secret hex": []byte(hex.EncodeToString([]byte(secret))),
		"KEK":        raw, "KEK base64": []byte(text[3:]), "KEK hex": []byte(hex.EncodeToString(raw)),
		"KEK decimal": []byte(strings.Trim(fmt.Sprint(raw[:8]), "[]")),
	}
	for i, dk := range *kek.keys {
		needles[fmt.Sprintf("data key %d", i)] = dk
		needles[fmt.Sprintf("data key %d hex", i)] = []byte(hex.EncodeToString(dk))
		needles[fmt.Sprintf("data key %d decimal", i)] = []byte(strings.Trim(fmt.Sprint(dk[:8]), "[]"))
		needles[fmt.Sprintf("data key %d base64", i)] = []byte(base64.StdEncoding.EncodeToString(dk)[:20])
	}
	if len(*kek.keys) == 0 {
		t.Fatal("no data key recorded")
	}
	// The needles find what they look for.
	for what, out := range map[string]string{"KEK decimal": fmt.Sprint(raw), "data key 0 decimal": fmt.Sprint((*kek.keys)[0]), "data key 0 hex": fmt.Sprintf("%x", (*kek.keys)[0])} {
		if !bytes.Contains([]byte(out), needles[what]) {
			t.Fatalf("the needle %s does not find %q", what, out)
		}
	}
	for name, val := range values {
		var outs [][]byte
		for _, verb := range redactVerbs {
			outs = append(outs, []byte(fmt.Sprintf(verb, val)))
		}
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "v", val)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "v", val)
		js, err := json.Marshal(val)
		if err != nil {
			js = []byte(err.Error())
		}
		outs = append(outs, logs.Bytes(), js, []byte(fmt.Sprint(val)), []byte(fmt.Errorf("x: %v", val).Error()))
		for _, out := range outs {
			for what, needle := range needles {
				if bytes.Contains(out, needle) {
					t.Fatalf("%s printed holds the %s: %.300s", name, what, out)
				}
			}
		}
	}
	if got := fmt.Sprintf("%v|%#v|%s", local, local, local); got != "vault.LocalKEK(v1 current; v1)|vault.LocalKEK(v1 current; v1)|vault.LocalKEK(v1 current; v1)" {
		t.Fatalf("LocalKEK prints %q", got)
	}
	if js, _ := json.Marshal(local); string(js) != `"vault.LocalKEK(v1 current; v1)"` {
		t.Fatalf("LocalKEK marshals as %s", js)
	}
}
