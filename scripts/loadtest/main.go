// Command loadtest serves one JSON handler bare and behind each chain of
// apikey's middleware, in one process, for scripts/loadtest-chains.sh,
// so that every phase of the load test differs from bare in exactly one
// thing. It is a measuring tool, not an example: keys live in memory and
// are written, with their classes, to the file named by -keys.
//
//	/empty  no work at all: what the client's script costs
//	/bare   the JSON handler alone
//	/auth   the middleware, authentication only (valid keys have no limits)
//	/full   the middleware with a per-key limit (Default, 10^6/s, so that
//	        valid keys are never refused) and RequireScopes
//
// Keys: -n valid keys with the scope orders:read; 5 limited to 10/s; 5
// revoked; 2 well-formed keys nobody issued.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keysFile := flag.String("keys", "keys.txt", "file to write the keys to, one \"class key\" per line")
	n := flag.Int("n", 1000, "number of valid keys")
	flag.Parse()

	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("load"),
		apikey.WithPepper("v1", []byte("load test pepper, 32 bytes or more, not a secret")))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	var keys strings.Builder
	issue := func(class string, req apikey.IssueRequest, revoke bool) {
		sec, k, err := m.Issue(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		if revoke {
			if err := m.Revoke(ctx, k.ID); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Fprintf(&keys, "%s %s\n", class, sec.Reveal())
	}
	for i := range *n {
		issue("valid", apikey.IssueRequest{Owner: fmt.Sprint("load-", i), Scopes: []string{"orders:read"}}, false)
	}
	for i := range 5 {
		issue("limited", apikey.IssueRequest{Owner: fmt.Sprint("limited-", i), Scopes: []string{"orders:read"},
			RateLimit: apikey.Limit{Rate: 10, Period: time.Second}}, false)
	}
	for i := range 5 {
		issue("invalid", apikey.IssueRequest{Owner: fmt.Sprint("revoked-", i)}, true)
	}
	keys.WriteString("invalid load_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf\n")
	keys.WriteString("invalid load_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKg\n")
	if err := os.WriteFile(*keysFile, []byte(keys.String()), 0o600); err != nil {
		log.Fatal(err)
	}

	type reply struct {
		OK   bool   `json:"ok"`
		Path string `json:"path"`
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(reply{OK: true, Path: r.URL.Path})
	})
	full := m.Middleware(apikey.WithLimits(apikey.Limits{Default: apikey.Limit{Rate: 1_000_000, Period: time.Second}}))
	mux := http.NewServeMux()
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/bare", handler)
	mux.Handle("/auth", m.Middleware()(handler))
	mux.Handle("/full", full(apikey.RequireScopes("orders:read")(handler)))
	log.Fatal(http.ListenAndServe(*addr, mux))
}
