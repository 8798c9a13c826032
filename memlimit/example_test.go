package memlimit_test

import (
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memlimit"
)

func ExampleLimiter() {
	l, err := memlimit.NewLimiter()
	if err != nil {
		panic(err)
	}
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

func ExampleCounter() {
	c, err := memlimit.NewCounter()
	if err != nil {
		panic(err)
	}
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

func ExampleLedger() {
	l, err := memlimit.NewLedger()
	if err != nil {
		panic(err)
	}
	defer l.Close()

	c, _ := apikey.ParseCredits("10/d") // 10 a day, refilled at 00:00 UTC
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, _ := l.SpendAt(day.Add(9*time.Hour), "credits:kid_0123456789", c, 8)
	fmt.Println("allowed", d.Allowed, "left", d.Remaining)
	d, _ = l.SpendAt(day.Add(10*time.Hour), "credits:kid_0123456789", c, 5)
	fmt.Println("allowed", d.Allowed, "left", d.Remaining, "retry after", d.RetryAfter)
	b, _ := l.TopUpAt(day.Add(11*time.Hour), "credits:kid_0123456789", c, 20)
	fmt.Println("topped up, balance", b)
	d, _ = l.SpendAt(day.Add(12*time.Hour), "credits:kid_0123456789", c, 5)
	fmt.Println("allowed", d.Allowed, "left", d.Remaining)
	// The next day: a fresh grant, and the top-ups not spent.
	d, _ = l.SpendAt(day.Add(24*time.Hour), "credits:kid_0123456789", c, 0)
	fmt.Println("next day: balance", d.Remaining, "of", d.Limit)
	// Output:
	// allowed true left 2
	// allowed false left 2 retry after 14h0m0s
	// topped up, balance 22
	// allowed true left 17
	// next day: balance 27 of 27
}
