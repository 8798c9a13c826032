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
