package apikeygrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// withKey returns ctx with raw metadata pairs, sent as they are.
func withMD(ctx context.Context, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func bearer(s apikey.Secret) []string { return []string{"authorization", "Bearer " + s.Reveal()} }

func TestUnaryAuthenticates(t *testing.T) {
	e := newEnv(t, envConfig{})
	secret, k := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		md   []string
	}{
		{"bearer", bearer(secret)},
		{"bearer scheme in any case", []string{"authorization", "bEaReR " + secret.Reveal()}},
		{"x-api-key", []string{"x-api-key", secret.Reveal()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.UnaryCall(withMD(ctx, tc.md...), &testpb.SimpleRequest{})
			require.NoError(t, err)
			assert.Equal(t, k.ID+"/acme", resp.Username, "apikey.FromContext in the handler")
		})
	}

	// A method mapped to "" takes any valid key.
	other, k2 := e.issue(t, apikey.IssueRequest{})
	resp, err := e.client.CacheableUnaryCall(withMD(ctx, bearer(other)...), &testpb.SimpleRequest{})
	require.NoError(t, err)
	assert.Equal(t, k2.ID+"/acme", resp.Username)

	// One event per call, with the method as its path.
	evs := e.events.all()
	require.Len(t, evs, 4)
	for _, ev := range evs {
		assert.Equal(t, apikey.OutcomeAuthenticated, ev.Outcome)
		assert.Equal(t, "POST", ev.Method)
		assert.Contains(t, []string{mUnary, mCacheable}, ev.Path)
		assert.Equal(t, netip.MustParseAddr("127.0.0.1"), ev.ClientIP, "the peer's address")
	}
}

// refusal is what a test expects of a refused call.
type refusal struct {
	code  codes.Code
	msg   string
	retry bool // RetryInfo in the details, retry-after in the trailer
}

func checkRefusal(t *testing.T, err error, trailer metadata.MD, want refusal, secret apikey.Secret) {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "a status error: %v", err)
	assert.Equal(t, want.code, st.Code(), "code (%s)", st.Message())
	assert.Equal(t, want.msg, st.Message())
	assertNoSecret(t, st.Message(), secret)
	assertNoSecret(t, fmt.Sprint(st.Proto()), secret)
	assertNoSecret(t, fmt.Sprint(trailer), secret)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if want.retry {
		require.NotNil(t, retry, "RetryInfo in the status details")
		assert.Positive(t, retry.RetryDelay.AsDuration())
		require.Len(t, trailer["retry-after"], 1)
	} else {
		assert.Nil(t, retry)
		assert.Empty(t, trailer["retry-after"])
	}
}

