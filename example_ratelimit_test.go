package apikey_test

import (
	"fmt"

	"github.com/apikeykit/apikey"
)

func ExampleParseLimit() {
	for _, s := range []string{"100/s", "1000/m", "10/30s,burst=20", "5/1s", "100/x"} {
		l, err := apikey.ParseLimit(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-16s rate %d per %v, burst %d: %s\n", s, l.Rate, l.Period, l.BurstSize(), l)
	}
	// Output:
	// 100/s            rate 100 per 1s, burst 100: 100/s
	// 1000/m           rate 1000 per 1m0s, burst 1000: 1000/m
	// 10/30s,burst=20  rate 10 per 30s, burst 20: 10/30s,burst=20
	// 5/1s             rate 5 per 1s, burst 5: 5/s
	// apikey: invalid request: limit "100/x": at byte 4: unknown period unit "x" (want ns, us, ms, s, m, h or d)
}

func ExampleParseQuota() {
	q, err := apikey.ParseQuota("10000/24h")
	if err != nil {
		panic(err)
	}
	fmt.Println(q.Limit, q.Period, q)
	// Output: 10000 24h0m0s 10000/d
}
