package webhookcheck

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/webhook"
)

// TestReferenceLibraryVerifies: every message a Sender delivers, for every
// key lifecycle event and on every retry, verifies with the Standard
// Webhooks reference library, under the whsec_ secret as the receiver
// holds it; a message signed with another secret, or altered, does not.
func TestReferenceLibraryVerifies(t *testing.T) {
	ctx := context.Background()
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	oracle, err := standardwebhooks.NewWebhook(secret.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := webhook.NewSecret()
	otherOracle, err := standardwebhooks.NewWebhook(other.Reveal())
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var verified, refused, altered int
	var types []string
	attempts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := oracle.Verify(body, r.Header); err != nil {
			t.Errorf("the reference library refuses a message: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		verified++
		if otherOracle.Verify(body, r.Header) == nil {
			t.Error("a message verifies under another secret")
		} else {
			refused++
		}
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)/2] ^= 1
		if oracle.Verify(tampered, r.Header) == nil {
			t.Error("an altered message verifies")
		} else {
			altered++
		}
		attempts++
		if attempts%3 == 1 { // every third attempt fails: retries are signed and verified too
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		types = append(types, strings.SplitN(strings.SplitN(string(body), `"type":"`, 2)[1], `"`, 2)[0])
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	s, err := webhook.New(srv.URL, secret, webhook.WithRetries(4, 5*time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("webhookcheck-pepper-0123456789ab")), apikey.WithKeyEvents(s.Notify))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	_, k2, err := m.Rotate(ctx, k.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Suspend(ctx, k2.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.RevokeWithReason(ctx, k2.ID, "leaked: https://example.com/x"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, typ := range []apikey.KeyEventType{apikey.KeyLeaked, apikey.KeyExpiring, apikey.KeyUnused} {
		s.Notify(apikey.KeyEvent{Type: typ, At: now, Key: k.View(now), Source: "github", URL: "https://example.com/x"})
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"key.created", "key.rotated", "key.suspended", "key.revoked", "key.leaked", "key.expiring", "key.unused"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("delivered %v, want %v", types, want)
	}
	if verified < len(want) || refused != verified || altered != verified {
		t.Fatalf("verified %d, refused under another secret %d, altered refused %d", verified, refused, altered)
	}
	t.Logf("%d attempts for %d messages, every one verified by the reference library", verified, len(want))
}
