package redislimit_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/redis/go-redis/v9"
)

// Every instance of a service that shares the Redis shares the limits.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:6379",
		// Bound how long a decision waits when Redis is down or slow,
		// and let it end with the request (NewLimiter requires this).
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	limiter, err := redislimit.NewLimiter(client)
	if err != nil {
		log.Fatal(err)
	}
	limit, _ := apikey.ParseLimit("100/s")
	d, err := limiter.Allow(context.Background(), "kid_0123456789", limit)
	if err != nil {
		// errors.Is(err, apikey.ErrUnavailable): answer 503, not 429.
		log.Print(err)
		return
	}
	if !d.Allowed {
		fmt.Println("429, retry after", d.RetryAfter)
	}
}

// One WithPrefix configures a Limiter and a Counter alike, so that two
// applications sharing a Redis keep apart.
func ExampleWithPrefix() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	limiter, err := redislimit.NewLimiter(client, redislimit.WithPrefix("billing:rl:"))
	if err != nil {
		log.Fatal(err)
	}
	quotas, err := redislimit.NewCounter(client, redislimit.WithPrefix("billing:quota:"))
	if err != nil {
		log.Fatal(err)
	}
	_, _ = limiter, quotas
}

// A LeaseLimiter decides locally from shares of each bucket leased from
// Redis: with a sync interval of 100ms and the default advance of one
// request, a fleet of N instances allows at most
// ceil(100ms / (Period/Rate)) + N requests per key beyond the limit,
// 10 + N for 100/s.
func ExampleNewLeaseLimiter() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	limiter, err := redislimit.NewLeaseLimiter(client, redislimit.WithSyncInterval(100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer limiter.Close()
	limit, _ := apikey.ParseLimit("100/s")
	d, err := limiter.Allow(context.Background(), "kid_0123456789", limit)
	if err != nil {
		// Redis is down and this instance's share of the bucket is
		// spent: answer 503, not 429.
		log.Print(err)
		return
	}
	if !d.Allowed {
		fmt.Println("429, retry after", d.RetryAfter)
	}
}

// Credit balances on Redis, shared by every instance: the middleware
// spends from them (apikey.Limits.Ledger), and a billing handler tops them
// up when a customer pays.
func ExampleNewLedger() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	ledger, err := redislimit.NewLedger(client)
	if err != nil {
		log.Fatal(err)
	}
	policy, _ := apikey.ParseCredits("100000/month@15")
	balance, err := ledger.TopUp(context.Background(), apikey.OwnerCreditsKey("team-42"), policy, 5000)
	if err != nil {
		// apikey.ErrInvalidRequest: the balance would pass
		// apikey.MaxCredits; apikey.ErrUnavailable: Redis did not answer.
		log.Print(err)
		return
	}
	fmt.Println("balance:", balance)
}
