// Command loadtest is the measuring tool of scripts/loadtest.sh. It is not
// an example. It has three modes.
//
// Serve (the default) serves one JSON handler bare and behind each chain
// of apikey's middleware, in one process, so that every phase of the load
// test differs from bare in exactly one thing. Keys live in memory and are
// written, with their classes, to the file named by -keys.
//
//	/empty  no work at all: what the client's script costs
//	/bare   the JSON handler alone
//	/auth   the middleware, authentication only (valid keys have no limits)
//	/full   the middleware with a per-key limit (Default, 10^6/s, so that
//	        valid keys are never refused) and RequireScopes
//
// Issue (-issue DSN) migrates the database DSN and issues keys into it
// with the pepper and prefix of package envconfig (APIKEY_PEPPER,
// APIKEY_PREFIX), as the quickstart reads them, writes them to -keys and
// exits. Valid keys there carry a rate limit of 10^6/s, which is never
// reached, so that a quickstart with -redis asks its Redis limiter on
// every request.
//
// Ceiling (-ceiling URL) measures the Redis limiter alone: -g goroutines
// call redislimit.Limiter.Allow on -n keys for -d, and it prints the
// decisions per second, the script calls Redis counted (INFO
// commandstats) and the CPU time Redis spent (INFO cpu), from which the
// Redis-side ceiling of one instance, decisions per CPU-second of Redis,
// follows.
//
// Keys, in serve and issue modes: -n valid keys with the scope
// orders:read; 5 limited to 10/s; 5 revoked; 2 well-formed keys nobody
// issued.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/memstore"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (serve mode)")
	keysFile := flag.String("keys", "keys.txt", "file to write the keys to, one \"class key\" per line")
	n := flag.Int("n", 1000, "number of valid keys (serve, issue); of distinct keys (ceiling)")
	issueDSN := flag.String("issue", "", "issue the keys into this database and exit")
	ceiling := flag.String("ceiling", "", "measure the Redis limiter at this redis:// URL and exit")
	goroutines := flag.Int("g", 64, "goroutines (ceiling mode)")
	duration := flag.Duration("d", 5*time.Second, "how long to measure (ceiling mode)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of serve mode to this file, until SIGINT or SIGTERM")
	flag.Parse()
	if *cpuProfile != "" {
		if err := profileUntilSignal(*cpuProfile); err != nil {
			log.Fatal(err)
		}
	}

	ctx := context.Background()
	var err error
	switch {
	case *ceiling != "":
		err = measureCeiling(ctx, *ceiling, *n, *goroutines, *duration)
	case *issueDSN != "":
		err = issueInto(ctx, *issueDSN, *keysFile, *n)
	default:
		err = serve(ctx, *addr, *keysFile, *n)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// serve issues keys into memory and serves the handler bare and behind
// each chain.
func serve(ctx context.Context, addr, keysFile string, n int) error {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("load"),
		apikey.WithPepper("v1", []byte("load test pepper, 32 bytes or more, not a secret")))
	if err != nil {
		return err
	}
	defer m.Close()
	if err := issueKeys(ctx, m, keysFile, n, apikey.Limit{}); err != nil {
		return err
	}

	type reply struct {
		OK   bool   `json:"ok"`
		Path string `json:"path"`
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(reply{OK: true, Path: r.URL.Path})
	})
	full := m.Middleware(apikey.WithLimits(apikey.Limits{Default: apikey.Limit{Rate: 1_000_000, Period: time.Second}}))
	mux := http.NewServeMux()
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/bare", handler)
	mux.Handle("/auth", m.Middleware()(handler))
	mux.Handle("/full", full(apikey.RequireScopes("orders:read")(handler)))
	return http.ListenAndServe(addr, mux)
}

// issueInto issues the keys into the database dsn, as the quickstart
// reads it.
func issueInto(ctx context.Context, dsn, keysFile string, n int) error {
	store, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	peppers, err := envconfig.Peppers()
	if err != nil {
		return err
	}
	m, err := apikey.NewManager(store, append(peppers, apikey.WithPrefix(envconfig.Prefix("")))...)
	if err != nil {
		return err
	}
	defer m.Close()
	return issueKeys(ctx, m, keysFile, n, apikey.Limit{Rate: 1_000_000, Period: time.Second})
}