func TestUnaryRefusals(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	good, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	noScope, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"billing:read"}})
	revoked, rk := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	require.NoError(t, e.m.Revoke(ctx, rk.ID))
	expired, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, ExpiresAt: time.Now().Add(time.Millisecond)})
	suspended, sk := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	require.NoError(t, e.m.Suspend(ctx, sk.ID))
	elsewhere, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	time.Sleep(5 * time.Millisecond) // expired expires

	// A key of the right shape whose secret is wrong.
	// The changed character stays base62 (flipping a bit of 'Z' would give
	// '[', which is no token68, and the refusal a malformed header).
	wrong := []byte(good.Reveal())
	if i := len(wrong) - 10; wrong[i] == 'A' {
		wrong[i] = 'B'
	} else {
		wrong[i] = 'A'
	}
	forged := apikey.NewSecret(string(wrong))

	for _, tc := range []struct {
		name   string
		method string
		md     []string
		secret apikey.Secret
		want   refusal
	}{
		{"no credential", mUnary, nil, apikey.Secret{}, refusal{codes.Unauthenticated, "an API key is required", false}},
		{"other scheme", mUnary, []string{"authorization", "Basic dXNlcjpwYXNz"}, apikey.Secret{}, refusal{codes.Unauthenticated, "an API key is required", false}},
		{"garbage", mUnary, []string{"authorization", "Bearer nonsense"}, apikey.Secret{}, refusal{codes.Unauthenticated, "invalid API key", false}},
		{"wrong secret", mUnary, bearer(forged), forged, refusal{codes.Unauthenticated, "invalid API key", false}},
		{"revoked", mUnary, bearer(revoked), revoked, refusal{codes.Unauthenticated, "API key revoked", false}},
		{"expired", mUnary, bearer(expired), expired, refusal{codes.Unauthenticated, "API key expired", false}},
		{"suspended", mUnary, bearer(suspended), suspended, refusal{codes.Unauthenticated, "API key suspended", false}},
		{"two credentials", mUnary, append(bearer(good), "x-api-key", good.Reveal()), good, refusal{codes.Unauthenticated, "more than one API key in the request", false}},
		{"two authorization values", mUnary, append(bearer(good), bearer(good)...), good, refusal{codes.Unauthenticated, "more than one API key in the request", false}},
		{"malformed bearer", mUnary, []string{"authorization", "Bearer  two  spaces"}, apikey.Secret{}, refusal{codes.Unauthenticated, "malformed Authorization header", false}},
		{"missing scope", mUnary, bearer(noScope), noScope, refusal{codes.PermissionDenied, "the API key lacks a required scope: orders:read", false}},
		{"IP not allowed", mUnary, bearer(elsewhere), elsewhere, refusal{codes.PermissionDenied, "client address not allowed for this API key", false}},
		{"method not in the map", mEmpty, bearer(good), good, refusal{codes.PermissionDenied, "method not open to API keys", false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var trailer metadata.MD
			var err error
			if tc.method == mEmpty {
				_, err = e.client.EmptyCall(withMD(ctx, tc.md...), &testpb.Empty{}, grpc.Trailer(&trailer))
			} else {
				_, err = e.client.UnaryCall(withMD(ctx, tc.md...), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
			}
			checkRefusal(t, err, trailer, tc.want, tc.secret)
		})
	}

	t.Run("challenge in the trailer", func(t *testing.T) {
		var trailer metadata.MD
		_, err := e.client.UnaryCall(withMD(ctx, bearer(revoked)...), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
		require.Error(t, err)
		assert.Equal(t, []string{`Bearer realm="api", error="invalid_token", error_description="API key revoked"`}, trailer["www-authenticate"])
	})

	// Every refusal was reported, and no event holds the key.
	for _, ev := range e.events.all() {
		assert.NotEqual(t, apikey.OutcomeAuthenticated, ev.Outcome)
		assertNoSecret(t, fmt.Sprintf("%+v", ev), good)
	}
}

func TestRateLimitAndQuota(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	limited, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, RateLimit: apikey.Limit{Rate: 2, Period: time.Hour}})
	quota, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, Quota: apikey.Quota{Limit: 1, Period: time.Hour}})

	var header metadata.MD
	_, err := e.client.UnaryCall(withMD(ctx, bearer(limited)...), &testpb.SimpleRequest{}, grpc.Header(&header))
	require.NoError(t, err)
	assert.Equal(t, []string{`"key";q=2;w=3600`}, header["ratelimit-policy"], "the RateLimit fields in the header metadata")
	assert.Len(t, header["ratelimit"], 1)
	_, err = e.client.UnaryCall(withMD(ctx, bearer(limited)...), &testpb.SimpleRequest{})
	require.NoError(t, err)

	var trailer metadata.MD
	_, err = e.client.UnaryCall(withMD(ctx, bearer(limited)...), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	checkRefusal(t, err, trailer, refusal{codes.ResourceExhausted, "rate limit exceeded", true}, limited)
	assert.Len(t, trailer["ratelimit"], 1)
	st, _ := status.FromError(err)
	delay := st.Details()[0].(*errdetails.RetryInfo).RetryDelay.AsDuration()
	assert.InDelta(t, 30*time.Minute, delay, float64(time.Minute), "half an hour until the next of 2 per hour")

	_, err = e.client.UnaryCall(withMD(ctx, bearer(quota)...), &testpb.SimpleRequest{})
	require.NoError(t, err)
	trailer = nil
	_, err = e.client.UnaryCall(withMD(ctx, bearer(quota)...), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	checkRefusal(t, err, trailer, refusal{codes.ResourceExhausted, "quota exhausted", true}, quota)
}

func TestScopeRefusalCostsNoQuota(t *testing.T) {
	// apikey.Require behind the middleware gives back the quota a call
	// refused for its scopes was charged, as over HTTP.
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	s, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, Quota: apikey.Quota{Limit: 1, Period: time.Hour}})
	// One stream at a time, each refused before the next opens: a stream
	// in flight holds its charge until its refusal gives it back.
	for range 4 {
		stream, err := e.client.FullDuplexCall(withMD(ctx, bearer(s)...))
		require.NoError(t, err) // a stream opens lazily; the refusal comes on Recv
		_, err = stream.Recv()
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "orders:write is missing")
	}
	resp, err := e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{})
	require.NoError(t, err, "the refused calls cost no quota")
	assert.NotEqual(t, "none", resp.Username)
	_, err = e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{})
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "the quota of 1 is used now")
}

