package apikeygrpc_test

import (
	"context"
	"net"
	"slices"
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

// BenchmarkInterceptorCost makes unary calls on bufconn to a bare server
// and to one with the interceptor in alternating batches of 32, over many
// distinct keys, so that a change in the machine's load between the two
// hits both alike (the machine may be shared). It reports the median batch
// of each per call (bare-ns/call, interceptor-ns/call) and the median
// ratio of adjacent batches (ratio).
func BenchmarkInterceptorCost(b *testing.B) {
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
	client := func(opts ...grpc.ServerOption) testpb.TestServiceClient {
		lis := bufconn.Listen(1 << 20)
		srv := grpc.NewServer(opts...)
		testpb.RegisterTestServiceServer(srv, &service{})
		go srv.Serve(lis)
		b.Cleanup(srv.Stop)
		conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		return testpb.NewTestServiceClient(conn)
	}
	bare, guarded := client(), client(in.ServerOptions()...)
	req := &testpb.SimpleRequest{}
	for _, ctx := range ctxs {
		if _, err := bare.UnaryCall(ctx, req); err != nil {
			b.Fatal(err)
		}
		if _, err := guarded.UnaryCall(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	const batch = 32
	i := 0
	run := func(c testpb.TestServiceClient) time.Duration {
		start := time.Now()
		for range batch {
			if _, err := c.UnaryCall(ctxs[i%len(ctxs)], req); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return time.Since(start)
	}
	var bareT, guardedT, ratio []float64
	for n := 0; b.Loop(); n++ {
		var p, g time.Duration
		if n%2 == 0 {
			p, g = run(bare), run(guarded)
		} else {
			g, p = run(guarded), run(bare)
		}
		bareT = append(bareT, float64(p)/batch)
		guardedT = append(guardedT, float64(g)/batch)
		ratio = append(ratio, float64(g)/float64(p))
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(bareT), "bare-ns/call")
	b.ReportMetric(median(guardedT), "interceptor-ns/call")
	b.ReportMetric(median(ratio), "ratio")
}
