package ledgertest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// testMiddlewareOneBalance: 64 goroutines send a key's requests through
// the middleware at once, with the Ledger as Limits.Ledger; a quarter of
// them are refused by RequireScopes behind it, which gives their units
// back. Exactly the balance is let through: at most its 100 at once, and
// the rest once the refunds are in.
func testMiddlewareOneBalance(t *testing.T, s *suite) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("ledger_test"),
		apikey.WithPepper("v1", []byte("ledgertest pepper, 32 bytes or more")), apikey.WithClock(s.now))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/admin", apikey.RequireScopes("admin")(ok))
	mux.Handle("/", ok)
	h := m.Middleware(apikey.WithLimits(apikey.Limits{Ledger: s.l}))(mux)
	c := apikey.Credits{Grant: 100, Period: apikey.NoRefill}
	secret, k, err := m.Issue(t.Context(), apikey.IssueRequest{Owner: "ledgertest", Credits: c})
	if err != nil {
		t.Fatal(err)
	}
	send := func(path string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 4 {
				path := "/"
				if (g+i)%4 == 0 {
					path = "/admin"
				}
				code := send(path)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// A request may find the balance empty while a refund is on its way,
	// so the balance can end above 0; it never lets more through than it
	// holds.
	left := s.balance(apikey.CreditsKey(k), c)
	if codes[200] > 100 || int64(codes[200])+left != 100 {
		t.Fatalf("%v let through with %d left, from a balance of 100", codes, left)
	}
	if n := codes[200] + codes[403] + codes[429]; n != 256 || codes[403] == 0 {
		t.Fatalf("statuses %v: want 256 of 200, 403 (some) and 429", codes)
	}
	// What is left is spent, one request at a time.
	for range left + 1 {
		codes[send("/")]++
	}
	if codes[200] != 100 {
		t.Errorf("%d requests let through in all, want exactly the balance, 100: %v", codes[200], codes)
	}
	if b := s.balance(apikey.CreditsKey(k), c); b != 0 {
		t.Errorf("balance left %d, want 0", b)
	}
}
