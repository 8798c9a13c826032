// Command http serves a small API protected by apikey's middleware on a
// loopback address (-addr, 127.0.0.1:8080 by default, as the quickstart;
// never another), logs every authentication decision with
// log/slog through the middleware's event hook, and prints curl commands to
// try it:
//
//	go run ./examples/http
//	go run ./examples/http -addr 127.0.0.1:9000
//
// The keys it prints are shown once, as a real service would show them to
// their owner; the log only ever names a key by its ID.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address, on a loopback address only (as the quickstart's -addr)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, logger); err != nil {
		logger.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func run(addr string, logger *slog.Logger) error {
	// Loopback only: this demo has no TLS, and keys must not cross a
	// network in clear text.
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: want host:port, such as 127.0.0.1:8080", addr)
	}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: this demo serves keys without TLS, so only on a loopback address such as 127.0.0.1:8080", addr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// In production the pepper comes from a secret manager; a random one
	// suits a demo whose keys live in memory.
	pepper := make([]byte, 32)
	rand.Read(pepper)
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_live"), apikey.WithPepper("demo", pepper))
	if err != nil {
		return err
	}
	defer m.Close()

	reader, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42", Name: "read-only", Scopes: []string{"orders:read"}})
	if err != nil {
		return err
	}
	writer, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42", Name: "read-write", Scopes: []string{"orders:*"}})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	fmt.Printf(`Serving on %[1]s. Keys, shown once:

  export READ_KEY=%[2]s
  export WRITE_KEY=%[3]s

Try:
  curl -i %[1]s/orders -H "Authorization: Bearer $READ_KEY"
  curl -i %[1]s/orders -H "X-API-Key: $WRITE_KEY" -X POST
  curl -i %[1]s/orders -H "Authorization: Bearer $READ_KEY" -X POST   # 403 insufficient_scope
  curl -i %[1]s/orders                                                # 401
  curl -i %[1]s/orders -H "Authorization: Bearer $READ_KEY" -H "X-API-Key: $READ_KEY"  # 400

Authentication events are logged to stderr. Ctrl-C stops.
`, url, reader.Reveal(), writer.Reveal())

	srv := &http.Server{
		Handler:           newHandler(m, logger),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler is the demo API: GET /orders needs orders:read, POST /orders
// needs orders:write, and every request goes through the middleware.
func newHandler(m *apikey.Manager, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /orders", apikey.RequireScopes("orders:read")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			caller, _ := apikey.FromContext(r.Context())
			fmt.Fprintf(w, "orders of %s\n", caller.Owner)
		})))
	mux.Handle("POST /orders", apikey.RequireScopes("orders:write")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintln(w, "order created")
		})))
	return m.Middleware(apikey.WithOnEvent(logEvent(logger)))(mux)
}

// logEvent logs each decision of the middleware: rejections at Warn,
// outages at Error. An Event never holds a key, only its ID.
func logEvent(logger *slog.Logger) func(apikey.Event) {
	return func(e apikey.Event) {
		level := slog.LevelInfo
		switch e.Outcome {
		case apikey.OutcomeAuthenticated:
		case apikey.OutcomeUnavailable:
			level = slog.LevelError
		default:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("outcome", string(e.Outcome)),
			slog.String("method", e.Method),
			slog.String("path", e.Path),
			slog.Duration("duration", e.Duration),
		}
		if e.Reason != "" {
			attrs = append(attrs, slog.String("reason", string(e.Reason)), slog.Int("status", e.Status))
		}
		if e.KeyID != "" {
			attrs = append(attrs, slog.String("kid", e.KeyID))
		}
		if e.Owner != "" {
			attrs = append(attrs, slog.String("owner", e.Owner))
		}
		if e.ClientIP.IsValid() {
			attrs = append(attrs, slog.String("client_ip", e.ClientIP.String()))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
		logger.LogAttrs(context.Background(), level, "apikey", attrs...)
	}
}
