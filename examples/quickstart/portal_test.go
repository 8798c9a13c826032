package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDemoSignInCookie(t *testing.T) {
	d := newDemoSignIn()
	v := d.sign("alice")
	owner, ok := d.verify(v)
	assert.True(t, ok)
	assert.Equal(t, "alice", owner)

	other := newDemoSignIn() // another process, another key
	_, ok = other.verify(v)
	assert.False(t, ok)
	name, sig, _ := strings.Cut(v, ".")
	forged := d.sign("mallory")
	_, fsig, _ := strings.Cut(forged, ".")
	for _, bad := range []string{"", ".", name, name + ".", "." + sig, name + "." + fsig, forged[:len(forged)-1], v + "A", "bWFsbG9yeQ." + sig} {
		_, ok := d.verify(bad)
		assert.False(t, ok, "%q", bad)
	}
}

// FuzzDemoCookie: the DEMO-ONLY cookie parser never panics and accepts
// only what sign made.
func FuzzDemoCookie(f *testing.F) {
	d := newDemoSignIn()
	f.Add(d.sign("alice"))
	f.Add("YWxpY2U.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, v string) {
		owner, ok := d.verify(v)
		if ok && d.sign(owner) != v {
			t.Fatalf("verify(%q) accepted a value sign did not make", v)
		}
	})
}

// TestQuickstartPortal: the portal is mounted at /portal/, a browser that
// is not signed in is sent to the demo sign-in, and once signed in it
// manages that owner's keys.
func TestQuickstartPortal(t *testing.T) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"), apikey.WithPepper("1", bytes.Repeat([]byte{1}, 32)))
	require.NoError(t, err)
	defer m.Close()
	mux := http.NewServeMux()
	require.NoError(t, mountPortal(mux, m, nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := client.Get(srv.URL + "/portal/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/signin", resp.Header.Get("Location"))

	resp, err = client.Get(srv.URL + "/signin")
	require.NoError(t, err)
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	assert.Contains(t, page.String(), "DEMO ONLY")

	resp, err = client.PostForm(srv.URL+"/signin", url.Values{"owner": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	assert.True(t, cookies[0].HttpOnly)

	req, _ := http.NewRequest("POST", srv.URL+"/portal/api/keys", strings.NewReader(`{"name":"quickstart","scopes":["orders:read"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(cookies[0])
	resp, err = client.Do(req)
	require.NoError(t, err)
	var created struct {
		Key   apikey.KeyView `json:"key"`
		Token string         `json:"token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "alice", created.Key.Owner)
	k, err := m.Verify(t.Context(), created.Token)
	require.NoError(t, err)
	assert.Equal(t, "alice", k.Owner)

	req, _ = http.NewRequest("GET", srv.URL+"/portal/", nil)
	req.AddCookie(cookies[0])
	resp, err = client.Do(req)
	require.NoError(t, err)
	page.Reset()
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page.String(), created.Key.ID)
	assert.NotContains(t, page.String(), created.Token)

	// A cross-origin sign-in (login CSRF) is refused.
	req, _ = http.NewRequest("POST", srv.URL+"/signin", strings.NewReader("owner=mallory"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}
