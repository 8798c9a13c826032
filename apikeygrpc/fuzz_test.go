package apikeygrpc_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/apikeykit/apikey/memstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// FuzzInterceptorMetadata sends whatever credential metadata the fuzzer
// makes up through the unary interceptor: it must never panic, let a call
// through only with the real key, and answer with one of its fixed
// messages, never an echo of the input.
func FuzzInterceptorMetadata(f *testing.F) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	secret, _, err := m.Issue(context.Background(), apikey.IssueRequest{Owner: "o", Scopes: []string{"orders:read"}})
	if err != nil {
		f.Fatal(err)
	}
	in, err := apikeygrpc.NewInterceptor(m, map[string]string{mUnary: "orders:read"})
	if err != nil {
		f.Fatal(err)
	}
	unary := in.Unary()
	info := &grpc.UnaryServerInfo{FullMethod: mUnary}
	messages := []string{
		"an API key is required", "more than one API key in the request", "malformed Authorization header",
		"invalid API key", "API key revoked", "API key expired", "API key suspended",
	}

	raw := secret.Reveal()
	f.Add("Bearer "+raw, "")
	f.Add("", raw)
	f.Add("Bearer "+raw, raw)
	f.Add("bearer  "+raw, "")
	f.Add("Bearer "+raw[:len(raw)-1], "")
	f.Add("Basic Zm9vOmJhcg==", "\x00")
	f.Add("Bearer \u202e", " \t")
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		md := metadata.MD{}
		if authorization != "" {
			md["authorization"] = []string{authorization}
		}
		if apiKey != "" {
			md["x-api-key"] = []string{apiKey}
		}
		ctx := metadata.NewIncomingContext(context.Background(), md)
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
		called := false
		_, err := unary(ctx, nil, info, func(ctx context.Context, _ any) (any, error) {
			called = true
			if _, ok := apikey.FromContext(ctx); !ok {
				t.Fatal("handler called without a key")
			}
			return nil, nil
		})
		if err == nil {
			if !called || !(strings.Contains(authorization, raw) || strings.Contains(apiKey, raw)) {
				t.Fatalf("let through without the key: %q %q", authorization, apiKey)
			}
			return
		}
		if called {
			t.Fatal("handler called, and the call refused")
		}
		st := status.Convert(err)
		if st.Code() != codes.Unauthenticated && st.Code() != codes.ResourceExhausted {
			t.Fatalf("code %v for %q %q", st.Code(), authorization, apiKey)
		}
		known := false
		for _, msg := range messages {
			known = known || st.Message() == msg
		}
		if !known {
			t.Fatalf("unexpected message %q", st.Message())
		}
	})
}
