package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMountOnChi: the portal works mounted on a chi router, under
// http.StripPrefix, for the page, its files and every API verb.
func TestMountOnChi(t *testing.T) {
	var router *chi.Mux
	s := newServer(t, func(mux *http.ServeMux, h http.Handler) {
		router = chi.NewRouter()
		router.Mount("/account/keys", http.StripPrefix("/account/keys", h))
		mux.Handle("/account/", router)
	})
	s.mu.Lock()
	s.sessions["chi-session"] = "carol"
	s.mu.Unlock()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.AddCookie(&http.Cookie{Name: "session", Value: "chi-session"})
		if method != "GET" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		router.ServeHTTP(w, r)
		return w
	}
	assert.Equal(t, 200, do("GET", "/account/keys/", "").Code)
	assert.Equal(t, 200, do("GET", "/account/keys/static/portal.js", "").Code)
	w := do("POST", "/account/keys/api/keys", `{"name":"on chi","scopes":["orders:read"]}`)
	require.Equal(t, 201, w.Code, w.Body.String())
	id := w.Body.String()[strings.Index(w.Body.String(), `"id":"`)+6:][:12]
	assert.Equal(t, 200, do("GET", "/account/keys/api/keys/"+id, "").Code)
	assert.Equal(t, 200, do("PATCH", "/account/keys/api/keys/"+id, `{"name":"renamed"}`).Code)
	assert.Equal(t, 201, do("POST", "/account/keys/api/keys/"+id+"/rotate", `{}`).Code)
	assert.Equal(t, 200, do("POST", "/account/keys/api/keys/"+id+"/revoke", `{}`).Code)
	assert.Contains(t, do("GET", "/account/keys/api/keys", "").Body.String(), `"name":"renamed"`)
}
