// Command prometheus serves a small API protected by apikey and exports
// the apikeyotel metrics at /metrics through OpenTelemetry's Prometheus
// exporter.
//
//	go run ./example/prometheus -addr 127.0.0.1:8080   (from apikeyotel/)
//
// It reads APIKEY_DB (a SQLite file by default), APIKEY_PEPPER and
// APIKEY_PREFIX with package envconfig, as the apikey command does, so
// keys made with "apikey create" work here:
//
//	GET /v1/whoami   any valid key: the caller's kid and owner
//	GET /v1/orders   needs scope orders:read
//	GET /metrics     no key: apikey_verifications_total and the rest
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeyotel"
	"github.com/apikeykit/apikey/envconfig"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	db := flag.String("db", "", "database DSN (default $APIKEY_DB, else sqlite:quickstart.db)")
	flag.Parse()
	ctx := context.Background()

	dsn, err := envconfig.DSN(*db)
	if errors.Is(err, envconfig.ErrNoDB) {
		dsn, err = "sqlite:quickstart.db", nil
	}
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlopen.Open(ctx, dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	peppers, err := envconfig.Peppers()
	if errors.Is(err, envconfig.ErrNoPepper) {
		fmt.Fprintln(os.Stderr, envconfig.DevPepperWarning)
		peppers, err = []apikey.Option{envconfig.DevPepper()}, nil
	}
	if err != nil {
		log.Fatal(err)
	}
	m, err := apikey.NewManager(store, append(peppers, apikey.WithPrefix(envconfig.Prefix("")))...)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	handler, shutdown, err := newServer(m, prometheus.NewRegistry())
	if err != nil {
		log.Fatal(err)
	}
	defer shutdown(ctx)
	log.Printf("serving on http://%s (metrics at /metrics)", *addr)
	log.Fatal(http.ListenAndServe(*addr, handler))
}

// newServer returns the API and /metrics, with the metrics registered in
// reg, and a function that shuts the meter provider down.
func newServer(m *apikey.Manager, reg *prometheus.Registry) (http.Handler, func(context.Context) error, error) {
	// The Producer carries the latency histogram, which the adapter
	// aggregates itself so that a request costs it only atomic adds.
	producer := apikeyotel.NewProducer()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithProducer(producer))
	if err != nil {
		return nil, nil, err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	metrics, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(provider), apikeyotel.WithProducer(producer))
	if err != nil {
		return nil, nil, err
	}
	auth := m.Middleware(metrics.MiddlewareOptions()...)

	api := http.NewServeMux()
	api.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "%s %s\n", k.ID, k.Owner)
	})
	api.Handle("GET /v1/orders", apikey.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "[]")
	})))

	mux := http.NewServeMux()
	mux.Handle("/v1/", auth(apikeyotel.Handler(api)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, func(ctx context.Context) error {
		return errors.Join(metrics.Close(), provider.Shutdown(ctx))
	}, nil
}
