package apikey_test

import (
	"fmt"

	"github.com/apikeykit/apikey"
)

func ExampleParseQuery() {
	q, err := apikey.ParseQuery("orders:read AND (billing:read or admin)")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(q)
	fmt.Println(q.Scopes())

	for _, granted := range [][]string{
		{"orders:read", "billing:*"},
		{"orders:read"},
		{"*:read"},
	} {
		fmt.Println(granted, q.Allows(granted), q.Missing(granted))
	}

	_, err = apikey.ParseQuery("orders:read and (billing:read or")
	fmt.Println(err)
	// Output:
	// orders:read and (billing:read or admin)
	// [orders:read billing:read admin]
	// [orders:read billing:*] true []
	// [orders:read] false [billing:read]
	// [*:read] true []
	// apikey: scope query: expected scope or "(" at position 32
}

func ExampleScopeMatches() {
	for _, c := range []struct{ granted, required string }{
		{"orders:read", "orders:read"},
		{"orders:*", "orders:read"},
		{"orders:*", "orders:invoices:read"},
		{"orders:*", "orders"},
		{"*:read", "billing:read"},
		{"*:read", "billing:invoices:read"},
		{"*", "billing:invoices:read"},
		{"orders:read", "Orders:read"},
	} {
		fmt.Printf("%-12s %-22s %v\n", c.granted, c.required, apikey.ScopeMatches(c.granted, c.required))
	}
	// Output:
	// orders:read  orders:read            true
	// orders:*     orders:read            true
	// orders:*     orders:invoices:read   true
	// orders:*     orders                 false
	// *:read       billing:read           true
	// *:read       billing:invoices:read  false
	// *            billing:invoices:read  true
	// orders:read  Orders:read            false
}

// A customer holding orders:* may give a new key any part of it, and
// nothing else.
func ExampleScopeWithin() {
	granted := []string{"orders:*", "billing:read"}
	for _, scope := range []string{"orders:read", "orders:*", "orders:eu:*", "orders", "billing:*", "*:read"} {
		fmt.Printf("%-12s %v\n", scope, apikey.ScopeWithin(granted, scope))
	}
	fmt.Println(apikey.ScopesWithin(granted, []string{"orders:write", "billing:read"}))
	// Output:
	// orders:read  true
	// orders:*     true
	// orders:eu:*  true
	// orders       false
	// billing:*    false
	// *:read       false
	// true
}
