// Command quickstart is a small API protected by apikey: the README's
// first command.
//
//	go run ./examples/quickstart
//
// It keeps keys in a SQLite file (quickstart.db, created and migrated on
// first run), issues a demo key on first start and prints it once with
// curl lines to try, and serves on 127.0.0.1:8080:
//
//	GET  /v1/whoami   any valid key: the caller's kid, owner, name and scopes
//	GET  /v1/orders   needs scope orders:read
//	POST /v1/orders   needs scope orders:write
//	GET  /healthz     no key needed
//	GET  /portal/     the self-service portal, behind a DEMO-ONLY sign-in at /signin
//
// A client that sends 10 invalid keys within a minute is refused with 429
// until its allowance refills, one more attempt every 6 seconds
// (-failed-auth, apikey.Limits.FailedAuth), so guessing keys is slow.
//
// With -db postgres://… and -redis redis://…, several instances on
// different ports behave as one service: limits and quotas (and the
// failed-authentication limit) are shared, and a revocation reaches every
// instance within a second. -redis-lease decides rate limits locally from
// shares leased from Redis instead of asking Redis on every request. It reads
// APIKEY_DB, APIKEY_PEPPER and APIKEY_PREFIX with package envconfig,
// exactly as the apikey command does (flags win), so keys made with the
// command work here.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/redis/go-redis/v9"
)

// demoOwner owns the key the quickstart issues on first start.
const demoOwner = "quickstart-demo"

