package apikeygrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/apikeykit/apikey/memstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

func ExampleNewInterceptor() {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Every method the server serves is either in the map, with the
	// scope query its key needs ("" for any valid key), or public.
	in, err := apikeygrpc.NewInterceptor(m, map[string]string{
		"/grpc.testing.TestService/UnaryCall":           "orders:read",
		"/grpc.testing.TestService/StreamingOutputCall": "orders:read",
		"/grpc.testing.TestService/StreamingInputCall":  "orders:write",
	}, apikeygrpc.WithPublicMethods("/grpc.health.v1.Health/Check"))
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(in.ServerOptions()...)
	testpb.RegisterTestServiceServer(srv, &service{}) // its handlers call apikey.FromContext
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()

	// The client sends its key with every call. Over a connection without
	// TLS it does so only to a loopback peer, and only with
	// WithInsecureLoopback.
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "acme", Scopes: []string{"orders:read"}})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(apikeygrpc.Credentials(secret, apikeygrpc.WithInsecureLoopback())))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err == nil {
		fmt.Println("UnaryCall: OK")
	}
	stream, _ := client.StreamingInputCall(ctx)
	_, err = stream.CloseAndRecv()
	st := status.Convert(err)
	fmt.Printf("StreamingInputCall: %v: %s\n", st.Code(), st.Message())
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println("Check:", status.Code(err))
	// Output:
	// UnaryCall: OK
	// StreamingInputCall: PermissionDenied: the API key lacks a required scope: orders:write
	// Check: OK
}
