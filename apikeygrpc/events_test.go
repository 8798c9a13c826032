package apikeygrpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// TestOneEventPerCall makes one call of every kind the interceptor
// decides on, refusals of every code among them, and checks that each
// reports exactly one Event, with the outcome and reason it should.
func TestOneEventPerCall(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	good, gk := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	noScope, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"billing:read"}})
	revoked, rk := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	require.NoError(t, e.m.Revoke(ctx, rk.ID))
	elsewhere, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	limited, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, RateLimit: apikey.Limit{Rate: 1, Period: time.Hour}})
	_, err := e.client.UnaryCall(withMD(ctx, bearer(limited)...), &testpb.SimpleRequest{})
	require.NoError(t, err, "the limited key's one call")
	failing, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})

	unary := func(s apikey.Secret, md ...string) func() error {
		return func() error {
			if !s.IsZero() {
				md = append(md, bearer(s)...)
			}
			_, err := e.client.UnaryCall(withMD(ctx, md...), &testpb.SimpleRequest{})
			return err
		}
	}
	stream := func(s apikey.Secret) func() error {
		return func() error {
			st, err := e.client.StreamingOutputCall(withMD(ctx, bearer(s)...), &testpb.StreamingOutputCallRequest{})
			if err != nil {
				return err
			}
			for {
				if _, err := st.Recv(); err != nil {
					if status.Code(err) == codes.OK || err.Error() == "EOF" {
						return nil
					}
					return err
				}
			}
		}
	}
	for _, c := range []struct {
		name    string
		call    func() error
		code    codes.Code
		outcome apikey.Outcome
		reason  apikey.Reason
	}{
		{"authenticated", unary(good), codes.OK, apikey.OutcomeAuthenticated, ""},
		{"authenticated stream", stream(good), codes.OK, apikey.OutcomeAuthenticated, ""},
		{"no credential", unary(apikey.Secret{}), codes.Unauthenticated, apikey.OutcomeNoCredential, apikey.ReasonNoCredential},
		{"two credentials", unary(good, "x-api-key", good.Reveal()), codes.Unauthenticated, apikey.OutcomeBadRequest, apikey.ReasonTwoCredentials},
		{"malformed", unary(apikey.Secret{}, "authorization", "Bearer nonsense"), codes.Unauthenticated, apikey.OutcomeInvalidKey, apikey.ReasonMalformed},
		{"revoked", unary(revoked), codes.Unauthenticated, apikey.OutcomeInvalidKey, apikey.ReasonRevoked},
		{"missing scope", unary(noScope), codes.PermissionDenied, apikey.OutcomeForbidden, apikey.ReasonInsufficientScope},
		{"missing scope stream", stream(noScope), codes.PermissionDenied, apikey.OutcomeForbidden, apikey.ReasonInsufficientScope},
		{"IP not allowed", unary(elsewhere), codes.PermissionDenied, apikey.OutcomeForbidden, apikey.ReasonIPNotAllowed},
		{"rate limit", unary(limited), codes.ResourceExhausted, apikey.OutcomeLimited, apikey.ReasonRateLimit},
		{"store failure", func() error {
			e.store.setFailing(true)
			defer e.store.setFailing(false)
			return unary(failing)()
		}, codes.Unavailable, apikey.OutcomeUnavailable, apikey.ReasonStore},
		{"unlisted method", func() error {
			_, err := e.client.EmptyCall(withMD(ctx, bearer(good)...), &testpb.Empty{})
			return err
		}, codes.PermissionDenied, apikey.OutcomeForbidden, apikeygrpc.ReasonUnlistedMethod},
		{"unlisted method without a key", func() error {
			_, err := e.client.EmptyCall(ctx, &testpb.Empty{})
			return err
		}, codes.PermissionDenied, apikey.OutcomeForbidden, apikeygrpc.ReasonUnlistedMethod},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.events.all())
			assert.Equal(t, c.code, status.Code(c.call()))
			evs := e.events.all()[before:]
			require.Len(t, evs, 1, "exactly one Event: %+v", evs)
			assert.Equal(t, c.outcome, evs[0].Outcome)
			assert.Equal(t, c.reason, evs[0].Reason)
			if c.reason == apikeygrpc.ReasonUnlistedMethod {
				assert.Equal(t, http.StatusForbidden, evs[0].Status)
				assert.Equal(t, mEmpty, evs[0].Path)
				assert.Equal(t, http.MethodPost, evs[0].Method)
				assert.Equal(t, netip.MustParseAddr("127.0.0.1"), evs[0].ClientIP, "the peer's address, as for other calls")
				assert.Empty(t, evs[0].KeyID, "no credential is read for an unlisted method")
				assert.Empty(t, evs[0].Owner)
			}
		})
	}

	// A public method is not reported.
	before := len(e.events.all())
	_, err = healthpb.NewHealthClient(e.conn).Check(withMD(ctx, bearer(good)...), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Len(t, e.events.all(), before, "no Event for a public method")
	for _, ev := range e.events.all() {
		assertNoSecret(t, fmt.Sprintf("%+v", ev), good)
	}
	assert.Equal(t, gk.ID, e.events.all()[1].KeyID, "the first authenticated call's kid")
}

func TestOnRefusalUnlisted(t *testing.T) {
	var mu sync.Mutex
	var got []*apikey.AuthError
	e := newEnv(t, envConfig{grpcOpts: []apikeygrpc.Option{apikeygrpc.WithOnRefusal(func(_ context.Context, ae *apikey.AuthError) {
		mu.Lock()
		got = append(got, ae)
		mu.Unlock()
	})}})
	_, err := e.client.EmptyCall(context.Background(), &testpb.Empty{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	assert.Equal(t, apikeygrpc.ReasonUnlistedMethod, got[0].Reason)
	assert.Equal(t, http.StatusForbidden, got[0].Status)
	assert.Equal(t, "method not open to API keys", got[0].Description)
}

func TestWithOnEventNil(t *testing.T) {
	e := newEnv(t, envConfig{})
	_, err := apikeygrpc.NewInterceptor(e.m, nil, apikeygrpc.WithOnEvent(nil))
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
}