func main() {
	if err := run(); err != nil {
		// An error may quote a -db or -redis URL, password and all.
		fmt.Fprintln(os.Stderr, "quickstart:", redactDSN(err.Error()))
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	dbFlag := flag.String("db", "", "database DSN: sqlite:PATH, or a postgres:// or mysql:// URL (default $APIKEY_DB, else sqlite:quickstart.db)")
	redisURL := flag.String("redis", "", "redis:// URL: keep rate limits, quotas and credit balances in Redis, shared by every instance (without it, credit balances are in the database)")
	redisLease := flag.Bool("redis-lease", false, "with -redis: decide rate limits locally from shares leased from Redis (redislimit.LeaseLimiter: no round trip per request, a bounded overshoot) instead of one Redis call per request")
	cacheTTL := flag.Duration("cache-ttl", apikey.DefaultCacheTTL, "how long a verified key is cached")
	proxies := flag.String("trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted")
	failedAuth := flag.String("failed-auth", defaultFailedAuth, "how many invalid keys a client may send, as a rate limit (e.g. 10/m, 100/h,burst=20); off to turn the limit off")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	dsn, err := envconfig.DSN(*dbFlag)
	if errors.Is(err, envconfig.ErrNoDB) {
		dsn = "sqlite:quickstart.db"
	}
	if *redisLease && *redisURL == "" {
		return errors.New("-redis-lease needs -redis")
	}
	trusted, err := parsePrefixes(*proxies)
	if err != nil {
		return fmt.Errorf("-trusted-proxies: %w", err)
	}
	var failedAuthLimit apikey.Limit
	if *failedAuth != "off" {
		if failedAuthLimit, err = apikey.ParseLimit(*failedAuth); err != nil {
			return fmt.Errorf("-failed-auth: %w", err)
		}
	}

	store, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil { // safe from every instance at once
		return err
	}
	pepperOpts, err := envconfig.Peppers()
	if errors.Is(err, envconfig.ErrNoPepper) {
		fmt.Fprintln(os.Stderr, envconfig.DevPepperWarning)
		pepperOpts, err = []apikey.Option{envconfig.DevPepper()}, nil
	}
	if err != nil {
		return err
	}
	m, err := apikey.NewManager(store, append(pepperOpts,
		apikey.WithPrefix(envconfig.Prefix("")),
		apikey.WithCache(apikey.DefaultCacheSize, *cacheTTL),
	)...)
	if err != nil {
		return err
	}
	defer m.Close() // flushes last-used times

	limits, closeLimits, err := sharedLimits(ctx, store, *redisURL, *redisLease)
	if err != nil {
		return err
	}
	defer closeLimits()
	limits.FailedAuth = failedAuthLimit

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if err := issueDemoKey(ctx, m, "http://"+ln.Addr().String(), dsn); err != nil {
		ln.Close()
		return err
	}

	authenticated := m.Middleware(
		apikey.WithLimits(limits),
		apikey.WithTrustedProxies(trusted...),
		apikey.WithOnEvent(func(e apikey.Event) { logEvent(log, e) }),
	)
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/whoami", whoami)
	orders := &orderBook{}
	api.Handle("GET /v1/orders", apikey.RequireScopes("orders:read")(http.HandlerFunc(orders.list)))
	api.Handle("POST /v1/orders", apikey.RequireScopes("orders:write")(http.HandlerFunc(orders.create)))

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	root.Handle("/v1/", authenticated(api))
	if err := mountPortal(root, m, trusted); err != nil { // the self-service portal, behind a DEMO-ONLY sign-in
		return err
	}

	srv := &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s (database %s); the key portal is at http://%s/portal/; Ctrl-C stops\n", ln.Addr(), redactDSN(dsn), ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Fprintln(os.Stderr, "shutting down")
	return srv.Shutdown(shutdownCtx)
}

// defaultFailedAuth is the quickstart's failed-authentication limit: 10
// invalid keys per client a minute, in a burst or spread out. A client
// over it gets 429 for every request, with or without a valid key, until
// its allowance refills. A real service behind a load balancer also sets
// -trusted-proxies, or every client shares the balancer's address.
const defaultFailedAuth = "10/m"

// sharedLimits returns where keys' rate limits, quotas and credits are
// counted. Without redisURL, rate limits are in this process's memory (the
// Manager's own limiter) and credit balances in the database (store's
// Ledger), where `apikey credits` reads and tops them up and where they
// outlive a restart; quotas stay in memory. With redisURL, all three are
// on that Redis, so that every instance shares them (`apikey credits
// --redis`). With lease, rate limits are decided locally from shares of
// each bucket leased from that Redis.
func sharedLimits(ctx context.Context, store *sqlstore.Store, redisURL string, lease bool) (apikey.Limits, func(), error) {
	if redisURL == "" {
		return apikey.Limits{Ledger: store.Ledger()}, func() {}, nil
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return apikey.Limits{}, nil, fmt.Errorf("-redis: %w", err)
	}
	opt.ContextTimeoutEnabled = true // a slow Redis must not outlast a request's deadline
	client := redis.NewClient(opt)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return apikey.Limits{}, nil, fmt.Errorf("-redis: %w", err)
	}
	var limiter apikey.Limiter
	closeAll := func() { client.Close() }
	if lease {
		l, err := redislimit.NewLeaseLimiter(client)
		if err != nil {
			client.Close()
			return apikey.Limits{}, nil, err
		}
		limiter, closeAll = l, func() { l.Close(); client.Close() }
	} else {
		l, err := redislimit.NewLimiter(client)
		if err != nil {
			client.Close()
			return apikey.Limits{}, nil, err
		}
		limiter = l
	}
	c, err := redislimit.NewCounter(client)
	if err != nil {
		closeAll()
		return apikey.Limits{}, nil, err
	}
	ledger, err := redislimit.NewLedger(client)
	if err != nil {
		closeAll()
		return apikey.Limits{}, nil, err
	}
	return apikey.Limits{Limiter: limiter, Counter: c, Ledger: ledger}, closeAll, nil
}