// issueKeys issues n valid keys under limit, the limited and the invalid
// ones, and writes them with their classes to keysFile.
func issueKeys(ctx context.Context, m *apikey.Manager, keysFile string, n int, limit apikey.Limit) error {
	var keys strings.Builder
	issue := func(m *apikey.Manager, class string, req apikey.IssueRequest, revoke bool) (string, error) {
		sec, k, err := m.Issue(ctx, req)
		if err != nil {
			return "", err
		}
		if revoke {
			if err := m.Revoke(ctx, k.ID); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(&keys, "%s %s\n", class, sec.Reveal())
		return sec.Reveal(), nil
	}
	var first string
	for i := range n {
		key, err := issue(m, "valid", apikey.IssueRequest{Owner: fmt.Sprint("load-", i), Scopes: []string{"orders:read"}, RateLimit: limit}, false)
		if err != nil {
			return err
		}
		if i == 0 {
			first = key
		}
	}
	for i := range 5 {
		if _, err := issue(m, "limited", apikey.IssueRequest{Owner: fmt.Sprint("limited-", i), Scopes: []string{"orders:read"},
			RateLimit: apikey.Limit{Rate: 10, Period: time.Second}}, false); err != nil {
			return err
		}
	}
	for i := range 5 {
		if _, err := issue(m, "invalid", apikey.IssueRequest{Owner: fmt.Sprint("revoked-", i)}, true); err != nil {
			return err
		}
	}
	// A well-formed key nobody issued here (issued by a Manager of the same
	// prefix on a store of its own), and a typo of a valid key.
	other, err := apikey.NewManager(memstore.New(), apikey.WithPrefix(m.Prefix()),
		apikey.WithPepper("v1", []byte("another pepper, 32 bytes or more, not a secret")))
	if err != nil {
		return err
	}
	defer other.Close()
	if _, err := issue(other, "invalid", apikey.IssueRequest{Owner: "nobody"}, false); err != nil {
		return err
	}
	if n > 0 {
		typo := []byte(first)
		if typo[len(typo)-1] == 'A' {
			typo[len(typo)-1] = 'B'
		} else {
			typo[len(typo)-1] = 'A'
		}
		fmt.Fprintf(&keys, "invalid %s\n", typo)
	}
	return os.WriteFile(keysFile, []byte(keys.String()), 0o600)
}

// measureCeiling runs the Redis limiter flat out from g goroutines on n
// keys for d and prints one line of figures: decisions/s, script calls per
// decision and Redis's CPU time per decision.
func measureCeiling(ctx context.Context, url string, n, g int, d time.Duration) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	opt.PoolSize = g
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	defer client.Close()
	l, err := redislimit.NewLimiter(client, redislimit.WithPrefix("ceiling:"))
	if err != nil {
		return err
	}
	limit := apikey.Limit{Rate: 1_000_000, Period: time.Second}
	if _, err := l.Allow(ctx, "warm", limit); err != nil { // loads the script
		return err
	}
	calls0, cpu0, err := redisCounters(ctx, client)
	if err != nil {
		return err
	}
	var decisions, failures atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline); i += g {
				if _, err := l.Allow(ctx, strconv.Itoa(i%n), limit); err != nil {
					failures.Add(1)
					continue
				}
				decisions.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	calls1, cpu1, err := redisCounters(ctx, client)
	if err != nil {
		return err
	}
	if failures.Load() > 0 {
		return fmt.Errorf("%d decisions failed", failures.Load())
	}
	dec := float64(decisions.Load())
	fmt.Printf("ceiling decisions/s %.0f calls/decision %.3f redis-cpu-us/decision %.2f redis-busy %.2f goroutines %d keys %d seconds %.1f\n",
		dec/elapsed.Seconds(), float64(calls1-calls0)/dec, (cpu1-cpu0)*1e6/dec, (cpu1-cpu0)/elapsed.Seconds(), g, n, elapsed.Seconds())
	return nil
}

// redisCounters returns the script calls (EVALSHA and EVAL) Redis has
// counted and the CPU time, user and system, it has used, in seconds.
func redisCounters(ctx context.Context, client *redis.Client) (calls int64, cpu float64, err error) {
	info, err := client.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return 0, 0, err
	}
	return parseInfo(info)
}

// parseInfo reads the script calls and the CPU time from the text of
// Redis's INFO commandstats and cpu sections. It fails on a field it
// cannot read and when the text has no CPU time.
func parseInfo(info string) (calls int64, cpu float64, err error) {
	found := false
	for line := range strings.Lines(info) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			field, _, _ := strings.Cut(value, ",")
			digits, ok := strings.CutPrefix(field, "calls=")
			c, err := strconv.ParseInt(digits, 10, 64)
			if !ok || err != nil || c < 0 || calls > math.MaxInt64-c {
				return 0, 0, fmt.Errorf("INFO %s: cannot read %q as calls=N", name, field)
			}
			calls += c
		case "used_cpu_user", "used_cpu_sys":
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || !(v >= 0 && v <= math.MaxFloat64-cpu) { // not NaN, negative or an overflow
				return 0, 0, fmt.Errorf("INFO %s: cannot read %q as seconds", name, value)
			}
			cpu += v
			found = true
		}
	}
	if !found {
		return 0, 0, errors.New("INFO cpu: no used_cpu_user or used_cpu_sys")
	}
	return calls, cpu, nil
}

// profileUntilSignal starts a CPU profile into file and stops it, and the
// process, on SIGINT or SIGTERM: to find where a phase's server time goes.
func profileUntilSignal(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(0)
	}()
	return nil
}
