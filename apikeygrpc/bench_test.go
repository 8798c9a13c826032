package apikeygrpc_test

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/apikeykit/apikey/memstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
)

const benchKeys = 10_000

// BenchmarkUnary measures a unary call on bufconn, from client to handler
// and back, over many distinct keys: "bare" without the interceptor,
// "interceptor" with it, in the same run; the only change is the
// interceptor. Both send the key's metadata, so that the difference is
// the server's work. Report interceptor/bare as a ratio.
func BenchmarkUnary(b *testing.B) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(2*benchKeys, time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctxs := make([]context.Context, benchKeys)
	for i := range ctxs {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", Scopes: []string{"orders:read"}})
		if err != nil {
			b.Fatal(err)
		}
		ctxs[i] = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+s.Reveal())
	}
	in, err := apikeygrpc.NewInterceptor(m, map[string]string{mUnary: "orders:read"})
	if err != nil {
		b.Fatal(err)
	}

	for _, bc := range []struct {
		name string
		opts []grpc.ServerOption
	}{
		{"bare", nil},
		{"interceptor", in.ServerOptions()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lis := bufconn.Listen(1 << 20)
			srv := grpc.NewServer(bc.opts...)
			testpb.RegisterTestServiceServer(srv, &service{})
			go srv.Serve(lis)
			defer srv.Stop()
			conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := testpb.NewTestServiceClient(conn)
			// Warm the cache and the connection outside the timing.
			for _, ctx := range ctxs {
				if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(benchKeys)
				req := &testpb.SimpleRequest{}
				for pb.Next() {
					if _, err := client.UnaryCall(ctxs[i%benchKeys], req); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkInterceptor measures the unary interceptor alone, called as
// gRPC calls it, with a handler that does nothing: the interceptor's own
// cost per call, without the transport.
func BenchmarkInterceptor(b *testing.B) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(2*benchKeys, time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	in, err := apikeygrpc.NewInterceptor(m, map[string]string{mUnary: "orders:read"})
	if err != nil {
		b.Fatal(err)
	}
	ctxs := make([]context.Context, benchKeys)
	for i := range ctxs {
		s, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", Scopes: []string{"orders:read"}})
		if err != nil {
			b.Fatal(err)
		}
		ctxs[i] = metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+s.Reveal()))
	}
	unary := in.Unary()
	info := &grpc.UnaryServerInfo{FullMethod: mUnary}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	for _, ctx := range ctxs {
		if _, err := unary(ctx, nil, info, handler); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(benchKeys)
		for pb.Next() {
			if _, err := unary(ctxs[i%benchKeys], nil, info, handler); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