func TestStoreFailureIsUnavailable(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	s, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	e.store.setFailing(true)
	var trailer metadata.MD
	_, err := e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	checkRefusal(t, err, trailer, refusal{codes.Unavailable, "service temporarily unavailable", true}, s)

	stream, err := e.client.StreamingOutputCall(withMD(ctx, bearer(s)...), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), "a stream fails closed too")

	evs := e.events.all()
	require.Len(t, evs, 2)
	assert.Equal(t, apikey.ReasonStore, evs[0].Reason)
	assert.ErrorContains(t, evs[0].Err, "connection refused", "the operator sees the cause; the client does not")
	assert.NotContains(t, status.Convert(err).Message(), "connection refused")

	e.store.setFailing(false)
	_, err = e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{})
	require.NoError(t, err, "recovered")
}

func TestStreams(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	reader, k := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	writer, kw := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:*"}})

	t.Run("server streaming", func(t *testing.T) {
		stream, err := e.client.StreamingOutputCall(withMD(ctx, bearer(reader)...), &testpb.StreamingOutputCallRequest{
			ResponseParameters: make([]*testpb.ResponseParameters, 3)})
		require.NoError(t, err)
		for range 3 {
			resp, err := stream.Recv()
			require.NoError(t, err)
			assert.Equal(t, k.ID+"/acme", string(resp.Payload.Body), "FromContext(stream.Context())")
		}
		_, err = stream.Recv()
		assert.Equal(t, io.EOF, err)
	})
	t.Run("client streaming", func(t *testing.T) {
		stream, err := e.client.StreamingInputCall(withMD(ctx, bearer(writer)...))
		require.NoError(t, err)
		for range 4 {
			require.NoError(t, stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("ab")}}))
		}
		resp, err := stream.CloseAndRecv()
		require.NoError(t, err)
		assert.EqualValues(t, 8, resp.AggregatedPayloadSize)
	})
	t.Run("bidi", func(t *testing.T) {
		stream, err := e.client.FullDuplexCall(withMD(ctx, bearer(writer)...))
		require.NoError(t, err)
		for range 3 {
			require.NoError(t, stream.Send(&testpb.StreamingOutputCallRequest{}))
			resp, err := stream.Recv()
			require.NoError(t, err)
			assert.Equal(t, kw.ID+"/acme", string(resp.Payload.Body))
		}
		require.NoError(t, stream.CloseSend())
		_, err = stream.Recv()
		assert.Equal(t, io.EOF, err)
	})
	for _, tc := range []struct {
		name string
		md   []string
		want refusal
	}{
		{"no credential", nil, refusal{codes.Unauthenticated, "an API key is required", false}},
		{"missing scope", bearer(reader), refusal{codes.PermissionDenied, "the API key lacks a required scope: orders:write", false}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			stream, err := e.client.StreamingInputCall(withMD(ctx, tc.md...))
			require.NoError(t, err)
			_, err = stream.CloseAndRecv()
			checkRefusal(t, err, stream.Trailer(), tc.want, reader)
		})
	}

	// A stream is one event, reported when it ends.
	var authenticated int
	for _, ev := range e.events.all() {
		if ev.Outcome == apikey.OutcomeAuthenticated {
			authenticated++
		}
	}
	assert.Equal(t, 3, authenticated)
}