// issueDemoKey issues the demo key if the database has none, and prints it
// once with curl lines to try.
func issueDemoKey(ctx context.Context, m *apikey.Manager, base, dsn string) error {
	existing, _, err := m.List(ctx, apikey.ListOptions{Owner: demoOwner, Limit: 1})
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		shown := redactDSN(dsn)
		note := ""
		if shown != dsn {
			note = " (with the passwords that are not shown here)"
		}
		fmt.Fprintf(os.Stderr, "The demo key (%s) was issued and shown at first start. Make another with%s:\n"+
			"  go run ./cmd/apikey create --db '%s' --owner you --scopes orders:read,orders:write\n\n", existing[0].ID, note, shown)
		return nil
	}
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{
		Owner:     demoOwner,
		Name:      "quickstart demo key",
		Scopes:    []string{"orders:read"},
		RateLimit: apikey.Limit{Rate: 5, Period: time.Second, Burst: 5},
	})
	if err != nil {
		return err
	}
	key := secret.Reveal()
	fmt.Printf("Issued a demo key (id %s, scopes orders:read, 5 requests/s). It is shown only now:\n\n  %s\n\n", k.ID, key)
	fmt.Printf("Try it:\n")
	fmt.Printf("  curl -s -H 'Authorization: Bearer %s' %s/v1/whoami\n", key, base)
	fmt.Printf("  curl -s -H 'X-API-Key: %s' %s/v1/orders\n", key, base)
	fmt.Printf("  curl -s -X POST -H 'Authorization: Bearer %s' -d '{\"item\":\"tea\"}' %s/v1/orders   # 403: no orders:write\n", key, base)
	fmt.Printf("  curl -si %s/v1/whoami                                   # 401: no key\n\n", base)
	fmt.Printf("Manage keys in the browser: %s/portal/ (DEMO ONLY sign-in: any name is believed)\n\n", base)
	return nil
}

func whoami(w http.ResponseWriter, r *http.Request) {
	k, _ := apikey.FromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"kid": k.ID, "owner": k.Owner, "name": k.Name, "scopes": k.Scopes})
}

type order struct {
	ID    int    `json:"id"`
	Item  string `json:"item"`
	Owner string `json:"owner"`
}

// orderBook is a toy in-memory resource, kept per owner.
type orderBook struct {
	mu     sync.Mutex
	orders []order
}

func (b *orderBook) list(w http.ResponseWriter, r *http.Request) {
	k, _ := apikey.FromContext(r.Context())
	b.mu.Lock()
	mine := []order{}
	for _, o := range b.orders {
		if o.Owner == k.Owner {
			mine = append(mine, o)
		}
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, mine)
}

func (b *orderBook) create(w http.ResponseWriter, r *http.Request) {
	k, _ := apikey.FromContext(r.Context())
	var in struct {
		Item string `json:"item"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || in.Item == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want a JSON body like {"item":"tea"}`})
		return
	}
	b.mu.Lock()
	o := order{ID: len(b.orders) + 1, Item: in.Item, Owner: k.Owner}
	b.orders = append(b.orders, o)
	b.mu.Unlock()
	writeJSON(w, http.StatusCreated, o)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// logEvent logs refused requests (successful ones at debug level, which
// the default handler drops). Events never carry a secret.
func logEvent(log *slog.Logger, e apikey.Event) {
	level := slog.LevelWarn
	if e.Outcome == apikey.OutcomeAuthenticated {
		level = slog.LevelDebug
	}
	log.LogAttrs(context.Background(), level, "auth",
		slog.String("outcome", string(e.Outcome)), slog.String("reason", string(e.Reason)),
		slog.Int("status", e.Status), slog.String("kid", e.KeyID), slog.String("owner", e.Owner),
		slog.String("client", e.ClientIP.String()), slog.String("path", e.Path), slog.Duration("took", e.Duration))
}

func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// redactDSN hides the passwords in s, a DSN or a message quoting one,
// before it is printed: the password in a URL's user information
// (postgres://user:***@host/db) and the values of parameters whose name
// says they hold a secret (password=***, sslpassword=***, and any other
// name containing pass, pwd, secret or token), in a URL's query or in a
// key=value DSN.
func redactDSN(s string) string {
	s = userPassword.ReplaceAllString(s, "${1}***@")
	return secretParam.ReplaceAllString(s, "${1}***")
}

var (
	userPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^/\s]*@`)
	secretParam  = regexp.MustCompile(`(?i)\b([a-z_]*(?:pass|pwd|secret|token)[a-z_]*=)('[^']*'|[^&\s'"]*)`)
)
