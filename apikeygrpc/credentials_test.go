package apikeygrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/apikeygrpc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/credentials/local"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

func TestCredentials(t *testing.T) {
	e := newEnv(t, envConfig{})
	s, k := e.issue(t, apikey.IssueRequest{Scopes: []string{"orders:read"}})
	ctx := context.Background()

	call := func(t *testing.T, conn *grpc.ClientConn) (string, error) {
		t.Helper()
		resp, err := testpb.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{})
		if err != nil {
			return "", err
		}
		return resp.Username, nil
	}
	dial := func(t *testing.T, target string, opts ...grpc.DialOption) *grpc.ClientConn {
		t.Helper()
		conn, err := grpc.NewClient(target, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("insecure transport refused at NewClient", func(t *testing.T) {
		_, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s)))
		require.Error(t, err, "RequireTransportSecurity")
	})
	t.Run("TLS", func(t *testing.T) {
		conn := dial(t, "passthrough:///apikey.test", append(e.bufDial(),
			grpc.WithTransportCredentials(credentials.NewTLS(e.tlsCfg)),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s)))...)
		who, err := call(t, conn)
		require.NoError(t, err)
		assert.Equal(t, k.ID+"/acme", who)
	})
	t.Run("insecure loopback TCP, allowed", func(t *testing.T) {
		conn := dial(t, e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s, apikeygrpc.WithInsecureLoopback())))
		who, err := call(t, conn)
		require.NoError(t, err)
		assert.Equal(t, k.ID+"/acme", who)
	})
	t.Run("local credentials on loopback, allowed", func(t *testing.T) {
		conn := dial(t, e.addr, grpc.WithTransportCredentials(local.NewCredentials()),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s, apikeygrpc.WithInsecureLoopback())))
		who, err := call(t, conn)
		require.NoError(t, err)
		assert.Equal(t, k.ID+"/acme", who)
	})
	t.Run("local credentials without WithInsecureLoopback, refused per call", func(t *testing.T) {
		// local credentials pass RequireTransportSecurity at NewClient,
		// but give TCP no privacy: the key is not sent (gRPC itself
		// refuses, before asking the credentials).
		conn := dial(t, e.addr, grpc.WithTransportCredentials(local.NewCredentials()),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s)))
		n := len(e.events.all())
		_, err := call(t, conn)
		assert.Contains(t, []codes.Code{codes.Unauthenticated, codes.Unavailable}, status.Code(err), "%v", err)
		assertNoSecret(t, err.Error(), s)
		assert.Len(t, e.events.all(), n, "the call never reached the server")
	})
	t.Run("insecure, not loopback, refused per call", func(t *testing.T) {
		// bufconn's peer is no loopback address: with WithInsecureLoopback
		// and no TLS the key is still not sent.
		lis := e.plainLis
		conn := dial(t, "passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		}), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(s, apikeygrpc.WithInsecureLoopback())))
		n := len(e.events.all())
		_, err := call(t, conn)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		assert.Contains(t, err.Error(), "no transport security")
		assertNoSecret(t, err.Error(), s)
		assert.Len(t, e.events.all(), n, "nothing reached the middleware")
	})
	t.Run("zero secret", func(t *testing.T) {
		conn := dial(t, e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(apikeygrpc.Credentials(apikey.Secret{}, apikeygrpc.WithInsecureLoopback())))
		_, err := call(t, conn)
		assert.Equal(t, codes.Unauthenticated, status.Code(err))
		assert.Contains(t, err.Error(), "no API key")
	})
}

func TestCredentialsRequireTransportSecurity(t *testing.T) {
	s := apikey.NewSecret("acme_test_0123456789ab_" + "x")
	assert.True(t, apikeygrpc.Credentials(s).RequireTransportSecurity())
	assert.False(t, apikeygrpc.Credentials(s, apikeygrpc.WithInsecureLoopback()).RequireTransportSecurity())
	_, err := apikeygrpc.Credentials(s).GetRequestMetadata(context.Background())
	assert.Error(t, err, "no request information: fail closed")
}

func TestCredentialsRedact(t *testing.T) {
	e := newEnv(t, envConfig{})
	s, k := e.issue(t, apikey.IssueRequest{})
	secretPart := s.Reveal()[len(s.Reveal())-49:]
	for _, c := range []credentials.PerRPCCredentials{
		apikeygrpc.Credentials(s),
		apikeygrpc.Credentials(s, apikeygrpc.WithInsecureLoopback()),
	} {
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T"} {
			outs = append(outs, fmt.Sprintf(verb, c))
		}
		outs = append(outs, fmt.Sprint(c), fmt.Sprintln(c))
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "c", c)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "c", c)
		outs = append(outs, buf.String())
		j, err := json.Marshal(c)
		require.NoError(t, err)
		outs = append(outs, string(j))
		for _, out := range outs {
			assert.NotContains(t, out, secretPart)
			assertNoSecret(t, out, s)
		}
		assert.Contains(t, fmt.Sprint(c), k.ID, "the kid is shown, to tell keys apart")
	}
}