func TestPublicMethods(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	resp, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "a public method needs no key")
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status)
	_, err = healthpb.NewHealthClient(e.conn).Check(withMD(ctx, "authorization", "Bearer nonsense"), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "nor is any credential read")
	assert.Empty(t, e.events.all(), "public calls are not reported")
}

func TestAnonymous(t *testing.T) {
	// apikey.WithAnonymous applies to calls as to requests: a method
	// mapped to "" is served without a key; one with a query is refused.
	e := newEnv(t, envConfig{opts: []apikey.MiddlewareOption{apikey.WithAnonymous()}})
	ctx := context.Background()
	resp, err := e.client.CacheableUnaryCall(ctx, &testpb.SimpleRequest{})
	require.NoError(t, err)
	assert.Equal(t, "none", resp.Username)
	_, err = e.client.UnaryCall(ctx, &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestHeaderOption(t *testing.T) {
	e := newEnv(t, envConfig{grpcOpts: []apikeygrpc.Option{apikeygrpc.WithHeader("X-Acme-Key")}})
	ctx := context.Background()
	s, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	_, err := e.client.UnaryCall(withMD(ctx, "x-acme-key", s.Reveal()), &testpb.SimpleRequest{})
	require.NoError(t, err)
	_, err = e.client.UnaryCall(withMD(ctx, "x-api-key", s.Reveal()), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "x-api-key is no longer read")

	e = newEnv(t, envConfig{grpcOpts: []apikeygrpc.Option{apikeygrpc.WithHeader("")}})
	s, _ = e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	_, err = e.client.UnaryCall(withMD(ctx, "x-api-key", s.Reveal()), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{})
	require.NoError(t, err)
}

func TestOnlyCredentialMetadataIsRead(t *testing.T) {
	// A client cannot claim an address: X-Forwarded-For is not copied,
	// even with proxies trusted.
	e := newEnv(t, envConfig{opts: []apikey.MiddlewareOption{
		apikey.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")),
	}})
	ctx := context.Background()
	s, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	_, err := e.client.UnaryCall(withMD(ctx, append(bearer(s), "x-forwarded-for", "10.1.2.3")...), &testpb.SimpleRequest{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
}

func TestNewInterceptorRejectsBadConfiguration(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		name   string
		scopes map[string]string
		opts   []apikeygrpc.Option
		want   error
	}{
		{"not a method", map[string]string{"UnaryCall": ""}, nil, apikey.ErrInvalidRequest},
		{"no service", map[string]string{"//UnaryCall": ""}, nil, apikey.ErrInvalidRequest},
		{"three parts", map[string]string{"/a/b/c": ""}, nil, apikey.ErrInvalidRequest},
		{"bad query", map[string]string{mUnary: "orders:read and"}, nil, apikey.ErrInvalidQuery},
		{"wildcard in a query", map[string]string{mUnary: "orders:*"}, nil, apikey.ErrInvalidQuery},
		{"public and mapped", map[string]string{mUnary: ""}, []apikeygrpc.Option{apikeygrpc.WithPublicMethods(mUnary)}, apikey.ErrInvalidRequest},
		{"bad public method", nil, []apikeygrpc.Option{apikeygrpc.WithPublicMethods("Check")}, apikey.ErrInvalidRequest},
		{"nil option", nil, []apikeygrpc.Option{nil}, apikey.ErrInvalidRequest},
		{"nil middleware option", nil, []apikeygrpc.Option{apikeygrpc.WithMiddlewareOptions(nil)}, apikey.ErrInvalidRequest},
		{"bad header", nil, []apikeygrpc.Option{apikeygrpc.WithHeader("x api key")}, apikey.ErrInvalidRequest},
		{"bad middleware option", nil, []apikeygrpc.Option{apikeygrpc.WithMiddlewareOptions(apikey.WithRealm(`"`))}, apikey.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := apikeygrpc.NewInterceptor(e.m, tc.scopes, tc.opts...)
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, in)
		})
	}
	_, err := apikeygrpc.NewInterceptor(nil, nil)
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
}

func TestOverTLSOnBufconn(t *testing.T) {
	// The same service over bufconn with TLS, with the client's
	// Credentials: the secure path.
	e := newEnv(t, envConfig{})
	s, k := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	conn, err := grpc.NewClient("passthrough:///apikey.test", append(e.bufDial(),
		grpc.WithTransportCredentials(credentials.NewTLS(e.tlsCfg)),
		grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s)))...)
	require.NoError(t, err)
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	resp, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	require.NoError(t, err)
	assert.Equal(t, k.ID+"/acme", resp.Username)

	stream, err := client.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{})
	require.NoError(t, err)
	out, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, k.ID+"/acme", string(out.Payload.Body))

	// Every refusal code over this transport too. A key not yet cached
	// meets the failing store.
	fresh, _ := e.issue(t, apikey.IssueRequest{})
	conn2, err := grpc.NewClient("passthrough:///apikey.test", append(e.bufDial(),
		grpc.WithTransportCredentials(credentials.NewTLS(e.tlsCfg)),
		grpc.WithPerRPCCredentials(apikeygrpc.Credentials(fresh)))...)
	require.NoError(t, err)
	defer conn2.Close()
	e.store.setFailing(true)
	_, err = testpb.NewTestServiceClient(conn2).CacheableUnaryCall(context.Background(), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	e.store.setFailing(false)
	_, err = testpb.NewTestServiceClient(conn2).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "no orders:read")
	_, err = client.StreamingInputCall(context.Background())
	require.NoError(t, err)
	_, err = client.EmptyCall(context.Background(), &testpb.Empty{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = testpb.NewTestServiceClient(conn).UnaryCall(withMD(context.Background(), "x-api-key", s.Reveal()), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "two credentials")
	assert.True(t, strings.Contains(status.Convert(err).Message(), "more than one"))
	require.NoError(t, e.m.Revoke(context.Background(), k.ID))
	_, err = client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.False(t, errors.Is(err, context.Canceled))
}

func TestOnRefusal(t *testing.T) {
	type seen struct {
		reason apikey.Reason
		md     bool // the call's incoming metadata is in the context
	}
	var mu sync.Mutex
	var got []seen
	e := newEnv(t, envConfig{grpcOpts: []apikeygrpc.Option{apikeygrpc.WithOnRefusal(func(ctx context.Context, ae *apikey.AuthError) {
		_, ok := metadata.FromIncomingContext(ctx)
		mu.Lock()
		got = append(got, seen{ae.Reason, ok})
		mu.Unlock()
	})}})
	ctx := context.Background()
	s, _ := e.issue(t, apikey.IssueRequest{Scopes: []string{"billing:read"}})
	_, err := e.client.UnaryCall(ctx, &testpb.SimpleRequest{})
	require.Error(t, err)
	_, err = e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{})
	require.Error(t, err)
	_, err = e.client.UnaryCall(withMD(ctx, bearer(s)...), &testpb.SimpleRequest{}, grpc.WaitForReady(true))
	require.Error(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []seen{{apikey.ReasonNoCredential, true}, {apikey.ReasonInsufficientScope, true}, {apikey.ReasonInsufficientScope, true}}, got)

	_, err = apikeygrpc.NewInterceptor(e.m, nil, apikeygrpc.WithOnRefusal(nil))
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest)
}
