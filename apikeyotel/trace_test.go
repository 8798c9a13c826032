package apikeyotel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeyotel"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestSpans(t *testing.T) {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")

	auth := m.Middleware(apikey.WithErrorHandler(apikeyotel.ErrorHandler(nil)))
	app := auth(apikeyotel.Handler(apikey.RequireScopes("orders:read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))))
	// A span around the request, as otelhttp starts one.
	traced := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), r.URL.Path)
		defer span.End()
		app.ServeHTTP(w, r.WithContext(ctx))
	})

	good, k := must2(m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Scopes: []string{"orders:read"}}))
	noScope, k2 := must2(m.Issue(ctx, apikey.IssueRequest{Owner: "acme"}))
	revoked, k3 := must2(m.Issue(ctx, apikey.IssueRequest{Owner: "acme"}))
	require.NoError(t, m.Revoke(ctx, k3.ID))

	for _, tc := range []struct {
		path   string
		secret apikey.Secret
		status int
		event  string
		attrs  map[attribute.Key]any
	}{
		{"/good", good, 200, apikeyotel.EventAuthenticated, map[attribute.Key]any{
			apikeyotel.KeyKeyID: k.ID, apikeyotel.KeyOwner: "acme", apikeyotel.KeyOutcome: "authenticated"}},
		{"/scope", noScope, 403, apikeyotel.EventRefused, map[attribute.Key]any{
			apikeyotel.KeyKeyID: k2.ID, apikeyotel.KeyOwner: "acme", apikeyotel.KeyOutcome: "forbidden",
			apikeyotel.KeyReason: "insufficient_scope", apikeyotel.KeyStatus: int64(403)}},
		{"/revoked", revoked, 401, apikeyotel.EventRefused, map[attribute.Key]any{
			apikeyotel.KeyKeyID: k3.ID, apikeyotel.KeyOutcome: "invalid_key", apikeyotel.KeyReason: "revoked"}},
		{"/none", apikey.Secret{}, 401, apikeyotel.EventRefused, map[attribute.Key]any{
			apikeyotel.KeyOutcome: "no_credential", apikeyotel.KeyReason: "no_credential"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.path, nil)
			if !tc.secret.IsZero() {
				r.Header.Set("Authorization", "Bearer "+tc.secret.Reveal())
			}
			w := httptest.NewRecorder()
			traced.ServeHTTP(w, r)
			assert.Equal(t, tc.status, w.Code)

			spans := rec.Ended()
			span := spans[len(spans)-1]
			require.Equal(t, tc.path, span.Name())
			got := map[attribute.Key]any{}
			for _, kv := range span.Attributes() {
				got[kv.Key] = kv.Value.AsInterface()
			}
			for key, want := range tc.attrs {
				assert.Equal(t, want, got[key], "%s", key)
			}
			var names []string
			for _, ev := range span.Events() {
				names = append(names, ev.Name)
			}
			assert.Contains(t, names, tc.event)
			if !tc.secret.IsZero() {
				text := fmt.Sprintf("%+v %+v %s", span.Attributes(), span.Events(), span.Status())
				assert.NotContains(t, text, tc.secret.Reveal()[len(tc.secret.Reveal())-49:])
				require.NoError(t, apikey.Scan(strings.NewReader(text), func(f apikey.Finding) error {
					t.Errorf("a key in the span: %s", f.ID)
					return nil
				}))
			}
		})
	}
}

func TestSpansNotRecording(t *testing.T) {
	// Without a span, nothing happens and nothing fails.
	r := httptest.NewRequest("GET", "/", nil)
	apikeyotel.AnnotateKey(r.Context())
	apikeyotel.AnnotateRefusal(r.Context(), &apikey.AuthError{Status: 401})
	apikeyotel.AnnotateRefusal(r.Context(), nil)
	w := httptest.NewRecorder()
	apikeyotel.ErrorHandler(nil)(w, r, &apikey.AuthError{Status: 401, Description: "an API key is required"})
	assert.Equal(t, 401, w.Code, "WriteProblem by default")
}
