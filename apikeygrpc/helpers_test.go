package apikeygrpc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/test/bufconn"
)

var testPepper = []byte("test-pepper-0123456789abcdef0123")

// Full method names of the test service.
const (
	mUnary     = "/grpc.testing.TestService/UnaryCall"
	mEmpty     = "/grpc.testing.TestService/EmptyCall"
	mCacheable = "/grpc.testing.TestService/CacheableUnaryCall"
	mOutput    = "/grpc.testing.TestService/StreamingOutputCall"
	mInput     = "/grpc.testing.TestService/StreamingInputCall"
	mDuplex    = "/grpc.testing.TestService/FullDuplexCall"
	mHealth    = "/grpc.health.v1.Health/Check"
)

// testScopes is the scopes map of most tests: EmptyCall is not in it.
var testScopes = map[string]string{
	mUnary:     "orders:read",
	mCacheable: "",
	mOutput:    "orders:read",
	mInput:     "orders:write",
	mDuplex:    "orders:read and orders:write",
}

// flakyStore is a Store whose Get fails while failing is set.
type flakyStore struct {
	apikey.Store
	mu      sync.Mutex
	failing bool
}

func (s *flakyStore) Get(ctx context.Context, id string) (*apikey.Key, error) {
	s.mu.Lock()
	failing := s.failing
	s.mu.Unlock()
	if failing {
		return nil, errors.New("connection refused")
	}
	return s.Store.Get(ctx, id)
}

func (s *flakyStore) setFailing(v bool) {
	s.mu.Lock()
	s.failing = v
	s.mu.Unlock()
}

// eventLog collects the middleware's events.
type eventLog struct {
	mu     sync.Mutex
	events []apikey.Event
}

func (l *eventLog) add(ev apikey.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []apikey.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]apikey.Event(nil), l.events...)
}

// env is a Manager with a real gRPC server in front of it.
type env struct {
	m      *apikey.Manager
	store  *flakyStore
	events *eventLog
	conn   *grpc.ClientConn // without per-RPC credentials
	client testpb.TestServiceClient
	addr   string // the server's address on loopback TCP
	tlsCfg *tls.Config
	lis    *bufconn.Listener // TLS
	// plainLis is a bufconn listener without TLS.
	plainLis *bufconn.Listener
}

type envConfig struct {
	scopes   map[string]string
	opts     []apikey.MiddlewareOption
	grpcOpts []apikeygrpc.Option
	mgrOpts  []apikey.Option
}

// newEnv starts the test service behind an Interceptor twice: on bufconn
// with TLS and on loopback TCP without; conn goes to the TCP server.
func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	e := &env{store: &flakyStore{Store: memstore.New()}, events: &eventLog{}}
	var err error
	e.m, err = apikey.NewManager(e.store, append([]apikey.Option{apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper)}, cfg.mgrOpts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { e.m.Close() })
	if cfg.scopes == nil {
		cfg.scopes = testScopes
	}
	opts := append([]apikeygrpc.Option{
		apikeygrpc.WithPublicMethods(mHealth),
		apikeygrpc.WithOnEvent(e.events.add),
		apikeygrpc.WithMiddlewareOptions(cfg.opts...),
	}, cfg.grpcOpts...)
	in, err := apikeygrpc.NewInterceptor(e.m, cfg.scopes, opts...)
	require.NoError(t, err)

	newServer := func(extra ...grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(append(in.ServerOptions(), extra...)...)
		testpb.RegisterTestServiceServer(s, &service{})
		healthpb.RegisterHealthServer(s, health.NewServer())
		t.Cleanup(s.Stop)
		return s
	}

	// Loopback TCP, no transport security.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = tcp.Addr().String()
	go newServer().Serve(tcp)

	// bufconn, with TLS.
	cert, pool := selfSigned(t)
	e.tlsCfg = &tls.Config{RootCAs: pool, ServerName: "apikey.test", MinVersion: tls.VersionTLS13}
	e.lis = bufconn.Listen(1 << 20)
	go newServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert))).Serve(e.lis)
	e.plainLis = bufconn.Listen(1 << 20)
	go newServer().Serve(e.plainLis)

	e.conn, err = grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { e.conn.Close() })
	e.client = testpb.NewTestServiceClient(e.conn)
	return e
}

// bufDial returns dial options that reach the bufconn server.
func (e *env) bufDial() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return e.lis.DialContext(ctx)
	})}
}

// issue issues a key with the given request.
func (e *env) issue(t testing.TB, req apikey.IssueRequest) (apikey.Secret, *apikey.Key) {
	t.Helper()
	if req.Owner == "" {
		req.Owner = "acme"
	}
	s, k, err := e.m.Issue(context.Background(), req)
	require.NoError(t, err)
	return s, k
}

// selfSigned returns a TLS certificate for apikey.test and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "apikey.test"},
		DNSNames:     []string{"apikey.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// service is the test service: each method answers with the key its
// context holds, so tests see what apikey.FromContext gives a handler.
type service struct {
	testpb.UnimplementedTestServiceServer
}

// who describes the key in ctx: "kid/owner", or "none".
func who(ctx context.Context) string {
	k, ok := apikey.FromContext(ctx)
	if !ok {
		return "none"
	}
	return k.ID + "/" + k.Owner
}

func (service) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (service) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Username: who(ctx)}, nil
}

func (service) CacheableUnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Username: who(ctx)}, nil
}

func (service) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for range max(len(req.ResponseParameters), 1) {
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(who(s.Context()))}}); err != nil {
			return err
		}
	}
	return nil
}

func (service) StreamingInputCall(s grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	n := 0
	for {
		req, err := s.Recv()
		if err != nil {
			if strings.Contains(err.Error(), "EOF") {
				break
			}
			return err
		}
		n += len(req.GetPayload().GetBody())
	}
	if _, ok := apikey.FromContext(s.Context()); !ok {
		return errors.New("no key in the stream's context")
	}
	return s.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(n)})
}

func (service) FullDuplexCall(s grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		if _, err := s.Recv(); err != nil {
			return nil
		}
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(who(s.Context()))}}); err != nil {
			return err
		}
	}
}

// assertNoSecret fails if text holds any API key (apikey.Scan) or the
// given secret's random part.
func assertNoSecret(t testing.TB, text string, secret apikey.Secret) {
	t.Helper()
	err := apikey.Scan(strings.NewReader(text), func(f apikey.Finding) error {
		t.Errorf("a key (kid %s) in %q", f.ID, text)
		return nil
	})
	require.NoError(t, err)
	if raw := secret.Reveal(); raw != "" {
		if i := strings.LastIndexByte(raw, '_'); i >= 0 && bytes.Contains([]byte(text), []byte(raw[i+1:i+20])) {
			t.Errorf("part of the secret in %q", text)
		}
	}
}
