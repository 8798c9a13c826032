package apikey_test

import (
	"fmt"
	"time"

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

func ExampleMemoryLimiter() {
	l := apikey.NewMemoryLimiter()
	defer l.Close()

	limit, _ := apikey.ParseLimit("2/s") // a burst of 2, then one every 500ms
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond} {
		d, _ := l.AllowAt(now.Add(at), "kid_0123456789", limit)
		fmt.Printf("+%v: allowed %v, remaining %d, retry after %v\n", at, d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// +0s: allowed true, remaining 1, retry after 0s
	// +0s: allowed true, remaining 0, retry after 0s
	// +0s: allowed false, remaining 0, retry after 500ms
	// +250ms: allowed false, remaining 0, retry after 250ms
	// +500ms: allowed true, remaining 0, retry after 0s
}

func ExampleMemoryCounter() {
	c := apikey.NewMemoryCounter()
	defer c.Close()

	q := apikey.Quota{Limit: 100, Period: 24 * time.Hour} // 100 credits a day (UTC)
	now := time.Date(2026, 1, 1, 18, 0, 0, 0, time.UTC)
	for _, cost := range []int64{60, 50, 40} {
		d, _ := c.AddAt(now, "owner:acme", q, cost)
		fmt.Printf("cost %d: allowed %v, remaining %d, retry after %v\n", cost, d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// cost 60: allowed true, remaining 40, retry after 0s
	// cost 50: allowed false, remaining 40, retry after 6h0m0s
	// cost 40: allowed true, remaining 0, retry after 0s
}
