package apikey_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

func ExampleManager_Middleware() {
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("load-me-from-a-secret-manager!!")),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	secret, _, err := m.Issue(context.Background(), apikey.IssueRequest{
		Owner:  "team-42",
		Scopes: []string{"orders:read"},
	})
	if err != nil {
		log.Fatal(err)
	}

	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s\n", caller.Owner)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", apikey.RequireScopes("orders:read")(orders))
	mux.Handle("POST /orders", apikey.RequireScopes("orders:write")(orders))
	srv := httptest.NewServer(m.Middleware()(mux))
	defer srv.Close()

	// The client side: apikey.Transport adds the key to every request.
	client := &http.Client{Transport: &apikey.Transport{Secret: secret}}
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, srv.URL+"/orders", nil)
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", method, resp.StatusCode, body)
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			fmt.Println(c)
		}
	}

	resp, err := http.Get(srv.URL + "/orders") // no key
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("Content-Type"))
	// Output:
	// GET 200 orders of team-42
	// POST 403 {"type":"about:blank","title":"Forbidden","status":403,"detail":"the API key lacks a required scope: orders:write"}
	// Bearer realm="api", error="insufficient_scope", scope="orders:write"
	// 401 Bearer realm="api" application/problem+json
}

func ExampleNewContext() {
	// Handlers that read FromContext can be tested without any key store.
	handler := apikey.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ := apikey.FromContext(r.Context())
		fmt.Fprintln(w, "hello", caller.Owner)
	}))
	r := httptest.NewRequest("GET", "/orders", nil)
	r = r.WithContext(apikey.NewContext(r.Context(), &apikey.Key{Owner: "team-42", Scopes: []string{"orders:*"}}))
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 200 hello team-42
}

func ExampleWithAnonymous() {
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("load-me-from-a-secret-manager!!")),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	secret, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "team-42"})
	if err != nil {
		log.Fatal(err)
	}

	// A catalogue that everyone may read, with more for callers with a key.
	catalogue := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if caller, ok := apikey.FromContext(r.Context()); ok {
			fmt.Fprintf(w, "full catalogue for %s\n", caller.Owner)
			return
		}
		fmt.Fprintln(w, "public catalogue")
	})
	srv := httptest.NewServer(m.Middleware(apikey.WithAnonymous(), apikey.WithCookie("api_key"))(catalogue))
	defer srv.Close()

	for _, key := range []string{"", secret.Reveal(), "acme_live_not_a_key"} {
		req, _ := http.NewRequest("GET", srv.URL+"/catalogue", nil)
		if key != "" {
			req.AddCookie(&http.Cookie{Name: "api_key", Value: key})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body = []byte(resp.Header.Get("WWW-Authenticate") + "\n")
		}
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	// Output:
	// 200 public catalogue
	// 200 full catalogue for team-42
	// 401 Bearer realm="api", error="invalid_token", error_description="invalid API key"
}
