package leaks_test

import (
	"log"
	"log/slog"
	"net/http"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/leaks"
	"github.com/apikeykit/apikey/memstore"
)

// Mount GitHub's and GitLab's leak reports next to the API, outside the
// API key middleware, and tell each key's owner when theirs leaked.
func Example() {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("a pepper of at least 32 random bytes!")))
	if err != nil {
		log.Fatal(err)
	}
	notify := func(ev apikey.KeyEvent) {
		// Never the key: its ID, owner, where it was found.
		slog.Warn("key leaked and revoked", "kid", ev.Key.ID, "owner", ev.Key.Owner, "source", ev.Source, "url", ev.URL)
	}
	github, err := leaks.GitHub(m, leaks.WithOnEvent(notify))
	if err != nil {
		log.Fatal(err)
	}
	gitlab, err := leaks.GitLab(m, "https://gitlab.example/keys.json", leaks.WithOnEvent(notify))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /leaks/github", github)
	mux.Handle("POST /leaks/gitlab", gitlab)
	api := http.NewServeMux() // your API
	mux.Handle("/", m.Middleware()(api))
	_ = mux // http.ListenAndServe(":8080", mux)
}
