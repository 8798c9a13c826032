package apikeyotel_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeyotel"
	"github.com/apikeykit/apikey/memstore"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func ExampleAdapter_MiddlewareOptions() {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v1", []byte("example-pepper-0123456789abcdef0")))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	reader := sdkmetric.NewManualReader() // or a Prometheus or OTLP exporter
	metrics, err := apikeyotel.New(m, apikeyotel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		log.Fatal(err)
	}
	defer metrics.Close()
	auth := m.Middleware(metrics.MiddlewareOptions()...)
	h := auth(apikeyotel.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))

	// Three requests without a key.
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if sum, ok := mt.Data.(metricdata.Sum[int64]); ok && mt.Name == apikeyotel.MetricVerifications {
				for _, p := range sum.DataPoints {
					outcome, _ := p.Attributes.Value(apikeyotel.KeyOutcome)
					fmt.Println(mt.Name, outcome.AsString(), p.Value)
				}
			}
		}
	}
	// Output:
	// apikey.verifications no_credential 3
}
