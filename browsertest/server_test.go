package browsertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/portal"
	"github.com/stretchr/testify/require"
)

// server is a small service as a user of the library builds one: an API
// protected by the middleware, at /v1/, and the portal at /portal/,
// behind the host's own sign-in, here a session cookie handed out by
// /signin?as=NAME (a test stand-in for a real sign-in).
type server struct {
	*httptest.Server
	m *apikey.Manager

	mu       sync.Mutex
	sessions map[string]string // session cookie value → owner
	events   []portal.AuditEvent
}

func newServer(t *testing.T, mount func(mux *http.ServeMux, h http.Handler)) *server {
	t.Helper()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("1", bytes.Repeat([]byte{9}, 32)),
		// Last use reaches the store within 100 ms, so that a reloaded page
		// (and the screenshot in docs/) shows it beside the usage.
		apikey.WithLastUsedInterval(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s := &server{m: m, sessions: map[string]string{}}

	h, err := portal.New(m, s.owner,
		portal.WithGrantableScopes("orders:*", "billing:read"),
		portal.WithPrefixes("acme_live", "acme_test"),
		portal.WithAudit(func(e portal.AuditEvent) {
			s.mu.Lock()
			s.events = append(s.events, e)
			s.mu.Unlock()
		}),
	)
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /signin", s.signIn)
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		io.WriteString(w, "orders of "+k.Owner+"\n")
	})
	mux.Handle("/v1/", m.Middleware()(apikey.RequireScopes("orders:read")(api)))
	if mount == nil {
		mux.Handle("/portal/", http.StripPrefix("/portal", h))
	} else {
		mount(mux, h)
	}
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// signIn starts a session for the owner named by ?as= and goes to the portal.
func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	s.mu.Lock()
	s.sessions[id] = r.URL.Query().Get("as")
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "session", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/portal/", http.StatusSeeOther)
}

func (s *server) owner(r *http.Request) (string, error) {
	c, err := r.Cookie("session")
	if err != nil {
		return "", portal.ErrNoOwner
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.sessions[c.Value]; o != "" {
		return o, nil
	}
	return "", portal.ErrNoOwner
}

// call calls the protected endpoint with key and returns the status.
func (s *server) call(t *testing.T, key string) int {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+"/v1/orders", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
