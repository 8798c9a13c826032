package portal_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/portal"
)

// The portal mounted under a prefix, behind the host's sign-in (here a
// header stands for it): a customer creates a key within the scopes they
// may grant, and is refused one outside them.
func ExampleNew() {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("1", bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	signedIn := func(r *http.Request) (string, error) {
		if user := r.Header.Get("X-Demo-User"); user != "" {
			return user, nil
		}
		return "", portal.ErrNoOwner
	}
	keys, err := portal.New(m, signedIn,
		portal.WithGrantableScopes("orders:*"),
		portal.WithAudit(func(e portal.AuditEvent) { fmt.Println("audit:", e.Action, "by", e.Owner) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/account/keys/", http.StripPrefix("/account/keys", keys))

	for _, body := range []string{
		`{"name":"ci","scopes":["orders:read"],"expires_in":"30d"}`,
		`{"name":"ci","scopes":["billing:read"]}`,
	} {
		r := httptest.NewRequest("POST", "/account/keys/api/keys", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Demo-User", "alice")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)

		var resp struct {
			Key    apikey.KeyView
			Token  string
			Detail string
		}
		json.Unmarshal(w.Body.Bytes(), &resp)
		if w.Code == http.StatusCreated {
			_, err := m.Verify(r.Context(), resp.Token)
			fmt.Println(w.Code, resp.Key.Scopes, resp.Key.Status, "verifies:", err == nil)
		} else {
			fmt.Println(w.Code, resp.Detail)
		}
	}
	// Output:
	// audit: create by alice
	// 201 [orders:read] active verifies: true
	// 400 scopes: "billing:read" is not within the scopes you may grant
}
