package apikey_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// A key with 3 credits a day: requests draw them down, an empty balance is
// 429 with the Quota Exceeded problem type, and a payment webhook tops
// the balance up with credits that do not expire. The customer's balance
// is a Spend of 0 units.
func ExampleLedger_topUp() {
	m, err := apikey.NewManager(memstore.New(),
		apikey.WithPrefix("acme_live"),
		apikey.WithPepper("v1", []byte("load-me-from-a-secret-manager!!")),
		// A fixed clock for the example's output: 18:00 UTC.
		apikey.WithClock(func() time.Time { return time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC) }),
	)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	ctx := context.Background()
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42",
		Credits: apikey.Credits{Grant: 3, Period: 24 * time.Hour}})
	if err != nil {
		panic(err)
	}
	// Without Limits.Ledger the middleware draws from the Manager's own
	// ledger; a service that sells credits sets a shared one.
	ledger := m.Ledger()
	api := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	// paid is the payment provider's webhook (verify its signature
	// first): it tops up the key the customer paid for.
	paid := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := m.Get(r.Context(), r.FormValue("key"))
		if err != nil {
			http.Error(w, "unknown key", http.StatusNotFound)
			return
		}
		n, _ := strconv.ParseInt(r.FormValue("credits"), 10, 64)
		balance, err := ledger.TopUp(r.Context(), apikey.CreditsKey(k), k.Credits, n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("topped up %d: balance %d\n", n, balance)
	})

	call := func() {
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+secret.Reveal())
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("RateLimit"))
		if w.Code == http.StatusTooManyRequests {
			fmt.Print("Retry-After: ", w.Header().Get("Retry-After"), "\n", w.Body.String())
		}
	}
	for range 4 {
		call()
	}
	paid.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/webhooks/paid?key="+k.ID+"&credits=100", nil))
	call()

	d, err := ledger.Spend(ctx, apikey.CreditsKey(k), k.Credits, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("balance shown to the customer: %d of %d\n", d.Remaining, d.Limit)
	// Output:
	// 200 "credits";r=2;t=21600
	// 200 "credits";r=1;t=21600
	// 200 "credits";r=0;t=21600
	// 429 "credits";r=0;t=21600
	// Retry-After: 21600
	// {"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Too Many Requests","status":429,"detail":"credits exhausted","violated-policies":["credits"]}
	// topped up 100: balance 100
	// 200 "credits";r=99;t=21600
	// balance shown to the customer: 99 of 103
}
