// Package redislimit is an apikey.Limiter, an apikey.Counter and an
// apikey.Ledger on Redis, for services that run on more than one machine:
// every instance that shares a Redis shares the limits, quotas and credit
// balances.
//
// Each decision is one Lua script run with EVALSHA (go-redis falls back to
// EVAL, once, when Redis does not have the script yet): one round trip.
// Scripts read Redis's own clock (TIME), so the application servers'
// clocks do not matter; this needs effects replication, the default since
// Redis 5 and the only mode since Redis 7. Each script touches a single
// key, so it works on Redis Cluster as is.
//
// The Limiter makes exactly the decisions of memlimit.Limiter (GCRA, the
// semantics of golang.org/x/time/rate) given the times Redis reads. Its
// keys hold the key's theoretical arrival time and expire on their own
// once the bucket is full again. The Counter keeps fixed windows aligned
// to the Unix epoch, like memlimit.Counter, or calendar months starting on
// Quota.Day; its keys expire when their window ends. The Ledger's
// balances do not expire (they hold top-ups).
//
// When Redis cannot be reached, Allow and Add return an error wrapping
// apikey.ErrUnavailable (and the underlying error). Bound how long that
// takes with the client's options: DialTimeout, ReadTimeout, MaxRetries.
package redislimit

import (
	"errors"
	"fmt"

	"github.com/apikeykit/apikey"
	"github.com/redis/go-redis/v9"
)

// Default key prefixes.
const (
	DefaultLimiterPrefix = "apikey:rl:"
	DefaultCounterPrefix = "apikey:quota:"
)

// checkClient refuses a client that NewLimiter and NewCounter cannot use.
func checkClient(client redis.UniversalClient) error {
	if client == nil {
		return fmt.Errorf("%w: redislimit: nil Redis client", apikey.ErrInvalidRequest)
	}
	if ignoresDeadlines(client) {
		return fmt.Errorf("%w: redislimit: the Redis client ignores request deadlines, so a slow Redis "+
			"would hold every request for the client's read timeout: set ContextTimeoutEnabled: true in its options",
			apikey.ErrInvalidRequest)
	}
	return nil
}

// ignoresDeadlines reports whether client is a go-redis client that waits
// on the network for its own timeouts only, whatever the context's
// deadline: go-redis's default (ContextTimeoutEnabled false). A limiter
// sits in the path of every request, so it must give up when the request
// does.
func ignoresDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return !c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return !c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return !c.Options().ContextTimeoutEnabled
	}
	return false
}

// unavailable wraps a Redis failure so that it matches both
// apikey.ErrUnavailable and the underlying error (a context's error, a
// net.Error).
func unavailable(err error) error {
	if errors.Is(err, apikey.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: redislimit: %w", apikey.ErrUnavailable, err)
}
