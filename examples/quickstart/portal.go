package main

// The self-service portal, mounted at /portal/, behind a DEMO-ONLY
// sign-in. A real service puts the portal behind its own sign-in (its
// session cookie, OIDC, …) and gives portal.New a function that reads it;
// the sign-in here asks for a name and believes it, so that the quickstart
// has something to show. Do not copy it into a real service.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/portal"
)

// demoCookie is the DEMO-ONLY session cookie: the owner's name and an
// HMAC of it under a key made at start, so restarting signs everyone out.
const demoCookie = "quickstart_demo_session"

// demoSignIn is the DEMO-ONLY sign-in: whoever types a name is that owner.
type demoSignIn struct {
	key []byte // signs the cookie; random, per process
}

func newDemoSignIn() *demoSignIn {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	return &demoSignIn{key: key}
}

// mountPortal adds the portal at /portal/ and the demo sign-in at /signin
// to mux.
func mountPortal(mux *http.ServeMux, m *apikey.Manager, trusted []netip.Prefix) error {
	demo := newDemoSignIn()
	h, err := portal.New(m, demo.owner,
		portal.WithGrantableScopes("orders:*"),
		portal.WithMaxKeys(10),
		portal.WithLifetime(90*24*time.Hour, 365*24*time.Hour),
		portal.WithRotationGrace(24*time.Hour, 7*24*time.Hour),
		portal.WithTrustedProxies(trusted...),
	)
	if err != nil {
		return err
	}
	mux.Handle("/portal/", demo.require(http.StripPrefix("/portal", h)))
	cop := http.NewCrossOriginProtection()
	mux.HandleFunc("GET /signin", demo.form)
	mux.Handle("POST /signin", cop.Handler(http.HandlerFunc(demo.signIn)))
	mux.Handle("POST /signout", cop.Handler(http.HandlerFunc(demo.signOut)))
	return nil
}

// owner is the function portal.New is given: the signed-in owner, from
// the DEMO-ONLY cookie.
func (d *demoSignIn) owner(r *http.Request) (string, error) {
	c, err := r.Cookie(demoCookie)
	if err != nil {
		return "", portal.ErrNoOwner
	}
	owner, ok := d.verify(c.Value)
	if !ok {
		return "", portal.ErrNoOwner
	}
	return owner, nil
}

// require sends a browser that is not signed in from the page to the
// sign-in form; the portal answers its API with 401 itself.
func (d *demoSignIn) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := d.owner(r); err != nil && r.Method == http.MethodGet && r.URL.Path == "/portal/" {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *demoSignIn) sign(owner string) string {
	mac := hmac.New(sha256.New, d.key)
	mac.Write([]byte(owner))
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(owner)) + "." + enc.EncodeToString(mac.Sum(nil))
}

// verify parses a cookie value made by sign and returns the owner it names.
func (d *demoSignIn) verify(v string) (string, bool) {
	name, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 1024 {
		return "", false
	}
	enc := base64.RawURLEncoding
	owner, err := enc.DecodeString(name)
	if err != nil || len(owner) == 0 {
		return "", false
	}
	got, err := enc.DecodeString(sig)
	if err != nil {
		return "", false
	}
	mac := hmac.New(sha256.New, d.key)
	mac.Write(owner)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "", false
	}
	return string(owner), true
}

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo sign-in</title></head>
<body>
<h1>DEMO ONLY sign-in</h1>
<p><strong>DEMO ONLY:</strong> this sign-in believes any name you type. It exists so that the quickstart can show
the self-service portal; a real service puts the portal behind its own sign-in.</p>
{{if .}}<p>Signed in as <strong>{{.}}</strong>. <a href="/portal/">Manage your API keys</a>.</p>
<form method="post" action="/signout"><button type="submit">Sign out</button></form>
{{else}}<form method="post" action="/signin">
<label for="owner">Owner name</label>
<input id="owner" name="owner" value="` + demoOwner + `" required maxlength="255">
<button type="submit">Sign in (demo)</button>
</form>
<p>Sign in as <code>` + demoOwner + `</code> to see the key the quickstart issued at first start.</p>{{end}}
</body></html>
`))

func (d *demoSignIn) form(w http.ResponseWriter, r *http.Request) {
	owner, _ := d.owner(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	signInPage.Execute(w, owner)
}

func (d *demoSignIn) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	owner := strings.TrimSpace(r.PostFormValue("owner"))
	if owner == "" || len(owner) > apikey.MaxOwnerLen {
		http.Error(w, fmt.Sprintf("give an owner name of 1 to %d bytes", apikey.MaxOwnerLen), http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: demoCookie, Value: d.sign(owner), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/portal/", http.StatusSeeOther)
}

func (d *demoSignIn) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: demoCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
